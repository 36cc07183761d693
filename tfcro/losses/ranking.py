"""Rank statistics: the exact rank and its sampled, smoothed estimate (paper eq. 2, 15, 24).

Exact rank of positive ``i``: ``r = 1 + sum_{j != i} H(s_j - s_i)`` over the
other candidates that are negatives. Sampled estimate (paper eq. 15/24):
``r_hat = 1 + R * sum_{j in J} phi(scale * (s_j - s_i))`` with ``R = N / M``.

:func:`log_rank_estimate` is the building block the losses use, one positive per
row, in log space. :func:`rank_estimates` and :func:`exact_ranks` compute every
positive of a ``[B, C]`` batch at once through a ``[B, C, C]`` comparison: they
are diagnostics and test oracles, not for large ``C``.
"""

from __future__ import annotations

from tfcro._compat import tf
from tfcro.constants import ABSENT_SCORE
from tfcro.losses import kernels as kernels_lib

_NEG_INF = float("-inf")


def masked_logsumexp(x: tf.Tensor, mask: tf.Tensor, axis: int = -1) -> tf.Tensor:
    """``log(sum(exp(x[mask])))`` along ``axis``; ``-inf`` with zero gradient when empty."""
    x = tf.where(mask, x, _NEG_INF)
    x_max = tf.reduce_max(x, axis=axis, keepdims=True)
    shift = tf.stop_gradient(tf.where(tf.math.is_finite(x_max), x_max, tf.zeros_like(x_max)))
    total = tf.reduce_sum(tf.exp(x - shift), axis=axis)
    positive = total > 0.0
    log_total = tf.math.log(tf.where(positive, total, tf.ones_like(total)))
    return tf.where(positive, log_total + tf.squeeze(shift, axis), _NEG_INF)


def log_ratio(num_negatives: tf.Tensor, num_items: float | None) -> tf.Tensor:
    """``log(R) = log(N / M)``; 0 when ``num_items`` is None (``N = M``)."""
    if num_items is None:
        return tf.zeros_like(num_negatives)
    return tf.math.log(float(num_items)) - tf.math.log(tf.maximum(num_negatives, 1.0))


def catalog_size(num_negatives: tf.Tensor, num_items: float | None) -> tf.Tensor:
    """``N``: ``num_items`` when given, else ``M`` (the rank is among the candidates)."""
    if num_items is None:
        return num_negatives
    return tf.fill(tf.shape(num_negatives), float(num_items))


def log_rank_estimate(
    gaps: tf.Tensor,
    negatives: tf.Tensor,
    kernel: kernels_lib.Kernel,
    log_ratio: tf.Tensor,
) -> tf.Tensor:
    """``log(r_hat) = log(1 + R * sum_j phi(gap_j))`` for one positive per row.

    Args:
      gaps: ``[B, C]`` scaled score gaps ``scale * (s_j - s_pos)``.
      negatives: ``[B, C]`` bool, the columns that are negatives of the positive.
      kernel: the comparison kernel ``phi``.
      log_ratio: ``[B]`` ``log(N / M)``.

    Returns:
      ``[B]`` ``log(r_hat)``: ``log1p(R * sum phi)`` for bounded kernels, else
      ``softplus(log R + logsumexp(log phi))`` so that it never overflows.
    """
    if kernel.bounded:
        total = tf.reduce_sum(tf.where(negatives, kernel.value(gaps), 0.0), axis=-1)
        return tf.math.log1p(tf.exp(log_ratio) * total)
    log_sum = masked_logsumexp(kernel.log_value(gaps), negatives)
    return tf.math.softplus(log_ratio + log_sum)


def _pairwise(y_true, y_pred):
    scores = tf.cast(y_pred, tf.float32)
    present = scores > ABSENT_SCORE
    labels = tf.cast(y_true, tf.float32) > 0.5
    positives = labels & present
    negatives = tf.logical_not(labels) & present
    scores = tf.where(present, scores, 0.0)
    # diff[b, i, j] = s_j - s_i
    diff = scores[:, None, :] - scores[:, :, None]
    return positives, negatives, diff


def rank_estimates(
    y_true,
    y_pred,
    kernel: str | kernels_lib.Kernel = "sigmoid",
    scale: float = 1.0,
    num_items: float | None = None,
    margin: float = 1.0,
) -> tf.Tensor:
    """``[B, C]`` ``r_hat`` of every positive column (0 at non-positive columns)."""
    kernel = kernels_lib.get(kernel, margin=margin)
    positives, negatives, diff = _pairwise(y_true, y_pred)
    num_negatives = tf.reduce_sum(tf.cast(negatives, tf.float32), axis=1)
    ratio = tf.exp(log_ratio(num_negatives, num_items))
    phi = tf.where(negatives[:, None, :], kernel.value(scale * diff), 0.0)
    ranks = 1.0 + ratio[:, None] * tf.reduce_sum(phi, axis=2)
    return tf.where(positives, ranks, 0.0)


def exact_ranks(y_true, y_pred) -> tf.Tensor:
    """``[B, C]`` exact rank ``1 + #{negatives scoring strictly higher}`` of every positive."""
    positives, negatives, diff = _pairwise(y_true, y_pred)
    above = tf.logical_and(negatives[:, None, :], diff > 0.0)
    ranks = 1.0 + tf.reduce_sum(tf.cast(above, tf.float32), axis=2)
    return tf.where(positives, ranks, 0.0)
