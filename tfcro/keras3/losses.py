"""tfcro's losses as Keras 3 losses: the definitions of :mod:`tfcro.core.definitions` run
with ``keras.ops`` (:mod:`tfcro.core.keras_ops`) on the active backend.
"""

from __future__ import annotations

from typing import Any

import keras

from tfcro.core import definitions, engine, keras_ops
from tfcro.keras3 import kernels  # noqa: F401  (registers the kernels with Keras 3)


def _backend_loop(*args):
    """The loop over further positives of the active backend (:data:`tfcro.core.engine.LOOPS`)."""
    backend = keras.backend.backend()
    if backend not in engine.LOOPS:
        raise ValueError(
            f"tfcro.keras3 supports the Keras backends {sorted(engine.LOOPS)}. "
            f"Received: KERAS_BACKEND={backend!r}"
        )
    return engine.LOOPS[backend](*args)


class RetrievalLoss(definitions.Definition, keras.losses.Loss):
    """A Keras 3 loss over ``[B, C]`` score matrices with 0/1 labels, one row per query.

    The loss's own arguments, their checks and its math are its definition in
    :mod:`tfcro.core.definitions` (shared with the Keras 2 losses of :mod:`tfcro`);
    this class runs it with ``keras.ops`` and returns the ``[B]`` row losses that Keras
    then weights and reduces. A custom loss subclasses it and implements
    :meth:`positive_loss` with ``keras.ops``.

    Args:
      scale: multiplies every score difference. Must be > 0.
      reduction: Keras 3's: ``"sum_over_batch_size"`` (default), ``"sum"``,
        ``"mean"``, ``"mean_with_sample_weight"`` or ``"none"`` (the ``[B]`` row losses).
      name: the loss name (default: the class's ``default_name``).
    """

    ops = keras_ops
    loop = staticmethod(_backend_loop)
    saving = keras.saving
    default_reduction = "sum_over_batch_size"

    def __init__(self, *args, reduction="sum_over_batch_size", name=None, **kwargs):
        keras.losses.Loss.__init__(self, name=name or self.default_name, reduction=reduction)
        self.define(*args, **kwargs)

    __init__.passes_to_define = True  # the signature shown is define's (Definition)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("dtype", None)
        return cls(**config)


def _register(cls):
    return keras.saving.register_keras_serializable(package="tfcro")(cls)


@_register
class CROLoss(definitions.CRO, RetrievalLoss):
    __doc__ = definitions.CRO.__doc__


@_register
class LambdaCROLoss(definitions.LambdaCRO, RetrievalLoss):
    __doc__ = definitions.LambdaCRO.__doc__


@_register
class SoftmaxLoss(definitions.Softmax, RetrievalLoss):
    __doc__ = definitions.Softmax.__doc__


@_register
class BPRLoss(definitions.BPR, RetrievalLoss):
    __doc__ = definitions.BPR.__doc__


@_register
class TripletLoss(definitions.Triplet, RetrievalLoss):
    __doc__ = definitions.Triplet.__doc__


@_register
class PSLLoss(definitions.PSL, RetrievalLoss):
    __doc__ = definitions.PSL.__doc__


@_register
class SLatKLoss(definitions.SLatK, RetrievalLoss):
    __doc__ = definitions.SLatK.__doc__


@_register
class BSLLoss(definitions.BSL, RetrievalLoss):
    __doc__ = definitions.BSL.__doc__


#: Names accepted by :func:`get` (the names of ``tfcro.losses.get``).
LOSSES: dict[str, type[RetrievalLoss]] = {
    name: globals()[cls_name] for name, cls_name in definitions.CLASS_NAMES.items()
}
#: The options each loss of :func:`get` takes.
OPTIONS = dict(definitions.OPTIONS)


def get(name: str, **options: Any) -> RetrievalLoss:
    """Builds a loss by name; options a loss does not take are ignored (as
    :func:`tfcro.losses.get`).
    """
    return definitions.build(LOSSES, name, **options)
