"""The logQ proposal of a retrieval batch, in plain arithmetic (any array type).

A batch's candidates are one sample from a mixture proposal: ``B_in`` draws from the
item frequencies ``f`` (the in-batch positives, ``B_in = 0`` when in-batch negatives are
off) and ``K`` uniform draws from the ``N`` items. Every candidate ``j`` is corrected
with the mixture's per-draw probability (the balance heuristic of multiple importance
sampling)::

    q_j = (B_in f_j + K / N) / (B_in + K)

In-batch only gives ``q_j = f_j``; uniform only the constant ``1 / N`` (a no-op under
softmax-like losses). Used by the Keras 2 model (:func:`tfcro.sampling.mixture_probability`)
and the Keras 3 one (:class:`tfcro.keras3.TwoTowerRetrieval`).
"""

from __future__ import annotations


def mixture_probability(frequencies, in_batch, num_negatives, num_items):
    """``q`` of candidates with frequencies ``frequencies`` (an array of any framework,
    float32) under ``in_batch`` in-batch draws (a number or a scalar of the same
    framework, float) and ``num_negatives`` uniform draws over ``num_items`` items.
    ``in_batch + num_negatives`` must be positive.

    >>> import numpy as np
    >>> float(mixture_probability(np.float32(0.5), 2.0, 2, 4))  # (2*0.5 + 2/4) / 4
    0.375
    """
    uniform = float(num_negatives) / float(num_items)
    return (in_batch * frequencies + uniform) / (in_batch + float(num_negatives))
