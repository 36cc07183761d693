"""Loss speed and memory benchmark (issue 5): every loss side by side, in one process.

    python -m benchmarks.bench_losses [--dataset-preset synthetic|ml-100k] [--data-dir DIR]
        [--batch-size 256] [--num-negatives 2560] [--steps 20] [--rounds 3]

Measured on the same two-tower model ("DNN", embedding 32, scale 10) and the
same batch, for softmax cross-entropy, BPR, triplet, CROLoss (softplus,
alpha 1), CROLoss-lambda (sigmoid/softplus, alpha 1) and the peer losses PSL
(tanh), SL@20 and BSL:

1. **model step**: one training step (forward, loss, gradients, Adam update)
   of the full model, eager and graph (``tf.function``); XLA cannot compile the
   model's string lookups, so
2. **loss step**: the loss part alone (``[B, D]`` user and ``[C, D]`` candidate
   embeddings -> ``scale * cosine`` scores ``[B, C]`` -> loss -> gradients) in
   eager, graph and XLA (``jit_compile=True``);
3. **throughput**: examples per second of ``model.fit`` over the full
   ``tf.data`` pipeline (string batches, lookups, negative sampling);
4. **evaluation**: full-catalog evaluation time of the test users (exact top-N);
5. **memory**: peak resident set size of the process (``resource.getrusage``)
   after each loss's measurements; it is monotonic, so the growth a loss adds
   is an upper bound, and tracemalloc's Python-side peak per loss step.

Timings are the median over ``--rounds`` rounds; in each round every loss runs
``--steps`` steps, losses interleaved, so background load hits all alike.
Prints Markdown tables (ratios to softmax cross-entropy).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

import tfcro  # noqa: F401  (first: Keras 2)
from tfcro import data as data_lib
from tfcro import experiments as ex
from tfcro import losses as losses_lib
from tfcro._compat import keras, tf
from tfcro.evaluation import evaluate
from tfcro.models.two_tower import prepare_loss
from tfcro.training import build_model, load_data

LOSSES: dict[str, tuple[str, dict]] = {
    "softmax": ("softmax", {}),
    "bpr": ("bpr", {}),
    "triplet": ("triplet", {"margin": ex.PAPER_MARGIN}),
    "cro (softplus, a=1)": ("cro", {"kernel": "softplus", "alpha": 1.0}),
    "cro-lambda (sigmoid/softplus, a=1)": (
        "cro-lambda",
        {"weight_kernel": "sigmoid", "kernel": "softplus", "alpha": 1.0},
    ),
    "psl (tanh, tau 2)": ("psl", {"surrogate": "tanh", "surrogate_tau": 2.0}),
    "sl@20 (tau_w 1)": ("sl-at-k", {"top_k": 20, "weight_tau": 1.0}),
    "bsl (r 1.1)": ("bsl", {"temperature_ratio": 1.1}),
}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _time(fn: Callable[[], object], steps: int) -> float:
    """Seconds per call of ``fn`` over ``steps`` calls (results forced)."""
    started = time.perf_counter()
    for _ in range(steps):
        out = fn()
    if hasattr(out, "numpy"):
        out.numpy()
    return (time.perf_counter() - started) / steps


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_losses",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset-preset", default="synthetic", choices=["synthetic", "ml-100k"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--num-negatives", type=int, default=None, help="default 10 x batch size (paper)"
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fit-steps", type=int, default=40)
    args = parser.parse_args(argv)
    for name in ("batch_size", "steps", "rounds", "fit_steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"`{name}` should be >= 1. Received: {name}={getattr(args, name)}")

    base = ex.preset_config(
        args.dataset_preset,
        data_dir=args.data_dir,
        batch_size=args.batch_size,
        num_negatives=args.num_negatives,
        epochs=1,
    )
    started = time.time()
    data = load_data(base)
    print(f"# bench_losses: {data}; load {time.time() - started:.1f} s")
    print(
        f"machine: {os.cpu_count()} CPUs ({cpu_model()}), TensorFlow {tf.__version__}, "
        f"batch {base.batch_size}, negatives {base.model['num_negatives']}, "
        f"catalog {len(data.items)}"
    )
    features = data.example_features(data.train.user_id, data.train.target) or None
    batches = data_lib.train_dataset(
        data.train, base.batch_size, seed=0, features=features, drop_remainder=True
    )
    batch = next(iter(batches))

    models, steps_eager, steps_graph = {}, {}, {}
    for label, (loss, options) in LOSSES.items():
        config = ex.cell_config(base, ex.cell(label, loss, **options), 0.005, 0)
        keras.utils.set_random_seed(0)
        model = build_model(config, data)
        model.compile(optimizer=keras.optimizers.Adam(0.005))
        model.compute_loss(batch, training=False)
        model.optimizer.build(model.trainable_variables)
        models[label] = model

        def step(m=model):
            with tf.GradientTape() as tape:
                value = m.compute_loss(batch, training=True)
            grads = tape.gradient(value, m.trainable_variables)
            m.optimizer.apply_gradients(zip(grads, m.trainable_variables, strict=True))
            return value

        steps_eager[label] = step
        steps_graph[label] = tf.function(step)

    # the loss part alone, on fixed embeddings: eager / graph / XLA
    rng = np.random.default_rng(0)
    b, c, d = base.batch_size, base.batch_size + base.model["num_negatives"], 32
    user = tf.Variable(rng.normal(size=(b, d)).astype(np.float32))
    cand = tf.Variable(rng.normal(size=(c, d)).astype(np.float32))
    y_true = tf.eye(b, c)
    scale = float(base.model["scale"])
    loss_steps: dict[str, dict[str, Callable]] = {}
    for label, (loss, options) in LOSSES.items():
        fn = prepare_loss(losses_lib.get(loss, **options), len(data.items), scale)

        def loss_step(fn=fn):
            with tf.GradientTape() as tape:
                scores = scale * tf.matmul(
                    tf.math.l2_normalize(user, -1), tf.math.l2_normalize(cand, -1), transpose_b=True
                )
                value = fn(y_true, scores) / b
            return tape.gradient(value, [user, cand])[0]

        loss_steps[label] = {
            "eager": loss_step,
            "graph": tf.function(loss_step),
            "xla": tf.function(loss_step, jit_compile=True),
        }

    timings: dict[str, dict[str, list[float]]] = {k: {} for k in LOSSES}
    errors: dict[tuple[str, str], str] = {}
    rss: dict[str, float] = {}
    py_peak: dict[str, float] = {}
    variants = {"model eager": steps_eager, "model graph": steps_graph}
    # warm-up (tracing / compilation) and memory per loss
    for label in LOSSES:
        before = _rss_mib()
        steps_graph[label]()
        for mode in ("eager", "graph", "xla"):
            try:
                loss_steps[label][mode]()
            except Exception as err:  # noqa: BLE001 - reported in the table
                errors[(label, f"loss {mode}")] = f"{type(err).__name__}"
        tracemalloc.start()
        loss_steps[label]["eager"]()
        py_peak[label] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rss[label] = _rss_mib() - before
    for _ in range(args.rounds):
        for label in LOSSES:
            for name, table in variants.items():
                n = max(1, args.steps // 4) if "eager" in name else args.steps
                timings[label].setdefault(name, []).append(_time(table[label], n))
            for mode in ("eager", "graph", "xla"):
                if (label, f"loss {mode}") in errors:
                    continue
                n = max(1, args.steps // 4) if mode == "eager" else args.steps
                timings[label].setdefault(f"loss {mode}", []).append(
                    _time(loss_steps[label][mode], n)
                )

    columns = ["model eager", "model graph", "loss eager", "loss graph", "loss xla"]
    median = {k: {c: statistics.median(v) for c, v in t.items()} for k, t in timings.items()}
    ref = median["softmax"]
    print("\n## Training step time, ms (ratio to softmax cross-entropy)\n")
    print("| loss | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for label in LOSSES:
        row = []
        for col in columns:
            if col not in median[label]:
                row.append(errors.get((label, col), "n/a"))
                continue
            ms = 1000 * median[label][col]
            ratio = median[label][col] / ref[col] if col in ref else float("nan")
            row.append(f"{ms:.2f} ({ratio:.2f}x)")
        print(f"| {label} | " + " | ".join(row) + " |")

    # throughput: model.fit over the tf.data pipeline (same number of steps per loss)
    print("\n## Training throughput, model.fit over the full tf.data pipeline\n")
    print(
        "| loss | examples/s | ratio to softmax | peak RSS growth (MiB) | "
        "tracemalloc peak, loss step (MiB) |"
    )
    print("|---|---|---|---|---|")
    throughput = {}
    for label, model in models.items():
        model.compile(optimizer=keras.optimizers.Adam(0.005))
        model.fit(batches.take(3), epochs=1, verbose=0)  # trace
        started = time.perf_counter()
        model.fit(batches.take(args.fit_steps), epochs=1, verbose=0)
        throughput[label] = args.fit_steps * base.batch_size / (time.perf_counter() - started)
    for label in LOSSES:
        print(
            f"| {label} | {throughput[label]:.0f} | "
            f"{throughput[label] / throughput['softmax']:.2f} | {rss[label]:.1f} | "
            f"{py_peak[label]:.2f} |"
        )

    model = models["softmax"]
    evaluate(model, data.test, data.items, ks=base.ks)  # warm-up
    started = time.perf_counter()
    evaluate(model, data.test, data.items, ks=base.ks)
    seconds = time.perf_counter() - started
    print(
        f"\n## Full-catalog evaluation\n\n{len(data.test)} test users x {len(data.items)} "
        f"items, exact top-{max(base.ks)}: {seconds:.3f} s "
        f"({len(data.test) / seconds:.0f} users/s); peak RSS of the process "
        f"{_rss_mib():.0f} MiB"
    )
    print(
        f"\nscore matrix per step: {b} x {c} = {b * c:,} floats "
        f"({4 * b * c / 2**20:.1f} MiB); settings: {dataclasses.asdict(base)['model']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
