"""Base class of tfcro's Keras losses: validation, the call contract, serialization."""

from __future__ import annotations

from typing import Any

from tfcro._compat import keras, tf
from tfcro.losses.pairwise import row_losses
from tfcro.validation import check_float, is_integer


def check_num_items(value: Any) -> int | None:
    """``num_items`` is None (rank among the candidates) or a catalog size >= 1."""
    if value is None:
        return None
    whole = is_integer(value) or (isinstance(value, float) and value.is_integer())
    if not whole or value < 1:
        raise ValueError(
            "`num_items` should be None (rank among the sampled candidates) or the catalog "
            f"size, an integer >= 1. Received: num_items={value!r}"
        )
    return int(value)


class RetrievalLoss(keras.losses.Loss):
    """A loss over ``[B, C]`` score matrices with 0/1 labels, one row per query.

    Subclasses implement :meth:`positive_loss`; this class applies it to every
    positive of every row through :func:`tfcro.losses.pairwise.row_losses` and returns
    the ``[B]`` row losses that Keras then weights and reduces.

    Args:
      scale: multiplies every score difference (``rho`` of the paper; TFRS's
        ``temperature`` is ``1 / scale``). Must be > 0.
      reduction: a ``tf.keras.losses.Reduction``; ``"none"`` returns ``[B]``.
      name: the loss name (default: the class's ``default_name``).
    """

    #: The loss's ``name`` when none is given.
    default_name = "retrieval_loss"

    def __init__(
        self, scale: float = 1.0, reduction=keras.losses.Reduction.AUTO, name: str | None = None
    ):
        super().__init__(reduction=reduction, name=name or self.default_name)
        self.scale = check_float("scale", scale, minimum=0.0, strict=True)

    def positive_loss(
        self, gaps: tf.Tensor, negatives: tf.Tensor, num_negatives: tf.Tensor
    ) -> tf.Tensor:
        """``[B]`` loss of one positive per row from its scaled gaps ``[B, C]``."""
        raise NotImplementedError

    def call(self, y_true, y_pred):
        return row_losses(y_true, y_pred, self.positive_loss, self.scale)

    def diagonal_call(self, y_pred: tf.Tensor) -> tf.Tensor:
        """``[B]`` row losses of ``y_pred [B, C]`` whose labels are ``tf.eye(B, C)`` (a
        retrieval batch: row ``b``'s positive is column ``b``). Subclasses may compute
        it faster than :meth:`call`; the values are the same.
        """
        y_pred = tf.convert_to_tensor(y_pred)
        shape = tf.shape(y_pred)
        return self.call(tf.eye(shape[0], shape[1], dtype=tf.float32), y_pred)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["scale"] = self.scale
        return config
