"""The op namespace of :mod:`tfcro.core.ops` in ``keras.ops`` (Keras 3, any backend:
TensorFlow, JAX, PyTorch), behind :mod:`tfcro.keras3`.
"""

from keras import ops as _ops

NEG_INF = float("-inf")

log = _ops.log
exp = _ops.exp
log1p = _ops.log1p
expm1 = _ops.expm1
softplus = _ops.softplus
log_sigmoid = _ops.log_sigmoid
sigmoid = _ops.sigmoid
relu = _ops.relu
arctan = _ops.arctan
ceil = _ops.ceil
isfinite = _ops.isfinite
logical_and = _ops.logical_and
logical_not = _ops.logical_not
equal = _ops.equal
greater = _ops.greater
maximum = _ops.maximum
minimum = _ops.minimum
where = _ops.where
stop_gradient = _ops.stop_gradient
zeros_like = _ops.zeros_like
ones_like = _ops.ones_like
squeeze = _ops.squeeze
cumsum = _ops.cumsum
take_along_axis = _ops.take_along_axis
shape = _ops.shape


def sum(x, axis=None, keepdims=False):  # noqa: A001 - the namespace's name
    return _ops.sum(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001
    return _ops.max(x, axis=axis, keepdims=keepdims)


def any(x, axis=None, keepdims=False):  # noqa: A001
    return _ops.any(x, axis=axis, keepdims=keepdims)


def argmax(x, axis):
    return _ops.cast(_ops.argmax(x, axis=axis), "int32")


def top_k_values(x, k):
    return _ops.top_k(x, k, sorted=True)[0]


def arange(n):
    return _ops.arange(n, dtype="int32")


def eye(rows, cols):
    return _ops.eye(rows, cols, dtype="float32")


def full_like(x, value):
    return _ops.full_like(x, value)


def float32(x):
    return _ops.cast(x, "float32")


def int32(x):
    return _ops.cast(x, "int32")


def to_float32(x):
    return _ops.cast(_ops.convert_to_tensor(x), "float32")
