"""Load benchmark of the retrieval service (issue 13): HTTP vs the in-process Retriever.

    python -m benchmarks.bench_service [--catalogs 100000,1000000] [--concurrency 1,8,32]
        [--seconds 10] [--n 100] [--dim 32]

For each catalog size: a synthetic export (a stand-in history tower over random item
embeddings, ScaNN index, built here), the service (``python -m pipelines.serve``) in a
subprocess on localhost, and closed-loop clients (asyncio + httpx, each sends its
next request when the last one answered) at each concurrency for ``--seconds``: one
user per request with a 20-item history, top ``--n`` with the history excluded.
Reported: QPS, p50/p99 latency, errors; and the same work through
:class:`tfcro.serving.Retriever` in this process with as many threads (the service's
overhead as the ratio of QPS). Then the same HTTP load at concurrency 8 while a new
version is published into the served folder (the exporter's atomic renames): requests
that failed, and how long until the new version answered. Service, clients and the
in-process runs share the machine's cores; the runs take turns.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

import tfcro  # noqa: F401  (first: Keras 2)
from tfcro._compat import keras, tf
from tfcro.serving import Retriever, export_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HISTORY = 20


def towers(num_items: int, dim: int, seed: int):
    """A history-pooling user tower and an id item tower over one random embedding table."""
    keras.utils.set_random_seed(seed)
    items = np.asarray([f"i{k}" for k in range(num_items)], dtype=object)
    lookup = keras.layers.StringLookup(vocabulary=items.astype(str).tolist(), mask_token="")
    table = keras.layers.Embedding(num_items + 2, dim)
    item_in = keras.Input(shape=(), dtype=tf.string, name="item_id")
    item_tower = keras.Model(
        {"item_id": item_in}, tf.math.l2_normalize(table(lookup(item_in)), -1), name="items"
    )
    history = keras.Input(shape=(None,), dtype=tf.string, name="history")
    ids = lookup(history)
    mask = tf.cast(ids > 0, tf.float32)[..., None]
    pooled = tf.reduce_sum(table(ids) * mask, 1) / tf.maximum(tf.reduce_sum(mask, 1), 1.0)
    user = tf.math.l2_normalize(keras.layers.Dense(dim)(pooled), -1)
    return keras.Model({"history": history}, user, name="users"), item_tower, items


def build_export(folder: str, num_items: int, dim: int, version: int, seed: int) -> float:
    started = time.perf_counter()
    user_tower, item_tower, items = towers(num_items, dim, seed)
    export_model(
        user_tower,
        item_tower,
        items,
        folder,
        config={},
        scale=10.0,
        version=version,
        num_neighbors=100,
    )
    return time.perf_counter() - started


def publish(source: str, target: str, version: int) -> None:
    """Moves export ``version`` of ``source`` into ``target`` as an export would: the
    version folders, then ``items.parquet``, then ``export.json``, each by a rename.
    """
    for sub in ("user_tower", "item_tower", "scann"):
        if os.path.isdir(os.path.join(source, sub, str(version))):
            os.rename(
                os.path.join(source, sub, str(version)), os.path.join(target, sub, str(version))
            )
    os.replace(os.path.join(source, "items.parquet"), os.path.join(target, "items.parquet"))
    os.replace(os.path.join(source, "export.json"), os.path.join(target, "export.json"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(export_dir: str, log_path: str, *flags: str):
    port = free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    log = open(log_path, "w")  # noqa: SIM115  (closed by stop_service)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.serve", "--export-dir", export_dir, "--port",
         str(port), "--poll-seconds", "0.5", "--max-n", "1000", "--verbose", "0", *flags],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    import httpx

    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 600
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited: {open(log_path).read()[-2000:]}")
        try:
            if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                return proc, url, log
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the service did not become healthy")


def stop_service(proc, log) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def request_bodies(num_items: int, count: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {"instances": [{"history": [f"i{k}" for k in rng.integers(0, num_items, HISTORY)]}]}
        for _ in range(count)
    ]


async def _request(reader, writer, payload: bytes) -> tuple[int, bytes]:
    """One HTTP/1.1 keep-alive POST on an open connection: ``(status, body)``."""
    writer.write(
        b"POST /v1/retrieve HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
    )
    return status, await reader.readexactly(length)


async def _http_load(url, bodies, n, concurrency, seconds, versions=None):
    """Closed-loop clients, one keep-alive connection each: a minimal asyncio HTTP/1.1
    client (a general-purpose one such as httpx costs the 2 cores more than the service's
    own parsing, and the clients share the machine with the service).
    """
    host, port = url.removeprefix("http://").split(":")
    payloads = [json.dumps({**body, "n": n}).encode() for body in bodies]
    latencies, errors = [], []
    stop_at = time.perf_counter() + seconds

    async def worker(k):
        reader, writer = await asyncio.open_connection(host, int(port))
        i = k
        try:
            while time.perf_counter() < stop_at:
                payload = payloads[i % len(payloads)]
                i += concurrency
                started = time.perf_counter()
                try:
                    status, body = await _request(reader, writer, payload)
                except (OSError, asyncio.IncompleteReadError, ValueError) as err:
                    errors.append(repr(err)[:200])
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
                    continue
                if status == 200:
                    latencies.append(time.perf_counter() - started)
                    if versions is not None:
                        versions.append((time.perf_counter(), json.loads(body)["model_version"]))
                else:
                    errors.append(body[:200].decode("utf-8", "replace"))
        finally:
            writer.close()

    begun = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return latencies, errors, time.perf_counter() - begun


def http_load(url, bodies, n, concurrency, seconds, versions=None):
    return asyncio.run(_http_load(url, bodies, n, concurrency, seconds, versions))


def inprocess_load(retriever, bodies, n, concurrency, seconds):
    latencies, errors, lock = [], [], threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker(k):
        i = k
        while time.perf_counter() < stop_at:
            history = bodies[i % len(bodies)]["instances"][0]["history"]
            i += concurrency
            started = time.perf_counter()
            try:
                retriever.retrieve([history], n, exclude=[history])
                with lock:
                    latencies.append(time.perf_counter() - started)
            except Exception as err:  # noqa: BLE001 - counted
                with lock:
                    errors.append(repr(err))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    begun = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors, time.perf_counter() - begun


def summary(latencies, errors, elapsed):
    ms = np.asarray(latencies) * 1000.0
    return {
        "qps": len(latencies) / elapsed,
        "p50": float(np.percentile(ms, 50)) if len(ms) else float("nan"),
        "p99": float(np.percentile(ms, 99)) if len(ms) else float("nan"),
        "errors": len(errors),
        "requests": len(latencies) + len(errors),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_service",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--catalogs", default="100000,1000000")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--swap-concurrency", type=int, default=8)
    parser.add_argument("--work-dir", default=None, help="default: a temporary folder")
    args = parser.parse_args(argv)
    catalogs = [int(v) for v in args.catalogs.split(",")]
    levels = [int(v) for v in args.concurrency.split(",")]

    work = args.work_dir or tempfile.mkdtemp(prefix="bench-service-")
    print(
        f"machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"TensorFlow {tf.__version__}; {args.seconds:g} s per run, top {args.n}, "
        f"one user with a {HISTORY}-item history per request"
    )
    rows, swaps, started = [], [], []
    try:
        for num_items in catalogs:
            served = os.path.join(work, f"export-{num_items}")
            spare = os.path.join(work, f"next-{num_items}")
            build = build_export(served, num_items, args.dim, 1, seed=0)
            build_export(spare, num_items, args.dim, 2, seed=1)
            print(f"\n{num_items:,} items: export built in {build:.0f} s")
            bodies = request_bodies(num_items, 512, seed=2)
            retriever = Retriever(served)
            local = {}
            for concurrency in levels:
                inprocess_load(retriever, bodies, args.n, concurrency, 1.0)  # warm-up
                local[concurrency] = summary(
                    *inprocess_load(retriever, bodies, args.n, concurrency, args.seconds)
                )
            del retriever
            for mode, flags in (("unbatched", ("--no-batching",)), ("batched", ())):
                proc, url, log = start_service(
                    served, os.path.join(work, f"serve-{num_items}-{mode}.log"), *flags
                )
                started.append(proc)
                try:
                    for concurrency in levels:
                        http_load(url, bodies, args.n, concurrency, 1.0)  # warm-up
                        http = summary(*http_load(url, bodies, args.n, concurrency, args.seconds))
                        rows.append((num_items, concurrency, mode, http, local[concurrency]))
                        print(
                            f"  c={concurrency} {mode}: {http['qps']:.0f} QPS, p50/p99 "
                            f"{http['p50']:.1f}/{http['p99']:.1f} ms, {http['errors']} errors; "
                            f"in-process {local[concurrency]['qps']:.0f} QPS"
                        )
                finally:
                    if mode == "unbatched":
                        stop_service(proc, log)
            try:
                versions: list[tuple[float, int]] = []
                published = {}

                def swap(versions=versions, published=published, served=served, spare=spare):
                    time.sleep(2.0)
                    published["at"] = time.perf_counter()
                    publish(spare, served, 2)

                swapper = threading.Thread(target=swap)
                swapper.start()
                latencies, errors, elapsed = http_load(
                    url, bodies, args.n, args.swap_concurrency, max(args.seconds, 15.0), versions
                )
                swapper.join()
                first_new = min((t for t, v in versions if v == 2), default=None)
                swaps.append(
                    {
                        "items": num_items,
                        **summary(latencies, errors, elapsed),
                        "switch_s": None if first_new is None else first_new - published["at"],
                        "versions": sorted({v for _, v in versions}),
                    }
                )
            finally:
                stop_service(proc, log)
            shutil.rmtree(spare, ignore_errors=True)
    finally:
        for proc in started:  # after an error: no service left behind
            if proc.poll() is None:
                proc.kill()
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)

    print("\n| items | clients | service | QPS | p50 ms | p99 ms | errors | in-process QPS "
          "| p50 ms | p99 ms | service / in-process QPS |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for num_items, concurrency, mode, http, local in rows:
        print(
            f"| {num_items:,} | {concurrency} | {mode} | {http['qps']:.0f} | {http['p50']:.1f} "
            f"| {http['p99']:.1f} | {http['errors']} | {local['qps']:.0f} | {local['p50']:.1f} "
            f"| {local['p99']:.1f} | {http['qps'] / max(local['qps'], 1e-9):.2f} |"
        )
    print("\n| items | clients during the swap | requests | failed | p99 ms | new version after |")
    print("|---|---|---|---|---|---|")
    for row in swaps:
        after = "never" if row["switch_s"] is None else f"{row['switch_s']:.1f} s"
        print(
            f"| {row['items']:,} | {args.swap_concurrency} | {row['requests']} | {row['errors']} "
            f"| {row['p99']:.1f} | {after} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
