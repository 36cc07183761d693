"""From a :class:`~tfcro.training.TrainingConfig` to its data split and its untrained model."""

from __future__ import annotations

import numpy as np

from tfcro import data as data_lib
from tfcro import sampling
from tfcro._compat import tf
from tfcro.models import TwoTowerConfig, TwoTowerModel
from tfcro.training.config import TrainingConfig


def load_data(config: TrainingConfig) -> data_lib.RetrievalData:
    """Loads and splits the dataset of ``config`` (deterministic in ``config.seed``)."""
    interactions = data_lib.load_dataset(
        config.dataset, config.data_dir, k_core=config.k_core, **config.dataset_options
    )
    if config.protocol == "sequential":
        test = 0.1  # the paper's 8:1:1; valid_fraction moves users between train and valid
        return data_lib.sequential_split(
            interactions,
            max_history=config.max_history,
            split=(1.0 - test - config.valid_fraction, config.valid_fraction, test),
            seed=config.seed,
        )
    if interactions.has_split:
        train_part, test_part = interactions.train_test()
    else:
        raise ValueError(
            f"protocol 'collaborative' needs a dataset with a given train/test split "
            f"(datasets 'pairs' or 'lightgcn' with train.txt and test.txt); dataset "
            f"{config.dataset!r} at {config.data_dir!r} has none. Use --protocol sequential."
        )
    return data_lib.collaborative_split(
        train_part,
        test_part,
        max_history=config.max_history,
        valid_fraction=config.valid_fraction,
        seed=config.seed,
        valid_split=config.valid_split,
    )


def user_vocabulary(data: data_lib.RetrievalData) -> np.ndarray:
    """The sorted user ids of every split: the user-id tower's vocabulary (``users.txt``)."""
    return np.unique(
        np.concatenate([data.train.user_id, data.valid.user_id, data.test.user_id]).astype(str)
    )


def logq_frequencies(data: data_lib.RetrievalData) -> np.ndarray:
    """The training-target frequencies of the catalog that the logQ correction needs."""
    return sampling.item_frequencies(data.train.target, data.items)


def build_model(config: TrainingConfig, data: data_lib.RetrievalData) -> TwoTowerModel:
    """The two-tower model of ``config`` for the catalog and users of ``data``."""
    model_config = TwoTowerConfig.from_dict(config.model)
    if model_config.seed is None:
        model_config.seed = config.seed
    users = None
    if model_config.use_user_id:
        users = user_vocabulary(data)
    frequencies = None
    if model_config.logq_correction:
        frequencies = logq_frequencies(data)
    return TwoTowerModel(
        data.items,
        model_config,
        users=users,
        item_feature_values=data.item_features or None,
        user_feature_values=data.user_features or None,
        item_frequencies=frequencies,
    )


def train_columns(
    model: TwoTowerModel, data: data_lib.RetrievalData, rows: slice | None = None
) -> dict[str, np.ndarray]:
    """The training examples (``rows`` of them) as the model's int32 lookup indices, made
    once: the training steps then run without string ops.

    Uses the protocol's catalog positions (``TrainExamples.history_codes``) when the
    model's catalog is the data's, else :meth:`TwoTowerModel.encode` of the raw ids.
    """
    train, rows = data.train, rows or slice(None)
    if (
        train.history_codes is not None
        and train.target_codes is not None
        and np.array_equal(model.items, np.asarray(data.items, dtype=object))
    ):
        # The lookup index of catalog position p is 2 + p (0: the pad).
        columns = model.encode({"user_id": train.user_id[rows]})
        codes = train.history_codes[rows]
        columns["history"] = np.where(codes >= 0, codes + 2, 0).astype(np.int32)
        columns["item_id"] = (train.target_codes[rows] + 2).astype(np.int32)
        return columns
    return model.encode(
        {
            "history": train.history[rows],
            "user_id": train.user_id[rows],
            "item_id": train.target[rows],
        }
    )


def build_variables(model: TwoTowerModel, data: data_lib.RetrievalData) -> None:
    """Creates every variable of a compiled model and its optimizer (a subclassed model
    builds on its first call), so that a checkpoint can be restored into them.
    """
    sample = {k: tf.constant(v) for k, v in train_columns(model, data, slice(0, 2)).items()}
    model.compute_loss(sample, training=False)
    model.optimizer.build(model.trainable_variables)
