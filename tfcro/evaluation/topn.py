"""Top-N retrieval over a full catalog: exact (batched matmul + top_k) and ScaNN.

Both return ``[U, n]`` int64 catalog indices ranked best first, ``-1`` where
fewer than ``n`` items are left (after exclusion or for a small catalog).
``exclude`` is a list of ``U`` arrays of catalog indices never to return
(already-seen items).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tfcro._compat import check_scann, tf


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"`n` should be an integer >= 1. Received: n={n!r}")
    return int(n)


def _pairs(exclude: Sequence[np.ndarray], start: int, stop: int) -> np.ndarray:
    """``[P, 2]`` (row within the batch, item index) pairs to exclude."""
    rows = [np.full(len(exclude[u]), u - start, np.int64) for u in range(start, stop)]
    cols = [np.asarray(exclude[u], np.int64).reshape(-1) for u in range(start, stop)]
    if not rows:
        return np.zeros((0, 2), np.int64)
    pairs = np.stack([np.concatenate(rows), np.concatenate(cols)], axis=1)
    return pairs[pairs[:, 1] >= 0]


@tf.function(reduce_retracing=True)
def _exact_batch(users, items, pairs, k):
    scores = tf.matmul(users, items, transpose_b=True)
    scores = tf.tensor_scatter_nd_update(
        scores, pairs, tf.fill(tf.shape(pairs)[:1], tf.constant(-np.inf, scores.dtype)))
    values, indices = tf.math.top_k(scores, k=k)
    return values, indices


def exact_top_n(user_embeddings: np.ndarray, item_embeddings: np.ndarray, n: int,
                exclude: Sequence[np.ndarray] | None = None,
                batch_size: int = 1024) -> np.ndarray:
    """Exact top-``n`` items by dot product: ``top_k(users @ items.T)`` per batch of users.

    Excluded items get score ``-inf`` before ``top_k``; ties keep the lower index.
    """
    n = _check_n(n)
    users = np.asarray(user_embeddings, np.float32)
    items = tf.constant(np.asarray(item_embeddings, np.float32))
    k = min(n, int(items.shape[0]))
    out = np.full((len(users), n), -1, np.int64)
    for start in range(0, len(users), batch_size):
        stop = min(start + batch_size, len(users))
        pairs = _pairs(exclude, start, stop) if exclude is not None else np.zeros((0, 2), np.int64)
        values, indices = _exact_batch(tf.constant(users[start:stop]), items,
                                       tf.constant(pairs), tf.constant(k))
        indices = indices.numpy().astype(np.int64)
        indices[~np.isfinite(values.numpy())] = -1
        out[start:stop, :k] = indices
    return out


def build_scann_searcher(item_embeddings: np.ndarray, num_neighbors: int = 100, *,
                         num_leaves: int | None = None, num_leaves_to_search: int | None = None,
                         reorder: int | None = None, brute_force_below: int = 1000,
                         training_sample_size: int = 100_000):
    """A ScaNN dot-product searcher over the item embeddings.

    Small catalogs (``< brute_force_below`` items) are searched brute force.
    Otherwise: a partition tree of ``num_leaves`` (default ``sqrt(N)``) leaves of
    which ``num_leaves_to_search`` (default a quarter) are visited, asymmetric
    hashing, and exact re-scoring of the ``reorder`` best (default ``max(4 n, 200)``).
    """
    try:
        from scann import scann_ops_pybind
    except ImportError as error:  # pragma: no cover - scann is a pinned dependency
        raise ImportError("ScaNN top-N needs the `scann` package: pip install scann==1.4.2"
                          ) from error
    check_scann()
    items = np.ascontiguousarray(np.asarray(item_embeddings, np.float32))
    size = len(items)
    num_neighbors = max(1, min(int(num_neighbors), size))
    builder = scann_ops_pybind.builder(items, num_neighbors, "dot_product")
    if size < brute_force_below:
        return builder.score_brute_force().build()
    leaves = num_leaves or max(2, int(np.sqrt(size)))
    to_search = num_leaves_to_search or max(1, leaves // 4)
    builder = builder.tree(num_leaves=leaves, num_leaves_to_search=to_search,
                           training_sample_size=min(size, training_sample_size))
    builder = builder.score_ah(2, anisotropic_quantization_threshold=0.2)
    return builder.reorder(reorder or max(4 * num_neighbors, 200)).build()


def filter_excluded(candidates: np.ndarray, n: int,
                    exclude: Sequence[np.ndarray] | None) -> np.ndarray:
    """The first ``n`` non-excluded, non-missing entries of each row of ``candidates [U, F]``.

    Vectorised: excluded entries sort after the others (stable), keeping order.
    """
    candidates = np.asarray(candidates, np.int64)
    users, fetched = candidates.shape
    drop = candidates < 0
    if exclude is not None and users:
        width = int(max(candidates.max(initial=0), max((np.max(e, initial=0) for e in exclude),
                                                        default=0))) + 1
        keys = np.concatenate([u * width + np.asarray(e, np.int64).reshape(-1)
                               for u, e in enumerate(exclude)] + [np.zeros(0, np.int64)])
        drop |= np.isin(np.arange(users)[:, None] * width + candidates, keys)
    order = np.argsort(drop, axis=1, kind="stable")
    kept = np.take_along_axis(candidates, order, axis=1)
    kept[np.take_along_axis(drop, order, axis=1)] = -1
    out = np.full((users, n), -1, np.int64)
    width = min(n, fetched)
    out[:, :width] = kept[:, :width]
    return out


def scann_top_n(user_embeddings: np.ndarray, item_embeddings: np.ndarray | None, n: int,
                exclude: Sequence[np.ndarray] | None = None, searcher=None,
                batch_size: int = 4096, **scann_options: Any) -> np.ndarray:
    """Approximate top-``n`` from a ScaNN index, over-fetching ``n + max(#excluded)``.

    ``searcher``: a built ScaNN searcher (else one is built from
    ``item_embeddings`` with ``scann_options``, see :func:`build_scann_searcher`).
    """
    n = _check_n(n)
    extra = max((len(e) for e in exclude), default=0) if exclude is not None else 0
    num_items = len(item_embeddings) if item_embeddings is not None else None
    fetch = n + extra if num_items is None else min(n + extra, num_items)
    if searcher is None:
        searcher = build_scann_searcher(item_embeddings, fetch, **scann_options)
    users = np.ascontiguousarray(np.asarray(user_embeddings, np.float32))
    out = np.full((len(users), n), -1, np.int64)
    for start in range(0, len(users), batch_size):
        chunk = users[start:start + batch_size]
        indices, _ = searcher.search_batched(chunk, final_num_neighbors=fetch)
        indices = np.asarray(indices, np.int64)
        # ScaNN pads short result lists; mark out-of-range entries as missing.
        if num_items is not None:
            indices[(indices >= num_items)] = -1
        chunk_exclude = exclude[start:start + len(chunk)] if exclude is not None else None
        out[start:start + len(chunk)] = filter_excluded(indices, n, chunk_exclude)
    return out
