"""tfcro's Keras losses and a factory by name for pipelines and configs."""

from __future__ import annotations

from typing import Any

from tfcro.core import definitions
from tfcro.losses.base import RetrievalLoss
from tfcro.losses.baselines import BPRLoss, SoftmaxLoss, TripletLoss
from tfcro.losses.cro import CROLoss, LambdaCROLoss
from tfcro.losses.peers import BSLLoss, PSLLoss, SLatKLoss

#: Names accepted by :func:`get` (and by ``pipelines.train --loss``).
LOSSES: dict[str, type[RetrievalLoss]] = {
    name: globals()[cls_name] for name, cls_name in definitions.CLASS_NAMES.items()
}

#: The options each loss of :func:`get` takes.
OPTIONS: dict[str, tuple[str, ...]] = dict(definitions.OPTIONS)


def get(name: str, **options: Any) -> RetrievalLoss:
    """Builds a loss by name; options a loss does not take are ignored.

    >>> get("cro-lambda", kernel="softplus", alpha=1.2, scale=10.0, weight_kernel="sigmoid")
    ... # doctest: +ELLIPSIS
    <tfcro.losses.cro.LambdaCROLoss object at ...>
    """
    return definitions.build(LOSSES, name, **options)


__all__ = [
    "LOSSES",
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
]
