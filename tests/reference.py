"""Independent plain NumPy/Python-loop reference of the tfcro losses (float64).

Written from the paper's formulas (arXiv:2208.02971, sections 3.3-3.6) directly,
sharing no code with tfcro: kernels, the power weighting with c_alpha in its
textbook form, and the analytic gradients
``dL/dd_j = w(r_hat) R phi'(d_j)`` (CROLoss) and ``w(r_hat_1) R phi_2'(d_j)``
(lambda method).
"""

from __future__ import annotations

import math

import numpy as np

ABSENT = -1e30


def phi(name: str, x: float, margin: float = 1.0) -> float:
    if name == "unit_step":
        return 1.0 if x > 0 else 0.0
    if name == "sigmoid":
        return 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0
    if name == "softplus":
        return math.log1p(math.exp(x)) if x < 30 else x + math.log1p(math.exp(-x))
    if name == "exponential":
        return math.exp(x)
    if name == "hinge":
        return max(0.0, x + margin)
    raise KeyError(name)


def dphi(name: str, x: float, margin: float = 1.0) -> float:
    if name == "unit_step":
        return 0.0
    if name == "sigmoid":
        s = phi("sigmoid", x)
        return s * (1.0 - s)
    if name == "softplus":
        return phi("sigmoid", x)
    if name == "exponential":
        return math.exp(x)
    if name == "hinge":
        return 1.0 if x + margin > 0 else 0.0
    raise KeyError(name)


def c_alpha(alpha: float, n: float) -> float:
    if alpha == 1.0 or n == 0:
        return 1.0
    return (1.0 - alpha) * math.log(n + 1.0) / ((n + 1.0) ** (1.0 - alpha) - 1.0)


def big_f(x: float, alpha: float, n: float) -> float:
    if alpha == 1.0:
        return math.log(x)
    return c_alpha(alpha, n) * (x ** (1.0 - alpha) - 1.0) / (1.0 - alpha)


def w(x: float, alpha: float, n: float) -> float:
    return c_alpha(alpha, n) * x ** (-alpha)


def row_losses_and_grads(
    y_true,
    y_pred,
    *,
    method="cro",
    kernel="softplus",
    weight_kernel="sigmoid",
    alpha=1.0,
    scale=1.0,
    num_items=None,
    margin=1.0,
):
    """Returns (losses [B], d sum(losses) / d y_pred [B, C]) by explicit loops.

    ``method``: "cro", "lambda", "softmax", "bpr" or "triplet".
    """
    y_true = np.asarray(y_true, np.float64)
    y_pred = np.asarray(y_pred, np.float64)
    batch, cols = y_pred.shape
    losses = np.zeros(batch)
    grads = np.zeros((batch, cols))
    for b in range(batch):
        present = [c for c in range(cols) if y_pred[b, c] > ABSENT]
        pos = [c for c in present if y_true[b, c] > 0.5]
        neg = [c for c in present if y_true[b, c] <= 0.5]
        m = len(neg)
        n = m if num_items is None else num_items
        ratio = n / m if m else 0.0
        for i in pos:
            d = {j: scale * (y_pred[b, j] - y_pred[b, i]) for j in neg}
            dl_dd = {}
            if method == "cro":
                r = 1.0 + ratio * sum(phi(kernel, d[j], margin) for j in neg)
                loss = big_f(r, alpha, n)
                for j in neg:
                    dl_dd[j] = w(r, alpha, n) * ratio * dphi(kernel, d[j], margin)
            elif method == "lambda":
                r1 = 1.0 + ratio * sum(phi(weight_kernel, d[j], margin) for j in neg)
                r2 = 1.0 + ratio * sum(phi(kernel, d[j], margin) for j in neg)
                loss = w(r1, alpha, n) * r2
                for j in neg:
                    dl_dd[j] = w(r1, alpha, n) * ratio * dphi(kernel, d[j], margin)
            elif method == "softmax":
                z = 1.0 + sum(math.exp(d[j]) for j in neg)
                loss = math.log(z)
                for j in neg:
                    dl_dd[j] = math.exp(d[j]) / z
            elif method in ("bpr", "triplet"):
                k = "softplus" if method == "bpr" else "hinge"
                loss = sum(phi(k, d[j], margin) for j in neg) / max(m, 1)
                for j in neg:
                    dl_dd[j] = dphi(k, d[j], margin) / max(m, 1)
            else:
                raise KeyError(method)
            losses[b] += loss / len(pos)
            for j, g in dl_dd.items():
                grads[b, j] += scale * g / len(pos)
                grads[b, i] -= scale * g / len(pos)
    return losses, grads
