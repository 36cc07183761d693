"""The power weighting of CROLoss (paper section 3.3, eq. 10-16).

The importance of Recall@x is the density ``w(x) = c_alpha * x^(-alpha)`` on
``[1, N + 1]``; the loss transform is its integral

- ``alpha != 1``: ``F(x) = c_alpha * (x^(1 - alpha) - 1) / (1 - alpha)``
- ``alpha == 1``: ``F(x) = log(x)``

with ``c_alpha = (1 - alpha) log(N + 1) / ((N + 1)^(1 - alpha) - 1)`` so that
``F(N + 1) = log(N + 1)`` for every alpha (``c_1 = 1``).

All functions take the rank in log space, ``log_rank = log(r_hat)``, which is
how the losses carry it: ``r_hat`` itself overflows float32 for the exponential
kernel at score gaps above ~88. ``ops`` is an op namespace (:mod:`tfcro.core.ops`).
"""

from __future__ import annotations


def _is_one(alpha: float) -> bool:
    return float(alpha) == 1.0


def weight_constant(ops, alpha: float, num_items):
    """``c_alpha`` for catalog size(s) ``num_items`` (any shape, float)."""
    num_items = ops.to_float32(num_items)
    if _is_one(alpha):
        return ops.ones_like(num_items)
    t = (1.0 - float(alpha)) * ops.log1p(num_items)
    # t == 0 only when N == 0 (a row without negatives): the limit t / expm1(t) -> 1.
    zero = ops.equal(t, 0.0)
    t_safe = ops.where(zero, ops.ones_like(t), t)
    return ops.where(zero, ops.ones_like(t), t_safe / ops.expm1(t_safe))


def transform(ops, log_rank, alpha: float, num_items):
    """``F(r_hat)`` from ``log(r_hat)``."""
    if _is_one(alpha):
        return log_rank
    one_minus = 1.0 - float(alpha)
    c = weight_constant(ops, alpha, num_items)
    return c * ops.expm1(one_minus * log_rank) / one_minus


def log_weight(ops, log_rank, alpha: float, num_items):
    """``log w(r_hat) = log(c_alpha) - alpha * log(r_hat)``."""
    return ops.log(weight_constant(ops, alpha, num_items)) - float(alpha) * log_rank
