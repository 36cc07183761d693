"""The retrieval service: an HTTP JSON API over an export folder, with hot version swaps.

:func:`create_app` builds a FastAPI application (run it with uvicorn, as
``python -m pipelines.serve`` does) around a :class:`ModelHolder`, which keeps the
loaded export version and swaps in new ones in the background.

Endpoints:

- ``POST /v1/retrieve`` ``{"instances": [{"history": [...], "user_id": ..., <feature>:
  ..., "exclude": [...]}], "n": 10}`` -> ``{"predictions": [{"ids": [...], "scores":
  [...]}], "model_version": <int>}``. An instance holds the user tower's inputs (the
  export's ``user_tower`` signature: ``history`` and/or ``user_id`` and user features);
  ``exclude`` defaults to the history (already-seen items; a ``history`` is accepted
  for that also when the tower does not embed it), ``[]`` turns that off.
  Unknown item ids are fine (the tower's out-of-vocabulary bucket).
- ``GET /v1/health``: 200 once a version is loaded and has answered a probe, else 503.
- ``GET /metrics``: Prometheus text: requests and errors by endpoint and status, a
  latency histogram, the loaded version, the catalog size, swaps by outcome, requests
  per batch.

A client's mistake (not JSON, wrong types, missing or unknown fields, ``n`` outside
``[1, max_n]``, too many instances, too long a history, an oversized body) is a 400
with ``{"error": {"field": ..., "message": ...}}`` naming the field and what is
allowed; never a 500.

Hot swap: :meth:`ModelHolder.watch` polls ``export.json``; a new version (an export
commits its pieces by atomic renames and writes ``export.json`` last) is loaded in
the background thread, checked with a probe query (embedding size and catalog size
as the manifest says, finite scores, ``n`` ids back), and only then becomes the
current one: a request holds the version it started with until it ends, so requests
in flight neither fail nor wait. A version that fails to load or to answer the probe
is refused with a log line and the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import prometheus_client as prom
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from tfcro.serving import export as _export
from tfcro.serving import versioning
from tfcro.serving.retriever import Retriever, pad_histories
from tfcro.serving.signatures import HISTORY
from tfcro.validation import check_float, check_int

logger = logging.getLogger("tfcro.serving.service")

EXCLUDE = "exclude"


@dataclasses.dataclass
class ServiceConfig:
    """Limits and behaviour of the service (``pipelines.serve`` flags).

    Attributes:
      export_dir: the export folder (``pipelines.export`` / ``pipelines.train``).
      default_n: ``n`` when a request gives none.
      max_n: the largest ``n`` a request may ask for.
      max_instances: the most users in one request.
      max_history: the longest ``history`` (and ``exclude``) list.
      max_body_bytes: the largest request body.
      poll_seconds: how often ``export.json`` is checked for a new version.
      batching: answer concurrent requests with one embedding + search call
        (:class:`Batcher`): while one batch runs, the requests that arrive wait for
        the next; off, each request is its own call.
      max_batch_users: the most users in one batch.
      batch_wait_ms: how long a batch waits for more requests before it runs (0:
        it runs at once; requests still gather while the previous batch runs).
    """

    export_dir: str
    default_n: int = 10
    max_n: int = 1000
    max_instances: int = 256
    max_history: int = 1000
    max_body_bytes: int = 1_000_000
    poll_seconds: float = 2.0
    batching: bool = True
    max_batch_users: int = 256
    batch_wait_ms: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "default_n",
            "max_n",
            "max_instances",
            "max_history",
            "max_body_bytes",
            "max_batch_users",
        ):
            setattr(self, name, check_int(name, getattr(self, name), 1))
        self.poll_seconds = check_float("poll_seconds", self.poll_seconds, minimum=0, strict=True)
        self.batch_wait_ms = check_float("batch_wait_ms", self.batch_wait_ms, minimum=0)
        if self.default_n > self.max_n:
            raise ValueError(
                f"`default_n` should be <= max_n ({self.max_n}). "
                f"Received: default_n={self.default_n}"
            )


class RequestError(ValueError):
    """A client's mistake: HTTP 400 naming ``field``."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclasses.dataclass
class LoadedVersion:
    """One export version, loaded and probed."""

    version: int
    retriever: Retriever
    input_names: tuple[str, ...]
    catalog_size: int
    embedding_dim: int
    loaded_at: float


def probe(retriever: Retriever, manifest: Mapping[str, Any]) -> None:
    """Raises RuntimeError unless ``retriever`` answers like the export it came from."""
    users = {
        name: np.asarray([[""]] if name == HISTORY else [""], object)
        for name in retriever.input_names
    }
    embeddings = retriever.embed(users)
    dim = int(manifest["embedding_dim"])
    if embeddings.shape != (1, dim) or not np.all(np.isfinite(embeddings)):
        raise RuntimeError(
            f"the user tower gives embeddings of shape {embeddings.shape} "
            f"(finite: {bool(np.all(np.isfinite(embeddings)))}); the manifest says (1, {dim})"
        )
    n = min(10, retriever.catalog_size)
    result = retriever.search(embeddings, n)
    found = int(np.sum(result.ids[0] != ""))
    if found != n or not np.all(np.isfinite(result.scores[0][:found])):
        raise RuntimeError(f"a probe search returned {found} of {n} items")
    if retriever.catalog_size != int(manifest["catalog_size"]):
        raise RuntimeError(
            f"the catalog holds {retriever.catalog_size} items; the manifest says "
            f"{manifest['catalog_size']}"
        )


class ModelHolder:
    """The current export version of ``export_dir`` and its background swaps.

    Args:
      export_dir: the export folder.
      retriever_factory: ``Retriever``-like constructor from the folder (tests, TF
        Serving encoders: ``functools.partial(Retriever, encoder=...)``).
      on_change: called with the new :class:`LoadedVersion` after each swap, and with
        ``(version, error)`` as ``on_refused`` after each refusal.
      retry_seconds: a refused version is tried again after this long (or at once when
        ``export.json`` changes): a TF Serving that has not loaded it yet may by then.
    """

    def __init__(
        self,
        export_dir: str,
        retriever_factory: Callable[[str], Retriever] = Retriever,
        on_change: Callable[[LoadedVersion], None] | None = None,
        on_refused: Callable[[int | None, str], None] | None = None,
        retry_seconds: float = 30.0,
    ):
        self.export_dir = export_dir
        self.retry_seconds = check_float("retry_seconds", retry_seconds, minimum=0)
        self.retriever_factory = retriever_factory
        self.on_change = on_change
        self.on_refused = on_refused
        self.current: LoadedVersion | None = None
        self._refused: tuple[int | None, float] | None = None  # (version, manifest mtime)
        self._refused_at = 0.0
        self._previous: int | None = None
        self._token = uuid.uuid4().hex[:8]  # this holder's lease (several may share a process)
        self._lock = threading.Lock()  # one load at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _manifest_state(self) -> tuple[int | None, float] | None:
        path = os.path.join(self.export_dir, _export.MANIFEST)
        try:
            mtime = os.stat(path).st_mtime
            with open(path, encoding="utf-8") as f:
                version = int(json.load(f)["version"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return version, mtime

    def refresh(self) -> bool:
        """Loads the export's version if it is new (and not already refused); True on a swap."""
        with self._lock:
            state = self._manifest_state()
            if state is None:
                return False
            version, _ = state
            if self.current is not None and self.current.version == version:
                return False
            if self._refused == state and time.time() - self._refused_at < self.retry_seconds:
                return False  # refused as it is: retried later, or once export.json changes
            try:
                loaded = self._load(version)
            except Exception as err:  # noqa: BLE001 - a broken export must not stop serving
                self._refused, self._refused_at = state, time.time()
                logger.error(
                    "refusing export version %s of %s: %s: %s (still serving version %s)",
                    version,
                    self.export_dir,
                    type(err).__name__,
                    err,
                    None if self.current is None else self.current.version,
                )
                if self.on_refused:
                    self.on_refused(version, f"{type(err).__name__}: {err}")
                return False
            previous = self.current
            self.current = loaded  # one reference assignment: requests see old or new
            self._previous = None if previous is None else previous.version
            self._hold()
            logger.info(
                "serving export version %d of %s (%d items; was %s)",
                loaded.version,
                self.export_dir,
                loaded.catalog_size,
                None if previous is None else previous.version,
            )
            if self.on_change:
                self.on_change(loaded)
            return True

    def _load(self, version: int) -> LoadedVersion:
        retriever = self.retriever_factory(self.export_dir)
        manifest = retriever.manifest
        if int(manifest["version"]) != version:
            raise RuntimeError(
                f"export.json moved on to version {manifest['version']} while loading {version}"
            )
        probe(retriever, manifest)
        return LoadedVersion(
            version=version,
            retriever=retriever,
            input_names=tuple(retriever.input_names),
            catalog_size=retriever.catalog_size,
            embedding_dim=int(manifest["embedding_dim"]),
            loaded_at=time.time(),
        )

    def _hold(self) -> None:
        """The lease that keeps ``pipelines.export --keep-versions`` off the version we serve
        and the one before it (requests in flight at the swap may still use it).
        """
        if self.current is None:
            return
        versions = [self.current.version] + ([self._previous] if self._previous else [])
        try:
            versioning.write_lease(self.export_dir, versions, token=self._token)
        except OSError as err:  # a read-only export folder: serve anyway
            logger.warning("cannot write a lease in %s: %s", self.export_dir, err)

    def watch(self, poll_seconds: float) -> None:
        """Starts the background thread that calls :meth:`refresh` every ``poll_seconds``."""
        if self._thread is not None:
            return

        def loop():
            while not self._stop.wait(poll_seconds):
                try:
                    if not self.refresh():
                        self._hold()  # keep the lease fresh
                except Exception:  # noqa: BLE001 - keep watching whatever happens
                    logger.exception("checking %s for a new version failed", self.export_dir)

        self._thread = threading.Thread(target=loop, name="tfcro-export-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops watching and drops the lease."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        versioning.remove_lease(self.export_dir, token=self._token)


# ----------------------------------------------------------------------------- requests


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _id_list(value: Any, field: str, limit: int) -> list[str]:
    if not isinstance(value, list) or not all(_is_id(v) for v in value):
        raise RequestError(field, "should be a list of item ids (strings or integers)")
    if len(value) > limit:
        raise RequestError(field, f"should hold at most {limit} ids. Received: {len(value)}")
    return [str(v) for v in value]


def parse_request(
    body: bytes, config: ServiceConfig, input_names: tuple[str, ...]
) -> tuple[dict[str, np.ndarray], list[list[str]], int]:
    """``(user tower inputs, exclusions, n)`` of a ``/v1/retrieve`` body; RequestError if bad."""
    if len(body) > config.max_body_bytes:
        raise RequestError(
            "body", f"should be at most {config.max_body_bytes} bytes. Received: {len(body)}"
        )
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RequestError("body", f"should be a JSON object ({err})") from None
    if not isinstance(payload, dict):
        raise RequestError("body", f"should be a JSON object. Received: {type(payload).__name__}")
    unknown = sorted(set(payload) - {"instances", "n"})
    if unknown:
        raise RequestError(unknown[0], "unknown field; allowed: instances, n")
    n = payload.get("n", config.default_n)
    if not (isinstance(n, int) and not isinstance(n, bool)) or not 1 <= n <= config.max_n:
        raise RequestError("n", f"should be an integer in [1, {config.max_n}]. Received: {n!r}")
    instances = payload.get("instances")
    if not isinstance(instances, list) or not instances:
        raise RequestError("instances", "should be a non-empty list of users (JSON objects)")
    if len(instances) > config.max_instances:
        raise RequestError(
            "instances",
            f"should hold at most {config.max_instances} users. Received: {len(instances)}",
        )
    allowed = set(input_names) | {HISTORY, EXCLUDE}
    columns: dict[str, list[Any]] = {name: [] for name in input_names}
    exclusions: list[list[str]] = []
    for k, instance in enumerate(instances):
        where = f"instances[{k}]"
        if not isinstance(instance, dict):
            raise RequestError(where, "should be a JSON object")
        unknown = sorted(set(instance) - allowed)
        if unknown:
            raise RequestError(
                f"{where}.{unknown[0]}", f"unknown field; allowed: {', '.join(sorted(allowed))}"
            )
        history = _id_list(instance.get(HISTORY, []), f"{where}.{HISTORY}", config.max_history)
        for name in input_names:
            field = f"{where}.{name}"
            if name == HISTORY:
                columns[name].append(history)
            elif name not in instance:
                raise RequestError(field, "is required by this model's user tower")
            elif not _is_id(instance[name]):
                raise RequestError(field, "should be a string or an integer")
            else:
                columns[name].append(str(instance[name]))
        if EXCLUDE in instance:
            exclusions.append(_id_list(instance[EXCLUDE], f"{where}.{EXCLUDE}", config.max_history))
        else:  # already-seen items (also for towers that do not embed the history)
            exclusions.append(history)
    inputs = {}
    for name, values in columns.items():
        if name == HISTORY:
            inputs[name] = pad_histories(values)
        else:
            inputs[name] = np.asarray(values, dtype=object)
    return inputs, exclusions, int(n)


def retrieve(loaded: LoadedVersion, inputs, exclusions, n: int) -> dict[str, Any]:
    """The response body of one request on ``loaded``."""
    result = loaded.retriever.retrieve(inputs, n, exclude=exclusions)
    predictions = []
    for ids, scores in zip(result.ids, result.scores, strict=True):
        keep = ids != ""
        predictions.append(
            {
                "ids": [str(i) for i in ids[keep]],
                "scores": [float(s) if math.isfinite(s) else None for s in scores[keep]],
            }
        )
    return {"predictions": predictions, "model_version": loaded.version}


def _concatenate(requests: list[tuple[dict[str, np.ndarray], list[list[str]], int]]):
    """One retrieval call's inputs for several parsed requests (histories padded)."""
    inputs: dict[str, np.ndarray] = {}
    for name in requests[0][0]:
        parts = [r[0][name] for r in requests]
        if name == HISTORY:
            width = max(p.shape[1] for p in parts)
            parts = [
                np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values="") for p in parts
            ]
        inputs[name] = np.concatenate(parts)
    exclusions = [e for r in requests for e in r[1]]
    return inputs, exclusions, max(r[2] for r in requests)


def retrieve_batch(loaded: LoadedVersion, requests) -> list[dict[str, Any]]:
    """The response bodies of several requests, answered with one retrieval call (each gets
    its own top ``n`` of the batch's largest ``n``: the same items, in the same order).
    """
    inputs, exclusions, n = _concatenate(requests)
    whole = retrieve(loaded, inputs, exclusions, n)["predictions"]
    out, start = [], 0
    for request_inputs, _, own_n in requests:
        rows = len(next(iter(request_inputs.values())))
        predictions = [
            {"ids": p["ids"][:own_n], "scores": p["scores"][:own_n]}
            for p in whole[start : start + rows]
        ]
        out.append({"predictions": predictions, "model_version": loaded.version})
        start += rows
    return out


class Batcher:
    """Gathers concurrent requests into one :func:`retrieve_batch` call (on the event loop).

    One batch runs at a time, in a worker thread; requests that arrive meanwhile (or
    within ``wait_seconds`` of the first) form the next one, up to ``max_users`` users.
    Requests on different export versions (around a swap) are answered separately.
    """

    def __init__(
        self,
        max_users: int = 256,
        wait_seconds: float = 0.0,
        on_batch: Callable[[int, int], None] | None = None,
    ):
        self.max_users = max_users
        self.wait_seconds = wait_seconds
        self.on_batch = on_batch  # (requests, users) of each batch
        self._pending: list[tuple[LoadedVersion, tuple, asyncio.Future]] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self.batches = 0  # calls made (for the metrics and the tests)

    async def submit(self, loaded: LoadedVersion, request: tuple) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            # first use, or on a new event loop (a restarted app): a fresh worker
            self._pending = [entry for entry in self._pending if entry[2].get_loop() is loop]
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._run())
        future = loop.create_future()
        self._pending.append((loaded, request, future))
        self._wakeup.set()
        return await future

    def _take(self) -> list[tuple[LoadedVersion, tuple, asyncio.Future]]:
        first_version = self._pending[0][0]
        taken, users, rest = [], 0, []
        for entry in self._pending:
            size = len(next(iter(entry[1][0].values())))
            if entry[0] is first_version and (not taken or users + size <= self.max_users):
                taken.append(entry)
                users += size
            else:
                rest.append(entry)
        self._pending = rest
        return taken

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self.wait_seconds:
                await asyncio.sleep(self.wait_seconds)
            while self._pending:
                batch = self._take()
                loaded = batch[0][0]
                try:
                    bodies = await run_in_threadpool(
                        retrieve_batch, loaded, [request for _, request, _ in batch]
                    )
                except Exception as err:  # noqa: BLE001 - each request gets the error
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(err)
                    continue
                self.batches += 1
                if self.on_batch:
                    users = sum(len(next(iter(r[0].values()))) for _, r, _ in batch)
                    self.on_batch(len(batch), users)
                for (_, _, future), body in zip(batch, bodies, strict=True):
                    if not future.done():  # a cancelled (disconnected) request is skipped
                        future.set_result(body)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


# ----------------------------------------------------------------------------- the app


class _Metrics:
    """The Prometheus metrics of one app (its own registry: several apps per process)."""

    def __init__(self):
        self.registry = prom.CollectorRegistry()
        self.requests = prom.Counter(
            "tfcro_requests",
            "HTTP requests by endpoint and status code",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = prom.Histogram(
            "tfcro_request_seconds",
            "request latency in seconds by endpoint",
            ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.version = prom.Gauge(
            "tfcro_model_version", "the export version being served", registry=self.registry
        )
        self.catalog = prom.Gauge(
            "tfcro_catalog_size", "items in the served catalog", registry=self.registry
        )
        self.batch_requests = prom.Histogram(
            "tfcro_batch_requests",
            "requests answered by one embedding + search call",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.swaps = prom.Counter(
            "tfcro_version_swaps",
            "new export versions swapped in (ok) or refused",
            ["result"],
            registry=self.registry,
        )

    def loaded(self, loaded: LoadedVersion) -> None:
        self.version.set(loaded.version)
        self.catalog.set(loaded.catalog_size)
        self.swaps.labels("ok").inc()

    def refused(self, version: int | None, error: str) -> None:
        self.swaps.labels("refused").inc()


def create_app(config: ServiceConfig, holder: ModelHolder | None = None):
    """The FastAPI application of the service (``holder`` default: one on ``config.export_dir``).

    The first version loads at start-up (in the background: health is 503 until it
    answers); the holder then watches for new ones every ``config.poll_seconds``.
    """
    metrics = _Metrics()
    batcher = Batcher(
        config.max_batch_users,
        config.batch_wait_ms / 1000.0,
        on_batch=lambda requests, users: metrics.batch_requests.observe(requests),
    )
    holder = holder or ModelHolder(config.export_dir)
    holder.on_change = metrics.loaded
    holder.on_refused = metrics.refused

    @contextlib.asynccontextmanager
    async def lifespan(app):
        threading.Thread(target=holder.refresh, name="tfcro-first-load", daemon=True).start()
        holder.watch(config.poll_seconds)
        yield
        holder.stop()
        await batcher.close()

    app = FastAPI(title="tfcro retrieval service", lifespan=lifespan)
    app.state.holder = holder
    app.state.metrics = metrics
    app.state.batcher = batcher

    def error(status: int, field: str, message: str) -> JSONResponse:
        return JSONResponse({"error": {"field": field, "message": message}}, status_code=status)

    app.add_middleware(_MetricsMiddleware, metrics=metrics)

    @app.post("/v1/retrieve")
    async def retrieve_endpoint(request: Request):
        loaded = holder.current
        if loaded is None:
            return error(503, "model", "no export version is loaded yet")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > config.max_body_bytes:
            return error(
                400,
                "body",
                f"should be at most {config.max_body_bytes} bytes. Received: {declared}",
            )
        chunks, size = [], 0
        async for chunk in request.stream():  # also bounded without a Content-Length
            size += len(chunk)
            if size > config.max_body_bytes:
                return error(
                    400, "body", f"should be at most {config.max_body_bytes} bytes. Received: more"
                )
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            inputs, exclusions, n = parse_request(body, config, loaded.input_names)
        except RequestError as err:
            return error(400, err.field, err.message)
        if config.batching:
            body = await batcher.submit(loaded, (inputs, exclusions, n))
        else:
            body = await run_in_threadpool(retrieve, loaded, inputs, exclusions, n)
        # serialised here: FastAPI's generic encoder is slow for long lists of floats
        return Response(json.dumps(body).encode(), media_type="application/json")

    @app.get("/v1/health")
    async def health():
        loaded = holder.current
        if loaded is None:
            return error(503, "model", "no export version is loaded yet")
        return {
            "status": "ok",
            "model_version": loaded.version,
            "catalog_size": loaded.catalog_size,
            "embedding_dim": loaded.embedding_dim,
            "inputs": list(loaded.input_names),
        }

    @app.get("/metrics")
    async def prometheus():
        return Response(prom.generate_latest(metrics.registry), media_type=prom.CONTENT_TYPE_LATEST)

    @app.exception_handler(404)
    async def not_found(request: Request, exc):
        return error(404, "path", f"no endpoint {request.url.path}; see /v1/retrieve, /v1/health")

    @app.exception_handler(405)
    async def wrong_method(request: Request, exc):
        return error(405, "method", f"{request.method} is not allowed on {request.url.path}")

    return app


_ENDPOINTS = ("/v1/retrieve", "/v1/health", "/metrics")


class _MetricsMiddleware:
    """Counts every HTTP request by endpoint and status and times it (a plain ASGI
    middleware: Starlette's ``BaseHTTPMiddleware`` costs milliseconds per request).
    An exception that escapes the app is logged and answered with a JSON 500.
    """

    def __init__(self, app, metrics: _Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        endpoint = scope["path"] if scope["path"] in _ENDPOINTS else "other"
        status = {"code": 500, "sent": False}

        async def send_status(message):
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except Exception:  # noqa: BLE001 - counted, then a JSON 500 if nothing was sent
            logger.exception("request to %s failed", endpoint)
            if not status["sent"]:
                response = JSONResponse(
                    {"error": {"field": "server", "message": "internal error (logged)"}},
                    status_code=500,
                )
                await response(scope, receive, send)
            status["code"] = 500
        self.metrics.requests.labels(endpoint, str(status["code"])).inc()
        self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
