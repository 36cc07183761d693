"""The per-positive engine shared by every tfcro loss.

Call contract (the one ``tfrs.tasks.Retrieval`` uses): ``y_true`` is a
``[B, C]`` 0/1 matrix, ``y_pred`` the ``[B, C]`` scores. For each positive
``i`` of row ``b`` the negatives are the row's columns with ``y_true == 0``; a
row's loss is the mean over its positives of a per-positive loss of the scaled
gaps ``scale * (s_j - s_i)``. Scores at or below ``-1e30`` (TFRS's masked
candidates and removed accidental hits) are absent: neither positive nor
negative, and not counted in ``M``.

Memory is ``O(B * C)``, never ``[B, C, C]``. The first positive of every row
(the only one for one-hot labels and TFRS's ``tf.eye``) is one vectorised pass
differentiated as usual. The further positives of multi-hot rows are visited in
a ``tf.while_loop`` over "the k-th positive of each row" (zero iterations for
one-hot labels); the gradient of each iteration is taken inside the loop and
attached with a stop-gradient identity, so the backward pass never
differentiates through the loop. That keeps it valid under ``jit_compile=True``
(XLA needs no loop accumulators) and under ``tf.distribute``. Second derivatives
are not supported.
"""

from __future__ import annotations

from collections.abc import Callable

from tfcro._compat import tf
from tfcro.constants import ABSENT_SCORE

#: ``positive_loss(gaps [B, C], negatives [B, C] bool, num_negatives [B]) -> [B]``
PositiveLoss = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]


def check_shapes(y_true: tf.Tensor, y_pred: tf.Tensor) -> None:
    """Raises ValueError when the static shapes are not both ``[B, C]`` and equal."""
    if y_pred.shape.rank is not None and y_pred.shape.rank != 2:
        raise ValueError(
            "`y_pred` should be a [batch, candidates] score matrix. "
            f"Received: y_pred.shape={y_pred.shape}"
        )
    if y_true.shape.rank is not None and y_true.shape.rank != 2:
        raise ValueError(
            "`y_true` should be a [batch, candidates] 0/1 matrix with the shape of `y_pred` "
            "(one-hot encode item indices with tf.one_hot). "
            f"Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
        )
    if not y_true.shape.is_compatible_with(y_pred.shape):
        raise ValueError(
            "`y_true` and `y_pred` should have the same [batch, candidates] shape. "
            f"Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
        )


def row_losses(
    y_true: tf.Tensor,
    y_pred: tf.Tensor,
    positive_loss: PositiveLoss,
    scale: float = 1.0,
) -> tf.Tensor:
    """``[B]`` float32 row losses: the mean of ``positive_loss`` over each row's positives.

    Rows without a positive get 0. Inputs of any float dtype are computed in
    float32; gradients flow back to ``y_pred`` in its own dtype.
    """
    y_pred = tf.convert_to_tensor(y_pred)
    y_true = tf.convert_to_tensor(y_true)
    check_shapes(y_true, y_pred)

    scores = tf.cast(y_pred, tf.float32)
    present = scores > ABSENT_SCORE
    scores = tf.where(present, scores, 0.0)
    labels = tf.cast(y_true, tf.float32) > 0.5
    positives = tf.logical_and(labels, present)
    negatives = tf.logical_and(tf.logical_not(labels), present)
    num_negatives = tf.reduce_sum(tf.cast(negatives, tf.float32), axis=1)
    positive_counts = tf.reduce_sum(tf.cast(positives, tf.int32), axis=1)
    max_positives = tf.reduce_max(tf.concat([positive_counts, [0]], axis=0))
    # The first positive of every row (the only one for one-hot and tf.eye labels) in one
    # vectorised pass, differentiated as usual ...
    first_index = tf.argmax(tf.cast(positives, tf.int32), axis=1, output_type=tf.int32)
    first = tf.logical_and(
        positives, tf.one_hot(first_index, tf.shape(scores)[1], on_value=True, off_value=False)
    )
    s_first = tf.reduce_sum(tf.where(first, scores, 0.0), axis=1, keepdims=True)
    loss = positive_loss(float(scale) * (scores - s_first), negatives, num_negatives)
    loss = tf.where(positive_counts > 0, loss, 0.0)
    # ... the others of multi-hot rows in a loop, skipped entirely for one-hot labels. The
    # loop returns values and gradients without a gradient path (no cond/loop gradients).
    frozen = tf.stop_gradient(scores)
    other_loss, other_grad = tf.cond(
        max_positives > 1,
        lambda: _other_positives(
            frozen, positives, negatives, num_negatives, max_positives, positive_loss, scale
        ),
        lambda: (tf.zeros_like(num_negatives), tf.zeros_like(scores)),
    )
    other_grad = tf.where(present, other_grad, 0.0)
    # value `other_loss`, gradient `other_grad` with respect to the scores
    loss += other_loss + tf.reduce_sum(other_grad * (scores - frozen), axis=1)
    return loss / tf.cast(tf.maximum(positive_counts, 1), tf.float32)


def _other_positives(
    scores, positives, negatives, num_negatives, max_positives, positive_loss, scale
):
    """``[B]`` summed loss of each row's 2nd, 3rd, ... positives and its ``[B, C]`` gradient."""
    # ordinal[b, c] == k + 1 exactly at the k-th positive of row b.
    ordinal = tf.cumsum(tf.cast(positives, tf.int32), axis=1)

    def body(k, loss_sum, grad_sum):
        selected = tf.logical_and(positives, tf.equal(ordinal, k + 1))
        has_positive = tf.reduce_any(selected, axis=1)
        with tf.GradientTape() as tape:
            s = tf.identity(scores)
            tape.watch(s)
            s_pos = tf.reduce_sum(tf.where(selected, s, 0.0), axis=1, keepdims=True)
            loss_k = positive_loss(float(scale) * (s - s_pos), negatives, num_negatives)
            loss_k = tf.where(has_positive, loss_k, 0.0)
        grad_k = tape.gradient(loss_k, s)
        return k + 1, loss_sum + loss_k, grad_sum + grad_k

    _, loss_sum, grad_sum = tf.while_loop(
        lambda k, *_: k < max_positives,
        body,
        (tf.constant(1), tf.zeros_like(num_negatives), tf.zeros_like(scores)),
    )
    return tf.stop_gradient(loss_sum), tf.stop_gradient(grad_sum)
