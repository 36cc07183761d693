"""Validation during training: full-catalog retrieval metrics, early stopping, best weights."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tfcro._compat import keras
from tfcro.evaluation.catalog import evaluate
from tfcro.evaluation.metrics import parse_monitor
from tfcro.validation import check_int


class RetrievalEvaluationCallback(keras.callbacks.Callback):
    """Evaluates the model on validation users after every ``frequency`` epochs.

    Each metric of :func:`tfcro.evaluation.evaluate` is written into the epoch's
    Keras ``logs`` as ``val_<metric>`` (e.g. ``val_recall@100``), so it reaches
    ``History`` and any later callback (list this one *before* ``CSVLogger``,
    ``TensorBoard`` or ``ModelCheckpoint(monitor="val_recall@100")``).

    Early stopping: training stops after ``patience`` evaluations without an
    improvement of ``monitor`` larger than ``min_delta`` (``patience=None``:
    never), and with ``restore_best_weights`` the weights of the best
    evaluation are put back when training ends.

    Args:
      users: validation ``EvalUsers`` (or a dict with the same keys).
      items: the catalog (raw ids) to rank.
      ks: the cut-offs to compute (default ``(100,)``).
      monitor: the metric key that selects the model (default ``"recall@100"``;
        ``"val_"`` prefix optional). Higher is better.
      patience, min_delta, restore_best_weights: early stopping as above.
      frequency: evaluate every this many epochs.
      verbose: 1 prints the metrics each evaluation.
      **evaluate_options: ``batch_size``, ``exclude_seen``, ``method`` ... of ``evaluate``.

    Example:
        callback = RetrievalEvaluationCallback(data.valid, data.items, patience=3)
        model.fit(train_ds, epochs=50, callbacks=[callback, tf.keras.callbacks.CSVLogger(p)])
        callback.best, callback.best_epoch
    """

    def __init__(
        self,
        users: Any,
        items: Any,
        ks: Iterable[int] = (100,),
        monitor: str = "recall@100",
        patience: int | None = None,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
        frequency: int = 1,
        verbose: int = 0,
        **evaluate_options: Any,
    ):
        super().__init__()
        self.users = users
        self.items = items
        self.ks = tuple(ks)
        metric, cut = parse_monitor(monitor)
        self.monitor = f"{metric}@{cut}"  # the key of evaluate's results
        if cut not in self.ks:
            self.ks = self.ks + (cut,)
        self.patience = check_int("patience", patience, 0, allow_none=True)
        self.min_delta = float(min_delta)
        self.restore_best_weights = restore_best_weights
        self.frequency = check_int("frequency", frequency, 1)
        self.verbose = verbose
        self.evaluate_options = evaluate_options
        self.best = -np.inf
        self.best_epoch: int | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.history: list[dict[str, float]] = []

    def on_train_begin(self, logs=None):
        self.best, self.best_epoch, self.best_weights = -np.inf, None, None
        self.wait, self.stopped_epoch, self.history = 0, None, []

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.frequency:
            return
        results = evaluate(self.model, self.users, self.items, ks=self.ks, **self.evaluate_options)
        self.history.append(results)
        if logs is not None:
            logs.update({f"val_{key}": value for key, value in results.items()})
        if self.verbose:
            print(
                f"\nepoch {epoch + 1}: "
                + ", ".join(f"val_{k}={v:.4f}" for k, v in sorted(results.items()))
            )
        current = results[self.monitor]
        if current > self.best + self.min_delta or self.best_epoch is None:
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.patience is not None and self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(
                    f"restoring the weights of epoch {self.best_epoch + 1} "
                    f"({self.monitor}={self.best:.4f})"
                )
            self.model.set_weights(self.best_weights)
