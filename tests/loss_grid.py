"""The parameter grid of the loss-vs-reference tests, shared with
``benchmarks/loss_reference_error.py`` (which reports the largest errors over it)."""

import numpy as np
import tensorflow as tf

KERNELS = ["sigmoid", "softplus", "exponential", "hinge"]
ALPHAS = [0.0, 0.6, 1.0, 1.4]
NUM_ITEMS = [None, 50]
LAYOUTS = ["one", "several"]
SCALE = 2.0
MARGIN = 0.5


def batch(layout: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(5, 7))
    if layout == "one":
        labels = np.eye(5, 7)
    else:
        labels = np.zeros((5, 7))
        labels[0, [0, 3]] = 1
        labels[1, [1, 2, 6]] = 1
        labels[2, 5] = 1
        labels[4, [0, 1]] = 1  # row 3 has no positive: contributes 0
    return labels, scores


def tf_losses_and_grads(loss_obj, labels, scores, dtype):
    y_pred = tf.Variable(tf.constant(scores, dtype))
    with tf.GradientTape() as tape:
        values = loss_obj(tf.constant(labels, tf.float32), y_pred)
        total = tf.reduce_sum(values)
    grad = tape.gradient(total, y_pred)
    assert values.dtype == tf.float32
    assert grad.dtype == dtype
    return values.numpy(), grad.numpy().astype(np.float64)
