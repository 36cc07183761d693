"""ScaNN index over item embeddings: parameters from the catalog size, build, save, load, search.

The index is a ``scann_ops_pybind`` searcher (the pure-Python/C++ ScaNN API, no
TensorFlow ops) plus the id map: row ``i`` of the searcher is ``ids[i]``, a raw
item id. Scores are dot products of L2-normalised embeddings, i.e. cosines; the
:class:`~tfcro.serving.Retriever` multiplies them by the model's ``scale``.

Choice of parameters (after the ScaNN README's advice for dot-product search):

- up to ``brute_force_threshold`` items (default 5,000): exact brute force;
- above: a k-means tree with ``num_leaves ~ sqrt(N)`` leaves searching 10% of
  them (at least 8, and enough to hold about ``50 k`` items), asymmetric
  hashing (2 dimensions per block, anisotropic threshold 0.2) and exact
  re-scoring (reordering) of
  ``max(4 * num_neighbors, 250)`` candidates.

Every field can be overridden with ``ScannParams`` or a dict of its fields.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

_SCANN_HINT = (
    "ScaNN is not installed (or its ops do not load with this TensorFlow). Install the "
    "verified pair: pip install tensorflow==2.20.0 scann==1.4.2 (see docs/serving.md for "
    "the ScaNN/TensorFlow version table). Without ScaNN, use brute-force retrieval "
    "(`Retriever(..., use_scann=False)`)."
)

ALGORITHMS = ("auto", "tree_ah", "brute_force")
IDS_FILE = "ids.json"
PARAMS_FILE = "tfcro_index.json"


def import_scann():
    """Imports ``scann_ops_pybind`` or raises ImportError saying what to install."""
    try:
        from scann.scann_ops.py import scann_ops_pybind
    except Exception as err:  # ImportError, or an undefined symbol in its shared library
        raise ImportError(f"{_SCANN_HINT} (import error: {err})") from err
    from tfcro._compat import check_scann

    check_scann()  # warns when ScaNN/TensorFlow are outside the working set
    return scann_ops_pybind


def scann_available() -> bool:
    """Whether ``scann`` imports in this process."""
    try:
        import_scann()
    except ImportError:
        return False
    return True


@dataclasses.dataclass
class ScannParams:
    """ScaNN index parameters; ``None`` fields are chosen from the catalog size.

    Attributes:
      algorithm: ``"auto"`` (brute force up to ``brute_force_threshold`` items,
        else ``"tree_ah"``), ``"tree_ah"`` or ``"brute_force"``.
      brute_force_threshold: the catalog size up to which ``"auto"`` is exact.
      num_leaves: k-means tree leaves; default ``round(sqrt(N))`` (at most ``N // 50``).
      num_leaves_to_search: leaves searched per query; default 10% of the leaves, at least 8
        and at least enough leaves to hold about ``50 * num_neighbors`` items.
      training_sample_size: items used to train the tree; default ``min(N, 250_000)``.
      dimensions_per_block: asymmetric-hashing block size (2 is ScaNN's recommendation).
      anisotropic_quantization_threshold: 0.2 for normalised dot-product search.
      reordering_num_neighbors: candidates re-scored exactly; default ``max(4 k, 250)``.
    """

    algorithm: str = "auto"
    brute_force_threshold: int = 5_000
    num_leaves: int | None = None
    num_leaves_to_search: int | None = None
    training_sample_size: int | None = None
    dimensions_per_block: int = 2
    anisotropic_quantization_threshold: float = 0.2
    reordering_num_neighbors: int | None = None

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(
                f"`algorithm` should be one of {ALGORITHMS}. Received: algorithm={self.algorithm!r}"
            )
        for name in (
            "brute_force_threshold",
            "num_leaves",
            "num_leaves_to_search",
            "training_sample_size",
            "dimensions_per_block",
            "reordering_num_neighbors",
        ):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
                raise ValueError(
                    f"`{name}` should be a positive integer or None. Received: {name}={value!r}"
                )

    @classmethod
    def coerce(cls, params: ScannParams | Mapping[str, Any] | None) -> ScannParams:
        """Accepts a ``ScannParams``, a dict of its fields, or None (all defaults)."""
        if params is None:
            return cls()
        if isinstance(params, cls):
            return params
        if isinstance(params, Mapping):
            allowed = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(params) - allowed)
            if unknown:
                raise ValueError(
                    f"`scann_params` has unknown keys {unknown}; allowed: {sorted(allowed)}"
                )
            return cls(**params)
        raise ValueError(
            "`scann_params` should be a ScannParams, a dict or None. "
            f"Received: scann_params={params!r}"
        )

    def resolve(self, num_items: int, num_neighbors: int) -> dict[str, Any]:
        """Returns the concrete parameters for a catalog of ``num_items`` items."""
        if num_items < 1:
            raise ValueError(f"`num_items` should be >= 1. Received: num_items={num_items}")
        algorithm = self.algorithm
        if algorithm == "auto":
            algorithm = "brute_force" if num_items <= self.brute_force_threshold else "tree_ah"
        resolved: dict[str, Any] = {"algorithm": algorithm, "num_neighbors": int(num_neighbors)}
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


def exact_top_k(
    queries: np.ndarray, embeddings: np.ndarray, k: int, *, chunk_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` by dot product with NumPy, in query chunks.

    Returns ``(indices [Q, k] int64, scores [Q, k] float32)``, best first.
    """
    queries = np.asarray(queries, np.float32)
    embeddings = np.asarray(embeddings, np.float32)
    k = min(int(k), embeddings.shape[0])
    all_idx, all_scores = [], []
    for start in range(0, queries.shape[0], chunk_size):
        scores = queries[start : start + chunk_size] @ embeddings.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        all_idx.append(np.take_along_axis(part, order, axis=1))
        all_scores.append(np.take_along_axis(part_scores, order, axis=1))
    return np.concatenate(all_idx).astype(np.int64), np.concatenate(all_scores)


def recall_against_exact(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean over queries of ``|approx_i & exact_i| / |exact_i|`` (recall@N of an ANN search)."""
    hits = [
        len(set(a.tolist()) & set(e.tolist())) / max(len(e), 1)
        for a, e in zip(approx, exact, strict=True)
    ]
    return float(np.mean(hits)) if hits else float("nan")


class ScannIndex:
    """A built or loaded ScaNN searcher with its id map.

    Use :func:`build_scann_index` to build one and :meth:`load` to read one saved
    with :meth:`save`. :meth:`search` returns row indices; :attr:`ids` maps them
    to raw item ids.
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
        """Top-``k`` rows for a ``[Q, D]`` batch (or one ``[D]`` query).

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
        """Recall@k of the index against exact search on a sample of queries.

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
    num_neighbors: int,
    params: ScannParams | Mapping[str, Any] | None = None,
    *,
    evaluate: bool = True,
    recall_queries: np.ndarray | None = None,
    num_recall_queries: int = 1000,
) -> ScannIndex:
    """Builds a ScaNN dot-product index over ``embeddings`` ``[N, D]`` with raw ``ids`` ``[N]``.

    Args:
      embeddings: item embeddings (L2-normalised for cosine scores).
      ids: raw item ids aligned with the rows (converted with ``str``).
      num_neighbors: default top-N of a search.
      params: overrides of the automatic parameters (see :class:`ScannParams`).
      evaluate: measure recall@``num_neighbors`` against exact search on a sample.
      recall_queries: queries for that measurement (default: a sample of items).
      num_recall_queries: sample size.

    Returns:
      The :class:`ScannIndex`; ``index.params`` holds the resolved parameters and
      ``index.recall`` the measured recall.

    Example:
      >>> index = build_scann_index(item_emb, item_ids, num_neighbors=100)
      >>> rows, scores = index.search(user_emb, k=10)
      >>> top_ids = index.ids[rows]
    """
    embeddings = np.ascontiguousarray(np.asarray(embeddings, np.float32))
    if embeddings.ndim != 2 or embeddings.shape[0] == 0:
        raise ValueError(
            "`embeddings` should be a non-empty [N, D] array. "
            f"Received: embeddings.shape={embeddings.shape}"
        )
    ids = np.asarray([str(i) for i in ids], dtype=object)
    if len(ids) != embeddings.shape[0]:
        raise ValueError(
            f"`ids` should have one id per embedding row ({embeddings.shape[0]}). "
            f"Received: len(ids)={len(ids)}"
        )
    if len(set(ids.tolist())) != len(ids):
        raise ValueError("`ids` should be unique. Received: duplicated item ids")
    if not isinstance(num_neighbors, (int, np.integer)) or num_neighbors < 1:
        raise ValueError(
            "`num_neighbors` should be a positive integer. "
            f"Received: num_neighbors={num_neighbors!r}"
        )
    num_neighbors = int(min(num_neighbors, embeddings.shape[0]))
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
