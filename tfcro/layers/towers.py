"""The user and item towers of the two-tower model, as functional Keras models.

The towers take raw string ids (the data contract: ids are strings, ``""``
pads a history) and do the lookup themselves with :class:`CategoricalEmbedding`
(index 0 = the pad ``""``, index 1 = one OOV bucket for unknown ids), so an
exported tower serves raw ids. Both return L2-normalised ``[B, D]`` embeddings.

User tower ("DNN" of the paper, YouTube DNN):
``u = normalize(MLP([pool(E_item[history]); E_user[user_id]; E_f[feature] ...]))``
Item tower: ``v = normalize(E_item[item_id] + sum_f E_f[feature])``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfcro._compat import keras, register, tf
from tfcro.constants import PAD
from tfcro.layers import pooling as pooling_lib
from tfcro.validation import check_int

#: The padding id of the data contract.


def check_vocabulary(name: str, vocabulary: Any) -> list[str]:
    """``vocabulary`` as a list of unique, non-empty strings, or ValueError naming ``name``."""
    values = [str(v) for v in np.asarray(vocabulary, dtype=object).reshape(-1).tolist()]
    if not values:
        raise ValueError(
            f"`{name}` should be a non-empty sequence of string ids. Received: {name}=[]"
        )
    if PAD in values:
        raise ValueError(
            f"`{name}` should not contain the padding id '' (it is masked). "
            f"Received: {name} with '' at position {values.index(PAD)}"
        )
    if len(set(values)) != len(values):
        raise ValueError(
            f"`{name}` should hold unique ids. Received: {name} with "
            f"{len(values) - len(set(values))} duplicate(s)"
        )
    return values


@register
class CategoricalEmbedding(keras.layers.Layer):
    """Raw string id -> embedding, with ``""`` as masked padding and one OOV bucket.

    ``index(ids)`` gives ``0`` for ``""``, ``1`` for an unknown id and ``2 + k``
    for ``vocabulary[k]``; ``call(ids)`` the ``[..., dim]`` embedding of those
    indices (row 0, the pad, is trained like any other but masked by callers).
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        dim: int,
        embeddings_initializer: Any = "uniform",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.vocabulary = check_vocabulary("vocabulary", vocabulary)
        self.dim = check_int("dim", dim)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.lookup = keras.layers.StringLookup(
            vocabulary=self.vocabulary, mask_token=PAD, num_oov_indices=1, name="lookup"
        )
        self.embedding = keras.layers.Embedding(
            len(self.vocabulary) + 2,
            self.dim,
            embeddings_initializer=self.embeddings_initializer,
            name="embedding",
        )

    @property
    def num_indices(self) -> int:
        """Vocabulary size + 2 (pad and OOV)."""
        return len(self.vocabulary) + 2

    def index(self, ids: tf.Tensor) -> tf.Tensor:
        """int64 indices of string ids (0 pad, 1 OOV, 2 + position in the vocabulary)."""
        return self.lookup(ids)

    def call(self, ids):
        return self.embedding(self.lookup(ids))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            vocabulary=self.vocabulary,
            dim=self.dim,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
        )
        return config


@register
class PaddingMask(keras.layers.Layer):
    """``ids != ""``: the boolean mask of a padded string id tensor."""

    def call(self, ids):
        return tf.not_equal(ids, PAD)


@register
class L2Normalize(keras.layers.Layer):
    """``x / max(||x||, sqrt(epsilon))`` along the last axis: a zero vector stays zero (no NaN)."""

    def __init__(self, epsilon: float = 1e-12, **kwargs: Any):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        return tf.math.l2_normalize(x, axis=-1, epsilon=self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


def build_item_tower(
    item_embedding: CategoricalEmbedding,
    feature_embeddings: Mapping[str, CategoricalEmbedding] | None = None,
    name: str = "item_tower",
) -> keras.Model:
    """Item tower: ``{"item_id": [B] str, <feature>: [B] str}`` -> L2-normalised ``[B, D]``.

    ``v = normalize(E_item[item_id] + sum_f E_f[feature_f])``; every feature
    embedding must have the item embedding's ``dim``.
    """
    inputs = {"item_id": keras.Input(shape=(), dtype=tf.string, name="item_id")}
    parts = [item_embedding(inputs["item_id"])]
    for feature, layer in (feature_embeddings or {}).items():
        if layer.dim != item_embedding.dim:
            raise ValueError(
                f"item feature `{feature}` has dim {layer.dim}; it should equal the "
                f"item embedding dim {item_embedding.dim}"
            )
        inputs[feature] = keras.Input(shape=(), dtype=tf.string, name=feature)
        parts.append(layer(inputs[feature]))
    x = parts[0] if len(parts) == 1 else keras.layers.Add(name="sum_features")(parts)
    return keras.Model(inputs, L2Normalize(name="normalize")(x), name=name)


def build_user_tower(
    history_embedding: CategoricalEmbedding,
    output_dim: int,
    *,
    pooling: Any = "mean",
    user_embedding: CategoricalEmbedding | None = None,
    feature_embeddings: Mapping[str, CategoricalEmbedding] | None = None,
    hidden_units: Sequence[int] = (),
    activation: str = "relu",
    name: str = "user_tower",
) -> keras.Model:
    """User tower: ``{"history": [B, L], "user_id": [B], <feature>: [B]}`` str -> ``[B, D]``.

    ``u = normalize(Dense_D(MLP(concat(pool(E[history], history != ""), E_user[user_id],
    E_f[feature_f] ...))))``. ``"user_id"`` is an input only with ``user_embedding``.
    The paper's "DNN" is ``pooling="mean"``, no hidden layers, ``output_dim=32``. An
    empty history pools to zeros, so the user embedding is then the (normalised)
    output of the Dense layers on the other parts and their biases: finite.
    """
    output_dim = check_int("output_dim", output_dim)
    hidden_units = [check_int("hidden_units[]", u) for u in hidden_units]
    inputs = {"history": keras.Input(shape=(None,), dtype=tf.string, name="history")}
    mask = PaddingMask(name="history_mask")(inputs["history"])
    pooled = pooling_lib.get(pooling, name="pooling")(
        history_embedding(inputs["history"]), mask=mask
    )
    parts = [pooled]
    if user_embedding is not None:
        inputs["user_id"] = keras.Input(shape=(), dtype=tf.string, name="user_id")
        parts.append(user_embedding(inputs["user_id"]))
    for feature, layer in (feature_embeddings or {}).items():
        inputs[feature] = keras.Input(shape=(), dtype=tf.string, name=feature)
        parts.append(layer(inputs[feature]))
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="concat")(parts)
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation=activation, name=f"hidden_{i}")(x)
    x = keras.layers.Dense(output_dim, name="projection")(x)
    return keras.Model(inputs, L2Normalize(name="normalize")(x), name=name)
