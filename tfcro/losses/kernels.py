"""Comparison kernels ``phi`` of CROLoss for the Keras 2 losses (``tfcro.kernels``).

The kernels themselves are :mod:`tfcro.core.kernels` (one definition for Keras 2 and
Keras 3); this module registers them under package ``tfcro`` with Keras 2 (tf-keras)
and resolves and serialises them with tf-keras's functions. Custom kernels are a
:class:`Kernel` subclass or an elementwise callable ``phi(x) -> tensor``, registered
with ``tf.keras.utils.register_keras_serializable``.
"""

from __future__ import annotations

import functools

from tfcro._compat import keras
from tfcro.core import kernels as _core
from tfcro.core.kernels import (
    GRADIENT_KERNELS,
    KERNELS,
    CallableKernel,
    Exponential,
    Hinge,
    Kernel,
    Sigmoid,
    Softplus,
    UnitStep,
    check_margin,
)

for _cls in _core.REGISTERED:
    keras.utils.register_keras_serializable(package="tfcro")(_cls)
del _cls

#: :func:`tfcro.core.kernels.get` with Keras 2's serialisation.
get = functools.partial(_core.get, saving=keras.utils)
functools.update_wrapper(get, _core.get)
#: :func:`tfcro.core.kernels.serialize` with Keras 2's serialisation.
serialize = functools.partial(_core.serialize, saving=keras.utils)
functools.update_wrapper(serialize, _core.serialize)

__all__ = [
    "KERNELS",
    "GRADIENT_KERNELS",
    "Kernel",
    "UnitStep",
    "Sigmoid",
    "Softplus",
    "Exponential",
    "Hinge",
    "CallableKernel",
    "check_margin",
    "get",
    "serialize",
]
