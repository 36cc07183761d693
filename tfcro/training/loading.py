"""The trained model's files in a run folder: written by training, read to rebuild the model.

:func:`write_model_files` writes what the model was built from (the catalog,
the user vocabulary, the feature values; layout in :mod:`tfcro.runfolder`),
and :func:`load_model` rebuilds the same model from those files alone, with
the best weights: the one way to get a trained model back (the serving export
and ``pipelines.evaluate`` use it). :func:`load_run` adds the run's data split.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from tfcro import data as data_lib
from tfcro._compat import tf
from tfcro.models import TwoTowerConfig, TwoTowerModel
from tfcro.runfolder import (
    BEST_WEIGHTS_FILE,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    ITEM_FEATURES_FILE,
    ITEMS_FILE,
    USER_FEATURES_FILE,
    USERS_FILE,
    read_json,
    write_atomic,
    write_json,
)
from tfcro.training.build import load_data, logq_frequencies, user_vocabulary
from tfcro.training.config import TrainingConfig

logger = logging.getLogger("tfcro.training")


def write_model_files(output_dir: str, model: TwoTowerModel, data: data_lib.RetrievalData) -> None:
    """Writes ``items.txt`` and, as the model needs them, ``users.txt``,
    ``item_features.json`` and ``user_features.json``: what :func:`load_model` reads.
    """
    write_atomic(os.path.join(output_dir, ITEMS_FILE), "\n".join(map(str, data.items)) + "\n")
    config = model.config
    if config.use_user_id:
        users = user_vocabulary(data)
        write_atomic(os.path.join(output_dir, USERS_FILE), "\n".join(map(str, users)) + "\n")
    if config.item_features:
        write_json(
            os.path.join(output_dir, ITEM_FEATURES_FILE),
            {k: list(map(str, v)) for k, v in data.item_features.items()},
        )
    if config.user_features:
        write_json(
            os.path.join(output_dir, USER_FEATURES_FILE),
            {k: {str(u): str(v) for u, v in m.items()} for k, m in data.user_features.items()},
        )


def read_run_config(run_dir: str) -> dict[str, Any]:
    """``run_dir/config.json`` (keys ``"training"``, ``"model"``, ``"data"``, versions)."""
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{run_dir!r} is not a training run folder: no {CONFIG_FILE}")
    run_config = read_json(path)
    if not isinstance(run_config, dict) or "model" not in run_config:
        found = sorted(run_config) if isinstance(run_config, dict) else type(run_config).__name__
        raise ValueError(
            f"`{path}` should have a 'model' key (TwoTowerConfig.to_dict()). Received: {found}"
        )
    return run_config


def find_weights(run_dir: str) -> str:
    """The weights to load: ``best.weights.h5``, else the latest checkpoint of
    ``checkpoints/`` (a run stopped before its first validation).

    Raises:
      FileNotFoundError: the run has not finished an epoch (naming both places).
    """
    best = os.path.join(run_dir, BEST_WEIGHTS_FILE)
    if os.path.isfile(best):
        return best
    folder = os.path.join(run_dir, CHECKPOINT_DIR)
    latest = tf.train.latest_checkpoint(folder) if os.path.isdir(folder) else None
    if latest:
        logger.warning(
            "%s has no %s: loading the last finished epoch's checkpoint %s "
            "(not chosen by validation)",
            run_dir,
            BEST_WEIGHTS_FILE,
            latest,
        )
        return latest
    raise FileNotFoundError(
        f"{run_dir!r} has no weights: no {BEST_WEIGHTS_FILE} and no checkpoint in "
        f"{CHECKPOINT_DIR}/. The run has not finished an epoch yet (rerun pipelines.train "
        "with the same --run-dir to resume it)."
    )


def _read_lines(run_dir: str, name: str, what: str) -> list[str]:
    path = os.path.join(run_dir, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {name} ({what}) in {run_dir!r}")
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.rstrip("\n")]


def _read_features(run_dir: str, name: str) -> dict[str, Any]:
    path = os.path.join(run_dir, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {name} (the model's feature values) in {run_dir!r}")
    return read_json(path)


def _create_variables(model: TwoTowerModel) -> None:
    """Calls both towers once on padding (a subclassed Keras model builds on its first call)."""
    dummy = {"history": tf.constant([[""]])}
    if model.config.use_user_id:
        dummy["user_id"] = tf.constant([""])
    for name in model.config.user_features:
        dummy[name] = tf.constant([""])
    model(dummy)
    model.item_tower(model.item_inputs(np.asarray(model.items[:1])))


def load_model(
    run_dir: str, *, item_frequencies: Any = None
) -> tuple[TwoTowerModel, dict[str, Any]]:
    """Rebuilds the trained model of a run folder from its files, with the best weights.

    Reads ``config.json`` (key ``"model"``), ``items.txt``, ``users.txt``,
    ``item_features.json`` / ``user_features.json`` as the model needs them (no
    dataset is loaded) and the weights of :func:`find_weights`. The model equals
    the one :func:`~tfcro.training.build_model` makes from the run's data: same
    catalog order, vocabularies and feature values, hence the same embeddings
    and scores.

    Args:
      run_dir: a run folder (see :mod:`tfcro.runfolder`).
      item_frequencies: for a model with ``logq_correction``, the training
        frequencies of the catalog (:func:`load_run` computes them from the
        split). They only enter the training loss, not the towers: without them
        a uniform placeholder is used, and the model embeds and scores as
        trained but must not be trained further.

    Returns:
      ``(model, run_config)``, ``run_config`` the content of ``config.json``.

    Raises:
      FileNotFoundError: no ``config.json``, a vocabulary file missing, or no
        weights (the run has not finished an epoch).
    """
    run_config = read_run_config(run_dir)
    config = TwoTowerConfig.from_dict(run_config["model"])
    weights = find_weights(run_dir)
    items = _read_lines(run_dir, ITEMS_FILE, "the catalog, one raw id per line")
    kwargs: dict[str, Any] = {}
    if config.use_user_id:
        kwargs["users"] = _read_lines(run_dir, USERS_FILE, "the user ids, one per line")
    if config.item_features:
        kwargs["item_feature_values"] = _read_features(run_dir, ITEM_FEATURES_FILE)
    if config.user_features:
        kwargs["user_feature_values"] = _read_features(run_dir, USER_FEATURES_FILE)
    if config.logq_correction:
        kwargs["item_frequencies"] = (
            np.full(len(items), 1.0 / len(items)) if item_frequencies is None else item_frequencies
        )
    model = TwoTowerModel(items, config, **kwargs)
    _create_variables(model)
    if weights.endswith(".h5"):
        model.load_weights(weights)
    else:  # the training loop's tf.train.Checkpoint(model=..., optimizer=..., ...)
        status = tf.train.Checkpoint(model=model).restore(weights)
        status.assert_existing_objects_matched().expect_partial()
    return model, run_config


def load_run(
    run_dir: str, *, data: data_lib.RetrievalData | None = None
) -> tuple[TrainingConfig, data_lib.RetrievalData, TwoTowerModel]:
    """A run's settings, its data split and its trained model (:func:`load_model`).

    Args:
      run_dir: the run folder.
      data: the split to use instead of reloading the run's dataset (it must
        have the run's catalog).

    Returns:
      ``(config, data, model)``.
    """
    run_config = read_run_config(run_dir)
    if "training" not in run_config:
        raise ValueError(
            f"`{os.path.join(run_dir, CONFIG_FILE)}` should have a 'training' key "
            f"(TrainingConfig.to_dict()). Received keys: {sorted(run_config)}"
        )
    config = TrainingConfig.from_dict(run_config["training"])
    find_weights(run_dir)  # a run without weights fails before its data loads
    data = load_data(config) if data is None else data
    items = _read_lines(run_dir, ITEMS_FILE, "the catalog, one raw id per line")
    if items != [str(item) for item in data.items]:
        raise ValueError(
            f"the split's catalog ({len(data.items)} items) is not the run's {ITEMS_FILE} "
            f"({len(items)} items) in {run_dir!r}: the dataset has changed since the run was "
            "trained, or `data` is another split"
        )
    frequencies = None
    if TwoTowerConfig.from_dict(run_config["model"]).logq_correction:
        frequencies = logq_frequencies(data)
    model, _ = load_model(run_dir, item_frequencies=frequencies)
    return config, data, model
