"""CROLoss and its lambda method as Keras 2 losses (definitions: :mod:`tfcro.core.definitions`)."""

from __future__ import annotations

from tfcro._compat import register
from tfcro.core import definitions
from tfcro.losses.base import RetrievalLoss


@register
class CROLoss(definitions.CRO, RetrievalLoss):
    __doc__ = definitions.CRO.__doc__


@register
class LambdaCROLoss(definitions.LambdaCRO, RetrievalLoss):
    __doc__ = definitions.LambdaCRO.__doc__
