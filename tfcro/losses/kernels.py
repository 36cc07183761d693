"""Comparison kernels ``phi`` of CROLoss for the Keras 2 losses (``tfcro.kernels``).

The kernels themselves are :mod:`tfcro.core.kernels` (one definition for Keras 2 and
Keras 3); this module registers them under package ``tfcro`` with Keras 2 (tf-keras)
and resolves and serialises them with tf-keras's functions (:func:`get`,
:func:`serialize`). Custom kernels are a :class:`Kernel` subclass or an elementwise
callable ``phi(x) -> tensor``, registered with
``tf.keras.utils.register_keras_serializable``.
"""

from tfcro._compat import keras, register
from tfcro.core.kernels import *  # noqa: F403  (the kernels themselves)
from tfcro.core.kernels import __all__ as _KERNELS_ALL
from tfcro.core.kernels import keras_bindings

get, serialize = keras_bindings(keras.utils, register)

__all__ = [*_KERNELS_ALL, "get", "serialize"]
