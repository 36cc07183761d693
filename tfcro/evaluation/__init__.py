"""Full-catalog evaluation: Recall/HitRate/NDCG@N, exact and ScaNN top-N, validation callback."""

from tfcro.evaluation.callback import RetrievalEvaluationCallback
from tfcro.evaluation.evaluate import (
    METHODS,
    catalog_indices,
    embed_items,
    embed_users,
    evaluate,
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
from tfcro.evaluation.topn import (
    build_scann_searcher,
    exact_top_n,
    filter_excluded,
    scann_top_n,
)

__all__ = [
    "DEFAULT_KS",
    "METHODS",
    "METRICS",
    "PopularityBaseline",
    "RetrievalEvaluationCallback",
    "build_scann_searcher",
    "catalog_indices",
    "check_ks",
    "embed_items",
    "embed_users",
    "evaluate",
    "exact_top_n",
    "filter_excluded",
    "hit_matrix",
    "metrics_from_hits",
    "parse_monitor",
    "ranking_metrics",
    "scann_top_n",
    "top_n",
]
