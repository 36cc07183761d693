"""The user and item towers of the two-tower model, as functional Keras models.

The towers take raw string ids (the data contract: ids are strings, ``""``
pads a history) and do the lookup themselves with :class:`CategoricalEmbedding`
(index 0 = the pad ``""``, index 1 = one OOV bucket for unknown ids), so an
exported tower serves raw ids. Built with ``ids="index"``, the same layers take
those integer indices instead (no string op: the training path, XLA-compilable);
:func:`vocabulary_indices` turns raw ids into them, vectorised. Both return
L2-normalised ``[B, D]`` embeddings.

User tower ("DNN" of the paper, YouTube DNN):
``u = normalize(MLP([pool(E_item[history]); E_user[user_id]; E_f[feature] ...]))``
Item tower: ``v = normalize(E_item[item_id] + sum_f E_f[feature])``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tfcro._compat import keras, register, tf
from tfcro.constants import PAD
from tfcro.layers import pooling as pooling_lib
from tfcro.validation import check_choice, check_int

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


#: The id dtypes a tower can be built for: raw ``"string"`` ids or their ``"index"``.
ID_KINDS = {"string": tf.string, "index": tf.int32}


def vocabulary_indices(ids: Any, vocabulary: Sequence[str] | pd.Index) -> np.ndarray:
    """``int32`` lookup indices of raw ids: 0 for ``""``, 1 for an unknown id, ``2 + k``
    for ``vocabulary[k]`` (what :class:`CategoricalEmbedding` computes in the graph).

    Vectorised with a hash index, any shape.

    >>> vocabulary_indices([["b", ""], ["zz", "a"]], ["a", "b"]).tolist()
    [[3, 0], [1, 2]]
    """
    values = np.asarray(ids, dtype=object)
    index = vocabulary if isinstance(vocabulary, pd.Index) else pd.Index(list(vocabulary))
    flat = values.reshape(-1)
    if flat.size and not isinstance(flat[0], str):
        flat = flat.astype(str)
    position = index.get_indexer(flat)
    out = np.where(position >= 0, position + 2, 1).astype(np.int32)
    out[flat == PAD] = 0
    return out.reshape(values.shape)


@register
class CategoricalEmbedding(keras.layers.Layer):
    """Raw string id (or its integer index) -> embedding, ``""`` as padding, one OOV bucket.

    ``index(ids)`` gives ``0`` for ``""``, ``1`` for an unknown id and ``2 + k``
    for ``vocabulary[k]``; ``call(ids)`` the ``[..., dim]`` embedding of those
    indices (row 0, the pad, is trained like any other but masked by callers).
    ``call`` also takes integer ids, read as such indices (no lookup).
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
            vocabulary=self.vocabulary,
            mask_token=PAD,
            num_oov_indices=1,
            name=f"{self.name}_lookup",
        )
        self._vocabulary_index = None
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
        if ids.dtype == tf.string:
            ids = self.lookup(ids)
        return self.embedding(ids)

    def indices(self, ids: Any) -> np.ndarray:
        """:meth:`index` of raw ids in NumPy, vectorised (see :func:`vocabulary_indices`)."""
        if self._vocabulary_index is None:
            self._vocabulary_index = pd.Index(self.vocabulary)
        return vocabulary_indices(ids, self._vocabulary_index)

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
    """``ids != ""`` (or ``ids != 0`` for indices): the mask of a padded id tensor."""

    def call(self, ids):
        return tf.not_equal(ids, PAD if ids.dtype == tf.string else tf.zeros([], ids.dtype))


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
    ids: str = "string",
) -> keras.Model:
    """Item tower: ``{"item_id": [B], <feature>: [B]}`` -> L2-normalised ``[B, D]``.

    ``v = normalize(E_item[item_id] + sum_f E_f[feature_f])``; every feature
    embedding must have the item embedding's ``dim``. ``ids="string"`` takes raw
    ids; ``ids="index"`` their int32 lookup indices (:func:`string_tower` puts the
    lookups in front of the index tower, sharing its weights).
    """
    check_choice("ids", ids, ID_KINDS)
    embeddings = {"item_id": item_embedding, **(feature_embeddings or {})}
    for feature, layer in embeddings.items():
        if layer.dim != item_embedding.dim:
            raise ValueError(
                f"item feature `{feature}` has dim {layer.dim}; it should equal the "
                f"item embedding dim {item_embedding.dim}"
            )
    inputs = {key: keras.Input(shape=(), dtype=tf.int32, name=key) for key in embeddings}
    parts = [layer(inputs[key]) for key, layer in embeddings.items()]
    x = parts[0] if len(parts) == 1 else keras.layers.Add(name="sum_features")(parts)
    tower = keras.Model(inputs, L2Normalize(name="normalize")(x), name=f"{name}_index")
    return tower if ids == "index" else string_tower(tower, embeddings, name=name)


def build_user_tower(
    history_embedding: CategoricalEmbedding | None,
    output_dim: int,
    *,
    pooling: Any = "mean",
    user_embedding: CategoricalEmbedding | None = None,
    feature_embeddings: Mapping[str, CategoricalEmbedding] | None = None,
    hidden_units: Sequence[int] = (),
    activation: str = "relu",
    name: str = "user_tower",
    ids: str = "string",
) -> keras.Model:
    """User tower: ``{"history": [B, L], "user_id": [B], <feature>: [B]}`` -> ``[B, D]``.

    ``u = normalize(Dense_D(MLP(concat(pool(E[history], history != ""), E_user[user_id],
    E_f[feature_f] ...))))``. ``"history"`` is an input only with ``history_embedding``,
    ``"user_id"`` only with ``user_embedding``. The paper's "DNN" is ``pooling="mean"``,
    no hidden layers, ``output_dim=32``. Matrix factorisation is ``user_embedding``
    alone (no history, no features, no hidden layers): ``u = normalize(E_user[user_id])``,
    with no projection. An empty history pools to zeros, so the user embedding is then
    the (normalised) output of the Dense layers on the other parts and their biases:
    finite. ``ids="string"`` takes raw ids (``""`` pads), ``ids="index"`` int32 lookup
    indices (0 pads).
    """
    check_choice("ids", ids, ID_KINDS)
    output_dim = check_int("output_dim", output_dim)
    hidden_units = [check_int("hidden_units[]", u) for u in hidden_units]
    embeddings = {}
    if history_embedding is not None:
        embeddings["history"] = history_embedding
    if user_embedding is not None:
        embeddings["user_id"] = user_embedding
    embeddings.update(feature_embeddings or {})
    if not embeddings:
        raise ValueError(
            "the user tower needs `history_embedding`, `user_embedding` or "
            "`feature_embeddings`. Received: none of them"
        )
    inputs = {
        key: keras.Input(shape=(None,) if key == "history" else (), dtype=tf.int32, name=key)
        for key in embeddings
    }
    parts = []
    for key, embedding in embeddings.items():
        if key == "history":
            mask = PaddingMask(name="history_mask")(inputs["history"])
            parts.append(
                pooling_lib.get(pooling, name="pooling")(embedding(inputs["history"]), mask=mask)
            )
        else:
            parts.append(embedding(inputs[key]))
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="concat")(parts)
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation=activation, name=f"hidden_{i}")(x)
    if list(embeddings) != ["user_id"] or hidden_units:
        x = keras.layers.Dense(output_dim, name="projection")(x)
    elif user_embedding.dim != output_dim:
        raise ValueError(
            f"a user-id-only tower outputs its embedding: `output_dim` should be the "
            f"embedding's size {user_embedding.dim}. Received: output_dim={output_dim}"
        )
    tower = keras.Model(inputs, L2Normalize(name="normalize")(x), name=f"{name}_index")
    return tower if ids == "index" else string_tower(tower, embeddings, name=name)


def string_tower(
    index_tower: keras.Model, embeddings: Mapping[str, CategoricalEmbedding], name: str
) -> keras.Model:
    """Raw string ids -> the lookups of ``embeddings`` -> ``index_tower``: the servable tower.

    It shares every weight with ``index_tower`` (which it calls as a layer); its
    inputs have the index tower's names and shapes, with ``tf.string`` ids.
    """
    inputs, indices = {}, {}
    for key, spec in zip(index_tower.input_names, index_tower.inputs, strict=True):
        inputs[key] = keras.Input(shape=spec.shape[1:], dtype=tf.string, name=key)
        indices[key] = tf.cast(embeddings[key].lookup(inputs[key]), tf.int32)
    return keras.Model(inputs, index_tower(indices), name=name)
