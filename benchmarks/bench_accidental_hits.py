"""Accidental-hit removal: candidate ids compared as strings vs int64 lookup indices.

    python -m benchmarks.bench_accidental_hits [--sizes 256x2816,1024x11264] [--steps 10]

``tfrs.tasks.Retrieval(remove_accidental_hits=True)`` compares each row's
positive id with every candidate id: a ``[B, C]`` equality per step. The
two-tower model passes int64 lookup indices (``TwoTowerModel.compute_loss``);
this measures what that saves over passing the raw string ids, on one
CROLoss-lambda training step of the loss part (scores, hit removal, loss,
gradients; graph mode), with hit removal off as the floor. ``B x C`` = batch x
candidates: the paper's 10 x batch sampled negatives plus the batch's own.
Timings are medians over ``--rounds`` rounds, the three variants interleaved
in each round, so background load hits all alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

import tfcro  # first: Keras 2 for TFRS
from tfcro._compat import tf


def _sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        try:
            batch, candidates = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--sizes should be BxC pairs like 256x2816. Received: {part!r}"
            ) from None
        if not 0 < batch <= candidates:
            raise argparse.ArgumentTypeError(f"--sizes needs 0 < B <= C. Received: {part!r}")
        out.append((batch, candidates))
    return out


def _task(remove_accidental_hits: bool, catalog: int):
    import tensorflow_recommenders as tfrs  # after tfcro (Keras 2)

    return tfrs.tasks.Retrieval(
        loss=tfcro.LambdaCROLoss(num_items=catalog),
        temperature=0.1,
        remove_accidental_hits=remove_accidental_hits,
    )


def _step(task, users: tf.Variable, candidates: tf.Variable):
    @tf.function
    def step(ids):
        with tf.GradientTape() as tape:
            loss = task(
                users,
                candidates,
                candidate_ids=ids,
                compute_metrics=False,
                compute_batch_metrics=False,
            )
        return loss, tape.gradient(loss, [users, candidates])

    return step


def measure(
    batch: int, num_candidates: int, steps: int, rounds: int, catalog: int = 80_000, seed: int = 0
) -> dict[str, float]:
    """Median milliseconds per step for string ids, int64 ids and no hit removal."""
    rng = np.random.default_rng(seed)
    index = rng.integers(2, catalog + 2, num_candidates).astype(np.int64)
    index[:batch] = rng.integers(2, catalog + 2, batch)  # the batch's positives
    strings = tf.constant(np.char.add("item_", index.astype(str)))
    ints = tf.constant(index)
    users = tf.Variable(tf.math.l2_normalize(rng.normal(size=(batch, 32)).astype(np.float32), -1))
    cands = tf.Variable(
        tf.math.l2_normalize(rng.normal(size=(num_candidates, 32)).astype(np.float32), -1)
    )

    with_hits = _step(_task(True, catalog), users, cands)
    without = _step(_task(False, catalog), users, cands)
    variants = {
        "string ids": (with_hits, strings),
        "int64 ids": (with_hits, ints),
        "no hit removal": (without, ints),
    }
    for fn, ids in variants.values():
        fn(ids)  # trace
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (fn, ids) in variants.items():
            start = time.perf_counter()
            for _ in range(steps):
                loss, _ = fn(ids)
            float(loss)
            times[name].append((time.perf_counter() - start) / steps * 1000)
    # the same loss either way: hit removal depends on equality only
    l_str, _ = with_hits(strings)
    l_int, _ = with_hits(ints)
    np.testing.assert_allclose(float(l_str), float(l_int), rtol=1e-6)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_accidental_hits",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", type=_sizes, default=_sizes("256x2816,1024x11264"))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        parser.error(f"--steps and --rounds should be >= 1. Received: {args.steps}, {args.rounds}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"TensorFlow {tf.__version__}; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        "\n| B x C | string ids (ms/step) | int64 ids (ms/step) | no hit removal (ms/step) "
        "| string / int64 |"
    )
    print("|---|---|---|---|---|")
    for batch, num_candidates in args.sizes:
        t = measure(batch, num_candidates, args.steps, args.rounds)
        print(
            f"| {batch} x {num_candidates} | {t['string ids']:.1f} | {t['int64 ids']:.1f} | "
            f"{t['no hit removal']:.1f} | {t['string ids'] / t['int64 ids']:.2f}x |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
