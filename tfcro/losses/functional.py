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
