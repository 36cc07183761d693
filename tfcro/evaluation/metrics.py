"""Ranking metrics over top-N lists: pure NumPy, vectorised over users.

Inputs: ``top [U, K]`` item ids ranked best first (ints or strings; ``-1`` or
``""`` for "no item"), ``targets`` a list of ``U`` id arrays (each a set:
duplicates are counted once). Users without targets are skipped. For ``N <= K``:

- ``recall@N``      = mean_u |top_N(u) & T_u| / |T_u|        (official code, per user)
- ``pair_recall@N`` = sum_u |top_N(u) & T_u| / sum_u |T_u|    (paper eq. 5, per pair)
- ``hitrate@N``     = mean_u 1[|top_N(u) & T_u| >= 1]
- ``ndcg@N``        = mean_u DCG_N / IDCG_N, ``DCG_N = sum_{r<N} hit_r / log2(r + 2)``,
  ``IDCG_N = sum_{r < min(|T_u|, N)} 1 / log2(r + 2)`` (binary relevance).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

DEFAULT_KS = (20, 50, 100, 200, 500)
METRICS = ("recall", "pair_recall", "hitrate", "ndcg")


def check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    """``ks`` as a sorted tuple of unique positive ints, or ValueError naming it."""
    try:
        values = list(ks)
    except TypeError:
        values = [ks]
    if not values or any(
        isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1 for k in values
    ):
        raise ValueError(f"`ks` should be a non-empty list of integers >= 1. Received: ks={ks!r}")
    return tuple(sorted({int(k) for k in values}))


def parse_monitor(monitor: str) -> tuple[str, int]:
    """``"recall@100"`` or ``"val_recall@100"`` -> ``("recall", 100)``; ValueError otherwise.

    The one reader of monitor strings (training config, validation callback, grids).

    >>> parse_monitor("val_ndcg@20")
    ('ndcg', 20)
    """
    metric, _, cut = str(monitor).removeprefix("val_").partition("@")
    if metric not in METRICS or not cut.isdigit() or int(cut) < 1:
        raise ValueError(
            f"`monitor` should look like 'recall@100' (metric one of {list(METRICS)}, "
            f"cut-off >= 1). Received: monitor={monitor!r}"
        )
    return metric, int(cut)


def hit_matrix(top: np.ndarray, targets: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``hits [U, K]`` bool (``top[u, r]`` is a target of ``u``) and ``num_targets [U]``.

    Vectorised: every (user, item) pair is encoded as one integer key and
    matched with ``np.isin``.
    """
    top = np.asarray(top)
    if top.ndim != 2 or top.shape[0] != len(targets):
        raise ValueError(
            f"`top` should be [num_users, K] with num_users == len(targets). "
            f"Received: top.shape={top.shape}, len(targets)={len(targets)}"
        )
    unique_targets = [np.unique(np.asarray(t)) for t in targets]
    num_targets = np.array([len(t) for t in unique_targets], dtype=np.int64)
    flat_targets = np.concatenate(unique_targets) if unique_targets else np.zeros(0)
    if flat_targets.size == 0 or top.size == 0:
        return np.zeros(top.shape, bool), num_targets
    # One integer code per id, shared by `top` and the targets.
    if top.dtype.kind in "iu" and flat_targets.dtype.kind in "iu":
        joined = np.concatenate([top.reshape(-1).astype(np.int64), flat_targets.astype(np.int64)])
    else:
        joined = np.concatenate([top.reshape(-1).astype(str), flat_targets.astype(str)])
    vocab, codes = np.unique(joined, return_inverse=True)
    codes = codes.reshape(-1)
    top_codes = codes[: top.size].reshape(top.shape)
    target_codes = codes[top.size :]
    width = len(vocab)
    users = np.repeat(np.arange(len(targets)), num_targets)
    target_keys = users * width + target_codes
    top_keys = np.arange(top.shape[0])[:, None] * width + top_codes
    hits = np.isin(top_keys, target_keys)
    # A "no item" entry never hits, even if the empty id happened to be a target.
    hits &= ~_missing(top)
    return hits, num_targets


def _missing(top: np.ndarray) -> np.ndarray:
    if top.dtype.kind in "iu":
        return top < 0
    return top.astype(str) == ""


def metrics_from_hits(
    hits: np.ndarray, num_targets: np.ndarray, ks: Iterable[int] = DEFAULT_KS
) -> dict[str, float]:
    """``recall@N``, ``pair_recall@N``, ``hitrate@N``, ``ndcg@N`` for each ``N`` in ``ks``.

    ``hits [U, K]`` bool, ranked best first; ``N > K`` uses all ``K`` columns.
    Example (one user, targets {a, b}, top-3 = [a, x, b]; see tests for arithmetic):
    recall@3 = 2/2, ndcg@3 = (1 + 1/log2(4)) / (1 + 1/log2(3)).
    """
    ks = check_ks(ks)
    hits = np.asarray(hits, bool)
    num_targets = np.asarray(num_targets, np.int64)
    keep = num_targets > 0
    hits, num_targets = hits[keep], num_targets[keep]
    result: dict[str, float] = {}
    if len(num_targets) == 0:
        for k in ks:
            for metric in METRICS:
                result[f"{metric}@{k}"] = 0.0
        return result
    discounts = 1.0 / np.log2(np.arange(hits.shape[1]) + 2.0)
    cumulative_hits = np.cumsum(hits, axis=1)
    cumulative_dcg = np.cumsum(hits * discounts, axis=1)
    ideal = np.cumsum(1.0 / np.log2(np.arange(max(ks)) + 2.0))
    for k in ks:
        column = min(k, hits.shape[1]) - 1
        count = cumulative_hits[:, column] if column >= 0 else np.zeros(len(num_targets))
        dcg = cumulative_dcg[:, column] if column >= 0 else np.zeros(len(num_targets))
        idcg = ideal[np.minimum(num_targets, k) - 1]
        result[f"recall@{k}"] = float(np.mean(count / num_targets))
        result[f"pair_recall@{k}"] = float(count.sum() / num_targets.sum())
        result[f"hitrate@{k}"] = float(np.mean(count > 0))
        result[f"ndcg@{k}"] = float(np.mean(dcg / idcg))
    return result


def ranking_metrics(
    top: np.ndarray, targets: Sequence[np.ndarray], ks: Iterable[int] = DEFAULT_KS
) -> dict[str, float]:
    """All metrics of this module from top-N id lists and target sets.

    >>> r = ranking_metrics(np.array([[1, 9, 2]]), [np.array([1, 2])], ks=[1, 3])
    >>> r["recall@1"], r["recall@3"], r["hitrate@1"]
    (0.5, 1.0, 1.0)
    """
    hits, num_targets = hit_matrix(top, targets)
    return metrics_from_hits(hits, num_targets, ks)
