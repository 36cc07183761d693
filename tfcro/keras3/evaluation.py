"""Full-catalog evaluation of :class:`tfcro.keras3.TwoTowerRetrieval` models: Recall@N,
NDCG@N ... (:mod:`tfcro.evaluation.metrics`) with each user's seen items excluded, and
the validation callback (early stopping, best weights) for ``model.fit``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import keras

from tfcro.evaluation.metrics import DEFAULT_KS, check_ks, ranking_metrics
from tfcro.evaluation.selection import ValidationSelection
from tfcro.keras3 import backup
from tfcro.validation import check_bool, invalid

if TYPE_CHECKING:  # tfcro.data needs pandas, which the Keras 3 extra does not install
    from tfcro.data.indexing import IndexedQueries


def evaluate(
    model: Any, queries: IndexedQueries, ks: Iterable[int] = DEFAULT_KS, batch_size: int = 1024
) -> dict[str, float]:
    """``recall@N``, ``ndcg@N``, ... of ``model`` on ``queries`` (``tfcro.data.index_split``
    output), ranking the whole catalog without each user's ``seen`` items.
    Indexes the model's items first (:meth:`~tfcro.keras3.TwoTowerRetrieval.index`).
    """
    ks = check_ks(ks)
    model.index()
    top = model.recommend(queries.users, exclude=queries.seen, batch_size=batch_size, top_n=max(ks))
    return ranking_metrics(top, queries.targets, ks)


class RankingEvaluation(ValidationSelection, keras.callbacks.Callback):
    """Validation metrics of a :class:`~tfcro.keras3.TwoTowerRetrieval` every ``frequency``
    epochs, early stopping on ``monitor`` and the best weights put back at the end (the
    logic of :class:`tfcro.evaluation.selection.ValidationSelection`, as the Keras 2
    :class:`tfcro.evaluation.RetrievalEvaluationCallback`).

    With ``backup_dir``, the run resumes where a killed ``fit`` left it: after every
    evaluation the model and optimizer variables and the selection's state (best
    values, kept weights, patience count, history) are committed to ``backup_dir``
    (:mod:`tfcro.keras3.backup`); the next ``fit`` with a callback on the same folder
    loads them and starts at the epoch after that evaluation (a run that had stopped
    early trains no further), as ``keras.callbacks.BackupAndRestore`` does for the
    model alone. Its random draws (shuffling, sampled negatives) start again from the
    seeds, so a resumed run is not bit-identical to an uninterrupted one. Give every
    run its own folder.

    Args:
      queries: the validation users (``tfcro.data.index_split(split).valid``).
      batch_size: users scored at once.
      backup_dir: where to back up the run for a resume (None: no backup).
      delete_backup: delete ``backup_dir`` when training ends (False: keep it, e.g.
        until the caller has recorded the run's results, then
        :func:`tfcro.keras3.backup.remove`).
      **selection: ``ks``, ``monitor``, ``patience``, ``min_delta``,
        ``restore_best_weights``, ``frequency``, ``verbose``, ``also_monitor`` of
        :class:`~tfcro.evaluation.selection.ValidationSelection` (its defaults).

    Attributes:
      resumed_epoch: the epochs done when this ``fit`` resumed from a backup; None
        when it started from scratch.

    Example:
        ids = tfcro.data.index_split(split)
        callback = RankingEvaluation(ids.valid, ks=(20,), monitor="recall@20", patience=3)
        model.fit(ids.train_users, ids.train_items, epochs=100, callbacks=[callback])
        evaluate(model, ids.test, ks=(20, 50))
    """

    def __init__(
        self,
        queries: IndexedQueries,
        *,
        batch_size: int = 1024,
        backup_dir: str | os.PathLike | None = None,
        delete_backup: bool = True,
        **selection: Any,
    ):
        super().__init__(**selection)
        self.queries = queries
        self.batch_size = batch_size
        if backup_dir is not None and (
            not isinstance(backup_dir, (str, os.PathLike)) or not os.fspath(backup_dir)
        ):
            raise invalid("backup_dir", "a folder path or None", backup_dir)
        self.backup_dir = None if backup_dir is None else os.fspath(backup_dir)
        self.delete_backup = check_bool("delete_backup", delete_backup)
        self.resumed_epoch: int | None = None

    def compute_metrics(self) -> dict[str, float]:
        return evaluate(self.model, self.queries, self.ks, self.batch_size)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.resumed_epoch = None
        saved = None if self.backup_dir is None else backup.read_latest(self.backup_dir)
        if saved is None:
            return
        epochs_done, weights_path, state, kept = saved
        if not self.model.built:  # the TensorFlow backend builds at the first step
            self.model.build()
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and not optimizer.built:  # its variables are in the file
            optimizer.build(self.model.trainable_variables)
        # the saved weights include the top-N layer's candidates (an evaluation indexed
        # them): create them, so that the file's variables and the kept weights fit
        self.model.index()
        try:
            self.model.load_weights(weights_path)
            self.set_selection_state(state, kept)
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(
                f"cannot resume from the training backup in {self.backup_dir!r} ({err}): it "
                "was written by another model or selection, or is damaged; delete the "
                "folder to train from the start"
            ) from err
        self.resumed_epoch = epochs_done
        if self.stopped_epoch is not None:  # it had stopped early: no more epochs
            epochs_done = max(epochs_done, int(self.params.get("epochs", epochs_done)))
        # where fit's epoch loop starts: the hook keras.callbacks.BackupAndRestore sets
        self.model._initial_epoch = epochs_done
        if self.verbose:
            print(f"resuming from {self.backup_dir} after epoch {self.resumed_epoch}")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None):
        super().on_epoch_end(epoch, logs)
        if self.backup_dir is not None and not (epoch + 1) % self.frequency:
            state, kept = self.get_selection_state()
            backup.write(self.backup_dir, epoch + 1, self.model, state, kept)

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self.resumed_epoch is not None:
            self.model._initial_epoch = None  # a later fit starts where it is told
        if self.backup_dir is not None and self.delete_backup:
            backup.remove(self.backup_dir)
