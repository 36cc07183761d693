"""The op namespace of :mod:`tfcro.core.ops` in TensorFlow (behind the Keras 2 losses).

Imports TensorFlow only: never ``tfcro._compat``, so a Keras 3 process on the
TensorFlow backend can use it too.
"""

import tensorflow as tf

NEG_INF = float("-inf")

log = tf.math.log
exp = tf.exp
log1p = tf.math.log1p
expm1 = tf.math.expm1
softplus = tf.math.softplus
log_sigmoid = tf.math.log_sigmoid
sigmoid = tf.math.sigmoid
relu = tf.nn.relu
arctan = tf.math.atan
ceil = tf.math.ceil
isfinite = tf.math.is_finite
logical_and = tf.logical_and
logical_not = tf.logical_not
equal = tf.equal
greater = tf.greater
maximum = tf.maximum
minimum = tf.minimum
where = tf.where
stop_gradient = tf.stop_gradient
zeros_like = tf.zeros_like
ones_like = tf.ones_like
squeeze = tf.squeeze


def sum(x, axis=None, keepdims=False):  # noqa: A001 - the namespace's name
    return tf.reduce_sum(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001
    return tf.reduce_max(x, axis=axis, keepdims=keepdims)


def any(x, axis=None, keepdims=False):  # noqa: A001
    return tf.reduce_any(x, axis=axis, keepdims=keepdims)


def cumsum(x, axis):
    return tf.cumsum(x, axis=axis)


def argmax(x, axis):
    return tf.argmax(x, axis=axis, output_type=tf.int32)


def take_along_axis(x, indices, axis):
    batched = x.shape.rank == 2 and indices.shape.rank == 2 and indices.shape[0] != 1
    if axis in (1, -1) and batched:
        # a batched gather: no shape broadcasting, so XLA compiles it with dynamic sizes
        return tf.gather(x, indices, axis=1, batch_dims=1)
    return tf.experimental.numpy.take_along_axis(x, indices, axis=axis)


def top_k_values(x, k):
    return tf.math.top_k(x, k=k, sorted=True).values


def arange(n):
    return tf.range(n)


def eye(rows, cols):
    return tf.eye(rows, cols, dtype=tf.float32)


def shape(x):
    """Static sizes where known, else scalar tensors."""
    static = x.shape.as_list()
    dynamic = tf.shape(x)
    return tuple(dynamic[i] if size is None else size for i, size in enumerate(static))


def full_like(x, value):
    return tf.fill(tf.shape(x), tf.cast(value, x.dtype))


def float32(x):
    return tf.cast(x, tf.float32)


def int32(x):
    return tf.cast(x, tf.int32)


def to_float32(x):
    return tf.cast(tf.convert_to_tensor(x), tf.float32)
