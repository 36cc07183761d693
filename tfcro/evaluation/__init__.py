"""Full-catalog evaluation: Recall/HitRate/NDCG@N, exact and ScaNN top-N, validation callback.

The top-N search itself is :mod:`tfcro.search` (shared with the export and the Retriever).
"""

from tfcro.evaluation.callback import RetrievalEvaluationCallback
from tfcro.evaluation.evaluate import (
    METHODS,
    catalog_indices,
    embed_items,
    embed_users,
    evaluate,
    scann_index_for,
    top_n,
)
from tfcro.evaluation.metrics import (
    DEFAULT_KS,
    METRICS,
    check_ks,
    hit_matrix,
    metrics_from_hits,
    parse_monitor,
    ranking_metrics,
)
from tfcro.evaluation.popularity import PopularityBaseline

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
