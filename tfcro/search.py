"""Top-k search over a catalog of item embeddings: exact and ScaNN, with per-query exclusions.

The one search module of tfcro: :func:`tfcro.evaluation.evaluate`, the export
(:func:`tfcro.serving.export_model`) and the :class:`~tfcro.serving.Retriever`
all search with it, so ``evaluate(..., method="scann")`` measures the index
the export writes.

Contract of the two searches (:func:`exact_top_k`, :func:`scann_top_k`):

- ``queries`` ``[U, D]`` against items ``[N, D]``, score = dot product;
- ``exclude``: ``None`` or one collection of item rows per query never to
  return (already-seen items); entries outside ``[0, N)`` (e.g. ``-1`` for an
  id outside the catalog) are ignored;
- returns ``(indices [U, k] int64, scores [U, k] float32)``, best first, and
  ``-1`` / ``NaN`` in the places left over when fewer than ``k`` items remain
  (after exclusion, or a catalog smaller than ``k``).

Exact or ScaNN: one rule, one threshold. A catalog of at most
:data:`BRUTE_FORCE_THRESHOLD` items is searched exactly; a larger one with a
tree + asymmetric-hashing ScaNN index. :meth:`ScannParams.resolve` applies it
(the index the export writes and ``evaluate(method="scann")`` builds is brute
force up to the threshold) and so does ``Retriever(use_scann=None)`` (exact
search of ``items.parquet`` up to the threshold, the export's index above).
``ScannParams(brute_force_threshold=...)`` / ``Retriever(brute_force_threshold=...)``
move it.

ScaNN parameters (after the ScaNN README's advice for dot-product search),
chosen by :meth:`ScannParams.resolve` from the catalog size ``N`` and ``k``:

- ``N <= brute_force_threshold`` (default 5,000): exact brute force;
- above: a k-means tree with ``num_leaves ~ sqrt(N)`` leaves (at most ``N // 50``)
  searching 10% of them (at least 8, and enough to hold about ``50 k`` items),
  asymmetric hashing (2 dimensions per block, anisotropic threshold 0.2) and
  exact re-scoring (reordering) of ``max(4 k, 250)`` candidates, the tree trained
  on ``min(N, 250,000)`` items.

The ScaNN index is a ``scann_ops_pybind`` searcher (the Python/C++ ScaNN API,
no TensorFlow ops) plus the id map: row ``i`` is the raw item id ``ids[i]``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfcro.validation import check_choice, check_fields, check_int, invalid

#: Catalogs of at most this many items are searched exactly (module docstring).
BRUTE_FORCE_THRESHOLD = 5_000
#: The default ``num_neighbors`` of an index: the export's, and the index
#: ``evaluate(method="scann")`` builds.
DEFAULT_NUM_NEIGHBORS = 100
#: ``ScannParams.algorithm`` values.
ALGORITHMS = ("auto", "tree_ah", "brute_force")
#: Files of a saved :class:`ScannIndex` next to ScaNN's own.
IDS_FILE = "ids.json"
PARAMS_FILE = "tfcro_index.json"
#: The exact search scores at most this many (query, item) pairs at once (256 MiB of float32).
EXACT_SCORE_BUDGET = 1 << 26

_SCANN_HINT = (
    "ScaNN is not installed (or its ops do not load with this TensorFlow). Install the "
    "verified pair: pip install tensorflow==2.20.0 scann==1.4.2 (see docs/serving.md for "
    "the ScaNN/TensorFlow version table). Without ScaNN, use exact search "
    "(`evaluate(..., method='exact')`, `Retriever(..., use_scann=False)`)."
)


# -------------------------------------------------------------------------------- ScaNN import


def import_scann():
    """Imports ``scann_ops_pybind`` or raises ImportError saying what to install.

    Also checks (once per process, :func:`tfcro._compat.check_scann`) that the
    ScaNN and TensorFlow versions are the verified working set, warning otherwise.
    """
    try:
        from scann.scann_ops.py import scann_ops_pybind
    except Exception as err:  # ImportError, or an undefined symbol in its shared library
        raise ImportError(f"{_SCANN_HINT} (import error: {err})") from err
    from tfcro._compat import check_scann

    check_scann()
    return scann_ops_pybind


def scann_available() -> bool:
    """Whether ``scann`` imports in this process."""
    try:
        import_scann()
    except ImportError:
        return False
    return True


# -------------------------------------------------------------------------------- parameters


@dataclasses.dataclass
class ScannParams:
    """ScaNN index parameters; ``None`` fields are chosen from the catalog size.

    Attributes:
      algorithm: ``"auto"`` (brute force up to ``brute_force_threshold`` items,
        else ``"tree_ah"``), ``"tree_ah"`` or ``"brute_force"``.
      brute_force_threshold: the catalog size up to which ``"auto"`` is exact
        (default :data:`BRUTE_FORCE_THRESHOLD`).
      num_leaves: k-means tree leaves; default ``round(sqrt(N))`` (at most ``N // 50``).
      num_leaves_to_search: leaves searched per query; default 10% of the leaves, at least 8
        and at least enough leaves to hold about ``50 * num_neighbors`` items.
      training_sample_size: items used to train the tree; default ``min(N, 250_000)``.
      dimensions_per_block: asymmetric-hashing block size (2 is ScaNN's recommendation).
      anisotropic_quantization_threshold: 0.2 for normalised dot-product search.
      reordering_num_neighbors: candidates re-scored exactly; default ``max(4 k, 250)``.
    """

    algorithm: str = "auto"
    brute_force_threshold: int = BRUTE_FORCE_THRESHOLD
    num_leaves: int | None = None
    num_leaves_to_search: int | None = None
    training_sample_size: int | None = None
    dimensions_per_block: int = 2
    anisotropic_quantization_threshold: float = 0.2
    reordering_num_neighbors: int | None = None

    def __post_init__(self) -> None:
        check_choice("algorithm", self.algorithm, ALGORITHMS)
        for name in ("brute_force_threshold", "dimensions_per_block"):
            setattr(self, name, check_int(name, getattr(self, name)))
        for name in (
            "num_leaves",
            "num_leaves_to_search",
            "training_sample_size",
            "reordering_num_neighbors",
        ):
            setattr(self, name, check_int(name, getattr(self, name), allow_none=True))

    @classmethod
    def coerce(cls, params: ScannParams | Mapping[str, Any] | None) -> ScannParams:
        """Accepts a ``ScannParams``, a dict of its fields, or None (all defaults)."""
        if params is None:
            return cls()
        if isinstance(params, cls):
            return params
        if isinstance(params, Mapping):
            return cls(**check_fields(cls, params, "scann_params"))
        raise invalid("scann_params", "a ScannParams, a dict or None", params)

    def resolve(self, num_items: int, num_neighbors: int) -> dict[str, Any]:
        """The concrete parameters for a catalog of ``num_items`` items and top-``num_neighbors``.

        ``{"algorithm": "brute_force", "num_neighbors": k}`` up to the threshold,
        else the tree / asymmetric hashing / reordering fields as well.
        """
        num_items = check_int("num_items", num_items)
        num_neighbors = check_int("num_neighbors", num_neighbors)
        algorithm = self.algorithm
        if algorithm == "auto":
            algorithm = "brute_force" if num_items <= self.brute_force_threshold else "tree_ah"
        resolved: dict[str, Any] = {"algorithm": algorithm, "num_neighbors": num_neighbors}
        if algorithm == "brute_force":
            return resolved
        max_leaves = max(1, num_items // 50)  # ScaNN's default min_partition_size is 50
        num_leaves = self.num_leaves or min(max_leaves, max(1, round(math.sqrt(num_items))))
        # 10% of the leaves (at least 8), and enough leaves to hold ~50 x k items.
        to_search = self.num_leaves_to_search or min(
            num_leaves,
            max(
                8,
                math.ceil(0.1 * num_leaves),
                math.ceil(50 * num_neighbors * num_leaves / num_items),
            ),
        )
        resolved.update(
            num_leaves=int(num_leaves),
            num_leaves_to_search=int(min(to_search, num_leaves)),
            training_sample_size=int(self.training_sample_size or min(num_items, 250_000)),
            dimensions_per_block=int(self.dimensions_per_block),
            anisotropic_quantization_threshold=float(self.anisotropic_quantization_threshold),
            reordering_num_neighbors=int(
                self.reordering_num_neighbors or max(4 * num_neighbors, 250)
            ),
        )
        return resolved


# -------------------------------------------------------------------------------- shared parts


def _queries(queries: Any, dim: int | None = None) -> np.ndarray:
    queries = np.ascontiguousarray(np.asarray(queries, np.float32))
    if queries.ndim != 2 or (dim is not None and queries.shape[1] != dim):
        shape = "[U, D]" if dim is None else f"[U, {dim}]"
        raise invalid("queries", f"a {shape} array", f"<array of shape {queries.shape}>")
    return queries


def _check_exclude(exclude: Sequence[Any] | None, num_queries: int) -> None:
    if exclude is not None and len(exclude) != num_queries:
        raise invalid(
            "exclude",
            f"None or one collection of item rows per query ({num_queries})",
            f"<{len(exclude)} collections>",
        )


def _rows(collection: Any) -> np.ndarray:
    if not isinstance(collection, np.ndarray | list | tuple):
        collection = list(collection)  # a set, a generator ...
    return np.asarray(collection, np.int64).reshape(-1)


def _exclusions(
    exclude: Sequence[Any] | None, start: int, stop: int, num_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """Excluded ``(row - start) * num_items + item`` keys of queries ``start:stop``, sorted and
    unique (entries outside ``[0, num_items)`` dropped), and how many items each query keeps.
    """
    if exclude is None:
        return np.zeros(0, np.int64), np.full(stop - start, num_items, np.int64)
    cols = [_rows(exclude[u]) for u in range(start, stop)]
    rows = np.repeat(np.arange(stop - start, dtype=np.int64), [len(c) for c in cols])
    cols = np.concatenate(cols + [np.zeros(0, np.int64)])
    inside = (cols >= 0) & (cols < num_items)
    keys = np.unique(rows[inside] * num_items + cols[inside])
    remaining = num_items - np.bincount(keys // num_items, minlength=stop - start)
    return keys, remaining.astype(np.int64)


def _pad_missing(indices: np.ndarray, scores: np.ndarray, found: np.ndarray) -> None:
    """``-1`` / ``NaN`` in place at positions ``>= found`` of each row."""
    missing = np.arange(indices.shape[1])[None, :] >= found[:, None]
    indices[missing] = -1
    scores[missing] = np.nan


# -------------------------------------------------------------------------------- exact search

_EXACT_FN: list[Any] = []


def _exact_fn():
    """The traced ``matmul -> excluded pairs to -inf -> top_k`` of one chunk (built once)."""
    if not _EXACT_FN:
        from tfcro._compat import tf

        @tf.function(reduce_retracing=True)
        def chunk_top_k(queries, items_t, pairs, k):
            scores = tf.matmul(queries, items_t)  # items_t: [D, N], faster than transpose_b
            minus_inf = tf.fill(tf.shape(pairs)[:1], tf.constant(-np.inf, scores.dtype))
            scores = tf.tensor_scatter_nd_update(scores, pairs, minus_inf)
            return tf.math.top_k(scores, k=k)  # ties: the lower index first

        _EXACT_FN.append(chunk_top_k)
    return _EXACT_FN[0]


def exact_top_k(
    queries: np.ndarray,
    embeddings: np.ndarray,
    k: int,
    *,
    exclude: Sequence[Any] | None = None,
    chunk_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` items by dot product, without each query's ``exclude`` rows.

    TensorFlow ``matmul`` + ``tf.math.top_k`` per chunk of queries, the excluded
    items scored ``-inf`` first; ties keep the lower item index. (On a 2-core CPU
    as fast as NumPy ``matmul`` + ``argpartition``: 30,000 queries x 41,000 items x 64
    dims, top-100: about 19 s both; and on a GPU when TensorFlow has one.)
    A chunk holds at most ``chunk_size`` queries and :data:`EXACT_SCORE_BUDGET`
    scores, so memory stays bounded for any number of queries.

    Args:
      queries: ``[U, D]`` query (user) embeddings.
      embeddings: ``[N, D]`` item embeddings.
      k: how many items per query.
      exclude: ``None`` or ``U`` collections of item rows never to return.
      chunk_size: at most this many queries scored at once.

    Returns:
      ``(indices [U, k] int64, scores [U, k] float32)``, best first; ``-1`` / ``NaN``
      where fewer than ``k`` items remain.
    """
    k = check_int("k", k)
    chunk_size = check_int("chunk_size", chunk_size)
    items = np.asarray(embeddings, np.float32)
    if items.ndim != 2:
        raise invalid("embeddings", "an [N, D] array", f"<array of shape {items.shape}>")
    queries = _queries(queries, items.shape[1])
    _check_exclude(exclude, len(queries))
    num_items = len(items)
    indices = np.full((len(queries), k), -1, np.int64)
    scores = np.full((len(queries), k), np.nan, np.float32)
    if num_items == 0 or len(queries) == 0:
        return indices, scores
    from tfcro._compat import tf

    chunk_top_k = _exact_fn()
    table = tf.constant(np.ascontiguousarray(items.T))
    width = min(k, num_items)
    chunk_size = max(1, min(chunk_size, EXACT_SCORE_BUDGET // num_items))
    for start in range(0, len(queries), chunk_size):
        stop = min(start + chunk_size, len(queries))
        keys, remaining = _exclusions(exclude, start, stop, num_items)
        pairs = np.stack([keys // num_items, keys % num_items], axis=1)
        values, rows = chunk_top_k(
            tf.constant(queries[start:stop]), table, tf.constant(pairs), tf.constant(width)
        )
        chunk_indices = rows.numpy().astype(np.int64)
        chunk_scores = values.numpy()
        _pad_missing(chunk_indices, chunk_scores, remaining)
        indices[start:stop, :width] = chunk_indices
        scores[start:stop, :width] = chunk_scores
    return indices, scores


def recall_against_exact(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean over queries of ``|approx_i & exact_i| / |exact_i|`` (recall@N of an ANN search);
    ``-1`` (missing) entries count for nothing.
    """
    hits = []
    for a, e in zip(approx, exact, strict=True):
        truth = set(np.asarray(e).tolist()) - {-1}
        hits.append(len(truth & set(np.asarray(a).tolist())) / max(len(truth), 1))
    return float(np.mean(hits)) if hits else float("nan")


# -------------------------------------------------------------------------------- ScaNN index


class ScannIndex:
    """A built or loaded ScaNN searcher with its id map.

    Use :func:`build_scann_index` to build one and :meth:`load` to read one saved
    with :meth:`save`. :meth:`search` returns row indices; :attr:`ids` maps them
    to raw item ids. :func:`scann_top_k` searches it with exclusions.
    """

    def __init__(self, searcher: Any, ids: np.ndarray, params: dict[str, Any]):
        self.searcher = searcher
        self.ids = np.asarray(ids, dtype=object)
        self.params = dict(params)
        self.recall: dict[str, Any] | None = None
        self.build_seconds: float | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_neighbors(self) -> int:
        return int(self.params["num_neighbors"])

    def search(
        self,
        queries: np.ndarray,
        k: int | None = None,
        *,
        leaves_to_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows for a ``[Q, D]`` batch (or one ``[D]`` query), without exclusions.

        ``leaves_to_search`` overrides the index's ``num_leaves_to_search`` for
        this call (more leaves: higher recall, fewer queries per second).
        Returns ``(indices [Q, k'] int64, scores [Q, k'] float32)`` with
        ``k' = min(k, len(self))``, best first.
        """
        queries = np.asarray(queries, np.float32)
        single = queries.ndim == 1
        if single:
            queries = queries[None, :]
        k = min(int(k or self.num_neighbors), len(self))
        pre = None
        if self.params.get("algorithm") == "tree_ah":
            pre = max(int(self.params["reordering_num_neighbors"]), k)
        if queries.shape[0] == 1:
            idx, dist = self.searcher.search(
                queries[0],
                final_num_neighbors=k,
                pre_reorder_num_neighbors=pre or -1,
                leaves_to_search=leaves_to_search or -1,
            )
            idx, dist = np.asarray(idx)[None, :], np.asarray(dist)[None, :]
        else:
            idx, dist = self.searcher.search_batched_parallel(
                queries,
                final_num_neighbors=k,
                pre_reorder_num_neighbors=pre,
                leaves_to_search=leaves_to_search,
            )
        idx = np.asarray(idx, np.int64)
        dist = np.asarray(dist, np.float32)
        return (idx[0], dist[0]) if single else (idx, dist)

    def evaluate_recall(
        self,
        embeddings: np.ndarray,
        queries: np.ndarray | None = None,
        *,
        k: int | None = None,
        num_queries: int = 1000,
        seed: int = 0,
    ) -> dict[str, Any]:
        """Recall@k of the index against :func:`exact_top_k` on a sample of queries.

        ``queries`` default to a random sample of the item embeddings themselves
        (without their own row excluded: a self-query is a typical near-duplicate query).
        The result is also stored in :attr:`recall`.
        """
        embeddings = np.asarray(embeddings, np.float32)
        k = min(int(k or self.num_neighbors), len(self))
        rng = np.random.default_rng(seed)
        if queries is None:
            rows = rng.choice(
                len(embeddings), size=min(num_queries, len(embeddings)), replace=False
            )
            queries = embeddings[rows]
            source = "item_embeddings"
        else:
            queries = np.asarray(queries, np.float32)
            if len(queries) > num_queries:
                queries = queries[rng.choice(len(queries), size=num_queries, replace=False)]
            source = "given_queries"
        approx, _ = self.search(queries, k)
        exact, _ = exact_top_k(queries, embeddings, k)
        self.recall = {
            "k": int(k),
            "num_queries": int(len(queries)),
            "queries": source,
            "recall": recall_against_exact(approx, exact),
        }
        return self.recall

    def save(self, directory: str) -> None:
        """Writes the searcher (relative asset paths: the folder can be moved), ids and params."""
        os.makedirs(directory, exist_ok=True)
        self.searcher.serialize(directory, relative_path=True)
        with open(os.path.join(directory, IDS_FILE), "w", encoding="utf-8") as f:
            json.dump([str(i) for i in self.ids], f)
        with open(os.path.join(directory, PARAMS_FILE), "w", encoding="utf-8") as f:
            json.dump({"params": self.params, "recall": self.recall}, f, indent=2)

    @classmethod
    def load(cls, directory: str) -> ScannIndex:
        """Loads an index written by :meth:`save` (needs ``scann``)."""
        scann_ops_pybind = import_scann()
        searcher = scann_ops_pybind.load_searcher(directory)
        with open(os.path.join(directory, IDS_FILE), encoding="utf-8") as f:
            ids = np.asarray(json.load(f), dtype=object)
        with open(os.path.join(directory, PARAMS_FILE), encoding="utf-8") as f:
            meta = json.load(f)
        index = cls(searcher, ids, meta["params"])
        index.recall = meta.get("recall")
        return index


def build_scann_index(
    embeddings: np.ndarray,
    ids: Any,
    num_neighbors: int = DEFAULT_NUM_NEIGHBORS,
    params: ScannParams | Mapping[str, Any] | None = None,
    *,
    evaluate: bool = True,
    recall_queries: np.ndarray | None = None,
    num_recall_queries: int = 1000,
) -> ScannIndex:
    """Builds a ScaNN dot-product index over ``embeddings`` ``[N, D]`` with raw ``ids`` ``[N]``.

    Args:
      embeddings: item embeddings (L2-normalised for cosine scores).
      ids: raw item ids aligned with the rows (converted with ``str``, unique).
      num_neighbors: default top-N of a search (also sets the resolved parameters).
      params: overrides of the automatic parameters (see :class:`ScannParams`).
      evaluate: measure recall@``num_neighbors`` against exact search on a sample.
      recall_queries: queries for that measurement (default: a sample of items).
      num_recall_queries: sample size.

    Returns:
      The :class:`ScannIndex`; ``index.params`` holds the resolved parameters and
      ``index.recall`` the measured recall.

    Example:
      >>> index = build_scann_index(item_emb, item_ids, num_neighbors=100)
      >>> rows, scores = scann_top_k(index, user_emb, 10, exclude=seen_rows)
      >>> top_ids = index.ids[rows]
    """
    embeddings = np.ascontiguousarray(np.asarray(embeddings, np.float32))
    if embeddings.ndim != 2 or embeddings.shape[0] == 0:
        raise invalid(
            "embeddings", "a non-empty [N, D] array", f"<array of shape {embeddings.shape}>"
        )
    ids = np.asarray([str(i) for i in ids], dtype=object)
    if len(ids) != embeddings.shape[0]:
        raise invalid(
            "ids", f"one id per embedding row ({embeddings.shape[0]})", f"<{len(ids)} ids>"
        )
    if len(set(ids.tolist())) != len(ids):
        raise invalid("ids", "unique", "<duplicated item ids>")
    num_neighbors = min(check_int("num_neighbors", num_neighbors), embeddings.shape[0])
    resolved = ScannParams.coerce(params).resolve(embeddings.shape[0], num_neighbors)
    scann_ops_pybind = import_scann()
    builder = scann_ops_pybind.builder(embeddings, num_neighbors, "dot_product")
    if resolved["algorithm"] == "brute_force":
        builder = builder.score_brute_force()
    else:
        builder = (
            builder.tree(
                num_leaves=resolved["num_leaves"],
                num_leaves_to_search=resolved["num_leaves_to_search"],
                training_sample_size=resolved["training_sample_size"],
            )
            .score_ah(
                resolved["dimensions_per_block"],
                anisotropic_quantization_threshold=resolved["anisotropic_quantization_threshold"],
            )
            .reorder(resolved["reordering_num_neighbors"])
        )
    start = time.perf_counter()
    searcher = builder.build()
    index = ScannIndex(searcher, ids, resolved)
    index.build_seconds = time.perf_counter() - start
    if evaluate:
        index.evaluate_recall(
            embeddings, recall_queries, k=num_neighbors, num_queries=num_recall_queries
        )
    return index


# -------------------------------------------------------------------------------- ScaNN search


def scann_top_k(
    index: ScannIndex,
    queries: np.ndarray,
    k: int,
    *,
    exclude: Sequence[Any] | None = None,
    leaves_to_search: int | None = None,
    chunk_size: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items of a ScaNN index, without each query's ``exclude`` rows.

    Over-fetches ``k + (number of excluded items)`` candidates (the largest of
    the chunk), drops the excluded ones, and fetches again, twice as many extra
    each time, for the queries that came back short while more items remain.
    When even the whole catalog is too few (a tree index only returns items of
    the leaves it searched) a last search visits every leaf. Same contract as
    :func:`exact_top_k`: ``(indices [U, k] int64, scores [U, k] float32)``, best
    first, ``-1`` / ``NaN`` where fewer than ``k`` items remain.
    """
    k = check_int("k", k)
    chunk_size = check_int("chunk_size", chunk_size)
    queries = _queries(queries)
    _check_exclude(exclude, len(queries))
    num_items = len(index)
    all_leaves = index.params.get("num_leaves")
    indices = np.full((len(queries), k), -1, np.int64)
    scores = np.full((len(queries), k), np.nan, np.float32)
    for start in range(0, len(queries), chunk_size):
        stop = min(start + chunk_size, len(queries))
        keys, remaining = _exclusions(exclude, start, stop, num_items)
        wanted = np.minimum(k, remaining)
        extra = num_items - remaining  # how many items each query excludes
        pending = np.arange(stop - start)
        leaves = leaves_to_search
        while pending.size:
            fetch = min(k + int(extra[pending].max()), num_items)
            rows, dists = index.search(queries[start + pending], fetch, leaves_to_search=leaves)
            # ScaNN pads a short batched result with row 0 and a NaN distance.
            drop = (rows < 0) | (rows >= num_items) | np.isnan(dists)
            drop |= np.isin(pending[:, None] * num_items + np.where(drop, 0, rows), keys)
            order = np.argsort(drop, axis=1, kind="stable")[:, :k]
            kept = np.take_along_axis(rows, order, axis=1)
            kept_scores = np.take_along_axis(dists, order, axis=1)
            found = np.count_nonzero(~drop, axis=1)
            _pad_missing(kept, kept_scores, found)
            indices[start + pending] = -1
            scores[start + pending] = np.nan
            indices[start + pending, : kept.shape[1]] = kept
            scores[start + pending, : kept.shape[1]] = kept_scores
            short = found < wanted[pending]
            if fetch >= num_items:
                if not all_leaves or leaves == all_leaves:
                    break
                leaves = all_leaves  # the whole catalog was asked for: visit every leaf
            extra[pending[short]] = np.maximum(2 * extra[pending[short]], k)
            pending = pending[short]
    return indices, scores


__all__ = [
    "ALGORITHMS",
    "BRUTE_FORCE_THRESHOLD",
    "DEFAULT_NUM_NEIGHBORS",
    "EXACT_SCORE_BUDGET",
    "ScannIndex",
    "ScannParams",
    "build_scann_index",
    "exact_top_k",
    "import_scann",
    "recall_against_exact",
    "scann_available",
    "scann_top_k",
]
