"""Independent plain-Python loop reference of the peer losses (PSL, SL@K, BSL), float64.

Written from the formulas of the papers and the authors' code as described in
:mod:`tfcro.losses.peers` (no code shared with tfcro), with analytic gradients.
``y`` are the loss's inputs; ``z = scale * y``; ``outer = scale * input_scale`` turns
raw score differences into gaps.
"""

from __future__ import annotations

import math

import numpy as np

ABSENT = -1e30


def _lse(values):
    values = [v for v in values if v != -math.inf]
    if not values:
        return -math.inf
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _softmax(values):
    total = _lse(values)
    return [math.exp(v - total) if v != -math.inf else 0.0 for v in values]


def psl_sigma(name: str, d: float) -> float:
    if name == "tanh":
        return math.log(1.0 + math.tanh(d)) if d > -15 else math.log(2.0) - 2.0 * abs(d)
    inner = 1.0 + (math.atan(d) if name == "atan" else d)
    if name == "relu":
        inner = max(0.0, inner)
    return math.log(inner) if inner > 0 else -math.inf


def psl_dsigma(name: str, d: float) -> float:
    if name == "tanh":
        return 1.0 - math.tanh(d)
    if name == "atan":
        inner = 1.0 + math.atan(d)
        return 1.0 / ((1.0 + d * d) * inner) if inner > 0 else 0.0
    return 1.0 / (1.0 + d) if 1.0 + d > 0 else 0.0


def _rows(y_true, y_pred):
    y_true = np.asarray(y_true, np.float64)
    y_pred = np.asarray(y_pred, np.float64)
    for b in range(y_pred.shape[0]):
        present = [c for c in range(y_pred.shape[1]) if y_pred[b, c] > ABSENT]
        pos = [c for c in present if y_true[b, c] > 0.5]
        neg = [c for c in present if y_true[b, c] <= 0.5]
        yield b, present, pos, neg


def psl(y_true, y_pred, *, surrogate="tanh", tau=2.0, scale=1.0, input_scale=1.0):
    """(losses [B], d sum / d y_pred) of PSL: mean over positives of
    ``log sum_j exp(outer * sigma(scale (y_j - y_i) / (outer tau)))``."""
    y_pred = np.asarray(y_pred, np.float64)
    losses, grads = np.zeros(len(y_pred)), np.zeros_like(y_pred)
    outer = scale * input_scale
    for b, _, pos, neg in _rows(y_true, y_pred):
        for i in pos:
            d = {j: scale * (y_pred[b, j] - y_pred[b, i]) / (outer * tau) for j in neg}
            terms = [outer * psl_sigma(surrogate, d[j]) for j in neg]
            loss = _lse(terms)
            if loss == -math.inf:
                continue
            weights = _softmax(terms)
            losses[b] += loss / len(pos)
            for weight, j in zip(weights, neg, strict=True):
                g = weight * outer * psl_dsigma(surrogate, d[j]) * scale / (outer * tau)
                grads[b, j] += g / len(pos)
                grads[b, i] -= g / len(pos)
    return losses, grads


def kth_largest_beta(z_row, present, top_k, num_items):
    values = sorted((z_row[c] for c in present), reverse=True)
    count = len(values)
    if num_items is None:
        k = top_k
    else:
        k = math.ceil(top_k * count / num_items)
    k = max(1, min(k, top_k, count))
    return values[k - 1]


def slatk(y_true, y_pred, *, top_k=20, weight_tau=1.0, scale=1.0, input_scale=1.0, num_items=None):
    """(losses, grads) of SL@K: mean over positives of
    ``sigmoid((z_i - beta) / (outer tau_w)) * log sum_j exp(z_j - z_i)``, beta constant."""
    y_pred = np.asarray(y_pred, np.float64)
    losses, grads = np.zeros(len(y_pred)), np.zeros_like(y_pred)
    outer = scale * input_scale
    for b, present, pos, neg in _rows(y_true, y_pred):
        if not pos or not neg:
            continue
        z = scale * y_pred[b]
        beta = kth_largest_beta(z, present, top_k, num_items)
        for i in pos:
            t = (z[i] - beta) / (outer * weight_tau)
            w = 1.0 / (1.0 + math.exp(-t))
            gaps = [z[j] - z[i] for j in neg]
            main = _lse(gaps)
            losses[b] += w * main / len(pos)
            soft = _softmax(gaps)
            dw = w * (1.0 - w) / (outer * weight_tau)
            grads[b, i] += scale * (dw * main - w) / len(pos)
            for p, j in zip(soft, neg, strict=True):
                grads[b, j] += scale * w * p / len(pos)
    return losses, grads


def bsl(y_true, y_pred, *, ratio=1.0, scale=1.0):
    """(losses, grads) of BSL: ``-log mean_P exp(z_i) + ratio * log sum_J exp(z_j / ratio)``."""
    y_pred = np.asarray(y_pred, np.float64)
    losses, grads = np.zeros(len(y_pred)), np.zeros_like(y_pred)
    for b, _, pos, neg in _rows(y_true, y_pred):
        if not pos or not neg:
            continue
        z = scale * y_pred[b]
        pos_term = _lse([z[i] for i in pos]) - math.log(len(pos))
        neg_term = ratio * _lse([z[j] / ratio for j in neg])
        losses[b] = neg_term - pos_term
        for p, i in zip(_softmax([z[i] for i in pos]), pos, strict=True):
            grads[b, i] -= scale * p
        for p, j in zip(_softmax([z[j] / ratio for j in neg]), neg, strict=True):
            grads[b, j] += scale * p
    return losses, grads
