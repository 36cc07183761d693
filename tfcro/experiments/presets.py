"""Dataset presets and the training config of a grid cell.

:func:`preset_config` is the base :class:`~tfcro.training.TrainingConfig` of a
dataset with the paper's model settings; :func:`cell_config` puts one cell's
loss, a learning rate and a seed on it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from tfcro.experiments.grids import Cell
from tfcro.training import TrainingConfig
from tfcro.validation import check_choice

#: Named dataset set-ups of ``pipelines.reproduce --dataset-preset``: TrainingConfig fields
#: (``data_subdir``: the folder under ``--data-root``; ``use_user_id``: the MF-style tower).
PRESETS: dict[str, dict[str, Any]] = {
    "ml-100k": {
        "dataset": "movielens",
        "data_subdir": "ml-100k",
        "protocol": "sequential",
        "batch_size": 256,
        "ks": (20, 50, 100, 200, 500),
    },
    "amazon-book": {
        "dataset": "lightgcn",
        "data_subdir": "amazon-book",
        "protocol": "sequential",
        "batch_size": 1024,
        "ks": (20, 50, 100, 200, 500),
    },
    "ml-1m": {
        "dataset": "pairs",
        "data_subdir": "ml-1m",
        "protocol": "collaborative",
        "use_user_id": True,
        "batch_size": 1024,
        "ks": (20, 50, 100),
    },
    "synthetic": {
        "dataset": "synthetic",
        "data_subdir": None,
        "protocol": "sequential",
        "batch_size": 256,
        "ks": (20, 50, 100, 200, 500),
    },
}


def _pop_given(overrides: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Removes ``keys`` from ``overrides``; returns those that are not None."""
    popped = {k: overrides.pop(k, None) for k in keys}
    return {k: v for k, v in popped.items() if v is not None}


def preset_config(
    preset: str, *, data_dir: str | None = None, data_root: str = "../shared/data", **overrides: Any
) -> TrainingConfig:
    """The base :class:`TrainingConfig` of a dataset preset (paper model settings).

    The paper's model: embedding 32, scale 10, ``10 x batch`` uniform negatives,
    ``max_history`` 20, Adam. ``overrides`` are TrainingConfig fields, plus
    ``embedding_dim``, ``num_negatives``, ``scale``, ``use_user_id`` for the model
    and ``num_users``/``num_items`` for the synthetic generator.
    """
    check_choice("dataset_preset", preset, PRESETS)
    spec = dict(PRESETS[preset])
    subdir = spec.pop("data_subdir")
    use_user_id = bool(overrides.pop("use_user_id", spec.pop("use_user_id", False)))
    model_over = _pop_given(overrides, ("embedding_dim", "num_negatives", "scale"))
    options = _pop_given(overrides, ("num_users", "num_items"))
    if data_dir is None and subdir is not None:
        data_dir = os.path.join(data_root, subdir)
    values: dict[str, Any] = {
        "max_history": 20,
        "learning_rate": 0.005,
        "epochs": 3,
        "patience": 2,
        "monitor": "recall@100",
        **spec,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    batch = int(values["batch_size"])
    model = {
        "embedding_dim": 32,
        "scale": 10.0,
        "num_negatives": 10 * batch,
        "use_user_id": use_user_id,
        "loss": "softmax",
        "loss_options": {},
    }
    model.update(model_over)
    return TrainingConfig(
        data_dir=data_dir if values["dataset"] != "synthetic" else None,
        dataset_options=options,
        model=model,
        **values,
    )


def cell_config(
    base: TrainingConfig, cell_: Cell, learning_rate: float, seed: int
) -> TrainingConfig:
    """``base`` with the cell's loss, the learning rate and the seed."""
    model = dict(base.model)
    model["loss"] = cell_.loss
    model["loss_options"] = cell_.loss_options()
    return dataclasses.replace(
        base, model=model, learning_rate=float(learning_rate), seed=int(seed)
    )
