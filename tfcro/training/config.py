"""The settings of a training run (:class:`TrainingConfig`) and what a run returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tfcro import data as data_lib
from tfcro import losses as losses_lib
from tfcro._compat import keras
from tfcro.constants import PROTOCOLS
from tfcro.evaluation.metrics import DEFAULT_KS, check_ks, parse_monitor
from tfcro.models import TwoTowerConfig, TwoTowerModel
from tfcro.optimizers import LazyAdam
from tfcro.validation import (
    check_choice,
    check_fields,
    check_float,
    check_fraction,
    check_int,
    invalid,
)

#: ``TrainingConfig.lr_schedule`` values.
LR_SCHEDULES = ("constant", "cosine")

#: ``TrainingConfig.optimizer`` -> the Keras optimizer class.
OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "lazy_adam": LazyAdam,
    "adagrad": keras.optimizers.Adagrad,
    "sgd": keras.optimizers.SGD,
}


@dataclasses.dataclass
class TrainingConfig:
    """Every setting of a training run (JSON round-trippable).

    Attributes:
      dataset: a name of :data:`tfcro.data.DATASETS` (``synthetic`` needs no files).
      data_dir: the dataset folder (the file itself for ``table``).
      dataset_options: options of :func:`tfcro.data.load_dataset` (e.g. ``min_rating``,
        ``user_col``/``item_col``/``time_col`` for ``table``, generator sizes for
        ``synthetic``).
      k_core: optional k-core filter.
      protocol: ``sequential`` (the paper's) or ``collaborative`` (LightGCN papers).
      max_history: ``L``, history length kept.
      seed: seeds the split, the shuffling, the initialisation and the sampler.
      model: :class:`TwoTowerConfig` fields (loss, negatives, scale, ...).
      valid_fraction: the validation share carved from the training data:
        ``collaborative``, of each user's training interactions (held out, not
        trained on); ``sequential``, of the users (the paper: 0.1, the split
        being 8:1:1). 0: no validation, the run trains ``epochs`` epochs and keeps
        the last weights (``patience`` and ``monitor`` then select nothing).
      valid_split: ``collaborative`` only: hold out a ``random`` share of each user's
        training interactions, or the ``last`` ones in the file's order (for training
        files in time order whose test split holds later interactions).
      refit: after the run, retrain on the whole training data (``valid_fraction``
        0) for the selected number of epochs (the best validation epoch) and
        report the test metrics of that model (:func:`~tfcro.training.train`,
        sub-folder ``refit/``).
      optimizer, learning_rate, epochs, batch_size: the optimisation.
      weight_decay: decoupled weight decay (AdamW-style: every step each weight
        shrinks by ``learning_rate * weight_decay``), any optimizer; 0 for none. It
        touches every row of the embedding tables at each step, which undoes
        ``lazy_adam``'s saving; with ``lazy_adam`` prefer the model's ``embedding_l2``.
      lr_schedule: ``constant`` or ``cosine`` (decay to 0 over ``schedule_epochs``),
        both after a linear warm-up of ``warmup_epochs`` (may be fractional).
      schedule_epochs: the cosine's horizon in epochs (None: ``epochs``, fixed when the
        config is made, so that a rerun with more ``epochs`` is refused rather than
        stretching a started cosine); a refit keeps the selection run's horizon so that
        its epochs see the same learning rates.
      monitor: validation metric for model selection and early stopping.
      patience: evaluations without improvement before stopping (None: never).
      ks: cut-offs reported on the test users.
      eval_batch_size: users scored per batch in evaluation.
      valid_every: evaluate the validation users every this many epochs (``patience``
        counts evaluations, so patience 3 with valid_every 2 waits 6 epochs); at most
        ``epochs`` when there is validation.
      jit_compile: compile the whole training step (towers, sampling, loss, gradients,
        optimizer update) with XLA, on one replica (tf.distribute runs train without
        it). Off by default: on a 2-core CPU the XLA step measured slower than the
        graph step (docs/benchmarks.md, "Training speed"). Not with ``lazy_adam``
        (its row de-duplication has no static shape). An execution setting: a run
        resumes with either value.
    """

    dataset: str = "synthetic"
    data_dir: str | None = None
    dataset_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    k_core: int | None = None
    protocol: str = "sequential"
    max_history: int = 20
    seed: int = 0
    model: dict[str, Any] = dataclasses.field(default_factory=lambda: TwoTowerConfig().to_dict())
    valid_fraction: float = 0.1
    valid_split: str = "random"
    refit: bool = False
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    warmup_epochs: float = 0.0
    schedule_epochs: int | None = None
    epochs: int = 10
    batch_size: int = 256
    monitor: str = "recall@100"
    patience: int | None = 3
    ks: tuple[int, ...] = DEFAULT_KS
    eval_batch_size: int = 1024
    valid_every: int = 1
    jit_compile: bool = False

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, data_lib.DATASETS)
        check_choice("protocol", self.protocol, PROTOCOLS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_choice("valid_split", self.valid_split, data_lib.VALID_SPLITS)
        self.weight_decay = check_float("weight_decay", self.weight_decay, minimum=0)
        self.warmup_epochs = check_float("warmup_epochs", self.warmup_epochs, minimum=0)
        self.schedule_epochs = check_int(
            "schedule_epochs", self.schedule_epochs, 1, allow_none=True
        )
        self.valid_fraction = check_fraction("valid_fraction", self.valid_fraction, high_open=True)
        for flag in ("refit",):
            if not isinstance(getattr(self, flag), bool):
                raise invalid(flag, "True or False", getattr(self, flag))
        if self.protocol == "sequential" and self.valid_fraction >= 0.9:
            raise invalid(
                "valid_fraction",
                "a share of users below 0.9 with protocol='sequential' (10% are test users)",
                self.valid_fraction,
            )
        if self.lr_schedule == "cosine" and self.schedule_epochs is None:
            # fixed now: a rerun with more epochs must not stretch a started cosine
            self.schedule_epochs = self.epochs
        if self.refit and self.protocol != "collaborative":
            raise ValueError(
                "`refit=True` retrains on the whole training file of the collaborative "
                "protocol; the sequential protocol's validation users are other users "
                "(lower `valid_fraction` to train on more of them). Received: "
                f"protocol={self.protocol!r}"
            )
        if self.refit and self.valid_fraction == 0:
            raise ValueError(
                "`refit=True` retrains for the epoch count selected on validation and "
                "needs `valid_fraction` > 0. Received: valid_fraction=0"
            )
        if not isinstance(self.jit_compile, bool):
            raise invalid("jit_compile", "True or False", self.jit_compile)
        if self.jit_compile and self.optimizer == "lazy_adam":
            raise ValueError(
                "`jit_compile` should be False with `optimizer`='lazy_adam' (XLA cannot "
                "compile its de-duplication of the batch's rows; use optimizer='adam' "
                "with XLA). Received: jit_compile=True"
            )
        for name in ("max_history", "epochs", "batch_size", "eval_batch_size", "valid_every"):
            setattr(self, name, check_int(name, getattr(self, name), 1))
        self.learning_rate = check_float(
            "learning_rate", self.learning_rate, minimum=0, strict=True
        )
        if self.valid_fraction > 0 and self.valid_every > self.epochs:
            raise ValueError(
                "`valid_every` should be at most `epochs` when validating (valid_fraction "
                "> 0), else no validation runs and nothing is selected. Received: "
                f"valid_every={self.valid_every}, epochs={self.epochs}"
            )
        self.seed = check_int("seed", self.seed, 0)
        self.k_core = check_int("k_core", self.k_core, 0, allow_none=True)
        self.patience = check_int("patience", self.patience, 0, allow_none=True)
        parse_monitor(self.monitor)
        if not isinstance(self.dataset_options, Mapping):
            raise invalid("dataset_options", "a dict", self.dataset_options)
        self.ks = check_ks(self.ks)
        # Validates the model and loss settings now, not after the data has loaded.
        self.model = TwoTowerConfig.from_dict(self.model).to_dict()
        if self.model["user_tower"] == "id" and self.protocol == "sequential":
            raise ValueError(
                "`user_tower`='id' (matrix factorisation) embeds users seen in training; "
                "the sequential protocol evaluates other users (a user-disjoint split), "
                "so use user_tower='history' or 'id+history' there, or protocol="
                "'collaborative'. Received: user_tower='id'"
            )
        losses_lib.get(self.model["loss"], **self.model["loss_options"])

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["ks"] = list(self.ks)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainingConfig:
        values = check_fields(cls, values)
        if "ks" in values:
            values["ks"] = tuple(values["ks"])
        return cls(**values)


@dataclasses.dataclass
class TrainingResult:
    """What :func:`~tfcro.training.train` returns: the run folder, test metrics and the
    trained model (with the weights of the best validation).
    """

    output_dir: str
    metrics: dict[str, float]
    best_epoch: int | None
    epochs_run: int
    model: TwoTowerModel
    data: data_lib.RetrievalData
    refit: TrainingResult | None = None

    @property
    def epochs_selected(self) -> int:
        """The epoch count that validation selected (all the epochs run without one)."""
        return self.epochs_run if self.best_epoch is None else self.best_epoch + 1

    @property
    def final(self) -> TrainingResult:
        """The model to use: the refit's when the run refitted, else this one."""
        return self.refit or self
