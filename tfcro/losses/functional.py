"""Per-positive losses as pure tensor functions.

Each ``*_positive_loss`` maps the scaled gaps of one positive per row to a
``[B]`` loss and plugs into :func:`tfcro.losses.pairwise.row_losses`; each
``*_loss(y_true, y_pred, ...)`` is the full ``[B]`` row loss under the call
contract of :mod:`tfcro.losses.pairwise`. The Keras classes in :mod:`tfcro.losses`
are thin wrappers around these.
"""

from __future__ import annotations

import functools

from tfcro._compat import tf
from tfcro.constants import ABSENT_SCORE
from tfcro.losses import kernels as kernels_lib
from tfcro.losses import weighting
from tfcro.losses.pairwise import check_shapes, row_losses
from tfcro.losses.ranking import catalog_size, log_rank_estimate, log_ratio, masked_logsumexp


def cro_positive_loss(gaps, negatives, num_negatives, *, kernel, alpha, num_items):
    """``F_alpha(r_hat)`` with ``r_hat = 1 + R * sum_j phi(gap_j)`` (paper eq. 16)."""
    log_rank = log_rank_estimate(gaps, negatives, kernel, log_ratio(num_negatives, num_items))
    return weighting.transform(log_rank, alpha, catalog_size(num_negatives, num_items))


def lambda_cro_positive_loss(
    gaps, negatives, num_negatives, *, weight_kernel, kernel, alpha, num_items
):
    """``stop_gradient(w(r_hat_1)) * r_hat_2`` (paper eq. 20-23).

    Its gradient with respect to gap ``j`` is ``w(r_hat_1) * R * phi_2'(gap_j)``.
    """
    ratio = log_ratio(num_negatives, num_items)
    log_rank_1 = log_rank_estimate(gaps, negatives, weight_kernel, ratio)
    log_rank_2 = log_rank_estimate(gaps, negatives, kernel, ratio)
    log_w = weighting.log_weight(log_rank_1, alpha, catalog_size(num_negatives, num_items))
    return tf.stop_gradient(tf.exp(log_w)) * tf.exp(log_rank_2)


def softmax_positive_loss(gaps, negatives, num_negatives):
    """``log(1 + sum_j exp(gap_j))``: softmax cross-entropy of the positive vs. its negatives."""
    return tf.math.softplus(masked_logsumexp(gaps, negatives))


def _mean_over_negatives(values, negatives, num_negatives):
    total = tf.reduce_sum(tf.where(negatives, values, 0.0), axis=1)
    return total / tf.maximum(num_negatives, 1.0)


def bpr_positive_loss(gaps, negatives, num_negatives):
    """``mean_j softplus(gap_j) = mean_j -log sigmoid(s_i - s_j)`` (Rendle et al., 2009)."""
    return _mean_over_negatives(tf.math.softplus(gaps), negatives, num_negatives)


def triplet_positive_loss(gaps, negatives, num_negatives, *, margin):
    """``mean_j max(0, gap_j + margin)`` (Schroff et al., 2015)."""
    return _mean_over_negatives(tf.nn.relu(gaps + margin), negatives, num_negatives)


def cro_loss(y_true, y_pred, kernel="softplus", alpha=1.0, scale=1.0, num_items=None, margin=1.0):
    """``[B]`` CROLoss row losses; see :class:`tfcro.CROLoss`."""
    fn = functools.partial(
        cro_positive_loss,
        kernel=kernels_lib.get(kernel, margin=margin, allowed=kernels_lib.GRADIENT_KERNELS),
        alpha=alpha,
        num_items=num_items,
    )
    return row_losses(y_true, y_pred, fn, scale)


def lambda_cro_loss(
    y_true,
    y_pred,
    weight_kernel="sigmoid",
    kernel="softplus",
    alpha=1.0,
    scale=1.0,
    num_items=None,
    margin=1.0,
):
    """``[B]`` CROLoss-lambda row losses; see :class:`tfcro.LambdaCROLoss`."""
    fn = functools.partial(
        lambda_cro_positive_loss,
        weight_kernel=kernels_lib.get(weight_kernel, margin=margin, parameter="weight_kernel"),
        kernel=kernels_lib.get(kernel, margin=margin, allowed=kernels_lib.GRADIENT_KERNELS),
        alpha=alpha,
        num_items=num_items,
    )
    return row_losses(y_true, y_pred, fn, scale)


def softmax_loss(y_true, y_pred, scale=1.0):
    """``[B]`` softmax cross-entropy row losses; see :class:`tfcro.SoftmaxLoss`.

    Every positive of a row has the same negatives, so all positives are done in
    one pass: ``loss_i = softplus(logsumexp_{j in J}(z_j) - z_i)``, ``z = scale * s``
    (what :func:`softmax_positive_loss` gives per positive through the engine,
    at ~half the work: no per-positive gaps).
    """
    y_pred = tf.convert_to_tensor(y_pred)
    y_true = tf.convert_to_tensor(y_true)
    check_shapes(y_true, y_pred)
    scores = tf.cast(y_pred, tf.float32)
    present = scores > ABSENT_SCORE
    logits = float(scale) * tf.where(present, scores, 0.0)
    labels = tf.cast(y_true, tf.float32) > 0.5
    positives = tf.logical_and(labels, present)
    negatives = tf.logical_and(tf.logical_not(labels), present)
    per_positive = tf.math.softplus(masked_logsumexp(logits, negatives)[:, None] - logits)
    total = tf.reduce_sum(tf.where(positives, per_positive, 0.0), axis=1)
    count = tf.reduce_sum(tf.cast(positives, tf.float32), axis=1)
    return total / tf.maximum(count, 1.0)


def softmax_diagonal_loss(y_pred, scale=1.0):
    """``[B]`` softmax cross-entropy of ``y_pred [B, C]`` (``C >= B``) with labels ``tf.eye(B, C)``.

    :func:`softmax_loss` for one-hot diagonal labels, through TensorFlow's fused
    sparse cross-entropy: absent candidates (scores ``<= -1e30``) get no
    probability mass, and a row whose positive is absent gets 0.
    """
    scores = tf.cast(tf.convert_to_tensor(y_pred), tf.float32)
    if scores.shape.rank is not None and scores.shape.rank != 2:
        raise ValueError(
            "`y_pred` should be a [batch, candidates] score matrix. "
            f"Received: y_pred.shape={scores.shape}"
        )
    present = scores > ABSENT_SCORE
    logits = tf.where(present, float(scale) * scores, ABSENT_SCORE)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.range(tf.shape(scores)[0]), logits)
    return tf.where(tf.linalg.diag_part(present), losses, 0.0)


def bpr_loss(y_true, y_pred, scale=1.0):
    """``[B]`` BPR row losses; see :class:`tfcro.BPRLoss`."""
    return row_losses(y_true, y_pred, bpr_positive_loss, scale)


def triplet_loss(y_true, y_pred, scale=1.0, margin=1.0):
    """``[B]`` triplet row losses; see :class:`tfcro.TripletLoss`."""
    fn = functools.partial(triplet_positive_loss, margin=float(margin))
    return row_losses(y_true, y_pred, fn, scale)


# ----------------------------------------------------------------------------- peer losses
# PSL, SL@K and BSL. Their temperatures are in the units of the *raw* scores s (e.g.
# cosines); ``outer = scale * input_scale`` is ``1 / tau`` of the softmax they modify,
# the factor that turns raw score differences into the gaps the engine passes.

_NEG_INF_F32 = float("-inf")

#: PSL's surrogates of ``exp(d)``: ``sigma(d)`` with ``exp(sigma(d)) = 1 + f(d)``.
PSL_SURROGATES = ("tanh", "atan", "relu")


def _psl_sigma(d: tf.Tensor, surrogate: str) -> tf.Tensor:
    """``log(1 + tanh d)``, ``log(1 + atan d)`` or ``log(relu(1 + d))`` (-inf below -1)."""
    if surrogate == "tanh":  # 1 + tanh d = 2 / (1 + exp(-2d)): no underflow to log(0)
        return tf.math.log(2.0) - tf.math.softplus(-2.0 * d)
    if surrogate == "atan":
        inner = 1.0 + tf.math.atan(d)
    else:
        inner = tf.nn.relu(1.0 + d)
    tiny = tf.constant(1e-30, d.dtype)
    # log(0) = -inf is the surrogate's value (a pair that adds nothing), with no NaN gradient
    return tf.where(inner > tiny, tf.math.log(tf.maximum(inner, tiny)), _NEG_INF_F32)


def psl_positive_loss(gaps, negatives, num_negatives, *, surrogate, tau, outer):
    """``logsumexp_j outer * sigma((s_j - s_i) / tau)`` with ``gaps = outer * (s_j - s_i)``
    (raw scores ``s``; the engine's ``scale`` times the inputs' ``input_scale`` is ``outer``).
    """
    del num_negatives
    d = gaps / (float(outer) * float(tau))
    loss = masked_logsumexp(float(outer) * _psl_sigma(d, surrogate), negatives)
    # no negative, or every pair outside the surrogate's domain: nothing to learn, 0
    return tf.where(tf.math.is_finite(loss), loss, 0.0)


def _row_masks(y_true, y_pred):
    y_pred = tf.convert_to_tensor(y_pred)
    y_true = tf.convert_to_tensor(y_true)
    check_shapes(y_true, y_pred)
    scores = tf.cast(y_pred, tf.float32)
    present = scores > ABSENT_SCORE
    labels = tf.cast(y_true, tf.float32) > 0.5
    positives = tf.logical_and(labels, present)
    negatives = tf.logical_and(tf.logical_not(labels), present)
    return tf.where(present, scores, 0.0), present, positives, negatives


def topk_quantile_score(logits, present, top_k: int, num_items: int | None):
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
    values = tf.stop_gradient(tf.where(present, logits, _NEG_INF_F32))
    count = tf.reduce_sum(tf.cast(present, tf.float32), axis=1)
    width = tf.minimum(top_k, tf.shape(values)[1])
    best = tf.math.top_k(values, k=width, sorted=True).values  # [B, min(K, C)]
    if num_items is None:
        k = tf.fill(tf.shape(count), float(top_k))
    else:
        k = tf.math.ceil(float(top_k) * count / float(num_items))
    k = tf.clip_by_value(k, 1.0, tf.minimum(tf.cast(width, tf.float32), tf.maximum(count, 1.0)))
    picked = tf.gather(best, tf.cast(k, tf.int32) - 1, batch_dims=1)
    return tf.where(count > 0, picked, 0.0)


def slatk_loss(
    y_true, y_pred, top_k=20, weight_tau=1.0, scale=1.0, input_scale=1.0, num_items=None
):
    """``[B]`` SL@K row losses; see :class:`tfcro.SLatKLoss`.

    Per positive ``i``: ``sigmoid((z_i - beta) / (outer * weight_tau)) * logsumexp_j
    (z_j - z_i)`` with ``z = scale * y_pred`` (``y_pred`` = ``input_scale`` x raw
    scores, ``outer = scale * input_scale``), ``beta`` from :func:`topk_quantile_score`
    (no gradient); averaged over a row's positives (all share the row's negatives,
    so they are done in one pass).
    """
    scores, present, positives, negatives = _row_masks(y_true, y_pred)
    logits = float(scale) * scores
    outer = float(scale) * float(input_scale)
    beta = topk_quantile_score(logits, present, int(top_k), num_items)
    weight = tf.math.sigmoid((logits - beta[:, None]) / (outer * float(weight_tau)))
    softmax_term = masked_logsumexp(logits, negatives)[:, None] - logits
    # no negative: the softmax term is -inf; such a positive contributes 0 (masked before
    # the product, so that no 0 * inf reaches the gradient)
    finite = tf.math.is_finite(softmax_term)
    per_positive = tf.where(finite, weight * tf.where(finite, softmax_term, 0.0), 0.0)
    total = tf.reduce_sum(tf.where(positives, per_positive, 0.0), axis=1)
    count = tf.reduce_sum(tf.cast(positives, tf.float32), axis=1)
    return total / tf.maximum(count, 1.0)


def bsl_loss(y_true, y_pred, ratio=1.0, scale=1.0):
    """``[B]`` BSL row losses; see :class:`tfcro.BSLLoss`.

    ``-log mean_{i in P} exp(z_i) + ratio * logsumexp_{j in J} (z_j / ratio)`` with
    ``z = scale * s``: the positives' log-mean-exp (the positive-side robustness) and
    the negatives' softmax at temperature ``ratio`` times the positive's.
    """
    scores, _, positives, negatives = _row_masks(y_true, y_pred)
    logits = float(scale) * scores
    count = tf.reduce_sum(tf.cast(positives, tf.float32), axis=1)
    positive_term = masked_logsumexp(logits, positives) - tf.math.log(tf.maximum(count, 1.0))
    negative_term = float(ratio) * masked_logsumexp(logits / float(ratio), negatives)
    loss = negative_term - positive_term
    valid = tf.logical_and(count > 0, tf.math.is_finite(negative_term))
    return tf.where(valid, loss, 0.0)
