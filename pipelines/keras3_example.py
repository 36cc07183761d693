"""Keras 3 + keras-rs: a two-tower model trained with CROLoss-lambda and with cross-entropy,
side by side, on the JAX and the TensorFlow backends.

    python -m pipelines.keras3_example --data-dir path/to/ml-100k [--backends jax,tensorflow]
        [--epochs 20] [--n 20] [--export-dir saved_models/keras3-ml100k]

Each backend runs in its own process (Keras picks its backend once per process): the
data (MovieLens ratings >= 4, or the synthetic dataset without ``--data-dir``) is split
per user at random (20% of each user's interactions held out), a
:class:`tfcro.keras3.TwoTowerRetrieval` (user and item id towers, in-batch negatives
with the logQ correction of ``keras_rs.layers.SamplingProbabilityCorrection``,
accidental hits masked, top-N over a ``keras_rs.layers.BruteForceRetrieval`` index
with each user's training items masked on the device) is trained
once per loss with the same seed and settings, and Recall@N / NDCG@N over the full
catalog, training items excluded, are printed per backend and loss. With
``--export-dir`` the TensorFlow run exports the CROLoss model's user tower for TF
Serving (``model.export``) and checks the reloaded SavedModel gives the same embeddings.
Needs the ``keras3`` extra (keras-rs, jax).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from pipelines._cli import name_list, new_parser

LOSSES = ("cro-lambda", "cross-entropy")


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser("keras3_example", __doc__, verbose=None, keras=True)
    parser.add_argument("--data-dir", default=None, help="MovieLens folder (default: synthetic)")
    parser.add_argument("--backends", type=name_list, default=["jax", "tensorflow"])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--embedding-dim", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--scale", type=float, default=10.0, help="1 / temperature")
    parser.add_argument("--alpha", type=float, default=1.0, help="CROLoss-lambda's alpha")
    parser.add_argument("--n", type=int, default=20, help="Recall@N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--export-dir", default=None, help="TensorFlow run: export here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser


def worker(args) -> list[dict]:
    """One backend (``KERAS_BACKEND``): train and evaluate each loss, return the rows."""
    import keras  # noqa: I001

    import tfcro.keras3 as cro
    from tfcro.data import collaborative_split, index_split, load_dataset, random_holdout

    if args.data_dir:
        data = load_dataset("movielens", args.data_dir, min_rating=4, features=False)
    else:
        data = load_dataset("synthetic", num_users=600, num_items=400, seed=args.seed)
    ids = index_split(
        collaborative_split(
            random_holdout(data, 0.2, args.seed), max_history=1, valid_fraction=0.0, seed=args.seed
        )
    )

    rows = []
    for name in LOSSES:
        keras.utils.set_random_seed(args.seed)
        loss = (
            cro.LambdaCROLoss(alpha=args.alpha)
            if name == "cro-lambda"
            else keras.losses.CategoricalCrossentropy(from_logits=True)
        )
        model = cro.TwoTowerRetrieval(
            ids.num_users,
            ids.num_items,
            args.embedding_dim,
            loss=loss,
            scale=args.scale,
            item_probabilities=ids.item_probabilities(),
            top_n=args.n,
        )
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
        started = time.perf_counter()
        model.fit(
            ids.train_users,
            ids.train_items,
            batch_size=args.batch_size,
            epochs=args.epochs,
            shuffle=True,
            verbose=args.verbose or 0,
        )
        seconds = time.perf_counter() - started
        metrics = cro.evaluate(model, ids.test, ks=(args.n,))  # training items excluded
        row = {
            "backend": keras.backend.backend(),
            "loss": name,
            f"recall@{args.n}": metrics[f"recall@{args.n}"],
            f"ndcg@{args.n}": metrics[f"ndcg@{args.n}"],
            "train_s": round(seconds, 1),
            "users": len(ids.test),
            "items": ids.num_items,
        }
        if args.export_dir and name == "cro-lambda" and row["backend"] == "tensorflow":
            row["export"] = export_user_tower(model, args.export_dir, ids.test.users[:64])
        rows.append(row)
    return rows


def export_user_tower(model, export_dir: str, probe) -> str:
    """``model.export`` of the user tower for TF Serving, reloaded and compared."""
    import keras
    import numpy as np
    import tensorflow as tf

    model.export(
        export_dir,
        format="tf_saved_model",
        input_signature=[keras.InputSpec(shape=(None,), dtype="int32")],
        verbose=False,
    )
    loaded = tf.saved_model.load(export_dir)  # kept: its variables die with it
    served = loaded.serve(tf.constant(probe))
    gap = float(np.max(np.abs(np.asarray(served) - np.asarray(model(probe)))))
    if gap > 1e-5:
        raise RuntimeError(f"the exported user tower differs from the model by {gap:.2e}")
    return export_dir


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    if args.worker:
        for row in worker(args):
            print("RESULT " + json.dumps(row), flush=True)
        return
    rows = []
    forwarded = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--worker"]
    for backend in args.backends:
        env = {**os.environ, "KERAS_BACKEND": backend}
        env.pop("TF_USE_LEGACY_KERAS", None)
        done = subprocess.run(
            [sys.executable, "-m", "pipelines.keras3_example", *forwarded, "--worker"],
            env=env,
            capture_output=True,
            text=True,
        )
        found = [
            json.loads(line[7:]) for line in done.stdout.splitlines() if line.startswith("RESULT ")
        ]
        if done.returncode != 0 or not found:
            sys.stderr.write(done.stderr[-4000:])
            raise SystemExit(f"the {backend} run failed (exit code {done.returncode})")
        rows += found
    n = args.n
    print(f"| backend | loss | Recall@{n} | NDCG@{n} | train s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['backend']} | {row['loss']} | {row[f'recall@{n}']:.4f} "
            f"| {row[f'ndcg@{n}']:.4f} | {row['train_s']} |"
        )
    exported = [row["export"] for row in rows if "export" in row]
    if exported:
        print(f"user tower exported for TF Serving: {exported[0]} (reloaded: same embeddings)")


if __name__ == "__main__":
    main()
