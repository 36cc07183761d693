"""The losses as pure TensorFlow functions: :mod:`tfcro.core.functional` with the op
namespace bound to :mod:`tfcro.core.tf_ops`.

Each ``*_positive_loss(gaps, negatives, num_negatives, ...)`` maps the scaled gaps of
one positive per row to a ``[B]`` loss and plugs into
:func:`tfcro.losses.pairwise.row_losses`; each ``*_loss(y_true, y_pred, ...)`` is the
full ``[B]`` row loss under that call contract. The Keras classes in
:mod:`tfcro.losses` are thin wrappers around the same math.
"""

from __future__ import annotations

import functools

from tfcro._compat import tf
from tfcro.constants import ABSENT_SCORE
from tfcro.core import functional as _core
from tfcro.core import tf_ops
from tfcro.core.engine import diagonal_positives
from tfcro.core.functional import PSL_SURROGATES
from tfcro.core.ops import bind
from tfcro.losses import kernels as kernels_lib
from tfcro.losses.pairwise import row_losses

cro_positive_loss = bind(tf_ops, _core.cro_positive_loss)
lambda_cro_positive_loss = bind(tf_ops, _core.lambda_cro_positive_loss)
softmax_positive_loss = bind(tf_ops, _core.softmax_positive_loss)
bpr_positive_loss = bind(tf_ops, _core.bpr_positive_loss)
triplet_positive_loss = bind(tf_ops, _core.triplet_positive_loss)
psl_positive_loss = bind(tf_ops, _core.psl_positive_loss)
topk_quantile_score = bind(tf_ops, _core.topk_quantile_score)
softmax_loss = bind(tf_ops, _core.softmax_loss)
slatk_loss = bind(tf_ops, _core.slatk_loss)
bsl_loss = bind(tf_ops, _core.bsl_loss)


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


def bpr_loss(y_true, y_pred, scale=1.0):
    """``[B]`` BPR row losses; see :class:`tfcro.BPRLoss`."""
    return row_losses(y_true, y_pred, bpr_positive_loss, scale)


def triplet_loss(y_true, y_pred, scale=1.0, margin=1.0):
    """``[B]`` triplet row losses; see :class:`tfcro.TripletLoss`."""
    fn = functools.partial(triplet_positive_loss, margin=float(margin))
    return row_losses(y_true, y_pred, fn, scale)


def softmax_diagonal_loss(y_pred, scale=1.0):
    """``[B]`` softmax cross-entropy of ``y_pred [B, C]`` with labels ``tf.eye(B, C)``.

    :func:`softmax_loss` for one-hot diagonal labels, through TensorFlow's fused
    sparse cross-entropy (the speed path of a TensorFlow training step): absent
    candidates (scores ``<= -1e30``) get no probability mass, and a row whose positive
    is absent, or that has none (``b >= C``), gets 0.
    """
    scores = tf.cast(tf.convert_to_tensor(y_pred), tf.float32)
    if scores.shape.rank is not None and scores.shape.rank != 2:
        raise ValueError(
            "`y_pred` should be a [batch, candidates] score matrix. "
            f"Received: y_pred.shape={scores.shape}"
        )
    present = scores > ABSENT_SCORE
    logits = tf.where(present, float(scale) * scores, ABSENT_SCORE)
    # row b's label is column b; rows past the last column get a stand-in label and 0
    labels, has_positive = diagonal_positives(tf_ops, present)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    return tf.where(has_positive, losses, 0.0)


__all__ = [
    "PSL_SURROGATES",
    "cro_positive_loss",
    "lambda_cro_positive_loss",
    "softmax_positive_loss",
    "bpr_positive_loss",
    "triplet_positive_loss",
    "psl_positive_loss",
    "topk_quantile_score",
    "cro_loss",
    "lambda_cro_loss",
    "softmax_loss",
    "softmax_diagonal_loss",
    "bpr_loss",
    "triplet_loss",
    "slatk_loss",
    "bsl_loss",
]
