"""The losses as pure tensor functions over an op namespace (:mod:`tfcro.core.ops`).

Each ``*_positive_loss(ops, gaps, negatives, num_negatives, ...)`` maps the scaled gaps
of one positive per row to a ``[B]`` loss and plugs into
:func:`tfcro.core.engine.row_losses`; softmax, SL@K and BSL have row functions that do
all of a row's positives in one pass (they share the row's negatives). The Keras
classes of :mod:`tfcro.losses` (Keras 2) and :mod:`tfcro.keras3` bind ``ops`` and
call these.
"""

from __future__ import annotations

import math

from tfcro.core import weighting
from tfcro.core.engine import diagonal_masks, row_masks
from tfcro.core.ranking import catalog_size, log_rank_estimate, log_ratio, masked_logsumexp


def cro_positive_loss(ops, gaps, negatives, num_negatives, *, kernel, alpha, num_items):
    """``F_alpha(r_hat)`` with ``r_hat = 1 + R * sum_j phi(gap_j)`` (paper eq. 16)."""
    ratio = log_ratio(ops, num_negatives, num_items)
    log_rank = log_rank_estimate(ops, gaps, negatives, kernel, ratio)
    return weighting.transform(ops, log_rank, alpha, catalog_size(ops, num_negatives, num_items))


def lambda_cro_positive_loss(
    ops, gaps, negatives, num_negatives, *, weight_kernel, kernel, alpha, num_items
):
    """``stop_gradient(w(r_hat_1)) * r_hat_2`` (paper eq. 20-23).

    Its gradient with respect to gap ``j`` is ``w(r_hat_1) * R * phi_2'(gap_j)``.
    """
    ratio = log_ratio(ops, num_negatives, num_items)
    log_rank_1 = log_rank_estimate(ops, gaps, negatives, weight_kernel, ratio)
    log_rank_2 = log_rank_estimate(ops, gaps, negatives, kernel, ratio)
    size = catalog_size(ops, num_negatives, num_items)
    log_w = weighting.log_weight(ops, log_rank_1, alpha, size)
    return ops.stop_gradient(ops.exp(log_w)) * ops.exp(log_rank_2)


def softmax_positive_loss(ops, gaps, negatives, num_negatives):
    """``log(1 + sum_j exp(gap_j))``: softmax cross-entropy of the positive vs. its negatives."""
    del num_negatives
    return ops.softplus(masked_logsumexp(ops, gaps, negatives))


def _mean_over_negatives(ops, values, negatives, num_negatives):
    total = ops.sum(ops.where(negatives, values, 0.0), axis=1)
    return total / ops.maximum(num_negatives, 1.0)


def bpr_positive_loss(ops, gaps, negatives, num_negatives):
    """``mean_j softplus(gap_j) = mean_j -log sigmoid(s_i - s_j)`` (Rendle et al., 2009)."""
    return _mean_over_negatives(ops, ops.softplus(gaps), negatives, num_negatives)


def triplet_positive_loss(ops, gaps, negatives, num_negatives, *, margin):
    """``mean_j max(0, gap_j + margin)`` (Schroff et al., 2015)."""
    return _mean_over_negatives(ops, ops.relu(gaps + margin), negatives, num_negatives)


def _mean_over_positives(ops, per_positive, positives):
    total = ops.sum(ops.where(positives, per_positive, 0.0), axis=1)
    count = ops.sum(ops.float32(positives), axis=1)
    return total / ops.maximum(count, 1.0)


def softmax_loss(ops, y_true, y_pred, scale=1.0):
    """``[B]`` softmax cross-entropy row losses; see :class:`tfcro.SoftmaxLoss`.

    Every positive of a row has the same negatives, so all positives are done in
    one pass: ``loss_i = softplus(logsumexp_{j in J}(z_j) - z_i)``, ``z = scale * s``
    (what :func:`softmax_positive_loss` gives per positive through the engine,
    at ~half the work: no per-positive gaps).
    """
    scores, _, positives, negatives = row_masks(ops, y_true, y_pred)
    logits = float(scale) * scores
    log_sum = masked_logsumexp(ops, logits, negatives)[:, None]
    return _mean_over_positives(ops, ops.softplus(log_sum - logits), positives)


def softmax_diagonal_loss(ops, y_pred, scale=1.0):
    """:func:`softmax_loss` of ``y_pred`` with labels ``eye(B, C)``."""
    scores, _, negatives, positive_scores, has_positive = diagonal_masks(ops, y_pred)
    log_sum = masked_logsumexp(ops, float(scale) * scores, negatives)
    return ops.where(has_positive, ops.softplus(log_sum - float(scale) * positive_scores), 0.0)


# ----------------------------------------------------------------------------- peer losses
# PSL, SL@K and BSL. Their temperatures are in the units of the *raw* scores s (e.g.
# cosines); ``outer = scale * input_scale`` is ``1 / tau`` of the softmax they modify,
# the factor that turns raw score differences into the gaps the engine passes.

#: PSL's surrogates of ``exp(d)``: ``sigma(d)`` with ``exp(sigma(d)) = 1 + f(d)``.
PSL_SURROGATES = ("tanh", "atan", "relu")


def psl_sigma(ops, d, surrogate: str):
    """``log(1 + tanh d)``, ``log(1 + atan d)`` or ``log(relu(1 + d))`` (-inf below -1)."""
    if surrogate == "tanh":  # 1 + tanh d = 2 / (1 + exp(-2d)): no underflow to log(0)
        return math.log(2.0) - ops.softplus(-2.0 * d)
    inner = 1.0 + ops.arctan(d) if surrogate == "atan" else ops.relu(1.0 + d)
    tiny = 1e-30
    # log(0) = -inf is the surrogate's value (a pair that adds nothing), with no NaN gradient
    return ops.where(ops.greater(inner, tiny), ops.log(ops.maximum(inner, tiny)), ops.NEG_INF)


def psl_positive_loss(ops, gaps, negatives, num_negatives, *, surrogate, tau, outer):
    """``logsumexp_j outer * sigma((s_j - s_i) / tau)`` with ``gaps = outer * (s_j - s_i)``
    (raw scores ``s``; the engine's ``scale`` times the inputs' ``input_scale`` is ``outer``).
    """
    del num_negatives
    d = gaps / (float(outer) * float(tau))
    loss = masked_logsumexp(ops, float(outer) * psl_sigma(ops, d, surrogate), negatives)
    # no negative, or every pair outside the surrogate's domain: nothing to learn, 0
    return ops.where(ops.isfinite(loss), loss, 0.0)


def topk_quantile_score(ops, logits, present, top_k: int, num_items: int | None):
    """``[B]`` estimate of the score of each row's ``top_k``-th best catalog item
    (SL@K's ``beta``), without gradient.

    The row's present candidates (its positives and negatives, ``C_b`` of them)
    are a sample of the catalog: with ``num_items=None`` the estimate is their
    ``top_k``-th largest score (the reference's choice: the user's positives and
    its sampled negatives); with ``num_items = N`` it is their ``k``-th largest,
    ``k = ceil(top_k * C_b / N)`` clipped to ``[1, min(top_k, C_b)]``: the same
    quantile ``1 - top_k / N`` of the sample, which a uniform sample estimates
    without bias (shared in-batch negatives, drawn by popularity, make it high).
    """
    values = ops.stop_gradient(ops.where(present, logits, ops.NEG_INF))
    count = ops.sum(ops.float32(present), axis=1)
    columns = ops.shape(values)[1]
    width = min(int(top_k), columns) if isinstance(columns, int) else ops.minimum(top_k, columns)
    best = ops.top_k_values(values, width)  # [B, min(K, C)]
    if num_items is None:
        k = ops.full_like(count, float(top_k))
    else:
        k = ops.ceil(float(top_k) * count / float(num_items))
    k = ops.maximum(ops.minimum(k, ops.minimum(ops.float32(width), ops.maximum(count, 1.0))), 1.0)
    picked = ops.take_along_axis(best, ops.int32(k)[:, None] - 1, axis=1)[:, 0]
    return ops.where(ops.greater(count, 0.0), picked, 0.0)


def _slatk_terms(
    ops, logits, positive_logits, present, negatives, top_k, weight_tau, outer, num_items
):
    """SL@K's ``sigmoid((z_i - beta) / (outer * weight_tau)) * (logsumexp_J z - z_i)`` for
    ``positive_logits`` ``[B, C]`` (every column) or ``[B, 1]`` (one positive per row).
    """
    beta = topk_quantile_score(ops, logits, present, int(top_k), num_items)
    weight = ops.sigmoid((positive_logits - beta[:, None]) / (float(outer) * float(weight_tau)))
    softmax_term = masked_logsumexp(ops, logits, negatives)[:, None] - positive_logits
    # no negative: the softmax term is -inf; such a positive contributes 0 (masked before
    # the product, so that no 0 * inf reaches the gradient)
    finite = ops.isfinite(softmax_term)
    return ops.where(finite, weight * ops.where(finite, softmax_term, 0.0), 0.0)


def slatk_loss(
    ops, y_true, y_pred, top_k=20, weight_tau=1.0, scale=1.0, input_scale=1.0, num_items=None
):
    """``[B]`` SL@K row losses; see :class:`tfcro.SLatKLoss`.

    Per positive ``i``: ``sigmoid((z_i - beta) / (outer * weight_tau)) * logsumexp_j
    (z_j - z_i)`` with ``z = scale * y_pred`` (``y_pred`` = ``input_scale`` x raw
    scores, ``outer = scale * input_scale``), ``beta`` from :func:`topk_quantile_score`
    (no gradient); averaged over a row's positives (all share the row's negatives,
    so they are done in one pass).
    """
    scores, present, positives, negatives = row_masks(ops, y_true, y_pred)
    logits = float(scale) * scores
    outer = float(scale) * float(input_scale)
    per_positive = _slatk_terms(
        ops, logits, logits, present, negatives, top_k, weight_tau, outer, num_items
    )
    return _mean_over_positives(ops, per_positive, positives)


def slatk_diagonal_loss(
    ops, y_pred, top_k=20, weight_tau=1.0, scale=1.0, input_scale=1.0, num_items=None
):
    """:func:`slatk_loss` of ``y_pred`` with labels ``eye(B, C)``: the weight and the
    softmax term of the one positive per row only (``[B]``, not ``[B, C]``).
    """
    scores, present, negatives, positive_scores, has_positive = diagonal_masks(ops, y_pred)
    logits = float(scale) * scores
    outer = float(scale) * float(input_scale)
    positive_logits = float(scale) * positive_scores[:, None]
    per_positive = _slatk_terms(
        ops, logits, positive_logits, present, negatives, top_k, weight_tau, outer, num_items
    )
    return ops.where(has_positive, per_positive[:, 0], 0.0)


def bsl_loss(ops, y_true, y_pred, ratio=1.0, scale=1.0):
    """``[B]`` BSL row losses; see :class:`tfcro.BSLLoss`.

    ``-log mean_{i in P} exp(z_i) + ratio * logsumexp_{j in J} (z_j / ratio)`` with
    ``z = scale * s``: the positives' log-mean-exp (the positive-side robustness) and
    the negatives' softmax at temperature ``ratio`` times the positive's.
    """
    scores, _, positives, negatives = row_masks(ops, y_true, y_pred)
    logits = float(scale) * scores
    count = ops.sum(ops.float32(positives), axis=1)
    positive_term = masked_logsumexp(ops, logits, positives) - ops.log(ops.maximum(count, 1.0))
    negative_term = float(ratio) * masked_logsumexp(ops, logits / float(ratio), negatives)
    valid = ops.logical_and(ops.greater(count, 0.0), ops.isfinite(negative_term))
    return ops.where(valid, negative_term - positive_term, 0.0)


def bsl_diagonal_loss(ops, y_pred, ratio=1.0, scale=1.0):
    """:func:`bsl_loss` of ``y_pred`` with labels ``eye(B, C)`` (the positive side of one
    positive is its own logit).
    """
    scores, _, negatives, positive_scores, has_positive = diagonal_masks(ops, y_pred)
    logits = float(scale) * scores
    negative_term = float(ratio) * masked_logsumexp(ops, logits / float(ratio), negatives)
    valid = ops.logical_and(has_positive, ops.isfinite(negative_term))
    return ops.where(valid, negative_term - float(scale) * positive_scores, 0.0)
