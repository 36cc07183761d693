"""The tuning search space of the recipe: what is searched, over which range, for which
losses. No framework: the Optuna studies of :mod:`tfcro.experiments.tuning` (Keras 2) and
the random search of ``benchmarks/keras3_leaderboard.py`` (Keras 3, any backend) draw
from the same space.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

#: The searched settings: ``name -> (low, high, log scale)`` for numbers, a tuple of
#: choices for categories; ``losses`` limits a setting to those losses. The negatives are
#: part of the recipe: in-batch negatives on or off (they are popularity-sampled), the
#: logQ correction, and the number of uniform negatives per batch.
SEARCH_SPACE: dict[str, dict[str, Any]] = {
    "learning_rate": {"range": (2e-3, 5e-2), "log": True},
    "embedding_l2": {"range": (1e-6, 1e-1), "log": True},
    "scale": {"range": (5.0, 25.0), "log": True},
    "logq_correction": {"choices": (False, True)},
    "in_batch_negatives": {"choices": (True, False)},
    "num_negatives": {"choices": (512, 1024, 2048)},
    "alpha": {"range": (0.6, 1.6), "log": False, "losses": ("cro", "cro-lambda")},
    "kernel": {"choices": ("softplus", "sigmoid"), "losses": ("cro", "cro-lambda")},
    "weight_tau": {"range": (0.5, 3.0), "log": False, "losses": ("sl-at-k",)},
    "temperature_ratio": {"range": (0.7, 1.5), "log": False, "losses": ("bsl",)},
    "surrogate": {"choices": ("tanh", "atan", "relu"), "losses": ("psl",)},
}
MODEL_SETTINGS = (
    "embedding_l2",
    "scale",
    "logq_correction",
    "in_batch_negatives",
    "num_negatives",
)
LOSS_SETTINGS = ("alpha", "kernel", "weight_tau", "temperature_ratio", "surrogate")


def space_for(loss: str, space: Mapping[str, Mapping[str, Any]] = SEARCH_SPACE) -> dict:
    """The part of ``space`` that applies to ``loss``."""
    return {k: v for k, v in space.items() if loss in v.get("losses", (loss,))}


def sample(
    loss: str, rng: np.random.Generator, space: Mapping[str, Mapping[str, Any]] = SEARCH_SPACE
) -> dict[str, Any]:
    """One random draw of ``space`` for ``loss`` (random search): categories uniformly,
    numbers uniformly on their (log) range, in the space's order.

    >>> sorted(sample("softmax", np.random.default_rng(0)))[:3]
    ['embedding_l2', 'in_batch_negatives', 'learning_rate']
    """
    params: dict[str, Any] = {}
    for name, spec in space_for(loss, space).items():
        if "choices" in spec:
            choices = list(spec["choices"])
            params[name] = choices[int(rng.integers(len(choices)))]
        else:
            low, high = spec["range"]
            if spec.get("log", False):
                params[name] = float(math.exp(rng.uniform(math.log(low), math.log(high))))
            else:
                params[name] = float(rng.uniform(low, high))
    return params
