"""Retrieval benchmark (issue 4): ScaNN vs exact TensorFlow top-k, and user-tower latency.

    python -m benchmarks.bench_retrieval [--num-items 1000000] [--dim 64] [--export-dir DIR]

For 1,000,000 synthetic L2-normalised item embeddings (clustered, dimension 64)
and optionally the item embeddings of an export (``items.parquet``):
ScaNN build time (automatic parameters), queries per second single and batched,
recall@100 against exact search; the same for exact batched TensorFlow
``matmul + top_k``. Then p50/p99 latency of single requests to a loaded
user-tower SavedModel (the export's, or a stand-in tower). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

import tfcro  # noqa: F401  (first: Keras 2)
from tfcro._compat import keras, tf
from tfcro.serving import ScannParams, build_scann_index, exact_top_k, recall_against_exact


def synthetic(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)]
    x += 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def queries_near(items: np.ndarray, num: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = items[rng.integers(0, len(items), num)] + 0.3 * rng.normal(size=(num, items.shape[1]))
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def tf_exact(items: np.ndarray, k: int, batch: int = 256):
    table = tf.constant(items)

    @tf.function(input_signature=[tf.TensorSpec([None, items.shape[1]], tf.float32)])
    def search(q):
        return tf.math.top_k(tf.matmul(q, table, transpose_b=True), k=k)

    def run(queries: np.ndarray):
        idx = [
            search(queries[i : i + batch]).indices.numpy() for i in range(0, len(queries), batch)
        ]
        return np.concatenate(idx)

    return search, run


def bench_catalog(name: str, items: np.ndarray, k: int, num_queries: int, single: int) -> list:
    rows = []
    queries = queries_near(items, num_queries, seed=1)
    exact, _ = exact_top_k(queries, items, k)
    ids = np.arange(len(items)).astype(str)

    params = ScannParams().resolve(len(items), k)
    start = time.perf_counter()
    index = build_scann_index(items, ids, k, evaluate=False)
    build = time.perf_counter() - start
    variants = [None]
    if params["algorithm"] == "tree_ah":
        variants.append(min(params["num_leaves"], 3 * params["num_leaves_to_search"]))
    for leaves in variants:
        index.search(queries[:10], k, leaves_to_search=leaves)  # warm-up
        start = time.perf_counter()
        approx, _ = index.search(queries, k, leaves_to_search=leaves)
        batched_qps = len(queries) / (time.perf_counter() - start)
        start = time.perf_counter()
        for q in queries[:single]:
            index.search(q, k, leaves_to_search=leaves)
        single_qps = single / (time.perf_counter() - start)
        shown = dict(params, **({"num_leaves_to_search": leaves} if leaves else {}))
        described = ", ".join(f"{k_}={v}" for k_, v in shown.items() if k_ != "num_neighbors")
        label = "ScaNN auto" if leaves is None else "ScaNN, 3x leaves searched"
        rows.append(
            (
                name,
                f"{label} ({described})",
                build if leaves is None else 0.0,
                single_qps,
                batched_qps,
                recall_against_exact(approx, exact),
            )
        )

    start = time.perf_counter()
    search, run = tf_exact(items, k)
    search(queries[:1])  # trace + place the table
    setup = time.perf_counter() - start
    run(queries[:256])
    start = time.perf_counter()
    got = run(queries)
    batched_qps = len(queries) / (time.perf_counter() - start)
    start = time.perf_counter()
    for q in queries[:single]:
        search(q[None, :])
    single_qps = single / (time.perf_counter() - start)
    rows.append(
        (
            name,
            "exact TF matmul + top_k (batch 256)",
            setup,
            single_qps,
            batched_qps,
            recall_against_exact(got, exact),
        )
    )
    return rows


def tower_latency(export_dir: str | None, requests: int) -> tuple[str, float, float]:
    if export_dir:
        import json

        manifest = json.load(open(os.path.join(export_dir, "export.json")))
        path = os.path.join(export_dir, manifest["user_tower"]["path"])
        label = path
        vocab = None
    else:
        from tfcro.serving import save_tower

        vocab = [str(i) for i in range(100_000)]
        hist = keras.Input(shape=(None,), dtype=tf.string, name="history")
        ids = keras.layers.StringLookup(vocabulary=vocab, mask_token="")(hist)
        mask = tf.cast(tf.not_equal(ids, 0), tf.float32)[..., None]
        emb = keras.layers.Embedding(len(vocab) + 2, 64)(ids)
        pooled = tf.reduce_sum(emb * mask, 1) / tf.maximum(tf.reduce_sum(mask, 1), 1.0)
        out = tf.math.l2_normalize(keras.layers.Dense(64)(pooled), -1)
        tower = keras.Model({"history": hist}, out)
        path = os.path.join(tempfile.mkdtemp(), "user_tower", "1")
        save_tower(tower, path)
        label = "stand-in tower (100k-id vocabulary, dim 64)"
    signature = tf.saved_model.load(path).signatures["serving_default"]
    rng = np.random.default_rng(0)
    pool = vocab or [str(i) for i in range(1000)]
    times = []
    for r in range(requests + 20):
        history = tf.constant([[pool[j] for j in rng.integers(0, len(pool), 20)]])
        start = time.perf_counter()
        signature(history=history)["embedding"].numpy()
        if r >= 20:
            times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1000
    return label, float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--num-queries", type=int, default=2000)
    parser.add_argument("--single-queries", type=int, default=200)
    parser.add_argument("--tower-requests", type=int, default=500)
    parser.add_argument(
        "--export-dir",
        default=None,
        help="also benchmark this export's items.parquet and user tower",
    )
    args = parser.parse_args(argv)

    rows = []
    if args.num_items > 0:  # --num-items 0: only the export
        rows += bench_catalog(
            f"synthetic {args.num_items:,} x {args.dim}",
            synthetic(args.num_items, args.dim, args.clusters, seed=0),
            args.k,
            args.num_queries,
            args.single_queries,
        )
    if args.export_dir:
        from tfcro.serving import read_items

        _, emb = read_items(os.path.join(args.export_dir, "items.parquet"))
        rows += bench_catalog(
            f"export {args.export_dir} ({len(emb):,} x {emb.shape[1]})",
            emb,
            min(args.k, len(emb)),
            args.num_queries,
            args.single_queries,
        )
    print(
        f"\n| catalog | method | build/setup s | QPS single | QPS batched | "
        f"recall@{args.k} vs exact |"
    )
    print("|---|---|---|---|---|---|")
    for name, method, build, single_qps, batched_qps, recall in rows:
        print(
            f"| {name} | {method} | {build:.1f} | {single_qps:,.0f} | {batched_qps:,.0f} | "
            f"{recall:.4f} |"
        )
    label, p50, p99 = tower_latency(args.export_dir, args.tower_requests)
    print(
        f"\nuser-tower SavedModel, single request (history of 20 ids), {args.tower_requests} "
        f"requests: p50 {p50:.2f} ms, p99 {p99:.2f} ms  [{label}]"
    )


if __name__ == "__main__":
    main()
