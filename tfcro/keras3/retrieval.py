"""Retrieval-model layers for Keras 3 / keras-rs models trained with tfcro's losses."""

from __future__ import annotations

import keras
from keras import ops

from tfcro.constants import MASKED_SCORE


@keras.saving.register_keras_serializable(package="tfcro")
class RemoveAccidentalHits(keras.layers.Layer):
    """Masks a batch's accidental hits: the negatives that are the row's positive item.

    A drop-in replacement for ``keras_rs.layers.RemoveAccidentalHits`` (same call:
    ``layer(logits, labels, candidate_ids)``) that sets those logits to TFRS's
    masked score (about -3.4e36), at or below the ``-1e30`` that every tfcro loss
    treats as an absent candidate (neither positive nor negative, not counted in
    ``M``), and that softmax cross-entropy gives no probability.

    keras-rs 0.4.0's layer adds ``smallest_normal / 100`` (about 1e-40) to the logits
    instead, which leaves every float32 logit unchanged, and gathers each row's
    positive id from row 0 when ``candidate_ids`` is ``[B, C]``; both are reported in
    keras-team/keras-rs pull request #206 (open when this was written). Our test
    suite checks the upstream behaviour, so an upgrade that fixes it shows up there.

    Call args:
      logits: ``[B, C]`` scores.
      labels: ``[B, C]`` one-hot labels (the positive of each row).
      candidate_ids: ``[C]`` or ``[B, C]`` integer ids of the candidates.

    Returns:
      ``logits`` with the accidental hits at the masked score.
    """

    def call(self, logits, labels, candidate_ids):
        labels = ops.convert_to_tensor(labels)
        candidate_ids = ops.convert_to_tensor(candidate_ids)
        if len(candidate_ids.shape) == 1:
            candidate_ids = ops.broadcast_to(candidate_ids[None, :], ops.shape(labels))
        positive = ops.argmax(labels, axis=-1)[:, None]
        positive_ids = ops.take_along_axis(candidate_ids, positive, axis=-1)
        hit = ops.logical_and(
            ops.equal(candidate_ids, positive_ids), ops.logical_not(ops.greater(labels, 0.5))
        )
        return ops.where(hit, ops.cast(MASKED_SCORE, logits.dtype), logits)
