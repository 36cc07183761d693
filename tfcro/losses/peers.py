"""The recall-oriented softmax variants beside CROLoss, PSL, SL@K and BSL, as Keras 2
losses (definitions, formulas and references: :mod:`tfcro.core.definitions`).
"""

from __future__ import annotations

from tfcro._compat import register
from tfcro.core import definitions
from tfcro.losses.base import RetrievalLoss


@register
class PSLLoss(definitions.PSL, RetrievalLoss):
    __doc__ = definitions.PSL.__doc__


@register
class SLatKLoss(definitions.SLatK, RetrievalLoss):
    __doc__ = definitions.SLatK.__doc__


@register
class BSLLoss(definitions.BSL, RetrievalLoss):
    __doc__ = definitions.BSL.__doc__
