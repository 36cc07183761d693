"""Base class of tfcro's Keras 2 losses: the Keras ``Loss`` around a loss definition."""

from __future__ import annotations

from tfcro._compat import keras
from tfcro.core import engine, tf_ops
from tfcro.core.definitions import Definition, check_num_items


class RetrievalLoss(Definition, keras.losses.Loss):
    """A Keras 2 loss over ``[B, C]`` score matrices with 0/1 labels, one row per query.

    The loss's own arguments, their checks and its math are its definition in
    :mod:`tfcro.core.definitions` (shared with :mod:`tfcro.keras3`); this class runs it
    with TensorFlow and returns the ``[B]`` row losses that Keras then weights and
    reduces. A custom loss subclasses it and implements :meth:`positive_loss` (a
    ``[B]`` loss of one positive per row from its scaled gaps ``[B, C]``, in TensorFlow).

    Args:
      scale: multiplies every score difference (``rho`` of the paper; TFRS's
        ``temperature`` is ``1 / scale``). Must be > 0.
      reduction: a ``tf.keras.losses.Reduction``; ``"none"`` returns ``[B]``.
      name: the loss name (default: the class's ``default_name``).
    """

    ops = tf_ops
    loop = staticmethod(engine.tensorflow_loop)
    saving = keras.utils
    default_reduction = keras.losses.Reduction.AUTO

    def __init__(self, *args, reduction=keras.losses.Reduction.AUTO, name=None, **kwargs):
        keras.losses.Loss.__init__(self, reduction=reduction, name=name or self.default_name)
        self.define(*args, **kwargs)

    __init__.passes_to_define = True  # the signature shown is define's (Definition)


__all__ = ["RetrievalLoss", "check_num_items"]
