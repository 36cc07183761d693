"""Baseline losses under the same call contract as CROLoss, as Keras 2 losses
(definitions: :mod:`tfcro.core.definitions`).
"""

from __future__ import annotations

from tfcro._compat import register
from tfcro.core import definitions
from tfcro.losses import functional
from tfcro.losses.base import RetrievalLoss


@register
class SoftmaxLoss(definitions.Softmax, RetrievalLoss):
    __doc__ = definitions.Softmax.__doc__

    def diagonal_call(self, y_pred):
        overridden = type(self).call is not definitions.Definition.call or (
            type(self).row_losses is not SoftmaxLoss.row_losses
            or type(self).positive_loss is not SoftmaxLoss.positive_loss
        )
        if overridden:  # a subclass's own math is honoured
            return super().diagonal_call(y_pred)
        return functional.softmax_diagonal_loss(y_pred, self.scale)


@register
class BPRLoss(definitions.BPR, RetrievalLoss):
    __doc__ = definitions.BPR.__doc__


@register
class TripletLoss(definitions.Triplet, RetrievalLoss):
    __doc__ = definitions.Triplet.__doc__
