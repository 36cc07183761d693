"""The per-positive engine shared by every tfcro loss, on every backend.

Call contract (the one ``tfrs.tasks.Retrieval`` and keras-rs retrieval models use):
``y_true`` is a ``[B, C]`` 0/1 matrix, ``y_pred`` the ``[B, C]`` scores. For each
positive ``i`` of row ``b`` the negatives are the row's columns with ``y_true == 0``;
a row's loss is the mean over its positives of a per-positive loss of the scaled gaps
``scale * (s_j - s_i)``. Scores at or below ``-1e30`` (TFRS's masked candidates and
removed accidental hits) are absent: neither positive nor negative, and not counted
in ``M``.

Memory is ``O(B * C)``, never ``[B, C, C]``. The first positive of every row (the
only one for one-hot labels and ``eye(B, C)``) is one vectorised pass differentiated
as usual. The further positives of multi-hot rows are visited by a loop over "the
k-th positive of each row" (zero iterations for one-hot labels), one per backend
(:data:`LOOPS`): TensorFlow and JAX take each iteration's gradient inside the loop
and attach the sum with a stop-gradient identity, so the backward pass never
differentiates through the loop (valid under ``jit_compile``/``jax.jit``, XLA needs
no loop accumulators, and under ``tf.distribute``); PyTorch, eager, loops in Python.
Second derivatives are not supported.
"""

from __future__ import annotations

from collections.abc import Callable

from tfcro.constants import ABSENT_SCORE


def _static_shape(x) -> tuple | None:
    shape = x.shape
    if getattr(shape, "rank", 0) is None:  # a TensorFlow tensor of unknown rank
        return None
    return tuple(None if size is None else int(size) for size in shape)


def check_shapes(y_true, y_pred) -> None:
    """Raises ValueError when the static shapes are not both ``[B, C]`` and equal."""
    pred, true = _static_shape(y_pred), _static_shape(y_true)
    if pred is not None and len(pred) != 2:
        raise ValueError(
            "`y_pred` should be a [batch, candidates] score matrix. "
            f"Received: y_pred.shape={y_pred.shape}"
        )
    if true is not None and len(true) != 2:
        raise ValueError(
            "`y_true` should be a [batch, candidates] 0/1 matrix with the shape of `y_pred` "
            "(one-hot encode item indices with one_hot). "
            f"Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
        )
    if pred is not None and true is not None:
        if any(a is not None and b is not None and a != b for a, b in zip(true, pred, strict=True)):
            raise ValueError(
                "`y_true` and `y_pred` should have the same [batch, candidates] shape. "
                f"Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
            )


def row_masks(ops, y_true, y_pred):
    """``(scores, present, positives, negatives)`` of a ``[B, C]`` batch: float32 scores
    with absent candidates at 0, and the three ``[B, C]`` bool masks.
    """
    scores, labels = ops.to_float32(y_pred), ops.to_float32(y_true)
    check_shapes(labels, scores)
    present = ops.greater(scores, ABSENT_SCORE)
    labels = ops.greater(labels, 0.5)
    positives = ops.logical_and(labels, present)
    negatives = ops.logical_and(ops.logical_not(labels), present)
    return ops.where(present, scores, 0.0), present, positives, negatives


def diagonal_masks(ops, y_pred):
    """``(scores, present, negatives, positive_scores, has_positive)`` of a ``[B, C]``
    batch whose labels are ``eye(B, C)`` (row ``b``'s positive is column ``b``):
    :func:`row_masks` without a label matrix, and each row's positive score ``[B]``
    (gathered; 0 where it is absent, the stand-in column's where ``b >= C``) with
    ``[B]`` bool ``has_positive`` (:func:`diagonal_positives`), which masks both.
    """
    scores = ops.to_float32(y_pred)
    check_shapes(scores, scores)
    present = ops.greater(scores, ABSENT_SCORE)
    scores = ops.where(present, scores, 0.0)
    labels, has_positive = diagonal_positives(ops, present)
    positive_scores = ops.take_along_axis(scores, labels[:, None], axis=1)[:, 0]
    rows, columns = ops.shape(scores)
    off_diagonal = ops.logical_not(
        ops.equal(ops.arange(columns)[None, :], ops.arange(rows)[:, None])
    )
    negatives = ops.logical_and(present, off_diagonal)
    return scores, present, negatives, positive_scores, has_positive


def diagonal_positives(ops, present):
    """``(labels, has_positive)``, both ``[B]``, of a ``[B, C]`` batch whose labels are
    ``eye(B, C)``: row ``b``'s positive column ``b`` (a stand-in, the last column, for
    the rows ``b >= C``, which have none) and whether that positive is there (present,
    ``b < C``).
    """
    rows, columns = ops.shape(present)
    row = ops.arange(rows)
    labels = ops.minimum(row, columns - 1)
    positive_present = ops.take_along_axis(ops.float32(present), labels[:, None], axis=1)[:, 0]
    has_positive = ops.logical_and(ops.greater(positive_present, 0.5), ops.greater(columns, row))
    return labels, has_positive


#: ``positive_loss(gaps [B, C], negatives [B, C] bool, num_negatives [B]) -> [B]``
PositiveLoss = Callable


def row_losses(ops, y_true, y_pred, positive_loss: PositiveLoss, scale: float, loop):
    """``[B]`` float32 row losses: the mean of ``positive_loss`` over each row's positives.

    Rows without a positive get 0. Inputs of any float dtype are computed in float32;
    gradients flow back to ``y_pred`` in its own dtype. ``loop`` is the backend's loop
    over further positives (a function of :data:`LOOPS`).
    """
    scores, present, positives, negatives = row_masks(ops, y_true, y_pred)
    num_negatives = ops.sum(ops.float32(negatives), axis=1)
    positive_counts = ops.sum(ops.int32(positives), axis=1)
    # The first positive of every row (the only one for one-hot and eye labels) in one
    # vectorised pass, differentiated as usual ...
    first_index = ops.argmax(ops.int32(positives), axis=1)
    first = ops.logical_and(
        positives, ops.equal(ops.arange(ops.shape(scores)[1]), first_index[:, None])
    )
    s_first = ops.sum(ops.where(first, scores, 0.0), axis=1, keepdims=True)
    loss = positive_loss(float(scale) * (scores - s_first), negatives, num_negatives)
    loss = ops.where(ops.greater(positive_counts, 0), loss, 0.0)
    # ... the others of multi-hot rows in the backend's loop (no iteration for one-hot
    # labels): their summed value, and their gradient with respect to the scores.
    other_loss, other_grad = loop(
        ops, scores, positives, negatives, num_negatives, positive_counts, positive_loss, scale
    )
    other_grad = ops.where(present, other_grad, 0.0)
    attached = scores - ops.stop_gradient(scores)  # 0, with the identity as its gradient
    loss = loss + other_loss + ops.sum(other_grad * attached, axis=1)
    return loss / ops.float32(ops.maximum(positive_counts, 1))


def diagonal_row_losses(ops, y_pred, positive_loss: PositiveLoss, scale: float):
    """:func:`row_losses` of ``y_pred [B, C]`` with labels ``eye(B, C)``, in one pass:
    no label matrix, no search for the first positive, no loop (one positive per row).
    """
    scores, _, negatives, positive_scores, has_positive = diagonal_masks(ops, y_pred)
    num_negatives = ops.sum(ops.float32(negatives), axis=1)
    loss = positive_loss(
        float(scale) * (scores - positive_scores[:, None]), negatives, num_negatives
    )
    return ops.where(has_positive, loss, 0.0)


def _kth_positive_loss(ops, scores, selected, negatives, num_negatives, positive_loss, scale):
    """``[B]`` loss of the positive marked in ``selected`` (0 where a row has none)."""
    s_pos = ops.sum(ops.where(selected, scores, 0.0), axis=1, keepdims=True)
    loss = positive_loss(float(scale) * (scores - s_pos), negatives, num_negatives)
    return ops.where(ops.any(selected, axis=1), loss, 0.0)


def tensorflow_loop(ops, scores, positives, negatives, num_negatives, counts, positive_loss, scale):
    """The 2nd, 3rd, ... positives in a ``tf.while_loop`` (skipped by a ``tf.cond`` when no
    row has two), each iteration's gradient by a ``tf.GradientTape`` inside it.
    """
    import tensorflow as tf

    scores = tf.stop_gradient(scores)
    ordinal = ops.cumsum(ops.int32(positives), axis=1)  # == k + 1 at the k-th positive
    max_positives = tf.reduce_max(tf.concat([counts, [0]], axis=0))

    def body(k, loss_sum, grad_sum):
        selected = ops.logical_and(positives, ops.equal(ordinal, k + 1))
        with tf.GradientTape() as tape:
            s = tf.identity(scores)
            tape.watch(s)
            loss_k = _kth_positive_loss(
                ops, s, selected, negatives, num_negatives, positive_loss, scale
            )
        return k + 1, loss_sum + loss_k, grad_sum + tape.gradient(loss_k, s)

    def run():
        _, loss_sum, grad_sum = tf.while_loop(
            lambda k, *_: k < max_positives,
            body,
            (tf.constant(1), tf.zeros_like(num_negatives), tf.zeros_like(scores)),
        )
        return tf.stop_gradient(loss_sum), tf.stop_gradient(grad_sum)

    return tf.cond(
        max_positives > 1, run, lambda: (tf.zeros_like(num_negatives), tf.zeros_like(scores))
    )


def jax_loop(ops, scores, positives, negatives, num_negatives, counts, positive_loss, scale):
    """The 2nd, 3rd, ... positives in a ``jax.lax.while_loop`` under ``jax.jit`` (zero
    iterations when no row has two; eager: a Python loop), each iteration's gradient by
    ``jax.value_and_grad`` inside it.
    """
    import jax
    import jax.numpy as jnp

    scores = jax.lax.stop_gradient(scores)
    ordinal = jnp.cumsum(positives.astype(jnp.int32), axis=1)
    max_positives = jnp.max(counts, initial=0)

    def summed_loss(s, selected):
        loss = _kth_positive_loss(ops, s, selected, negatives, num_negatives, positive_loss, scale)
        return jnp.sum(loss), loss

    def body(state):
        k, loss_sum, grad_sum = state
        selected = jnp.logical_and(positives, ordinal == k + 1)
        (_, loss_k), grad_k = jax.value_and_grad(summed_loss, has_aux=True)(scores, selected)
        return k + 1, loss_sum + loss_k, grad_sum + grad_k

    state = (jnp.asarray(1, jnp.int32), jnp.zeros_like(num_negatives), jnp.zeros_like(scores))
    try:  # eager (no jit): the count is known, a Python loop (a while_loop compiles per call)
        known = int(max_positives)
    except jax.errors.ConcretizationTypeError:  # traced under jit: the compiled loop
        known = None
    if known is None:
        state = jax.lax.while_loop(lambda s: s[0] < max_positives, body, state)
    else:
        for _ in range(1, known):
            state = body(state)
    _, loss_sum, grad_sum = state
    return jax.lax.stop_gradient(loss_sum), jax.lax.stop_gradient(grad_sum)


def eager_loop(ops, scores, positives, negatives, num_negatives, counts, positive_loss, scale):
    """The 2nd, 3rd, ... positives in a Python loop (eager backends: PyTorch): the value
    carries its own gradient, the returned gradient term is 0.
    """
    ordinal = ops.cumsum(ops.int32(positives), axis=1)
    loss_sum = ops.zeros_like(num_negatives)
    for k in range(1, int(ops.max(counts)) if counts.shape[0] else 0):
        selected = ops.logical_and(positives, ops.equal(ordinal, k + 1))
        loss_sum = loss_sum + _kth_positive_loss(
            ops, scores, selected, negatives, num_negatives, positive_loss, scale
        )
    return loss_sum, ops.zeros_like(scores)


#: The loop over further positives for each backend (``keras.backend.backend()`` names).
LOOPS = {"tensorflow": tensorflow_loop, "jax": jax_loop, "torch": eager_loop, "numpy": eager_loop}
