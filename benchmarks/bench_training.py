"""Training speed (issue 9): tfcro's trainer beside a minimal hand-written loop, one process.

    python -m benchmarks.bench_training [--dataset generated|ml-1m] [--data-dir DIR]
        [--losses softmax,cro-lambda] [--optimizer adam|lazy_adam] [--steps 60] [--rounds 2]

Both sides train the same shapes and work on the same data: a user tower of a
user-id embedding and the masked mean of ``--max-history`` history embeddings,
concatenated and projected to ``--embedding-dim`` (a Dense layer), an id item
tower, both L2-normalised, scores ``10 x cosine`` against the in-batch positives
plus ``--num-negatives`` shared uniform negatives, accidental hits removed, the
same optimizer. The loss is softmax cross-entropy (the hand-written loop: TensorFlow's
fused op) or CROLoss-lambda (sigmoid/softplus, alpha 1; the loop calls tfcro's loss).

- **tfcro**: ``TwoTowerModel`` compiled as :func:`tfcro.training.train` does, fed
  by ``index_dataset(train_columns(...))``, timed through ``model.fit``.
- **hand-written**: int32 arrays in memory, one ``tf.function`` step over
  ``tf.Variable`` tables, batches sliced from a shuffled permutation.

Each side runs with and without XLA (``jit_compile``); rounds interleave the four
so that background load hits all alike. Also printed: the time outside the epochs
of a run (data preparation and split, model build and encoding, full-catalog test
evaluation), peak resident memory, and the machine.

Datasets: ``generated`` (the sizes of the issue: 29,858 users, 40,981 items,
~1M interactions split 80/20 per user, a power-law catalog, collaborative
protocol; no files needed) or ``ml-1m`` (``--data-dir``, the pairs split).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time

import numpy as np
import pandas as pd

import tfcro  # noqa: F401  (first: Keras 2)
from tfcro import data as data_lib
from tfcro import losses as losses_lib
from tfcro._compat import keras, tf
from tfcro.evaluation import evaluate
from tfcro.training import OPTIMIZERS, TrainingConfig, build_model
from tfcro.training.build import build_variables, train_columns

LOSSES = {
    "softmax": ("softmax", {}),
    "cro-lambda": ("cro-lambda", {"weight_kernel": "sigmoid", "kernel": "softplus", "alpha": 1.0}),
}


def generated_data(
    num_users: int, num_items: int, interactions: int, max_history: int, seed: int = 0
) -> data_lib.RetrievalData:
    """A collaborative split of power-law interactions (80/20 per user)."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, num_items + 1) ** 0.8
    counts = np.maximum(5, rng.geometric(num_users / interactions, size=num_users))
    counts = (counts * interactions / counts.sum()).astype(int) + 1
    users = np.repeat(np.arange(num_users), counts)
    items = rng.choice(num_items, size=len(users), p=popularity / popularity.sum())
    frame = pd.DataFrame({"user": users.astype(str), "item": items.astype(str)})
    frame = frame.drop_duplicates().reset_index(drop=True)
    test = rng.random(len(frame)) < 0.2
    train_part = data_lib.Interactions(frame[~test].reset_index(drop=True), name="generated")
    test_part = data_lib.Interactions(frame[test].reset_index(drop=True), name="generated")
    return data_lib.collaborative_split(train_part, test_part, max_history=max_history, seed=seed)


def load(args: argparse.Namespace) -> data_lib.RetrievalData:
    if args.dataset == "generated":
        return generated_data(args.num_users, args.num_items, args.interactions, args.max_history)
    interactions = data_lib.load_dataset("pairs", args.data_dir)
    train_part, test_part = interactions.train_test()
    return data_lib.collaborative_split(train_part, test_part, max_history=args.max_history, seed=0)


def config_for(args: argparse.Namespace, loss: str) -> TrainingConfig:
    name, options = LOSSES[loss]
    return TrainingConfig(
        dataset="synthetic",
        protocol="collaborative",
        max_history=args.max_history,
        batch_size=args.batch_size,
        learning_rate=1e-3,
        model={
            "embedding_dim": args.embedding_dim,
            "use_user_id": True,
            "num_negatives": args.num_negatives,
            "scale": 10.0,
            "loss": name,
            "loss_options": options,
            "seed": 0,
        },
    )


class _StepTimer(keras.callbacks.Callback):
    def __init__(self, skip: int):
        super().__init__()
        self.skip, self.times = skip, []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())

    def seconds_per_step(self) -> float:
        times = self.times[self.skip :]
        return (times[-1] - times[0]) / max(len(times) - 1, 1)


class TfcroSide:
    """A compiled TwoTowerModel and its int dataset; ``run(steps)`` -> seconds per step."""

    def __init__(self, args, data, loss, jit: bool):
        config = config_for(args, loss)
        self.model = build_model(config, data)
        self.model.compile(optimizer=OPTIMIZERS[args.optimizer](1e-3), jit_compile=jit)
        build_variables(self.model, data)
        self.dataset = data_lib.index_dataset(train_columns(self.model, data), args.batch_size)
        self.batch_size = args.batch_size

    def run(self, steps: int) -> float:
        timer = _StepTimer(skip=2)
        self.model.fit(
            self.dataset.repeat().take(steps + 2), epochs=1, verbose=0, callbacks=[timer]
        )
        return timer.seconds_per_step()


class HandWrittenSide:
    """The minimal loop: variables, one XLA step, slices of a shuffled permutation."""

    def __init__(self, args, data, loss, model: tfcro.TwoTowerModel, jit: bool):
        columns = model.encode(
            {
                "history": data.train.history,
                "user_id": data.train.user_id,
                "item_id": data.train.target,
            }
        )
        self.history = columns["history"]
        self.user = columns["user_id"]
        self.item = columns["item_id"]
        self.batch_size = args.batch_size
        dim, num_items = args.embedding_dim, len(data.items)
        num_users = (
            model.user_tower.get_layer("user_tower_index")
            .get_layer("user_id_embedding")
            .num_indices
        )
        init = tf.keras.initializers.RandomUniform(-0.05, 0.05, seed=0)
        item_table = tf.Variable(init([num_items + 2, dim]))
        user_table = tf.Variable(init([num_users, dim]))
        kernel = tf.Variable(tf.keras.initializers.GlorotUniform(seed=1)([2 * dim, dim]))
        bias = tf.Variable(tf.zeros([dim]))
        variables = [item_table, user_table, kernel, bias]
        optimizer = OPTIMIZERS[args.optimizer](1e-3)
        optimizer.build(variables)
        k = args.num_negatives
        name, options = LOSSES[loss]
        cro = losses_lib.get(name, **options, num_items=num_items) if name != "softmax" else None

        @tf.function(jit_compile=jit)
        def step(history, user, item, seed):
            with tf.GradientTape() as tape:
                mask = tf.cast(history > 0, tf.float32)[..., None]
                pooled = tf.reduce_sum(tf.gather(item_table, history) * mask, 1) / tf.maximum(
                    tf.reduce_sum(mask, 1), 1.0
                )
                u = tf.concat([pooled, tf.gather(user_table, user)], 1) @ kernel + bias
                u = tf.math.l2_normalize(u, -1)
                negatives = tf.random.stateless_uniform([k], seed, 2, num_items + 2, tf.int32)
                candidates = tf.concat([item, negatives], 0)
                v = tf.math.l2_normalize(tf.gather(item_table, candidates), -1)
                scores = 10.0 * tf.matmul(u, v, transpose_b=True)
                labels = tf.eye(tf.shape(u)[0], tf.shape(candidates)[0])
                hits = tf.cast(tf.equal(item[:, None], candidates[None, :]), tf.float32) - labels
                scores += hits * -1e9  # accidental hits removed
                if cro is None:
                    loss_value = tf.reduce_mean(
                        tf.nn.softmax_cross_entropy_with_logits(labels, scores)
                    )
                else:
                    loss_value = tf.reduce_mean(cro.call(labels, scores))
            grads = tape.gradient(loss_value, variables)
            optimizer.apply_gradients(zip(grads, variables, strict=True))
            return loss_value

        self.step = step
        self.rng = np.random.default_rng(0)
        self.order = self.rng.permutation(len(self.item))
        self.position = 0
        self.calls = 0

    def _batch(self):
        if self.position + self.batch_size > len(self.order):
            self.order, self.position = self.rng.permutation(len(self.item)), 0
        rows = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return self.history[rows], self.user[rows], self.item[rows]

    def run(self, steps: int) -> float:
        times = []
        for _ in range(steps + 2):
            self.calls += 1
            self.step(*self._batch(), tf.constant([0, self.calls]))
            times.append(time.perf_counter())
        return (times[-1] - times[2]) / (len(times) - 3)


def outside_epochs(args, loss) -> dict[str, float]:
    """Seconds of a run outside its epochs: data, model build, test evaluation."""
    out = {}
    start = time.perf_counter()
    data = load(args)
    out["data"] = time.perf_counter() - start
    start = time.perf_counter()
    config = config_for(args, loss)
    model = build_model(config, data)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=config.jit_compile)
    build_variables(model, data)
    columns = train_columns(model, data)
    out["model build + encoding"] = time.perf_counter() - start
    start = time.perf_counter()
    evaluate(model, data.test, data.items, ks=(20,), batch_size=config.eval_batch_size)
    out["test evaluation"] = time.perf_counter() - start
    out["examples"] = len(columns["item_id"])
    return out, data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_training",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", choices=["generated", "ml-1m"], default="generated")
    parser.add_argument("--data-dir", default="../shared/data/ml-1m")
    parser.add_argument("--num-users", type=int, default=29_858)
    parser.add_argument("--num-items", type=int, default=40_981)
    parser.add_argument(
        "--interactions", type=int, default=1_012_000, help="before the 80/20 split (~810k train)"
    )
    parser.add_argument("--losses", default="softmax,cro-lambda")
    parser.add_argument("--max-history", type=int, default=50)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--num-negatives", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    args = parser.parse_args(argv)
    losses = [name.strip() for name in args.losses.split(",") if name.strip()]
    for name in losses:
        if name not in LOSSES:
            parser.error(f"--losses: one of {list(LOSSES)}. Received: {name!r}")

    outside, data = outside_epochs(args, losses[0])
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"TensorFlow {tf.__version__}, load {os.getloadavg()[0]:.2f}"
    )
    print(f"data: {args.dataset}, {data.summary()}")
    print(f"\nOutside the epochs ({outside['examples']:,} training examples):\n")
    print("| part | seconds |\n|---|---|")
    for part in ("data", "model build + encoding", "test evaluation"):
        print(f"| {part} | {outside[part]:.1f} |")
    parts = ("data", "model build + encoding", "test evaluation")
    print(f"| total | {sum(outside[part] for part in parts):.1f} |")

    print(
        f"\nTraining step (batch {args.batch_size}, {args.num_negatives} uniform negatives, "
        f"embedding {args.embedding_dim}, history {args.max_history}, {args.optimizer}; "
        f"examples/s, median of {args.rounds} rounds x {args.steps} steps):\n"
    )
    print(
        "| loss | tfcro XLA | tfcro graph | hand-written XLA | hand-written graph "
        "| tfcro best / hand-written best |\n|---|---|---|---|---|---|"
    )
    for loss in losses:
        sides = {}
        for jit in (True, False):
            ours = TfcroSide(args, data, loss, jit)
            sides[("tfcro", jit)] = ours
            sides[("hand", jit)] = HandWrittenSide(args, data, loss, ours.model, jit)
        for side in sides.values():
            side.run(2)  # compile
        times = {key: [] for key in sides}
        for _ in range(args.rounds):
            for key, side in sides.items():
                times[key].append(side.run(args.steps))
        speed = {key: args.batch_size / statistics.median(t) for key, t in times.items()}
        best = max(speed[("tfcro", True)], speed[("tfcro", False)]) / max(
            speed[("hand", True)], speed[("hand", False)]
        )
        cells = " | ".join(
            f"{speed[key]:,.0f}"
            for key in (("tfcro", True), ("tfcro", False), ("hand", True), ("hand", False))
        )
        print(f"| {loss} | {cells} | {best:.2f}x |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory: {peak:,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
