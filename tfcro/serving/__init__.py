"""Production serving: SavedModel export for TF Serving, ScaNN index, Retriever.

- :func:`export_model` / :func:`export_from_run`: ``user_tower/<v>/`` and
  ``item_tower/<v>/`` SavedModels, ``items.parquet``, ``scann/<v>/``, ``export.json``.
- :func:`build_scann_index` / :class:`ScannIndex` / :class:`ScannParams` (from
  :mod:`tfcro.search`, the one search module).
- :class:`Retriever`: top-N raw item ids for users, embedding them in-process
  or through TF Serving (:class:`RestUserEncoder`, :class:`GrpcUserEncoder`).

See ``docs/serving.md``.
"""

from tfcro.search import (
    ScannIndex,
    ScannParams,
    build_scann_index,
    exact_top_k,
    recall_against_exact,
    scann_available,
)
from tfcro.serving.export import (
    ExportResult,
    export_from_run,
    export_model,
    read_items,
    read_manifest,
)
from tfcro.serving.retriever import (
    RetrievalResult,
    Retriever,
    SavedModelUserEncoder,
    pad_histories,
)
from tfcro.serving.signatures import save_tower, tower_input_specs
from tfcro.serving.tf_serving import (
    GrpcUserEncoder,
    RestUserEncoder,
    grpc_predict_request,
    rest_predict_body,
    rest_predict_url,
)
from tfcro.serving.versioning import list_versions, next_version

__all__ = [
    "ExportResult",
    "export_model",
    "export_from_run",
    "read_items",
    "read_manifest",
    "Retriever",
    "RetrievalResult",
    "SavedModelUserEncoder",
    "pad_histories",
    "ScannIndex",
    "ScannParams",
    "build_scann_index",
    "exact_top_k",
    "recall_against_exact",
    "scann_available",
    "save_tower",
    "tower_input_specs",
    "RestUserEncoder",
    "GrpcUserEncoder",
    "rest_predict_body",
    "rest_predict_url",
    "grpc_predict_request",
    "list_versions",
    "next_version",
]
