"""The op namespace the loss math is written against, and how one is picked.

An op namespace is a module with these functions (the ``keras.ops`` meaning, float32
unless said otherwise); :mod:`tfcro.core.tf_ops` and :mod:`tfcro.core.keras_ops`
implement them and a test checks that both define every name.

Elementwise: ``log exp log1p expm1 softplus log_sigmoid sigmoid relu arctan ceil
isfinite logical_and logical_not equal greater maximum minimum where``;
reductions ``sum max any`` (``axis``, ``keepdims``); ``cumsum(x, axis)``,
``argmax(x, axis)`` (int32), ``squeeze(x, axis)``, ``take_along_axis(x, indices,
axis)``, ``top_k_values(x, k)`` (sorted, largest first), ``arange(n)`` (int32),
``eye(rows, cols)``, ``shape(x)`` (a tuple of ints or scalar tensors), ``zeros_like``,
``ones_like``, ``full_like(x, value)``, ``float32(x)`` and ``int32(x)`` (casts),
``to_float32(x)`` (any input to a float32 tensor), ``stop_gradient``; and the
constant ``NEG_INF``.
"""

from __future__ import annotations

import functools
import sys
from types import ModuleType

#: The functions every op namespace defines.
NAMES = (
    "log exp log1p expm1 softplus log_sigmoid sigmoid relu arctan ceil isfinite "
    "logical_and logical_not equal greater maximum minimum where sum max any cumsum argmax "
    "squeeze take_along_axis top_k_values arange eye shape zeros_like ones_like full_like "
    "float32 int32 to_float32 stop_gradient NEG_INF"
).split()


def namespace_for(x) -> ModuleType:
    """The op namespace for tensor ``x``: TensorFlow's for TensorFlow tensors (and for
    NumPy values once TensorFlow is loaded), ``keras.ops`` for every other tensor.

    Kernels use it so that a :class:`~tfcro.core.kernels.Kernel`'s ``value(x)`` keeps
    its one-argument signature on every framework.
    """
    module = type(x).__module__
    if module.startswith("tensorflow") or (
        not module.startswith(("jax", "torch", "keras")) and "tensorflow" in sys.modules
    ):
        from tfcro.core import tf_ops

        return tf_ops
    from tfcro.core import keras_ops

    return keras_ops


def bind(ops: ModuleType, fn):
    """``fn`` with its first argument, the op namespace, fixed to ``ops`` (name and
    docstring kept): how the Keras 2 modules expose the math with TensorFlow.
    """
    bound = functools.partial(fn, ops)
    functools.update_wrapper(bound, fn)
    return bound
