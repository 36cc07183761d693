"""A training run: data -> two-tower model -> fit with validation -> test metrics, resumable.

:func:`train` is what ``python -m pipelines.train`` runs. Everything it writes
lives in one run folder (the layout :mod:`tfcro.serving` exports from):

====================== =========================================================
``config.json``        every setting (:class:`TrainingConfig`), so a run can be repeated;
                       key ``"model"`` is the :class:`~tfcro.models.TwoTowerConfig`
``items.txt``          the catalog, one raw id per line, in the model's order
``users.txt``          the user-id vocabulary (models with ``use_user_id``)
``item_features.json`` / ``user_features.json``  feature values (when used)
``checkpoints/``       model + optimizer after every epoch (``tf.train.CheckpointManager``)
``state.json``         epochs done, early-stopping state, per-epoch history rows
``history.csv``        per-epoch loss and validation metrics
``best.weights.h5``    the weights with the best validation metric
``metrics.json``       test metrics ``recall@N``, ``pair_recall@N``, ``hitrate@N``, ``ndcg@N``
====================== =========================================================

Rerunning with the same folder resumes from the last checkpoint (a killed job
loses at most the epoch in progress); a finished run only re-evaluates. Every
file is written to a temporary name and renamed, so a crash never leaves a
half-written file behind, and nothing is written before the data has loaded
and the model has been built (bad input leaves no run folder behind).

Faults: the run state (epochs done, early stopping, history) is saved *inside*
each checkpoint, so a job killed at any point (SIGKILL included) resumes
consistently; ``state.json``/``history.csv`` are readable mirrors of it. A
SIGTERM (a scheduler's stop) raises :class:`TrainingInterrupted` at the next
point outside an epoch's save, so the files of the last finished epoch are
complete; ``python -m pipelines.train`` then exits with code 143.

Distributed training (``strategy=`` ``"mirrored"`` or ``"multi-worker"``, see
:mod:`tfcro.distributed`): the model and optimizer are created under
``strategy.scope()``, ``batch_size`` is the *global* batch, the dataset is
sharded by element, and only the chief writes the run folder.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfcro import data as data_lib
from tfcro import distributed
from tfcro import losses as losses_lib
from tfcro._compat import keras, tf
from tfcro.evaluation import DEFAULT_KS, RetrievalEvaluationCallback, check_ks, evaluate
from tfcro.evaluation.metrics import METRICS
from tfcro.models import TwoTowerConfig, TwoTowerModel
from tfcro.runfolder import (  # noqa: F401  (the run folder layout, re-exported)
    BEST_WEIGHTS_FILE,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    HISTORY_FILE,
    ITEM_FEATURES_FILE,
    ITEMS_FILE,
    METRICS_FILE,
    STATE_FILE,
    USER_FEATURES_FILE,
    USERS_FILE,
    read_json,
    remove_stale_temporaries,
    temporary_path,
    write_atomic,
    write_json,
)
from tfcro.runfolder import json_default as _json_default
from tfcro.version import __version__

logger = logging.getLogger("tfcro.training")

PROTOCOLS = ("sequential", "collaborative")
OPTIMIZERS = {"adam": keras.optimizers.Adam, "adagrad": keras.optimizers.Adagrad,
              "sgd": keras.optimizers.SGD}


# ----------------------------------------------------------------------------- config


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

    def __post_init__(self) -> None:
        if self.dataset not in data_lib.DATASETS:
            raise ValueError(f"`dataset` should be one of {list(data_lib.DATASETS)}. "
                             f"Received: dataset={self.dataset!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"`protocol` should be one of {list(PROTOCOLS)}. "
                             f"Received: protocol={self.protocol!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"`optimizer` should be one of {list(OPTIMIZERS)}. "
                             f"Received: optimizer={self.optimizer!r}")
        for name in ("max_history", "epochs", "batch_size", "eval_batch_size", "valid_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` should be an integer >= 1. Received: {name}={value!r}")
        if not (isinstance(self.learning_rate, int | float) and self.learning_rate > 0
                and np.isfinite(self.learning_rate)):
            raise ValueError("`learning_rate` should be a float > 0. "
                             f"Received: learning_rate={self.learning_rate!r}")
        for name, optional in (("seed", False), ("k_core", True), ("patience", True)):
            value = getattr(self, name)
            if optional and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` should be an integer >= 0"
                                 f"{' or None' if optional else ''}. "
                                 f"Received: {name}={value!r}")
        metric, _, cut = str(self.monitor).removeprefix("val_").partition("@")
        if metric not in METRICS or not cut.isdigit() or int(cut) < 1:
            raise ValueError(f"`monitor` should look like 'recall@100' (metric one of "
                             f"{list(METRICS)}, cut-off >= 1). Received: monitor={self.monitor!r}")
        if not isinstance(self.dataset_options, Mapping):
            raise ValueError("`dataset_options` should be a dict. "
                             f"Received: dataset_options={self.dataset_options!r}")
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
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"Unknown TrainingConfig keys {unknown}; allowed: {sorted(names)}")
        values = dict(values)
        if "ks" in values:
            values["ks"] = tuple(values["ks"])
        return cls(**values)


@dataclasses.dataclass
class TrainingResult:
    """What :func:`train` returns: the run folder, test metrics and the trained model."""

    output_dir: str
    metrics: dict[str, float]
    best_epoch: int | None
    epochs_run: int
    model: TwoTowerModel
    data: data_lib.RetrievalData


# ----------------------------------------------------------------------------- files


def _write_history_csv(path: str, rows: Sequence[Mapping[str, float]]) -> None:
    columns = ["epoch"] + sorted({key for row in rows for key in row} - {"epoch"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    write_atomic(path, buffer.getvalue())


# ----------------------------------------------------------------------------- data


def load_data(config: TrainingConfig) -> data_lib.RetrievalData:
    """Loads and splits the dataset of ``config`` (deterministic in ``config.seed``)."""
    interactions = data_lib.load_dataset(config.dataset, config.data_dir, k_core=config.k_core,
                                         **config.dataset_options)
    if config.protocol == "sequential":
        return data_lib.sequential_split(interactions, max_history=config.max_history,
                                         seed=config.seed)
    if interactions.has_split:
        train_part, test_part = interactions.train_test()
    else:
        raise ValueError(
            f"protocol 'collaborative' needs a dataset with a given train/test split "
            f"(datasets 'pairs' or 'lightgcn' with train.txt and test.txt); dataset "
            f"{config.dataset!r} at {config.data_dir!r} has none. Use --protocol sequential.")
    return data_lib.collaborative_split(train_part, test_part, max_history=config.max_history,
                                        seed=config.seed)


def user_vocabulary(data: data_lib.RetrievalData) -> np.ndarray:
    """The sorted user ids of every split: the user-id tower's vocabulary (``users.txt``)."""
    return np.unique(np.concatenate([data.train.user_id, data.valid.user_id,
                                     data.test.user_id]).astype(str))


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
        from tfcro import sampling

        frequencies = sampling.item_frequencies(data.train.target, data.items)
    return TwoTowerModel(data.items, model_config, users=users,
                         item_feature_values=data.item_features or None,
                         user_feature_values=data.user_features or None,
                         item_frequencies=frequencies)


def _save_vocabularies(output_dir: str, model: TwoTowerModel, data: data_lib.RetrievalData):
    write_atomic(os.path.join(output_dir, ITEMS_FILE), "\n".join(map(str, data.items)) + "\n")
    config = model.config
    if config.use_user_id:
        users = user_vocabulary(data)
        write_atomic(os.path.join(output_dir, USERS_FILE), "\n".join(map(str, users)) + "\n")
    if config.item_features:
        write_json(os.path.join(output_dir, ITEM_FEATURES_FILE),
                   {k: list(map(str, v)) for k, v in data.item_features.items()})
    if config.user_features:
        write_json(os.path.join(output_dir, USER_FEATURES_FILE),
                   {k: {str(u): str(v) for u, v in m.items()}
                    for k, m in data.user_features.items()})


def _build(model: TwoTowerModel, data: data_lib.RetrievalData) -> None:
    """Creates every variable (a subclassed model builds on its first call)."""
    sample = next(iter(data_lib.train_dataset(data.train, 2, shuffle=False,
                                              features=_train_features(data))))
    model.compute_loss(sample, training=False)
    model.optimizer.build(model.trainable_variables)


def _train_features(data: data_lib.RetrievalData) -> dict[str, np.ndarray] | None:
    features = data.example_features(data.train.user_id, data.train.target)
    return features or None


# ----------------------------------------------------------------------------- run


class RunFolderError(ValueError):
    """A run folder that cannot be resumed (damaged checkpoint or state); says what to do."""


class TrainingInterrupted(BaseException):
    """Raised by :func:`train` on SIGTERM; the last finished epoch's files are complete.

    A ``BaseException`` (like ``KeyboardInterrupt``): code that catches
    ``Exception`` to go on with its next run (sweeps) must not swallow a stop.

    Attributes:
      output_dir: the run folder (rerun with it to resume).
      epochs_done: epochs saved in it.
    """

    def __init__(self, output_dir: str, epochs_done: int):
        self.output_dir = output_dir
        self.epochs_done = epochs_done
        super().__init__(f"stopped by SIGTERM after {epochs_done} saved epoch(s); rerun with the "
                         f"same output folder {output_dir!r} to resume")


class _SigtermGuard:
    """While active, SIGTERM raises :class:`TrainingInterrupted`, but never inside
    :meth:`saving` (an epoch's files): there it is deferred to the end of the save.

    Only installed in the main thread (Python delivers signals there)."""

    def __init__(self, output_dir: str, epochs_done: int = 0):
        self.output_dir = output_dir
        self.epochs_done = epochs_done
        self._saving = False
        self._pending = False
        self._installed = False
        self._previous: Any = None

    def __enter__(self) -> _SigtermGuard:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc_info) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False

    def _handle(self, signum, frame) -> None:
        if self._saving:
            self._pending = True
            return
        raise TrainingInterrupted(self.output_dir, self.epochs_done)

    @contextlib.contextmanager
    def saving(self):
        self._saving = True
        try:
            yield
        finally:
            self._saving = False
        if self._pending:
            self._pending = False
            raise TrainingInterrupted(self.output_dir, self.epochs_done)


class _RunCheckpoint(keras.callbacks.Callback):
    """After every epoch: best weights, then the checkpoint (model, optimizer, epoch and
    run state together: the commit point), then the state/history mirrors."""

    def __init__(self, output_dir: str, manager: tf.train.CheckpointManager,
                 epoch_var: tf.Variable, state_var: tf.Variable,
                 evaluation: RetrievalEvaluationCallback, state: dict[str, Any],
                 guard: _SigtermGuard):
        super().__init__()
        self.output_dir = output_dir
        self.manager = manager
        self.epoch_var = epoch_var
        self.state_var = state_var
        self.evaluation = evaluation
        self.state = state
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):
        with self.guard.saving():
            logs = dict(logs or {})
            if self.evaluation.best_epoch == epoch:
                path = os.path.join(self.output_dir, BEST_WEIGHTS_FILE)
                tmp = temporary_path(path, ".weights.h5")
                self.model.save_weights(tmp)
                os.replace(tmp, path)
            row = {"epoch": epoch + 1}
            row.update({k: float(v) for k, v in logs.items()})
            self.state["history"] = [r for r in self.state["history"]
                                     if r["epoch"] <= epoch] + [row]
            self.state.update(
                epochs_done=epoch + 1, best=float(self.evaluation.best),
                best_epoch=self.evaluation.best_epoch, wait=self.evaluation.wait,
                stopped=bool(self.model.stop_training))
            self.epoch_var.assign(epoch + 1)
            self.state_var.assign(json.dumps(self.state, default=_json_default))
            self.manager.save(checkpoint_number=epoch + 1)
            _write_state(self.output_dir, self.state)
            self.guard.epochs_done = epoch + 1


def _write_state(output_dir: str, state: Mapping[str, Any]) -> None:
    write_json(os.path.join(output_dir, STATE_FILE), state)
    _write_history_csv(os.path.join(output_dir, HISTORY_FILE), state["history"])


class _ResumableEvaluation(RetrievalEvaluationCallback):
    """The validation callback, starting from a resumed run's early-stopping state."""

    def __init__(self, *args, resume: Mapping[str, Any] | None = None,
                 best_weights_path: str | None = None, best_weights_source: str | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self._resume = resume
        self._best_weights_path = best_weights_path
        self._best_weights_source = best_weights_source or best_weights_path

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if not self._resume or self._resume.get("best_epoch") is None:
            return
        self.best = self._resume["best"]
        self.best_epoch = self._resume["best_epoch"]
        self.wait = self._resume["wait"]
        if self.restore_best_weights and os.path.isfile(self._best_weights_source):
            current = self.model.get_weights()
            self.model.load_weights(self._best_weights_source)
            self.best_weights = self.model.get_weights()
            self.model.set_weights(current)

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        # the chosen weights: the best evaluation if any, else the last epoch's
        self.model.save_weights(self._best_weights_path)


def _check_same_run(output_dir: str, config: TrainingConfig) -> dict[str, Any] | None:
    """The saved config of ``output_dir``; raises if it holds a *started* run of other settings.

    A ``config.json`` without any checkpoint (a run that stopped before its first
    epoch ended) is no experiment yet: it is replaced.
    """
    path = os.path.join(output_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        return None
    saved = read_json(path)
    previous = dict(saved.get("training", {})) if isinstance(saved, dict) else {}
    current = config.to_dict()
    # The epoch budget may grow on a rerun; everything else must match.
    differing = sorted(k for k in set(previous) | set(current)
                       if k != "epochs" and previous.get(k) != current.get(k))
    started = tf.train.latest_checkpoint(os.path.join(output_dir, CHECKPOINT_DIR)) is not None
    if differing and started:
        raise ValueError(
            f"--output-dir {output_dir!r} holds a run with other settings ({differing}); "
            "resuming it would mix two experiments. Use a new --output-dir, or delete it.")
    return saved if not differing else None


def _restore(checkpoint: tf.train.Checkpoint, path: str, output_dir: str) -> None:
    try:
        checkpoint.restore(path).assert_existing_objects_matched()
    except Exception as err:  # OpError, IndexError (truncated data), AssertionError, ...
        folder = os.path.join(output_dir, CHECKPOINT_DIR)
        raise RunFolderError(
            f"the checkpoint {path!r} (files {os.path.basename(path)}.index and "
            f"{os.path.basename(path)}.data-*) cannot be restored: it is corrupted, truncated "
            f"or from another model ({type(err).__name__}: {str(err).strip()[:300]}). "
            f"To retrain from scratch, delete {folder!r} (or the whole run folder "
            f"{output_dir!r}) and rerun.") from err


def _resume_state(state_var: tf.Variable, output_dir: str, checkpoint_path: str
                  ) -> dict[str, Any]:
    """The run state saved with the checkpoint (older checkpoints: ``state.json``)."""
    path = os.path.join(output_dir, STATE_FILE)
    mirror = None
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as handle:
                mirror = json.load(handle)
            if not isinstance(mirror, dict) or not isinstance(mirror.get("history", []), list):
                raise ValueError(f"expected a JSON object with a 'history' list, found "
                                 f"{type(mirror).__name__}")
        except (ValueError, UnicodeDecodeError) as err:
            raise RunFolderError(
                f"{path!r} is damaged ({err}). The checkpoint {checkpoint_path!r} holds the "
                f"same state: delete {path!r} and rerun to resume from it, or delete the run "
                f"folder {output_dir!r} to start over.") from err
    saved = state_var.numpy().decode("utf-8")
    if saved:
        return json.loads(saved)
    if mirror is None:
        raise RunFolderError(
            f"{output_dir!r} has the checkpoint {checkpoint_path!r} but no {STATE_FILE}; "
            f"delete the run folder {output_dir!r} to start over.")
    return mirror


def train(config: TrainingConfig, output_dir: str, *, data: data_lib.RetrievalData | None = None,
          verbose: int = 1, strategy: str | tf.distribute.Strategy | None = None
          ) -> TrainingResult:
    """Trains (or resumes) the run of ``config`` in ``output_dir``; returns test metrics.

    Args:
      config: the run's settings.
      output_dir: the run folder (created; reused to resume). Nothing is written
        before the data has loaded and the model has been built.
      data: the split to use instead of loading ``config.dataset`` (tests, sweeps).
      verbose: Keras verbosity (1: progress bars, 2: one line per epoch, 0: silent).
      strategy: ``None``/``"none"``, ``"mirrored"``, ``"multi-worker"`` (``TF_CONFIG``)
        or a ``tf.distribute.Strategy``. ``config.batch_size`` is the global batch.
        In a multi-worker run only the chief writes ``output_dir`` (which must be on
        a filesystem shared by the workers to resume); the others write to a
        temporary folder that is removed.

    Raises:
      ValueError: bad data or settings; :class:`RunFolderError` for a damaged run folder.
      TrainingInterrupted: on SIGTERM (the finished epochs are saved).
    """
    strategy = distributed.make_strategy(strategy)  # first: multi-worker before any TF op
    chief = distributed.is_chief(strategy)
    _check_same_run(output_dir, config)
    keras.utils.set_random_seed(config.seed)
    started = time.time()
    if data is None:
        data = load_data(config)
    logger.info("data: %s", data)
    if len(data.valid) == 0:
        raise ValueError("no validation users: the dataset is too small to split "
                         f"({data.summary()})")

    with strategy.scope():
        model = build_model(config, data)
        optimizer = OPTIMIZERS[config.optimizer](learning_rate=config.learning_rate)
        model.compile(optimizer=optimizer)
        _build(model, data)

    write_dir = output_dir if chief else tempfile.mkdtemp(prefix="tfcro-worker-")
    try:
        return _run(config, output_dir, write_dir, data, model, optimizer, strategy,
                    verbose, started)
    finally:
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)


def _run(config: TrainingConfig, output_dir: str, write_dir: str,
         data: data_lib.RetrievalData, model: TwoTowerModel, optimizer: Any,
         strategy: tf.distribute.Strategy, verbose: int, started: float) -> TrainingResult:
    """The part of :func:`train` that reads and writes the run folder."""
    chief = write_dir == output_dir
    epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    state_var = tf.Variable("", dtype=tf.string, trainable=False, name="run_state")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var,
                                     state=state_var)
    state: dict[str, Any] = {"epochs_done": 0, "history": [], "best": None, "best_epoch": None,
                             "wait": 0, "stopped": False}
    # read from the chief's folder (shared), write to ours
    latest = tf.train.latest_checkpoint(os.path.join(output_dir, CHECKPOINT_DIR))
    if latest:
        _restore(checkpoint, latest, output_dir)
        state = _resume_state(state_var, output_dir, latest)
        state["epochs_done"] = int(epoch_var.numpy())
        state["history"] = [r for r in state.get("history", [])
                            if r["epoch"] <= state["epochs_done"]]
        logger.info("resuming %s from epoch %d", output_dir, state["epochs_done"])
        if verbose and chief:
            print(f"[tfcro] resuming {output_dir} after epoch {state['epochs_done']}")

    os.makedirs(write_dir, exist_ok=True)
    if chief:
        stale = remove_stale_temporaries(output_dir)
        if stale:
            logger.warning("removed %d temporary file(s) that a killed run left in %s: %s",
                           len(stale), output_dir, ", ".join(stale))
        write_json(os.path.join(output_dir, CONFIG_FILE), {
            "training": config.to_dict(), "model": model.config.to_dict(),
            "data": data.summary(), "tfcro_version": __version__,
            "tensorflow_version": tf.__version__})
        _save_vocabularies(output_dir, model, data)
        if latest:
            _write_state(output_dir, state)  # the mirrors of the checkpoint's state
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(write_dir, CHECKPOINT_DIR),
                                         max_to_keep=2)

    best_path = os.path.join(output_dir, BEST_WEIGHTS_FILE)
    guard = _SigtermGuard(output_dir, state["epochs_done"])
    evaluation = _ResumableEvaluation(
        data.valid, data.items, ks=(int(config.monitor.partition("@")[2] or 100),),
        monitor=config.monitor, patience=config.patience, frequency=config.valid_every,
        batch_size=config.eval_batch_size, verbose=0, resume=state,
        best_weights_path=os.path.join(write_dir, BEST_WEIGHTS_FILE),
        best_weights_source=best_path)
    callbacks = [evaluation, _RunCheckpoint(write_dir, manager, epoch_var, state_var,
                                            evaluation, state, guard)]

    finished = state.get("stopped") or state["epochs_done"] >= config.epochs
    if not finished:
        dataset = distributed.distribute_options(data_lib.train_dataset(
            data.train, config.batch_size, seed=config.seed, features=_train_features(data)))
        with guard:
            model.fit(dataset, epochs=config.epochs, initial_epoch=state["epochs_done"],
                      callbacks=callbacks, verbose=verbose)
    elif os.path.isfile(best_path):
        model.load_weights(best_path)

    metrics = evaluate(model, data.test, data.items, ks=config.ks,
                       batch_size=config.eval_batch_size)
    if chief:
        write_json(os.path.join(output_dir, METRICS_FILE), {
            **metrics,
            "best_epoch": None if state["best_epoch"] is None else state["best_epoch"] + 1,
            "epochs_run": state["epochs_done"], "monitor": config.monitor,
            f"val_{config.monitor}": state["best"], "test_users": len(data.test),
            "train_seconds": round(time.time() - started, 1),
            "replicas": strategy.num_replicas_in_sync})
    return TrainingResult(output_dir=output_dir, metrics=metrics,
                          best_epoch=state["best_epoch"], epochs_run=state["epochs_done"],
                          model=model, data=data)


def load_run(output_dir: str, *, data: data_lib.RetrievalData | None = None
             ) -> tuple[TrainingConfig, data_lib.RetrievalData, TwoTowerModel]:
    """Rebuilds a run's split (from its config) and its model with the best weights."""
    path = os.path.join(output_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{output_dir!r} is not a training run folder: no {CONFIG_FILE}")
    config = TrainingConfig.from_dict(read_json(path)["training"])
    weights = os.path.join(output_dir, BEST_WEIGHTS_FILE)
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"{output_dir!r} has no {BEST_WEIGHTS_FILE}: the run has not "
                                "finished an epoch yet (rerun pipelines.train to resume it)")
    data = load_data(config) if data is None else data
    model = build_model(config, data)
    model.compile(optimizer=OPTIMIZERS[config.optimizer](learning_rate=config.learning_rate))
    _build(model, data)
    model.load_weights(weights)
    return config, data, model
