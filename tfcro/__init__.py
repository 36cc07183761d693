"""tfcro: CROLoss (Customizable Recall@N Optimization Loss) for TensorFlow/Keras retrieval.

``import tfcro`` before TensorFlow: it sets ``TF_USE_LEGACY_KERAS=1`` so that
``tf.keras`` is Keras 2 (tf-keras), which TensorFlow Recommenders needs.
"""

import sys as _sys

from tfcro._compat import WORKING_SET, check_versions
from tfcro.losses import (
    BPRLoss,
    BSLLoss,
    CROLoss,
    LambdaCROLoss,
    PSLLoss,
    RetrievalLoss,
    SLatKLoss,
    SoftmaxLoss,
    TripletLoss,
    kernels,
    pairwise,
    ranking,
    weighting,
)
from tfcro.version import __version__

check_versions()

# The loss math lives in tfcro.losses; its modules keep their short public names
# (`tfcro.kernels`, `from tfcro.kernels import Hinge`, ...) as the same module objects.
for _module in (kernels, pairwise, ranking, weighting):
    _sys.modules[f"tfcro.{_module.__name__.rsplit('.', 1)[1]}"] = _module
del _module

# Heavier parts (TFRS, pandas, ScaNN) load on first use: `tfcro.models`, `tfcro.TwoTowerModel`, ...
_SUBMODULES = ("data", "evaluation", "layers", "models", "sampling", "serving", "training")
_LAZY = {
    "TwoTowerModel": "models",
    "TwoTowerConfig": "models",
    "evaluate": "evaluation",
    "Retriever": "serving",
    "export_model": "serving",
}


def __getattr__(name):
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f"tfcro.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(f"tfcro.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'tfcro' has no attribute {name!r}")


__all__ = [
    "__version__",
    "WORKING_SET",
    "check_versions",
    "kernels",
    "pairwise",
    "ranking",
    "weighting",
    "RetrievalLoss",
    "CROLoss",
    "LambdaCROLoss",
    "SoftmaxLoss",
    "BPRLoss",
    "TripletLoss",
    "PSLLoss",
    "SLatKLoss",
    "BSLLoss",
    *_SUBMODULES,
    *_LAZY,
]
