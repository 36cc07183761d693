"""The popularity baseline: every user gets the most frequent training items."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfcro.evaluation.catalog import catalog_indices


class PopularityBaseline:
    """Scores ``s(u, i) = count_i``, the item's frequency among the training interactions.

    Duck-types the two-tower model for :func:`tfcro.evaluation.evaluate`
    (users embed to ``[1]``, items to ``[count_i]``), so seen-item exclusion
    and the metrics are the same as for learned models. Ties rank by catalog order.

    >>> baseline = PopularityBaseline(["b", "a", "b"], items=["a", "b", "c"])
    >>> baseline.top_n(2).tolist()
    [1, 0]
    """

    def __init__(self, train_items: Sequence[str] | np.ndarray, items: Sequence[str] | np.ndarray):
        self.items = np.asarray(items).astype(str)
        index = catalog_indices(train_items, self.items)
        self.counts = np.bincount(index[index >= 0], minlength=len(self.items)).astype(np.float32)

    def top_n(self, n: int) -> np.ndarray:
        """Catalog indices of the ``n`` most popular items."""
        return np.argsort(-self.counts, kind="stable")[:n]

    def embed_users(self, features: Mapping[str, Any], batch_size: int = 0) -> np.ndarray:
        return np.ones((len(features["history"]), 1), np.float32)

    def embed_items(self, item_ids: Any = None, batch_size: int = 0) -> np.ndarray:
        ids = self.items if item_ids is None else np.asarray(item_ids).astype(str)
        index = catalog_indices(ids, self.items)
        counts = np.where(index >= 0, self.counts[np.maximum(index, 0)], 0.0)
        return counts.astype(np.float32)[:, None]
