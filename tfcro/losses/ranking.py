"""Rank statistics with TensorFlow (``tfcro.ranking``): the functions of
:mod:`tfcro.core.ranking` with the op namespace bound to :mod:`tfcro.core.tf_ops`.

:func:`rank_estimates` and :func:`exact_ranks` are diagnostics and test oracles
(``[B, C, C]``), not for large ``C``.
"""

from __future__ import annotations

from tfcro._compat import tf  # noqa: F401  (TensorFlow with Keras 2 first)
from tfcro.core import ranking as _core
from tfcro.core import tf_ops
from tfcro.core.ops import bind
from tfcro.losses import kernels as kernels_lib

masked_logsumexp = bind(tf_ops, _core.masked_logsumexp)
log_ratio = bind(tf_ops, _core.log_ratio)
catalog_size = bind(tf_ops, _core.catalog_size)
log_rank_estimate = bind(tf_ops, _core.log_rank_estimate)
exact_ranks = bind(tf_ops, _core.exact_ranks)


def rank_estimates(y_true, y_pred, kernel="sigmoid", scale=1.0, num_items=None, margin=1.0):
    """``[B, C]`` ``r_hat`` of every positive column (0 at non-positive columns); ``kernel``
    is a name, :class:`~tfcro.kernels.Kernel` or callable.
    """
    kernel = kernels_lib.get(kernel, margin=margin)
    return _core.rank_estimates(tf_ops, y_true, y_pred, kernel, scale, num_items)


__all__ = [
    "masked_logsumexp",
    "log_ratio",
    "catalog_size",
    "log_rank_estimate",
    "rank_estimates",
    "exact_ranks",
]
