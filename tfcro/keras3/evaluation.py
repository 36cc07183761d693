"""Full-catalog evaluation of :class:`tfcro.keras3.TwoTowerRetrieval` models: Recall@N,
NDCG@N ... (:mod:`tfcro.evaluation.metrics`) with each user's seen items excluded, and
the validation callback (early stopping, best weights) for ``model.fit``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import keras

from tfcro.evaluation.metrics import DEFAULT_KS, check_ks, ranking_metrics
from tfcro.evaluation.selection import ValidationSelection

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

    Args:
      queries: the validation users (``tfcro.data.index_split(split).valid``).
      batch_size: users scored at once.
      **selection: ``ks``, ``monitor``, ``patience``, ``min_delta``,
        ``restore_best_weights``, ``frequency``, ``verbose``, ``also_monitor`` of
        :class:`~tfcro.evaluation.selection.ValidationSelection` (its defaults).

    Example:
        ids = tfcro.data.index_split(split)
        callback = RankingEvaluation(ids.valid, ks=(20,), monitor="recall@20", patience=3)
        model.fit(ids.train_users, ids.train_items, epochs=100, callbacks=[callback])
        evaluate(model, ids.test, ks=(20, 50))
    """

    def __init__(self, queries: IndexedQueries, *, batch_size: int = 1024, **selection: Any):
        super().__init__(**selection)
        self.queries = queries
        self.batch_size = batch_size

    def compute_metrics(self) -> dict[str, float]:
        return evaluate(self.model, self.queries, self.ks, self.batch_size)
