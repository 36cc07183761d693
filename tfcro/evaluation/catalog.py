"""``evaluate``: Recall/HitRate/NDCG@N of a retrieval model over the full catalog.

Works with any model that offers ``embed_users(features)`` and
``embed_items(item_ids)`` (:class:`tfcro.models.TwoTowerModel`,
:class:`tfcro.evaluation.PopularityBaseline`) or, failing that, Keras
``user_tower`` / ``item_tower`` models with dict inputs (the model contract).
Scores are dot products of the two embeddings (``scale * cosine`` ranks like
``cosine``). The top-N search is :mod:`tfcro.search`'s, the same as the
export's and the Retriever's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tfcro._compat import tf
from tfcro.evaluation.metrics import DEFAULT_KS, check_ks, ranking_metrics
from tfcro.search import (
    DEFAULT_NUM_NEIGHBORS,
    ScannIndex,
    ScannParams,
    build_scann_index,
    exact_top_k,
    scann_top_k,
)
from tfcro.validation import check_choice, invalid

METHODS = ("exact", "scann")


def catalog_indices(ids: Any, items: np.ndarray) -> np.ndarray:
    """Catalog positions of ``ids`` (``-1`` for ids outside the catalog), vectorised."""
    ids = np.asarray(ids).astype(str).reshape(-1)
    items = np.asarray(items).astype(str)
    order = np.argsort(items, kind="stable")
    if ids.size == 0 or items.size == 0:
        return np.full(ids.shape, -1, np.int64)
    position = np.clip(np.searchsorted(items[order], ids), 0, len(items) - 1)
    found = items[order][position] == ids
    return np.where(found, order[position], -1).astype(np.int64)


def _ragged_indices(lists: Sequence[Any], items: np.ndarray) -> list[np.ndarray]:
    """Each id array of ``lists`` as catalog indices (ids outside the catalog: -1)."""
    if len(lists) == 0:
        return []
    lengths = [len(np.asarray(x).reshape(-1)) for x in lists]
    flat = np.concatenate(
        [np.asarray(x).astype(str).reshape(-1) for x in lists] + [np.zeros(0, str)]
    )
    return np.split(catalog_indices(flat, items), np.cumsum(lengths)[:-1])


def user_features(users: Any) -> dict[str, np.ndarray]:
    """``{"history", "user_id"}`` arrays of an ``EvalUsers`` (or a dict, returned as is)."""
    if isinstance(users, Mapping):
        return {k: np.asarray(v) for k, v in users.items() if k not in ("targets", "seen")}
    return {"history": np.asarray(users.history), "user_id": np.asarray(users.user_id)}


def embed_users(model: Any, users: Any, batch_size: int = 1024) -> np.ndarray:
    """``[U, D]`` user embeddings from the model's ``embed_users`` or its ``user_tower``."""
    features = user_features(users)
    if hasattr(model, "embed_users"):
        return np.asarray(model.embed_users(features, batch_size=batch_size), np.float32)
    tower = model.user_tower
    names = getattr(tower, "input_names", None) or list(features)
    out = []
    for i in range(0, len(features["history"]), batch_size):
        chunk = {
            k: tf.constant(np.asarray(features[k][i : i + batch_size]).astype(str)) for k in names
        }
        out.append(np.asarray(tower(chunk, training=False)))
    return np.concatenate(out).astype(np.float32)


def embed_items(model: Any, items: Any, batch_size: int = 4096) -> np.ndarray:
    """``[N, D]`` item embeddings of the catalog ``items`` (ids, or a dict of tower inputs)."""
    if hasattr(model, "embed_items") and not isinstance(items, Mapping):
        return np.asarray(model.embed_items(items, batch_size=batch_size), np.float32)
    features = dict(items) if isinstance(items, Mapping) else {"item_id": np.asarray(items)}
    n = len(features["item_id"])
    out = []
    for i in range(0, n, batch_size):
        chunk = {
            k: tf.constant(np.asarray(v[i : i + batch_size]).astype(str))
            for k, v in features.items()
        }
        out.append(np.asarray(model.item_tower(chunk, training=False)))
    return np.concatenate(out).astype(np.float32)


def top_n(
    user_embeddings: np.ndarray,
    item_embeddings: np.ndarray,
    n: int,
    exclude: Sequence[np.ndarray] | None = None,
    method: str = "exact",
    batch_size: int = 1024,
    *,
    scann_index: ScannIndex | None = None,
    scann_params: ScannParams | Mapping[str, Any] | None = None,
) -> np.ndarray:
    """``[U, n]`` catalog indices by ``method``; -1 where none is left.

    ``"exact"``: :func:`tfcro.search.exact_top_k` (``batch_size`` users scored at
    once, at most). ``"scann"``: :func:`tfcro.search.scann_top_k` on
    ``scann_index`` (rows = catalog indices), by default the index the export
    builds for this catalog: :func:`tfcro.search.build_scann_index` with
    ``num_neighbors=DEFAULT_NUM_NEIGHBORS`` and ``scann_params`` (brute force up to
    :data:`tfcro.search.BRUTE_FORCE_THRESHOLD` items).
    """
    check_choice("method", method, METHODS)
    if method == "exact":
        return exact_top_k(
            user_embeddings, item_embeddings, n, exclude=exclude, chunk_size=batch_size
        )[0]
    if scann_index is None:
        scann_index = scann_index_for(item_embeddings, scann_params)
    return scann_top_k(scann_index, user_embeddings, n, exclude=exclude)[0]


def scann_index_for(
    item_embeddings: np.ndarray, scann_params: ScannParams | Mapping[str, Any] | None = None
) -> ScannIndex:
    """The ScaNN index ``evaluate(method="scann")`` searches: the one the export writes for a
    catalog of this size (same :class:`~tfcro.search.ScannParams`, same default
    ``num_neighbors``), rows = catalog indices.
    """
    rows = np.arange(len(item_embeddings))
    return build_scann_index(
        item_embeddings, rows, DEFAULT_NUM_NEIGHBORS, scann_params, evaluate=False
    )


def _index_positions(index: ScannIndex, item_ids: np.ndarray) -> np.ndarray | None:
    """The catalog position of each row of a prebuilt index over the catalog (in any order);
    ``None`` when the rows are the catalog's order.
    """
    position = catalog_indices(index.ids, item_ids)
    if len(index) != len(item_ids) or len(np.unique(position[position >= 0])) != len(item_ids):
        raise invalid(
            "scann_index",
            f"an index over exactly the evaluated catalog ({len(item_ids)} items)",
            f"<ScannIndex of {len(index)} items>",
        )
    return None if (position == np.arange(len(item_ids))).all() else position


def evaluate(
    model: Any,
    users: Any,
    items: Any,
    ks: Iterable[int] = DEFAULT_KS,
    batch_size: int = 1024,
    exclude_seen: bool = True,
    method: str = "exact",
    *,
    scann_index: ScannIndex | None = None,
    scann_params: ScannParams | Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Recall@N (per user), pair Recall@N, HitRate@N and NDCG@N over the full catalog.

    Args:
      model: a two-tower model (see the module docstring).
      users: an ``EvalUsers`` (``user_id``, ``history``, ``targets``, ``seen``)
        or a dict with those keys.
      items: the catalog, ``[N]`` raw ids (or a dict of item tower inputs with
        ``"item_id"``); rankings are over exactly these items.
      ks: the cut-offs ``N`` (positive ints).
      batch_size: users (and items) embedded/scored per batch.
      exclude_seen: never rank a user's ``seen`` items.
      method: "exact" (:func:`tfcro.search.exact_top_k`: batched matmul +
        ``tf.math.top_k``) or "scann" (:func:`tfcro.search.scann_top_k`).
      scann_index: with "scann", the index to measure, e.g. an export's
        ``ScannIndex.load("saved_models/run/scann/3")``; its ids must be the
        catalog ``items`` (in any order). Default: the index the export would
        write for this catalog (:func:`scann_index_for`).
      scann_params: with "scann" and no ``scann_index``, the
        :class:`~tfcro.search.ScannParams` of the export to reproduce.

    Returns:
      ``{"recall@N", "pair_recall@N", "hitrate@N", "ndcg@N"}`` floats for every N.
    """
    ks = check_ks(ks)
    check_choice("method", method, METHODS)
    item_ids = np.asarray(items["item_id"] if isinstance(items, Mapping) else items).astype(str)
    targets = users["targets"] if isinstance(users, Mapping) else users.targets
    seen = users["seen"] if isinstance(users, Mapping) else users.seen
    user_vectors = embed_users(model, users, batch_size)
    item_vectors = embed_items(model, items, max(batch_size, 4096))
    exclude = _ragged_indices(seen, item_ids) if exclude_seen else None
    position = None
    if method == "scann" and scann_index is not None:
        position = _index_positions(scann_index, item_ids)
        if position is not None and exclude is not None:  # catalog positions -> index rows
            row = np.empty_like(position)
            row[position] = np.arange(len(position))
            exclude = [row[e[e >= 0]] for e in exclude]
    top = top_n(
        user_vectors,
        item_vectors,
        max(ks),
        exclude,
        method,
        batch_size,
        scann_index=scann_index,
        scann_params=scann_params,
    )
    if position is not None:  # index rows -> catalog positions
        top = np.where(top >= 0, position[np.maximum(top, 0)], -1)
    # Targets as catalog indices; ids outside the catalog stay distinct misses (-2 - k).
    # (one vectorised lookup for all users: a lookup per user sorted the catalog each time)
    target_sets = _ragged_indices([np.unique(np.asarray(t).astype(str)) for t in targets], item_ids)
    for index in target_sets:
        missing = np.flatnonzero(index < 0)
        index[missing] = -2 - np.arange(len(missing))
    return ranking_metrics(top, target_sets, ks)
