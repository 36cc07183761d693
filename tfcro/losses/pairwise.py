"""The per-positive engine with TensorFlow: :func:`tfcro.core.engine.row_losses` with the
op namespace :mod:`tfcro.core.tf_ops` and the ``tf.while_loop`` over further positives.

Call contract: ``y_true`` is a ``[B, C]`` 0/1 matrix, ``y_pred`` the ``[B, C]`` scores;
a row's loss is the mean over its positives of a per-positive loss of the scaled gaps
``scale * (s_j - s_i)``; scores at or below ``-1e30`` are absent. See
:mod:`tfcro.core.engine`.
"""

from __future__ import annotations

from tfcro._compat import tf
from tfcro.core import engine, tf_ops
from tfcro.core.engine import PositiveLoss, check_shapes


def row_losses(
    y_true: tf.Tensor, y_pred: tf.Tensor, positive_loss: PositiveLoss, scale: float = 1.0
) -> tf.Tensor:
    """``[B]`` float32 row losses: the mean of ``positive_loss(gaps, negatives,
    num_negatives)`` over each row's positives (rows without a positive: 0).
    """
    return engine.row_losses(tf_ops, y_true, y_pred, positive_loss, scale, engine.tensorflow_loop)


__all__ = ["PositiveLoss", "check_shapes", "row_losses"]
