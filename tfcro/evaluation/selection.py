"""Model selection during training, for any Keras: validation metrics every few epochs,
early stopping on one of them, the best weights put back at the end.

:class:`ValidationSelection` holds the logic once; a callback class mixes it with its
Keras's ``Callback`` and says how to compute the metrics (:meth:`compute_metrics`):
:class:`tfcro.evaluation.RetrievalEvaluationCallback` (Keras 2, TFRS models) and
:class:`tfcro.keras3.RankingEvaluation` (Keras 3). No framework is imported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tfcro.evaluation.metrics import parse_monitor
from tfcro.validation import check_float, check_int


class ValidationSelection:
    """Evaluates after every ``frequency`` epochs; stops after ``patience`` evaluations
    without an improvement of ``monitor`` larger than ``min_delta`` (``patience=None``:
    never); with ``restore_best_weights`` puts the weights of the best evaluation back
    when training ends.

    Each metric is written into the epoch's Keras ``logs`` as ``val_<metric>`` (e.g.
    ``val_recall@100``), so it reaches ``History`` and any later callback.
    After training: ``best``, ``best_epoch`` (0-based), ``stopped_epoch`` and ``history``
    (one dict of metrics per evaluation; ``evaluated_epochs`` says which epochs).
    """

    def __init__(
        self,
        ks: Iterable[int] = (100,),
        monitor: str = "recall@100",
        patience: int | None = None,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
        frequency: int = 1,
        verbose: int = 0,
    ):
        super().__init__()
        self.ks = tuple(ks)
        metric, cut = parse_monitor(monitor)
        self.monitor = f"{metric}@{cut}"  # the key of the computed metrics
        if cut not in self.ks:
            self.ks = self.ks + (cut,)
        self.patience = check_int("patience", patience, 0, allow_none=True)
        self.min_delta = check_float("min_delta", min_delta, minimum=0.0)
        self.restore_best_weights = bool(restore_best_weights)
        self.frequency = check_int("frequency", frequency, 1)
        self.verbose = verbose
        self._reset()

    def compute_metrics(self) -> dict[str, float]:
        """The validation metrics of ``self.model`` now (``ks`` cut-offs)."""
        raise NotImplementedError

    def _reset(self) -> None:
        self.best = -np.inf
        self.best_epoch: int | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.history: list[dict[str, float]] = []
        self.evaluated_epochs: list[int] = []

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None):
        if (epoch + 1) % self.frequency:
            return
        results = self.compute_metrics()
        self.history.append(results)
        self.evaluated_epochs.append(epoch)
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
