"""What each negative layout costs per training step: shared against per-row negatives,
dense Adam against lazy row updates.

    KERAS_BACKEND=jax python -m benchmarks.bench_negatives [--layouts ...] [--steps 40]
        [--rounds 3] [--batch-size 1024] [--loss softmax] [--updates dense,sparse]

The model is :class:`tfcro.keras3.TwoTowerRetrieval` (matrix factorisation, embedding
64) at Yelp2018's sizes (31,668 users, 38,048 items; ids drawn with a power-law item
popularity, no files needed), trained with ``model.fit`` and Adam. A layout is
``in-batch on/off``, ``K`` shared uniform negatives and ``R`` per-row ones:

- ``round1``: the batch's other positives with logQ + 2,048 shared (tfcro's
  leaderboard, round 1);
- ``bsl800``: 800 per row, no in-batch, no logQ (junkangwu/BSL's MF recipe);
- ``irb1000``: 1,000 per row, no in-batch (IR-Benchmark's);
- ``shared800``: 800 shared, no in-batch (the same column count as ``bsl800``);
- ``shared512``, ``shared4096``: 512 or 4,096 shared, no in-batch (the Yelp2018 alpha
  sweep's and the best Yelp2018 run's).

``--updates``: ``dense`` (Keras's Adam over both tables) and/or ``sparse``
(``sparse_updates=True``: lazy Adam on the rows a batch uses; JAX backend), each
layout timed with each. Rounds interleave the models so that background load hits all
alike; each timing is the wall time of ``--steps`` steps after a compiling warm-up
``fit``, and the table gives the median per step and its ratio to the first model. Run
it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from pipelines._cli import name_list

NUM_USERS, NUM_ITEMS = 31_668, 38_048
#: name: (in-batch negatives and logQ, shared K, per-row R)
LAYOUTS = {
    "round1": (True, 2048, 0),
    "bsl800": (False, 0, 800),
    "irb1000": (False, 0, 1000),
    "shared800": (False, 800, 0),
    "shared512": (False, 512, 0),
    "shared4096": (False, 4096, 0),
}
UPDATES = ("dense", "sparse")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_negatives",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--layouts", type=name_list, default=list(LAYOUTS))
    parser.add_argument("--steps", type=int, default=40, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--loss", default="softmax", help="a tfcro.keras3.get name")
    parser.add_argument(
        "--updates", type=name_list, default=["dense"], help="dense and/or sparse (lazy Adam)"
    )
    return parser


def make_model(layout: str, args, popularity: np.ndarray, updates: str = "dense"):
    """A compiled model of ``layout`` with ``updates`` ("dense" or "sparse")."""
    import keras

    import tfcro.keras3 as cro

    in_batch, shared, own = LAYOUTS[layout]
    model = cro.TwoTowerRetrieval(
        NUM_USERS,
        NUM_ITEMS,
        args.embedding_dim,
        loss=cro.get(args.loss),
        scale=8.0,
        item_probabilities=popularity if in_batch else None,
        num_negatives=shared,
        num_row_negatives=own,
        in_batch_negatives=in_batch,
        embedding_l2=1e-3,
        sparse_updates=updates == "sparse",
        seed=0,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    unknown = sorted(set(args.layouts) - set(LAYOUTS))
    if unknown:
        raise SystemExit(f"--layouts: unknown {unknown}; allowed: {sorted(LAYOUTS)}")
    unknown = sorted(set(args.updates) - set(UPDATES))
    if unknown or not args.updates:
        raise SystemExit(f"--updates: got {args.updates}; allowed: {list(UPDATES)}")
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    popularity = 1.0 / np.arange(1, NUM_ITEMS + 1) ** 0.8
    popularity = (popularity / popularity.sum()).astype("float32")
    size = args.batch_size * args.steps
    users = rng.integers(0, NUM_USERS, size).astype("int32")
    items = rng.choice(NUM_ITEMS, size, p=popularity).astype("int32")
    models = {
        (name, updates): make_model(name, args, popularity, updates)
        for name in args.layouts
        for updates in args.updates
    }
    for model in models.values():  # compile outside the timings
        model.fit(
            users[: 2 * args.batch_size],
            items[: 2 * args.batch_size],
            batch_size=args.batch_size,
            epochs=1,
            verbose=0,
            shuffle=False,
        )
    times = {key: [] for key in models}
    for _ in range(args.rounds):
        for key, model in models.items():
            started = time.perf_counter()
            model.fit(users, items, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=False)
            times[key].append((time.perf_counter() - started) / args.steps * 1000)
    print(
        f"{keras.backend.backend()} backend, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; loss {args.loss}, batch {args.batch_size}, "
        f"embedding {args.embedding_dim}, {args.rounds} rounds of {args.steps} steps\n"
    )
    print(
        "| layout | in-batch + logQ | shared | per row | scored columns | updates "
        "| ms per step | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    first = statistics.median(next(iter(times.values())))
    for (name, updates), timings in times.items():
        in_batch, shared, own = LAYOUTS[name]
        median = statistics.median(timings)
        columns = args.batch_size + shared + own  # the in-batch block is masked when off
        print(
            f"| {name} | {'yes' if in_batch else 'no'} | {shared} | {own} | {columns} | "
            f"{updates} | {median:.1f} | {median / first:.2f}x |"
        )


if __name__ == "__main__":
    main()
