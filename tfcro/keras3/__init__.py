"""tfcro's losses for Keras 3 (``keras.losses.Loss``, ``keras.ops``): TensorFlow, JAX or
PyTorch backend, no TensorFlow needed.

>>> import os; os.environ.setdefault("KERAS_BACKEND", "jax")  # doctest: +SKIP
>>> import tfcro.keras3 as cro
>>> model.compile(optimizer="adam", loss=cro.LambdaCROLoss(alpha=1.2))  # doctest: +SKIP

Same names, arguments, checks and math as the Keras 2 losses of ``tfcro`` (one
definition of each: :mod:`tfcro.core.definitions`); ``reduction`` takes Keras 3's
values (``"sum_over_batch_size"`` by default, ``"sum"``, ``"mean"``, ``"none"``). The
losses and kernels are registered with ``keras.saving`` under package ``tfcro``, so
``.keras`` files restore them. Importing this module never loads TensorFlow (unless
the Keras backend is TensorFlow) and takes back the ``TF_USE_LEGACY_KERAS=1`` that
``import tfcro`` set; imported before ``keras`` or after, it works the same.

For keras-rs retrieval models: :class:`RemoveAccidentalHits` masks a batch's accidental
hits so that these losses treat them as absent candidates (keras-rs 0.4.0's own layer
leaves the logits unchanged); :class:`TwoTowerRetrieval`, a two-tower model on keras-rs
layers (``BruteForceRetrieval``, ``SamplingProbabilityCorrection``) trained with these
losses; :func:`evaluate` and :class:`RankingEvaluation` (validation, early stopping) for it.
"""

import os as _os

import tfcro as _tfcro

# Once TensorFlow is loaded the variable has done its work either way (`tf.keras` is
# fixed for the process), so it goes whenever tfcro set it: Keras 3 and the processes
# this one starts see the environment the user had.
if _tfcro._SET_LEGACY_KERAS:
    _os.environ.pop("TF_USE_LEGACY_KERAS", None)
    _tfcro._SET_LEGACY_KERAS = False

import keras  # noqa: E402

if not keras.__version__.startswith("3."):
    raise ImportError(
        f"tfcro.keras3 needs Keras 3 (`import keras` gives Keras {keras.__version__}); "
        "install keras>=3 (pip install 'tfcro[keras3]')."
    )

from tfcro.keras3.evaluation import RankingEvaluation, evaluate  # noqa: E402
from tfcro.keras3.kernels import (  # noqa: E402
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
from tfcro.keras3.losses import (  # noqa: E402
    LOSSES,
    OPTIONS,
    BPRLoss,
    BSLLoss,
    CROLoss,
    LambdaCROLoss,
    PSLLoss,
    RetrievalLoss,
    SLatKLoss,
    SoftmaxLoss,
    TripletLoss,
    get,
)
from tfcro.keras3.retrieval import RemoveAccidentalHits  # noqa: E402


def __getattr__(name):
    if name == "TwoTowerRetrieval":  # needs keras-rs: loaded on first use
        from tfcro.keras3.models import TwoTowerRetrieval

        return TwoTowerRetrieval
    raise AttributeError(f"module 'tfcro.keras3' has no attribute {name!r}")


__all__ = [
    "LOSSES",
    "OPTIONS",
    "RetrievalLoss",
    "CROLoss",
    "LambdaCROLoss",
    "SoftmaxLoss",
    "BPRLoss",
    "TripletLoss",
    "PSLLoss",
    "SLatKLoss",
    "BSLLoss",
    "get",
    "KERNELS",
    "GRADIENT_KERNELS",
    "Kernel",
    "UnitStep",
    "Sigmoid",
    "Softplus",
    "Exponential",
    "Hinge",
    "CallableKernel",
    "RemoveAccidentalHits",
    "TwoTowerRetrieval",
    "RankingEvaluation",
    "evaluate",
]
