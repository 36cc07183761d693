"""The main job: CROLoss-lambda vs softmax cross-entropy on the embedded synthetic data.

    ./run main        # or: python -m pipelines.main [--epochs 8] [--output-dir runs/main]

Trains the paper's two-tower "DNN" model twice on the same split (same seed,
same negatives): once with ``LambdaCROLoss(sigmoid, softplus, alpha)`` and once
with softmax cross-entropy, evaluates both on the held-out users over the full
catalog and prints Recall@N side by side. Runs resume if interrupted. The
CROLoss model is exported for serving (SavedModel towers + ScaNN index).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import tfcro  # noqa: F401
from pipelines._cli import fit_verbosity, new_parser
from tfcro.training import TrainingConfig, load_data, train


def side_by_side(
    results: dict[str, dict[str, float]], ks: Sequence[int], metric: str = "recall"
) -> str:
    names = list(results)
    header = f"{'N':>6} " + " ".join(f"{n:>14}" for n in names)
    if len(names) == 2:
        header += f" {'relative':>9}"
    lines = [header]
    for k in ks:
        values = [results[n][f"{metric}@{k}"] for n in names]
        line = f"{k:>6} " + " ".join(f"{v:>14.4f}" for v in values)
        if len(values) == 2 and values[1] > 0:
            line += f" {100 * (values[0] / values[1] - 1):>+8.1f}%"
        lines.append(line)
    return "\n".join(lines)


def _python() -> str:
    """The interpreter as the user would type it (``.venv/bin/python`` from the repo root)."""
    relative = os.path.relpath(sys.executable)
    return sys.executable if relative.startswith("..") else relative


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser("main", __doc__, verbose=None, keras=True)
    parser.add_argument(
        "--output-dir",
        default="runs/main",
        help="the folder of the two run folders, <output-dir>/<loss>/",
    )
    parser.add_argument(
        "--export-dir",
        default="saved_models/main",
        help="the CROLoss model's SavedModel/ScaNN export",
    )
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-users", type=int, default=2000, help="synthetic users")
    parser.add_argument("--num-items", type=int, default=1000, help="synthetic items")
    parser.add_argument("--no-export", dest="export", action="store_false")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = fit_verbosity(args.verbose)

    ks = (20, 50, 100, 200, 500)
    common = dict(
        dataset="synthetic",
        protocol="sequential",
        dataset_options={"num_users": args.num_users, "num_items": args.num_items},
        max_history=20,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=256,
        learning_rate=0.005,
        patience=2,
        ks=ks,
    )
    negatives = min(512, args.num_items // 2)
    runs = {
        "cro-lambda": {
            "loss": "cro-lambda",
            "num_negatives": negatives,
            "loss_options": {"weight_kernel": "sigmoid", "kernel": "softplus", "alpha": args.alpha},
        },
        "softmax": {"loss": "softmax", "num_negatives": negatives, "loss_options": {}},
    }
    try:
        configs = {name: TrainingConfig(model=model, **common) for name, model in runs.items()}
    except ValueError as err:
        parser.error(str(err))
    started = time.time()
    data = load_data(configs["cro-lambda"])  # the same split for both runs
    print(f"[tfcro] data: {data}")
    results = {}
    for name, config in configs.items():
        print(
            f"\n[tfcro] training {name} ({config.epochs} epochs max, early stopping on "
            f"validation {config.monitor})"
        )
        results[name] = train(
            config, os.path.join(args.output_dir, name), data=data, verbose=verbose
        ).metrics

    print(
        f"\nRecall@N on {len(data.test)} held-out users, full catalog of {len(data.items)} "
        f"items (per-user recall, as the paper):"
    )
    print(side_by_side(results, ks))
    print("\nNDCG@N:")
    print(side_by_side(results, ks, metric="ndcg"))
    print(
        f"\n[tfcro] done in {time.time() - started:.0f} s. Runs (config.json, history.csv, "
        f"metrics.json, checkpoints): {os.path.abspath(args.output_dir)}/<loss>/"
    )
    if args.export:
        from tfcro.serving import export_from_run

        export_from_run(os.path.join(args.output_dir, "cro-lambda"), args.export_dir)
        print(
            f"[tfcro] CROLoss model exported for serving: {os.path.abspath(args.export_dir)}"
            f"\n        try: {_python()} -m pipelines.retrieve "
            f"--export-dir {args.export_dir} "
            f"--history {','.join(data.test.history[0][:3])} -n 10"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
