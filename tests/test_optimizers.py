"""tfcro.optimizers.LazyAdam against a NumPy loop, and its Keras round trip."""

import numpy as np
import pytest

from tfcro._compat import keras, tf
from tfcro.optimizers import LazyAdam


def _numpy_lazy_adam(table, dense, batches, lr=0.1, b1=0.9, b2=0.999, eps=1e-7):
    """Lazy Adam on ``sum(table[rows]^2) + sum(dense^2)``, written out row by row."""
    table, dense = table.astype(np.float64), dense.astype(np.float64)
    m_t, v_t = np.zeros_like(table), np.zeros_like(table)
    m_d, v_d = np.zeros_like(dense), np.zeros_like(dense)
    for step, rows in enumerate(batches, start=1):
        grad = np.zeros_like(table)
        for row in rows:  # duplicates add up
            grad[row] += 2 * table[row]
        alpha = lr * np.sqrt(1 - b2**step) / (1 - b1**step)
        for row in sorted(set(rows)):  # only the rows of the batch move
            m_t[row] = b1 * m_t[row] + (1 - b1) * grad[row]
            v_t[row] = b2 * v_t[row] + (1 - b2) * grad[row] ** 2
            table[row] -= alpha * m_t[row] / (np.sqrt(v_t[row]) + eps)
        grad_d = 2 * dense  # dense: plain Adam
        m_d = b1 * m_d + (1 - b1) * grad_d
        v_d = b2 * v_d + (1 - b2) * grad_d**2
        dense -= alpha * m_d / (np.sqrt(v_d) + eps)
    return table, dense


def test_lazy_adam_matches_the_numpy_loop():
    rng = np.random.default_rng(0)
    table0 = rng.normal(size=(7, 3)).astype(np.float32)
    dense0 = rng.normal(size=(3, 2)).astype(np.float32)
    batches = [[1, 3, 1], [0, 1], [5, 5, 5], [6]]
    table, dense = tf.Variable(table0), tf.Variable(dense0)
    optimizer = LazyAdam(0.1)
    optimizer.build([table, dense])

    @tf.function
    def step(rows):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(table, rows) ** 2) + tf.reduce_sum(dense**2)
        grads = tape.gradient(loss, [table, dense])
        optimizer.apply_gradients(zip(grads, [table, dense], strict=True))

    for rows in batches:
        step(tf.constant(rows))
    want_table, want_dense = _numpy_lazy_adam(table0, dense0, batches)
    np.testing.assert_allclose(table.numpy(), want_table, rtol=1e-5, atol=1e-6)
    # the dense part is Keras's own Adam (float32 moments): agreement to float32 rounding
    np.testing.assert_allclose(dense.numpy(), want_dense, rtol=1e-3, atol=1e-5)
    np.testing.assert_array_equal(table.numpy()[[2, 4]], table0[[2, 4]])  # never in a batch


def test_lazy_adam_round_trips_and_refuses_amsgrad():
    optimizer = LazyAdam(0.02, beta_1=0.8)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is LazyAdam
    assert restored.get_config()["beta_1"] == 0.8
    assert float(restored.learning_rate) == pytest.approx(0.02)
    with pytest.raises(ValueError, match="amsgrad"):
        LazyAdam(amsgrad=True)


def test_lazy_adam_is_refused_under_xla_with_a_clear_error():
    from tfcro.training import TrainingConfig

    with pytest.raises(ValueError, match="`jit_compile` should be False.*lazy_adam"):
        TrainingConfig(optimizer="lazy_adam", jit_compile=True)
    assert TrainingConfig(optimizer="lazy_adam").jit_compile is False
    with pytest.raises(
        ValueError, match="`jit_compile` should be True or False. Received: jit_compile='yes'"
    ):
        TrainingConfig(jit_compile="yes")
