"""A training run: data -> two-tower model -> fit with validation -> test metrics, resumable.

:func:`train` is what ``python -m pipelines.train`` runs; everything it writes
lives in one run folder (layout, lock and atomic writes: :mod:`tfcro.runfolder`).
Nothing is written before the data has loaded and the model has been built
(bad input leaves no run folder behind). After every epoch
:class:`_RunCheckpoint` saves the best weights, then the checkpoint (the commit
point), then the readable mirrors; faults and resuming: :mod:`.faults`.

Distributed training (``strategy=`` ``"mirrored"`` or ``"multi-worker"``, see
:mod:`tfcro.distributed`): the model and optimizer are created under
``strategy.scope()``, ``batch_size`` is the *global* batch, the dataset is
sharded by element, and only the chief locks and writes the run folder.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tfcro import data as data_lib
from tfcro import distributed
from tfcro._compat import keras, tf
from tfcro.evaluation import RetrievalEvaluationCallback, evaluate
from tfcro.evaluation.metrics import parse_monitor
from tfcro.models import TwoTowerModel
from tfcro.runfolder import (
    BEST_WEIGHTS_FILE,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    REFIT_DIR,
    STATE_FILE,
    RunFolderLock,
    json_default,
    remove_stale_temporaries,
    save_weights_atomic,
    write_atomic,
    write_json,
)
from tfcro.training import schedules
from tfcro.training.build import build_model, build_variables, load_data, train_columns
from tfcro.training.config import OPTIMIZERS, TrainingConfig, TrainingResult
from tfcro.training.faults import SigtermGuard, check_same_run, restore_checkpoint, resume_state
from tfcro.training.loading import write_model_files
from tfcro.version import __version__

logger = logging.getLogger("tfcro.training")


def train(
    config: TrainingConfig,
    output_dir: str,
    *,
    data: data_lib.RetrievalData | None = None,
    verbose: int = 1,
    strategy: str | tf.distribute.Strategy | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingResult:
    """Trains (or resumes) the run of ``config`` in ``output_dir``; returns test metrics.

    With ``config.refit`` the run is followed by a second one in ``output_dir/refit``
    on the whole training data (``valid_fraction=0``) for the selected number of
    epochs (the best validation epoch, with the same learning-rate horizon); its
    test metrics are added to ``metrics.json`` under ``"refit"`` and the result's
    :attr:`~TrainingResult.refit` (:attr:`~TrainingResult.final`) holds its model.

    Args:
      config: the run's settings.
      output_dir: the run folder (created; reused to resume). It is locked while
        the run lasts; nothing else is written before the data has loaded and
        the model has been built.
      data: the split to use instead of loading ``config.dataset`` (tests, sweeps).
      verbose: Keras verbosity (1: progress bars, 2: one line per epoch, 0: silent).
      strategy: ``None``/``"none"``, ``"mirrored"``, ``"multi-worker"`` (``TF_CONFIG``)
        or a ``tf.distribute.Strategy``. ``config.batch_size`` is the global batch.
        In a multi-worker run only the chief locks and writes ``output_dir`` (which
        must be on a filesystem shared by the workers to resume); the others write
        to a temporary folder that is removed.
      callbacks: more Keras callbacks for ``fit``, called after the validation (its
        ``val_<metric>`` values are in the epoch's logs), e.g. a tuner's pruning.

    Raises:
      ValueError: bad data or settings; :class:`~tfcro.runfolder.RunFolderError` for a
        damaged run folder, :class:`~tfcro.runfolder.RunFolderInUse` (at once, before
        the data loads) when another process trains in ``output_dir``.
      TrainingInterrupted: on SIGTERM (the finished epochs are saved).
    """
    strategy = distributed.make_strategy(strategy)  # first: multi-worker before any TF op
    chief = distributed.is_chief(strategy)
    if config.refit and data is not None:
        raise ValueError(
            "`refit=True` loads the whole training data itself: call train() without "
            "`data=`, or train the refit's config yourself (refit_config)"
        )
    # Only the chief writes the folder, so only it locks it: before anything reads it.
    with RunFolderLock(output_dir) if chief else contextlib.nullcontext():
        result = _train(config, output_dir, data, verbose, strategy, chief, callbacks)
    if not config.refit:
        return result
    if verbose and chief:
        print(f"[tfcro] refit on all the training data for {result.epochs_selected} epoch(s)")
    refit = train(
        refit_config(config, result.epochs_selected),
        os.path.join(output_dir, REFIT_DIR),
        verbose=verbose,
        strategy=strategy,
    )
    if chief:
        path = os.path.join(output_dir, METRICS_FILE)
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
        summary["refit"] = {**refit.metrics, "epochs": refit.epochs_run}
        write_json(path, summary)
    result.refit = refit
    return result


def refit_config(config: TrainingConfig, epochs: int) -> TrainingConfig:
    """The refit of ``config``: all the training data, ``epochs`` epochs, no validation,
    the same learning-rate horizon (``schedule_epochs``) as the selection run.
    """
    return TrainingConfig.from_dict(
        {
            **config.to_dict(),
            "valid_fraction": 0.0,
            "refit": False,
            "epochs": epochs,
            "patience": None,
            "schedule_epochs": config.schedule_epochs,  # set for a cosine, else None
        }
    )


def _train(
    config: TrainingConfig,
    output_dir: str,
    data: data_lib.RetrievalData | None,
    verbose: int,
    strategy: tf.distribute.Strategy,
    chief: bool,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingResult:
    """:func:`train` once the run folder is locked."""
    check_same_run(output_dir, config)
    keras.utils.set_random_seed(config.seed)
    started = time.time()
    if data is None:
        data = load_data(config)
    logger.info("data: %s", data)
    if len(data.valid) == 0 and config.valid_fraction > 0:
        raise ValueError(
            f"no validation users: the dataset is too small to split ({data.summary()})"
        )

    with strategy.scope():
        model = build_model(config, data)
        rate = schedules.learning_rate(
            config.learning_rate,
            config.lr_schedule,
            steps_per_epoch=-(-len(data.train) // config.batch_size),
            warmup_epochs=config.warmup_epochs,
            schedule_epochs=config.schedule_epochs or config.epochs,  # (constant: unused)
        )
        options = {"weight_decay": config.weight_decay} if config.weight_decay > 0 else {}
        optimizer = OPTIMIZERS[config.optimizer](learning_rate=rate, **options)
        # XLA on one replica only: tf.distribute's collectives stay outside it.
        jit = config.jit_compile and strategy.num_replicas_in_sync == 1
        model.compile(optimizer=optimizer, jit_compile=jit)
        build_variables(model, data)

    write_dir = output_dir if chief else tempfile.mkdtemp(prefix="tfcro-worker-")
    try:
        return _run(
            config,
            output_dir,
            write_dir,
            data,
            model,
            optimizer,
            strategy,
            verbose,
            started,
            callbacks,
        )
    finally:
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)


def _run(
    config: TrainingConfig,
    output_dir: str,
    write_dir: str,
    data: data_lib.RetrievalData,
    model: TwoTowerModel,
    optimizer: Any,
    strategy: tf.distribute.Strategy,
    verbose: int,
    started: float,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingResult:
    """The part of :func:`train` that reads and writes the run folder."""
    chief = write_dir == output_dir
    epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    state_var = tf.Variable("", dtype=tf.string, trainable=False, name="run_state")
    checkpoint = tf.train.Checkpoint(
        model=model, optimizer=optimizer, epoch=epoch_var, state=state_var
    )
    state: dict[str, Any] = {
        "epochs_done": 0,
        "history": [],
        "best": None,
        "best_epoch": None,
        "wait": 0,
        "stopped": False,
    }
    # read from the chief's folder (shared), write to ours
    latest = tf.train.latest_checkpoint(os.path.join(output_dir, CHECKPOINT_DIR))
    if latest:
        restore_checkpoint(checkpoint, latest, output_dir)
        state = resume_state(state_var, output_dir, latest)
        state["epochs_done"] = int(epoch_var.numpy())
        state["history"] = [
            r for r in state.get("history", []) if r["epoch"] <= state["epochs_done"]
        ]
        logger.info("resuming %s from epoch %d", output_dir, state["epochs_done"])
        if verbose and chief:
            print(f"[tfcro] resuming {output_dir} after epoch {state['epochs_done']}")

    os.makedirs(write_dir, exist_ok=True)
    if chief:
        stale = remove_stale_temporaries(output_dir)  # safe: we hold the folder's lock
        if stale:
            logger.warning(
                "removed %d temporary file(s) that a killed run left in %s: %s",
                len(stale),
                output_dir,
                ", ".join(stale),
            )
        write_json(
            os.path.join(output_dir, CONFIG_FILE),
            {
                "training": config.to_dict(),
                "model": model.config.to_dict(),
                "data": data.summary(),
                "tfcro_version": __version__,
                "tensorflow_version": tf.__version__,
            },
        )
        write_model_files(output_dir, model, data)
        if latest:
            _write_state(output_dir, state)  # the mirrors of the checkpoint's state
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(write_dir, CHECKPOINT_DIR), max_to_keep=2
    )

    best_path = os.path.join(output_dir, BEST_WEIGHTS_FILE)
    guard = SigtermGuard(output_dir, state["epochs_done"])
    evaluation = None
    if config.valid_fraction > 0:
        evaluation = _ResumableEvaluation(
            data.valid,
            data.items,
            ks=(parse_monitor(config.monitor)[1],),
            monitor=config.monitor,
            patience=config.patience,
            frequency=config.valid_every,
            batch_size=config.eval_batch_size,
            verbose=0,
            resume=state,
            best_weights_path=os.path.join(write_dir, BEST_WEIGHTS_FILE),
            best_weights_source=best_path,
        )
    callbacks = [
        EpochSpeed(len(data.train)),
        *([evaluation] if evaluation else []),
        *extra_callbacks,
        _RunCheckpoint(write_dir, manager, epoch_var, state_var, evaluation, state, guard),
    ]

    finished = state.get("stopped") or state["epochs_done"] >= config.epochs
    if not finished:
        dataset = distributed.distribute_options(
            data_lib.index_dataset(train_columns(model, data), config.batch_size, seed=config.seed)
        )
        with guard:
            model.fit(
                dataset,
                epochs=config.epochs,
                initial_epoch=state["epochs_done"],
                callbacks=callbacks,
                verbose=verbose,
            )
    elif os.path.isfile(best_path):
        model.load_weights(best_path)

    metrics = evaluate(
        model, data.test, data.items, ks=config.ks, batch_size=config.eval_batch_size
    )
    if chief:
        write_json(
            os.path.join(output_dir, METRICS_FILE),
            {
                **metrics,
                "best_epoch": None if state["best_epoch"] is None else state["best_epoch"] + 1,
                "epochs_run": state["epochs_done"],
                "monitor": config.monitor,
                f"val_{config.monitor}": state["best"],
                "test_users": len(data.test),
                "train_seconds": round(time.time() - started, 1),
                "replicas": strategy.num_replicas_in_sync,
            },
        )
    return TrainingResult(
        output_dir=output_dir,
        metrics=metrics,
        best_epoch=state["best_epoch"],
        epochs_run=state["epochs_done"],
        model=model,
        data=data,
    )


# ----------------------------------------------------------------------------- per epoch


class EpochSpeed(keras.callbacks.Callback):
    """Adds ``seconds`` and ``examples_per_second`` of each epoch's training to its logs.

    The time runs from the epoch's start to the end of its last training step; list
    this callback before the validation callback so that validation is not counted.
    ``examples`` is the number of training examples in an epoch.
    """

    def __init__(self, examples: int):
        super().__init__()
        self.examples = int(examples)
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            seconds = time.perf_counter() - self._start
            logs["seconds"] = round(seconds, 3)
            logs["examples_per_second"] = round(self.examples / max(seconds, 1e-9), 1)


class _RunCheckpoint(keras.callbacks.Callback):
    """After every epoch: best weights, then the checkpoint (model, optimizer, epoch and
    run state together: the commit point), then the state/history mirrors.
    """

    def __init__(
        self,
        output_dir: str,
        manager: tf.train.CheckpointManager,
        epoch_var: tf.Variable,
        state_var: tf.Variable,
        evaluation: RetrievalEvaluationCallback | None,
        state: dict[str, Any],
        guard: SigtermGuard,
    ):
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
            # without validation the chosen weights are the last epoch's
            if self.evaluation is None or self.evaluation.best_epoch == epoch:
                save_weights_atomic(self.model, os.path.join(self.output_dir, BEST_WEIGHTS_FILE))
            row = {"epoch": epoch + 1}
            row.update({k: float(v) for k, v in logs.items()})
            self.state["history"] = [r for r in self.state["history"] if r["epoch"] <= epoch] + [
                row
            ]
            evaluation = self.evaluation
            self.state.update(
                epochs_done=epoch + 1,
                best=None if evaluation is None else float(evaluation.best),
                best_epoch=epoch if evaluation is None else evaluation.best_epoch,
                wait=0 if evaluation is None else evaluation.wait,
                stopped=bool(self.model.stop_training),
            )
            self.epoch_var.assign(epoch + 1)
            self.state_var.assign(json.dumps(self.state, default=json_default))
            self.manager.save(checkpoint_number=epoch + 1)
            _write_state(self.output_dir, self.state)
            self.guard.epochs_done = epoch + 1


def _write_state(output_dir: str, state: Mapping[str, Any]) -> None:
    write_json(os.path.join(output_dir, STATE_FILE), state)
    _write_history_csv(os.path.join(output_dir, HISTORY_FILE), state["history"])


def _write_history_csv(path: str, rows: Sequence[Mapping[str, float]]) -> None:
    columns = ["epoch"] + sorted({key for row in rows for key in row} - {"epoch"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    write_atomic(path, buffer.getvalue())


class _ResumableEvaluation(RetrievalEvaluationCallback):
    """The validation callback, starting from a resumed run's early-stopping state."""

    def __init__(
        self,
        *args,
        resume: Mapping[str, Any] | None = None,
        best_weights_path: str | None = None,
        best_weights_source: str | None = None,
        **kwargs,
    ):
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
        save_weights_atomic(self.model, self._best_weights_path)
