"""Full-catalog evaluation: Recall/HitRate/NDCG@N, exact and ScaNN top-N, validation callback.

The top-N search itself is :mod:`tfcro.search` (shared with the export and the Retriever).
The metrics (:mod:`~tfcro.evaluation.metrics`, NumPy) load without TensorFlow; the
full-catalog evaluation (:mod:`~tfcro.evaluation.catalog`), the callback and the
popularity baseline load on first use.
"""

from tfcro._lazy import lazy_getattr
from tfcro.evaluation.metrics import (
    DEFAULT_KS,
    METRICS,
    check_ks,
    hit_matrix,
    metrics_from_hits,
    parse_monitor,
    ranking_metrics,
)

_LAZY = {
    "RetrievalEvaluationCallback": "callback",
    "METHODS": "catalog",
    "catalog_indices": "catalog",
    "embed_items": "catalog",
    "embed_users": "catalog",
    "evaluate": "catalog",
    "scann_index_for": "catalog",
    "top_n": "catalog",
    "PopularityBaseline": "popularity",
}


__getattr__ = lazy_getattr("tfcro.evaluation", _LAZY)


__all__ = [
    "DEFAULT_KS",
    "METHODS",
    "METRICS",
    "PopularityBaseline",
    "RetrievalEvaluationCallback",
    "catalog_indices",
    "check_ks",
    "embed_items",
    "embed_users",
    "evaluate",
    "hit_matrix",
    "metrics_from_hits",
    "parse_monitor",
    "ranking_metrics",
    "scann_index_for",
    "top_n",
]
