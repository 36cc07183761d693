"""tfcro: CROLoss (Customizable Recall@N Optimization Loss) for TensorFlow/Keras retrieval.

Two faces:

- ``tfcro.CROLoss`` & co. are Keras 2 (tf-keras) losses, which TensorFlow
  Recommenders needs. ``import tfcro`` before TensorFlow: it sets
  ``TF_USE_LEGACY_KERAS=1`` (when TensorFlow is not loaded yet and the variable is
  unset) so that ``tf.keras`` is Keras 2. TensorFlow itself loads on first use of a
  Keras 2 part (``tfcro.CROLoss``, ``tfcro.models``, ...).
- ``tfcro.keras3`` holds the same losses for Keras 3 on TensorFlow, JAX or PyTorch; it
  needs no TensorFlow, and importing it takes back the ``TF_USE_LEGACY_KERAS`` that
  ``import tfcro`` set.
"""

import os as _os
import sys as _sys

from tfcro._lazy import lazy_getattr
from tfcro.version import __version__

#: True while the ``TF_USE_LEGACY_KERAS=1`` in the environment is the one this import set.
_SET_LEGACY_KERAS = "tensorflow" not in _sys.modules and "TF_USE_LEGACY_KERAS" not in _os.environ
if _SET_LEGACY_KERAS:
    _os.environ["TF_USE_LEGACY_KERAS"] = "1"

# Everything else loads on first use: the Keras 2 losses (and TensorFlow with them), the
# heavier parts (TFRS, pandas, ScaNN), and the loss math's short module names
# (`tfcro.kernels` is `tfcro.losses.kernels`, ...).
_SUBMODULES = (
    "core",
    "data",
    "evaluation",
    "keras3",
    "layers",
    "losses",
    "models",
    "sampling",
    "serving",
    "training",
    "kernels",
    "pairwise",
    "ranking",
    "weighting",
)
_LAZY = {
    "WORKING_SET": "_compat",
    "check_versions": "_compat",
    "RetrievalLoss": "losses",
    "CROLoss": "losses",
    "LambdaCROLoss": "losses",
    "SoftmaxLoss": "losses",
    "BPRLoss": "losses",
    "TripletLoss": "losses",
    "PSLLoss": "losses",
    "SLatKLoss": "losses",
    "BSLLoss": "losses",
    "TwoTowerModel": "models",
    "TwoTowerConfig": "models",
    "evaluate": "evaluation",
    "Retriever": "serving",
    "export_model": "serving",
}


__getattr__ = lazy_getattr("tfcro", _LAZY, _SUBMODULES)


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = ["__version__", *_LAZY, *_SUBMODULES]
