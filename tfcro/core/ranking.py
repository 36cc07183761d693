"""Rank statistics: the exact rank and its sampled, smoothed estimate (paper eq. 2, 15, 24).

Exact rank of positive ``i``: ``r = 1 + sum_{j != i} H(s_j - s_i)`` over the
other candidates that are negatives. Sampled estimate (paper eq. 15/24):
``r_hat = 1 + R * sum_{j in J} phi(scale * (s_j - s_i))`` with ``R = N / M``.

:func:`log_rank_estimate` is the building block the losses use, one positive per
row, in log space. :func:`rank_estimates` and :func:`exact_ranks` compute every
positive of a ``[B, C]`` batch at once through a ``[B, C, C]`` comparison: they
are diagnostics and test oracles, not for large ``C``. ``ops`` is an op namespace
(:mod:`tfcro.core.ops`).
"""

from __future__ import annotations

import math

from tfcro.constants import ABSENT_SCORE


def masked_logsumexp(ops, x, mask, axis: int = -1):
    """``log(sum(exp(x[mask])))`` along ``axis``; ``-inf`` with zero gradient when empty."""
    x = ops.where(mask, x, ops.NEG_INF)
    x_max = ops.max(x, axis=axis, keepdims=True)
    shift = ops.stop_gradient(ops.where(ops.isfinite(x_max), x_max, ops.zeros_like(x_max)))
    total = ops.sum(ops.exp(x - shift), axis=axis)
    positive = ops.greater(total, 0.0)
    log_total = ops.log(ops.where(positive, total, ops.ones_like(total)))
    return ops.where(positive, log_total + ops.squeeze(shift, axis), ops.NEG_INF)


def log_ratio(ops, num_negatives, num_items: float | None):
    """``log(R) = log(N / M)``; 0 when ``num_items`` is None (``N = M``)."""
    if num_items is None:
        return ops.zeros_like(num_negatives)
    return math.log(float(num_items)) - ops.log(ops.maximum(num_negatives, 1.0))


def catalog_size(ops, num_negatives, num_items: float | None):
    """``N``: ``num_items`` when given, else ``M`` (the rank is among the candidates)."""
    if num_items is None:
        return num_negatives
    return ops.full_like(num_negatives, float(num_items))


def log_rank_estimate(ops, gaps, negatives, kernel, log_ratio):
    """``log(r_hat) = log(1 + R * sum_j phi(gap_j))`` for one positive per row.

    Args:
      ops: the op namespace.
      gaps: ``[B, C]`` scaled score gaps ``scale * (s_j - s_pos)``.
      negatives: ``[B, C]`` bool, the columns that are negatives of the positive.
      kernel: the comparison kernel ``phi`` (:class:`tfcro.core.kernels.Kernel`).
      log_ratio: ``[B]`` ``log(N / M)``.

    Returns:
      ``[B]`` ``log(r_hat)``: ``log1p(R * sum phi)`` for bounded kernels, else
      ``softplus(log R + logsumexp(log phi))`` so that it never overflows.
    """
    if kernel.bounded:
        total = ops.sum(ops.where(negatives, kernel.value(gaps), 0.0), axis=-1)
        return ops.log1p(ops.exp(log_ratio) * total)
    log_sum = masked_logsumexp(ops, kernel.log_value(gaps), negatives)
    return ops.softplus(log_ratio + log_sum)


def _pairwise(ops, y_true, y_pred):
    scores = ops.to_float32(y_pred)
    present = ops.greater(scores, ABSENT_SCORE)
    labels = ops.greater(ops.to_float32(y_true), 0.5)
    positives = ops.logical_and(labels, present)
    negatives = ops.logical_and(ops.logical_not(labels), present)
    scores = ops.where(present, scores, 0.0)
    # diff[b, i, j] = s_j - s_i
    diff = scores[:, None, :] - scores[:, :, None]
    return positives, negatives, diff


def rank_estimates(ops, y_true, y_pred, kernel, scale: float = 1.0, num_items=None):
    """``[B, C]`` ``r_hat`` of every positive column (0 at non-positive columns)."""
    positives, negatives, diff = _pairwise(ops, y_true, y_pred)
    num_negatives = ops.sum(ops.float32(negatives), axis=1)
    ratio = ops.exp(log_ratio(ops, num_negatives, num_items))
    phi = ops.where(negatives[:, None, :], kernel.value(scale * diff), 0.0)
    ranks = 1.0 + ratio[:, None] * ops.sum(phi, axis=2)
    return ops.where(positives, ranks, 0.0)


def exact_ranks(ops, y_true, y_pred):
    """``[B, C]`` exact rank ``1 + #{negatives scoring strictly higher}`` of every positive."""
    positives, negatives, diff = _pairwise(ops, y_true, y_pred)
    above = ops.logical_and(negatives[:, None, :], ops.greater(diff, 0.0))
    ranks = 1.0 + ops.sum(ops.float32(above), axis=2)
    return ops.where(positives, ranks, 0.0)
