"""tfcro: CROLoss (Customizable Recall@N Optimization Loss) for TensorFlow/Keras retrieval.

``import tfcro`` before TensorFlow: it sets ``TF_USE_LEGACY_KERAS=1`` so that
``tf.keras`` is Keras 2 (tf-keras), which TensorFlow Recommenders needs.
"""

from tfcro import kernels, ranking, weighting
from tfcro._compat import WORKING_SET, check_versions
from tfcro.losses import (
    BPRLoss,
    CROLoss,
    LambdaCROLoss,
    RetrievalLoss,
    SoftmaxLoss,
    TripletLoss,
)
from tfcro.version import __version__

check_versions()

__all__ = [
    "__version__",
    "WORKING_SET",
    "check_versions",
    "kernels",
    "ranking",
    "weighting",
    "RetrievalLoss",
    "CROLoss",
    "LambdaCROLoss",
    "SoftmaxLoss",
    "BPRLoss",
    "TripletLoss",
]
