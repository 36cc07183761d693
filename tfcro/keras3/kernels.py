"""The comparison kernels of :mod:`tfcro.core.kernels`, registered with Keras 3 under
package ``tfcro`` and resolved with ``keras.saving``.
"""

from __future__ import annotations

import functools

import keras

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
)

for _cls in _core.REGISTERED:
    keras.saving.register_keras_serializable(package="tfcro")(_cls)
del _cls

#: :func:`tfcro.core.kernels.get` with Keras 3's serialisation.
get = functools.partial(_core.get, saving=keras.saving)
functools.update_wrapper(get, _core.get)
#: :func:`tfcro.core.kernels.serialize` with Keras 3's serialisation.
serialize = functools.partial(_core.serialize, saving=keras.saving)
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
    "get",
    "serialize",
]
