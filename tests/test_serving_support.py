"""Stand-in towers that follow the model contract, for the serving tests.

``StringLookup(mask_token="") + Embedding + masked mean + Dense + L2 normalise``:
user input ``{"history": [B, L] str}`` (optionally ``"user_id": [B] str``),
item input ``{"item_id": [B] str}``; both return L2-normalised ``[B, D]``.
"""

from __future__ import annotations

import numpy as np

import tfcro  # noqa: F401  (Keras 2 before TensorFlow)
from tfcro._compat import keras, tf


def make_towers(
    num_items: int = 50, dim: int = 8, *, seed: int = 0, use_user_id: bool = False
) -> tuple[keras.Model, keras.Model, np.ndarray]:
    """Returns ``(user_tower, item_tower, item_ids)`` with random weights."""
    keras.utils.set_random_seed(seed)
    items = np.asarray([f"i{k}" for k in range(num_items)], dtype=object)
    vocab = items.astype(str).tolist()

    item_in = keras.Input(shape=(), dtype=tf.string, name="item_id")
    item_lookup = keras.layers.StringLookup(vocabulary=vocab, mask_token="")
    item_table = keras.layers.Embedding(num_items + 2, dim)
    item_out = tf.math.l2_normalize(
        keras.layers.Dense(dim)(item_table(item_lookup(item_in))), axis=-1
    )
    item_tower = keras.Model({"item_id": item_in}, item_out, name="item_tower")

    hist_in = keras.Input(shape=(None,), dtype=tf.string, name="history")
    ids = item_lookup(hist_in)
    mask = tf.cast(tf.not_equal(ids, 0), tf.float32)[..., None]
    pooled = tf.reduce_sum(item_table(ids) * mask, axis=1) / tf.maximum(
        tf.reduce_sum(mask, axis=1), 1.0
    )
    inputs = {"history": hist_in}
    parts = pooled
    if use_user_id:
        user_in = keras.Input(shape=(), dtype=tf.string, name="user_id")
        user_lookup = keras.layers.StringLookup(vocabulary=["u0", "u1", "u2"], mask_token="")
        parts = tf.concat([pooled, keras.layers.Embedding(5, dim)(user_lookup(user_in))], -1)
        inputs["user_id"] = user_in
    user_out = tf.math.l2_normalize(
        keras.layers.Dense(dim, bias_initializer="random_normal")(parts), axis=-1
    )
    user_tower = keras.Model(inputs, user_out, name="user_tower")
    return user_tower, item_tower, items


def clustered_embeddings(
    n: int, dim: int, *, clusters: int = 40, noise: float = 0.5, seed: int = 0
) -> np.ndarray:
    """L2-normalised ``[n, dim]`` float32 embeddings around random cluster centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + noise * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_stand_in_towers_follow_the_contract():
    user_tower, item_tower, items = make_towers(num_items=10, dim=4)
    user = user_tower({"history": tf.constant([["i1", "i2", ""], ["", "", ""]])})
    item = item_tower({"item_id": tf.constant(items[:3].astype(str))})
    assert user.shape == (2, 4) and item.shape == (3, 4)
    np.testing.assert_allclose(np.linalg.norm(item.numpy(), axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(user.numpy(), axis=1), 1.0, rtol=1e-5)
