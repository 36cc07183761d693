"""The comparison kernels of :mod:`tfcro.core.kernels`, registered with Keras 3 under
package ``tfcro`` and resolved and serialised with ``keras.saving`` (:func:`get`,
:func:`serialize`).
"""

import keras

from tfcro.core.kernels import *  # noqa: F403  (the kernels themselves)
from tfcro.core.kernels import __all__ as _KERNELS_ALL
from tfcro.core.kernels import keras_bindings

get, serialize = keras_bindings(
    keras.saving, keras.saving.register_keras_serializable(package="tfcro")
)

__all__ = [*_KERNELS_ALL, "get", "serialize"]
