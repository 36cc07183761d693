"""Validation during training: full-catalog retrieval metrics, early stopping, best weights."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tfcro._compat import keras
from tfcro.evaluation.catalog import evaluate
from tfcro.evaluation.selection import ValidationSelection


class RetrievalEvaluationCallback(ValidationSelection, keras.callbacks.Callback):
    """Evaluates the model on validation users after every ``frequency`` epochs.

    Each metric of :func:`tfcro.evaluation.evaluate` is written into the epoch's
    Keras ``logs`` as ``val_<metric>`` (e.g. ``val_recall@100``), so it reaches
    ``History`` and any later callback (list this one *before* ``CSVLogger``,
    ``TensorBoard`` or ``ModelCheckpoint(monitor="val_recall@100")``).

    Early stopping: training stops after ``patience`` evaluations without an
    improvement of ``monitor`` larger than ``min_delta`` (``patience=None``:
    never), and with ``restore_best_weights`` the weights of the best
    evaluation are put back when training ends (the logic of
    :class:`tfcro.evaluation.selection.ValidationSelection`, shared with Keras 3).

    Args:
      users: validation ``EvalUsers`` (or a dict with the same keys).
      items: the catalog (raw ids) to rank.
      ks: the cut-offs to compute (default ``(100,)``).
      monitor: the metric key that selects the model (default ``"recall@100"``;
        ``"val_"`` prefix optional). Higher is better.
      patience, min_delta, restore_best_weights: early stopping as above.
      frequency: evaluate every this many epochs.
      verbose: 1 prints the metrics each evaluation.
      also_monitor: more metrics to select on (their best weights kept, early stopping
        when none improves; ``ValidationSelection``).
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
        also_monitor: Iterable[str] = (),
        **evaluate_options: Any,
    ):
        super().__init__(
            ks, monitor, patience, min_delta, restore_best_weights, frequency, verbose, also_monitor
        )
        self.users = users
        self.items = items
        self.evaluate_options = evaluate_options

    def compute_metrics(self) -> dict[str, float]:
        return evaluate(self.model, self.users, self.items, ks=self.ks, **self.evaluate_options)
