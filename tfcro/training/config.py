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
from tfcro.validation import check_choice, check_fields, check_float, check_int, invalid

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
      optimizer, learning_rate, epochs, batch_size: the optimisation.
      monitor: validation metric for model selection and early stopping.
      patience: evaluations without improvement before stopping (None: never).
      ks: cut-offs reported on the test users.
      eval_batch_size: users scored per batch in evaluation.
      valid_every: evaluate the validation users every this many epochs.
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
    optimizer: str = "adam"
    learning_rate: float = 1e-3
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
        self.seed = check_int("seed", self.seed, 0)
        self.k_core = check_int("k_core", self.k_core, 0, allow_none=True)
        self.patience = check_int("patience", self.patience, 0, allow_none=True)
        parse_monitor(self.monitor)
        if not isinstance(self.dataset_options, Mapping):
            raise invalid("dataset_options", "a dict", self.dataset_options)
        self.ks = check_ks(self.ks)
        # Validates the model and loss settings now, not after the data has loaded.
        self.model = TwoTowerConfig.from_dict(self.model).to_dict()
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
