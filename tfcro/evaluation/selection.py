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

    ``also_monitor`` names more metrics to select on, e.g. ``("recall@50",
    "recall@100")`` beside ``monitor="recall@20"``, for a model chosen per cut-off: the
    best value, epoch and weights of each are kept (:attr:`best_of`,
    :meth:`best_weights_of`), and training stops only after ``patience`` evaluations
    in which none of ``monitor`` and ``also_monitor`` improved. The weights put back at
    the end are still ``monitor``'s.

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
        also_monitor: Iterable[str] = (),
    ):
        super().__init__()
        self.ks = tuple(ks)
        metric, cut = parse_monitor(monitor)
        self.monitor = f"{metric}@{cut}"  # the key of the computed metrics
        if isinstance(also_monitor, str):
            also_monitor = (also_monitor,)
        self.also_monitor: tuple[str, ...] = ()
        for name in also_monitor:
            try:
                other, other_cut = parse_monitor(name)
            except ValueError:
                raise ValueError(
                    "`also_monitor` should hold metrics like 'recall@50' (those of "
                    f"`monitor`). Received: also_monitor={tuple(also_monitor)!r}"
                ) from None
            if f"{other}@{other_cut}" not in (self.monitor, *self.also_monitor):
                self.also_monitor += (f"{other}@{other_cut}",)
        for name in (self.monitor, *self.also_monitor):
            needed = parse_monitor(name)[1]
            if needed not in self.ks:
                self.ks = self.ks + (needed,)
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
        #: ``{metric: (best value, its 0-based epoch)}`` of each of ``also_monitor``
        self.best_of: dict[str, tuple[float, int]] = {}
        self._best_weights_of: dict[str, list[np.ndarray]] = {}

    def best_weights_of(self, metric: str) -> list[np.ndarray]:
        """The weights of the best evaluation of ``metric`` (``monitor`` or one of
        ``also_monitor``), as ``model.get_weights()`` gave them; ``model.set_weights``
        puts them back.
        """
        name = "@".join(map(str, parse_monitor(metric)))
        if name == self.monitor and self.best_weights is not None:
            return self.best_weights
        if name not in self._best_weights_of:
            raise ValueError(
                f"`metric` should be one of the monitored metrics "
                f"{[self.monitor, *self.also_monitor]} after an evaluation. Received: {metric!r}"
            )
        return self._best_weights_of[name]

    def get_selection_state(self) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
        """What a resumed run needs to select as if it had never stopped: JSON-able
        numbers (best values and their epochs, the patience count, the history) and
        the kept weights by metric (``monitor``'s, each of ``also_monitor``'s).
        :meth:`set_selection_state` puts them back.
        """
        state = {
            "monitor": self.monitor,
            "also_monitor": list(self.also_monitor),
            "settings": self._settings(),
            "best": None if self.best_epoch is None else float(self.best),
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "history": [{k: float(v) for k, v in row.items()} for row in self.history],
            "evaluated_epochs": [int(epoch) for epoch in self.evaluated_epochs],
            "best_of": {name: [float(v), int(e)] for name, (v, e) in self.best_of.items()},
        }
        kept = dict(self._best_weights_of)
        if self.best_weights is not None:
            kept[self.monitor] = self.best_weights
        return state, kept

    def set_selection_state(self, state: dict[str, Any], kept: dict[str, list[np.ndarray]]) -> None:
        """Puts back what :meth:`get_selection_state` gave, from a selection with the
        same ``monitor`` and ``also_monitor`` (else ValueError).
        """
        saved = (state.get("monitor"), tuple(state.get("also_monitor", ())))
        if saved != (self.monitor, self.also_monitor):
            raise ValueError(
                "the saved selection state monitors "
                f"{saved[0]!r} and also_monitor={saved[1]!r}; this selection monitors "
                f"{self.monitor!r} and also_monitor={self.also_monitor!r}"
            )
        if state.get("settings", self._settings()) != self._settings():
            raise ValueError(
                f"the saved selection state was made with {state['settings']}; this "
                f"selection has {self._settings()}"
            )
        self._reset()
        if state["best_epoch"] is not None:
            self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
        self.wait = int(state["wait"])
        self.stopped_epoch = state["stopped_epoch"]
        self.history = [dict(row) for row in state["history"]]
        self.evaluated_epochs = [int(epoch) for epoch in state["evaluated_epochs"]]
        self.best_of = {name: (float(v), int(e)) for name, (v, e) in state["best_of"].items()}
        self.best_weights = kept.get(self.monitor)
        self._best_weights_of = {name: kept[name] for name in self.best_of}
        if self.restore_best_weights and self.best_epoch is not None and self.best_weights is None:
            raise ValueError(
                "the saved selection state kept no weights of its best evaluation "
                "(restore_best_weights=False); this selection would restore them"
            )

    def _settings(self) -> dict[str, Any]:
        """What decides how a selection goes on, beside its metrics (a resume must match)."""
        return {
            "ks": sorted(int(k) for k in self.ks),
            "patience": self.patience,
            "min_delta": self.min_delta,
            "frequency": self.frequency,
        }

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
        improved = False
        for name in self.also_monitor:
            value, before = results[name], self.best_of.get(name)
            if before is None or value > before[0] + self.min_delta:
                self.best_of[name] = (value, epoch)
                self._best_weights_of[name] = self.model.get_weights()
                improved = True
        current = results[self.monitor]
        if current > self.best + self.min_delta or self.best_epoch is None:
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights or self.also_monitor:
                self.best_weights = self.model.get_weights()
            return
        if improved:
            self.wait = 0
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
