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
#: logQ correction, and the number of uniform negatives per batch. Version 1: the space
#: of every leaderboard grid whose ``grid.json`` has no ``search_space`` and of every
#: Optuna study without that user attribute (all made before versions existed).
_SPACE_V1: dict[str, dict[str, Any]] = {
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

#: Version 2: version 1 with CROLoss's exponential kernel among the kernel choices (for
#: CROLoss-lambda, the gradient kernel). Version 1 never drew it, yet at ml-1m's best
#: setting the exponential kernel with alpha 1.2 beat softmax on every seed while the
#: softplus and sigmoid kernels trailed (docs/benchmarks.md, "Which CROLoss kernel and
#: alpha at that setting"). In the leaderboard's random search (the kernel is drawn last,
#: from each loss's own stream) the other settings' draws are version 1's; an Optuna
#: study's later draws differ.
_SPACE_V2: dict[str, dict[str, Any]] = {
    **_SPACE_V1,
    "kernel": {"choices": ("softplus", "sigmoid", "exponential"), "losses": ("cro", "cro-lambda")},
}

#: Version 3: version 2 with 4,096 uniform negatives among the choices. On Yelp2018's
#: 38,048 items, 4,096 shared negatives instead of 512 raised softmax's validation
#: Recall@20 by 4.4% and its test Recall@20 by 3.1% at ml-1m's best setting (seed 0;
#: docs/benchmarks.md, "Do ml-1m's best negatives carry over to Yelp2018?"): versions 1
#: and 2 stop at 2,048. In the leaderboard's random search only ``num_negatives``
#: changes (the last shared draw; a loss's options come from its own stream), and its
#: trials 1-4 draw 512, 1,024, 512, 1,024 (4,096 first at trial 5): put 4,096 in its
#: ``--base`` to be sure of it. An Optuna study's later draws differ.
_SPACE_V3: dict[str, dict[str, Any]] = {
    **_SPACE_V2,
    "num_negatives": {"choices": (512, 1024, 2048, 4096)},
}

#: Every version of the search space. A tuning folder records the version it draws from
#: and keeps it (a space that changed under a grid in progress would change its later
#: draws); a new folder takes :data:`LATEST_SPACE_VERSION`.
SEARCH_SPACES: dict[int, dict[str, dict[str, Any]]] = {1: _SPACE_V1, 2: _SPACE_V2, 3: _SPACE_V3}
LATEST_SPACE_VERSION = max(SEARCH_SPACES)
#: The latest search space.
SEARCH_SPACE: dict[str, dict[str, Any]] = SEARCH_SPACES[LATEST_SPACE_VERSION]


def search_space(version: int, name: str = "search_space") -> dict[str, dict[str, Any]]:
    """The search space of ``version`` (a key of :data:`SEARCH_SPACES`); ``name`` is the
    parameter the caller's user gave it as (for the error).

    >>> search_space(1)["kernel"]["choices"]
    ('softplus', 'sigmoid')
    """
    if isinstance(version, bool) or version not in SEARCH_SPACES:
        raise ValueError(
            f"`{name}` should be one of {sorted(SEARCH_SPACES)}. Received: {name}={version!r}"
        )
    return SEARCH_SPACES[version]


def resolve_version(
    recorded: int | None, requested: int | None, where: str, name: str = "search_space"
) -> int:
    """The space version a tuning folder uses: ``requested`` (``None``: not given) if it
    agrees with ``recorded`` (the folder's, ``None`` for a new folder); a folder keeps
    its version when none is requested, a new one takes the latest. ValueError when a
    request contradicts the folder's record or the record is no version this code has
    (``where`` names the folder, ``name`` the parameter of the request).

    >>> resolve_version(None, None, "new"), resolve_version(1, None, "old")
    (3, 1)
    """
    if requested is not None:
        search_space(requested, name)
    if recorded is None:
        return LATEST_SPACE_VERSION if requested is None else requested
    if isinstance(recorded, bool) or recorded not in SEARCH_SPACES:
        raise ValueError(
            f"{where} records search space version {recorded!r}, which this code does not "
            f"have (versions: {sorted(SEARCH_SPACES)}); run it with the code that started it"
        )
    if requested is not None and requested != recorded:
        raise ValueError(
            f"{where} draws from search space version {recorded}: `{name}` should be "
            f"{recorded} there (or start another folder). Received: {name}={requested}"
        )
    return recorded


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
