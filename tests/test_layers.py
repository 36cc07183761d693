"""Tests of tfcro.layers: masked mean pooling, id embeddings, the towers."""

from __future__ import annotations

import numpy as np
import pytest

from tfcro import layers
from tfcro._compat import keras, tf


def test_masked_mean_values_and_empty_rows():
    x = tf.constant([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]], [[5.0, 5.0], [7.0, 7.0], [8.0, 8.0]]])
    mask = tf.constant([[True, True, False], [False, False, False]])
    out = layers.MaskedMeanPooling()(x, mask=mask).numpy()
    # row 0: mean of (1,2),(3,4) = (2,3); row 1: nothing -> zeros, not NaN
    np.testing.assert_allclose(out, [[2.0, 3.0], [0.0, 0.0]])


def test_pooling_registry():
    assert isinstance(layers.get_pooling("mean"), layers.MaskedMeanPooling)
    layer = layers.MaskedMeanPooling()
    assert layers.get_pooling(layer) is layer
    with pytest.raises(ValueError, match="`pooling` should be one of"):
        layers.get_pooling("attention")


def test_categorical_embedding_indices():
    emb = layers.CategoricalEmbedding(["a", "b"], 4)
    np.testing.assert_array_equal(
        emb.index(tf.constant(["", "zz", "a", "b"])).numpy(), [0, 1, 2, 3]
    )
    assert emb(tf.constant([["a", ""]])).shape == (1, 2, 4)


@pytest.mark.parametrize(
    "vocab, message", [([], "non-empty"), (["a", ""], "padding"), (["a", "a"], "unique")]
)
def test_bad_vocabulary(vocab, message):
    with pytest.raises(ValueError, match=message):
        layers.CategoricalEmbedding(vocab, 4)


@pytest.mark.parametrize("dim", [0, -3, 2.5, True])
def test_bad_dim(dim):
    with pytest.raises(ValueError, match="`dim` should be an integer >= 1"):
        layers.CategoricalEmbedding(["a"], dim)


def test_l2_normalize_zero_vector_is_finite():
    out = layers.L2Normalize()(tf.constant([[3.0, 4.0], [0.0, 0.0]])).numpy()
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]], atol=1e-7)


def test_user_tower_round_trip_and_shapes():
    items = layers.CategoricalEmbedding(["a", "b", "c"], 8)
    users = layers.CategoricalEmbedding(["u"], 8)
    tower = layers.build_user_tower(items, 8, user_embedding=users, hidden_units=(16,))
    inputs = {
        "history": tf.constant([["a", "b", ""], ["", "", ""], ["x", "", ""]]),
        "user_id": tf.constant(["u", "v", ""]),
    }
    out = tower(inputs).numpy()
    assert out.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    clone = keras.Model.from_config(tower.get_config())
    clone.set_weights(tower.get_weights())
    np.testing.assert_allclose(clone(inputs).numpy(), out, atol=1e-6)


def test_item_tower_with_feature():
    ids = layers.CategoricalEmbedding(["a", "b"], 4)
    cat = layers.CategoricalEmbedding(["x", "y"], 4)
    tower = layers.build_item_tower(ids, {"category": cat})
    out = tower({"item_id": tf.constant(["a", "zz"]), "category": tf.constant(["x", ""])})
    assert out.shape == (2, 4)
    with pytest.raises(ValueError, match="dim"):
        layers.build_item_tower(ids, {"category": layers.CategoricalEmbedding(["x"], 3)})
