"""Sequence pooling: ``[B, L, D]`` history embeddings with a ``[B, L]`` mask -> ``[B, D]``.

Every pooling layer follows one call contract, ``layer(sequence, mask=mask)``
with ``mask`` a boolean ``[B, L]`` tensor (True = real item, False = padding),
so the user tower can swap encoders by name (:data:`POOLINGS`, :func:`get`).
"""

from __future__ import annotations

from typing import Any

from tfcro._compat import keras, register, tf


def masked_mean(sequence: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean of ``sequence [B, L, D]`` over the positions where ``mask [B, L]`` is True.

    ``out[b] = sum_l mask[b, l] * x[b, l] / max(1, sum_l mask[b, l])``: a row
    whose mask is all False (an empty history) gives the zero vector, never NaN.

    >>> x = tf.constant([[[1.0], [3.0], [100.0]]])
    >>> masked_mean(x, tf.constant([[True, True, False]])).numpy().tolist()
    [[2.0]]
    """
    weights = tf.cast(mask, sequence.dtype)[..., tf.newaxis]
    total = tf.reduce_sum(sequence * weights, axis=1)
    count = tf.reduce_sum(weights, axis=1)
    return total / tf.maximum(count, tf.ones_like(count))


@register
class MaskedMeanPooling(keras.layers.Layer):
    """Masked mean pooling of a history (YouTube DNN, the paper's "DNN" base model).

    Call: ``pooled = layer(sequence, mask=mask)``, ``sequence [B, L, D]``,
    ``mask [B, L]`` bool; returns ``[B, D]`` (see :func:`masked_mean`).
    """

    def call(self, sequence, mask=None):
        if mask is None:
            mask = tf.ones(tf.shape(sequence)[:2], tf.bool)
        return masked_mean(sequence, tf.cast(mask, tf.bool))

    def compute_mask(self, inputs, mask=None):
        return None


#: Pooling layers by name (``TwoTowerConfig.pooling``).
POOLINGS: dict[str, type[keras.layers.Layer]] = {"mean": MaskedMeanPooling}


def register_pooling(name: str, layer_class: type[keras.layers.Layer]) -> None:
    """Adds a pooling layer class (call contract ``layer(sequence, mask=mask)``) by name."""
    POOLINGS[name] = layer_class


def get(pooling: Any, **kwargs: Any) -> keras.layers.Layer:
    """A pooling layer from a name in :data:`POOLINGS` or a layer instance (returned as is)."""
    if isinstance(pooling, keras.layers.Layer):
        return pooling
    if not isinstance(pooling, str) or pooling not in POOLINGS:
        raise ValueError(
            f"`pooling` should be one of {sorted(POOLINGS)} or a Keras layer. "
            f"Received: pooling={pooling!r}"
        )
    return POOLINGS[pooling](**kwargs)
