"""Export a trained two-tower model for production: SavedModels, item table, ScaNN index.

Layout of ``output_dir`` (e.g. ``saved_models/<run>/``) after an export of version ``v``::

    user_tower/<v>/          SavedModel for TF Serving: raw user inputs -> embedding
    item_tower/<v>/          SavedModel: raw item inputs -> embedding
    scann/<v>/               scann_ops_pybind searcher + ids.json (row -> raw item id)
    retrieval_scann/<v>/     opt-in: raw user inputs -> top-N item ids (needs ScaNN's TF ops)
    items.parquet            item_id (str), embedding (list<float>) of the latest export
    export.json              manifest of the latest export (written last: the commit point)

Each export gets the next integer version and is atomic (see ``versioning``):
a failure leaves no version folder, and ``export.json`` only ever names a
complete export.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tfcro import runfolder
from tfcro._compat import installed_version, keras
from tfcro.search import (
    DEFAULT_NUM_NEIGHBORS,
    ScannParams,
    build_scann_index,
    scann_available,
)
from tfcro.serving import signatures as _signatures
from tfcro.serving.versioning import StagedExport, next_version, prune_versions
from tfcro.validation import check_float, check_int
from tfcro.version import __version__

MANIFEST = "export.json"
ITEMS_FILE = "items.parquet"
USER_TOWER = "user_tower"
ITEM_TOWER = "item_tower"
SCANN_DIR = "scann"
SCANN_MODEL = "retrieval_scann"
VERSIONED_DIRS = (USER_TOWER, ITEM_TOWER, SCANN_DIR, SCANN_MODEL)
FORMAT = "tfcro-export/1"

SCANN_MODEL_WARNING = (
    "include_scann_model=True: `{path}` contains ScaNN's custom TensorFlow ops. Stock TF "
    "Serving cannot load it (only a server built with ScaNN's ops can, e.g. the "
    "google/tf-serving-scann image). Serve `user_tower/` with stock TF Serving and query "
    "the `scann/` index in the retrieval service instead (docs/serving.md)."
)


@dataclasses.dataclass
class ExportResult:
    """Where an export wrote its pieces, and its manifest."""

    output_dir: str
    version: int
    user_tower_dir: str
    item_tower_dir: str
    items_path: str
    manifest_path: str
    scann_dir: str | None
    scann_model_dir: str | None
    manifest: dict[str, Any]


def ids_digest(ids: Sequence[str]) -> str:
    """SHA-256 of the ids, one per line: ties ``items.parquet`` and ``scann/`` to a manifest."""
    digest = hashlib.sha256()
    for item in ids:
        digest.update(str(item).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def embeddings_digest(embeddings: np.ndarray) -> str:
    """SHA-256 of the float32 item embeddings: ties ``items.parquet``'s vectors to a manifest
    (its ids alone do not: two versions of one catalog share them).
    """
    return hashlib.sha256(np.ascontiguousarray(embeddings, np.float32).tobytes()).hexdigest()


def embed_items(
    item_tower: keras.Model,
    item_ids: np.ndarray,
    item_features: Mapping[str, Sequence[str]] | None = None,
    *,
    batch_size: int = 4096,
) -> np.ndarray:
    """Runs the item tower over the catalog in batches; returns ``[N, D]`` float32."""
    features = {
        k: np.asarray([str(v) for v in vals], object) for k, vals in (item_features or {}).items()
    }
    for name, values in features.items():
        if len(values) != len(item_ids):
            raise ValueError(
                f"`item_features[{name!r}]` should have one value per item ({len(item_ids)}). "
                f"Received: {len(values)} values"
            )
    parts = []
    for start in range(0, len(item_ids), batch_size):
        stop = start + batch_size
        inputs = {_signatures.ITEM_ID: tf.constant(item_ids[start:stop])}
        inputs.update({k: tf.constant(v[start:stop]) for k, v in features.items()})
        parts.append(np.asarray(item_tower(inputs, training=False), np.float32))
    return np.concatenate(parts)


def _write_items(path: str, ids: np.ndarray, embeddings: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    dim = embeddings.shape[1]
    values = pa.array(embeddings.reshape(-1), type=pa.float32())
    column = pa.FixedSizeListArray.from_arrays(values, dim)
    table = pa.table({"item_id": pa.array(ids.tolist(), type=pa.string()), "embedding": column})
    pq.write_table(table, path)


def read_items(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads ``items.parquet``: ``(ids [N] object, embeddings [N, D] float32)``."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    ids = np.asarray(table.column("item_id").to_pylist(), dtype=object)
    column = table.column("embedding").combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    return ids, flat.reshape(len(ids), -1)


def _save_scann_model(
    module: _signatures.TowerModule,
    embeddings: np.ndarray,
    ids: np.ndarray,
    scann_params: dict[str, Any],
    scale: float,
    path: str,
) -> dict[str, Any]:
    """Saves raw user inputs -> top-N ids/scores with the TFRS ScaNN (or BruteForce) layer."""
    import tensorflow_recommenders as tfrs

    k = int(scann_params["num_neighbors"])
    if scann_params["algorithm"] == "brute_force":
        layer = tfrs.layers.factorized_top_k.BruteForce(k=k)
    else:
        layer = tfrs.layers.factorized_top_k.ScaNN(
            k=k,
            distance_measure="dot_product",
            num_leaves=scann_params["num_leaves"],
            num_leaves_to_search=scann_params["num_leaves_to_search"],
            dimensions_per_block=scann_params["dimensions_per_block"],
            num_reordering_candidates=scann_params["reordering_num_neighbors"],
        )
    layer.index(tf.constant(embeddings), tf.constant(ids.astype(str)))
    wrapper = tf.Module(name="retrieval")
    wrapper.user = module
    wrapper.top_k = layer
    specs = {
        name: (tf.TensorSpec([None, None], tf.string, name=name) if name == "history" else spec)
        for name, spec in module.input_specs.items()
    }

    @tf.function(input_signature=[specs])
    def serve(inputs):
        embedding = module._embed(inputs)[_signatures.EMBEDDING]
        scores, top_ids = layer(embedding, k=k)
        return {"item_ids": top_ids, "scores": scale * scores, _signatures.EMBEDDING: embedding}

    options = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"])
    signatures = {"serving_default": serve.get_concrete_function()}
    tf.saved_model.save(wrapper, path, signatures=signatures, options=options)
    return _signatures.describe_signatures(signatures)


def export_model(
    user_tower: keras.Model,
    item_tower: keras.Model,
    item_ids: Sequence[Any],
    output_dir: str,
    *,
    config: Mapping[str, Any],
    scale: float,
    scann_params: ScannParams | Mapping[str, Any] | None = None,
    version: int | None = None,
    include_scann_model: bool = False,
    item_features: Mapping[str, Sequence[str]] | None = None,
    num_neighbors: int = DEFAULT_NUM_NEIGHBORS,
    recall_queries: np.ndarray | None = None,
    batch_size: int = 4096,
    keep_versions: int | None = None,
) -> ExportResult:
    """Exports the towers, the item embeddings and a ScaNN index as version ``version``.

    Args:
      user_tower: Keras model, dict of string tensors -> L2-normalised ``[B, D]``.
      item_tower: the same for items (input ``item_id`` plus item features).
      item_ids: the catalog, raw ids (converted with ``str``, unique).
      output_dir: the export folder (created if missing), e.g. ``saved_models/<run>``.
      config: the model config (``TwoTowerConfig.to_dict()``), stored in the manifest.
      scale: the score scale (score = scale * cosine), stored in the manifest.
      scann_params: overrides of the automatic ScaNN parameters (:class:`ScannParams`).
      version: the version number; default the next free one. An existing
        version is an error (versions are immutable, as TF Serving expects).
      include_scann_model: also save ``retrieval_scann/<v>/``, one SavedModel from
        raw user inputs to the top ``num_neighbors`` item ids with ScaNN in the
        graph. Stock TF Serving cannot load it (a warning says so).
      item_features: item feature columns aligned with ``item_ids`` when the item
        tower takes features.
      num_neighbors: the index's default N, and N of the recall measurement.
      recall_queries: query embeddings for the recall measurement (default: a
        sample of item embeddings).
      batch_size: batch size for embedding the catalog.
      keep_versions: after the export, remove all but the newest ``keep_versions``
        versions, never one that a running service holds
        (:func:`tfcro.serving.versioning.held_versions`); None keeps every version.

    Returns:
      An :class:`ExportResult`.

    Raises:
      ValueError: for an invalid argument or an existing ``version``.

    Example:
      >>> result = export_model(model.user_tower, model.item_tower, data.items,
      ...                       "saved_models/run1", config=cfg.to_dict(), scale=20.0)
      >>> result.manifest["scann"]["recall"]
    """
    ids = np.asarray([str(i) for i in item_ids], dtype=object)
    if len(ids) == 0:
        raise ValueError("`item_ids` should not be empty. Received: 0 ids")
    if len(set(ids.tolist())) != len(ids):
        raise ValueError("`item_ids` should be unique. Received: duplicated ids")
    scale = check_float("scale", scale, minimum=0.0, strict=True)
    version = check_int("version", version, allow_none=True)
    keep_versions = check_int("keep_versions", keep_versions, allow_none=True)
    params = ScannParams.coerce(scann_params)
    output_dir = os.path.abspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    if version is None:
        version = next_version(output_dir, VERSIONED_DIRS)
    else:
        taken = [
            d for d in VERSIONED_DIRS if os.path.exists(os.path.join(output_dir, d, str(version)))
        ]
        if taken:
            raise ValueError(
                f"`version` {version} already exists under {taken} in {output_dir}; "
                "allowed: a new version number or None (the next one)"
            )
    v = str(version)

    with StagedExport(output_dir) as stage:
        user_signatures = _signatures.save_tower(user_tower, stage.path(USER_TOWER))
        item_signatures = _signatures.save_tower(item_tower, stage.path(ITEM_TOWER))
        embeddings = embed_items(item_tower, ids, item_features, batch_size=batch_size)
        _write_items(stage.path(ITEMS_FILE), ids, embeddings)
        moves = [(USER_TOWER, f"{USER_TOWER}/{v}"), (ITEM_TOWER, f"{ITEM_TOWER}/{v}")]

        scann_info: dict[str, Any] | None = None
        resolved = params.resolve(len(ids), min(num_neighbors, len(ids)))
        if scann_available():
            index = build_scann_index(
                embeddings, ids, num_neighbors, params, recall_queries=recall_queries
            )
            index.save(stage.path(SCANN_DIR))
            moves.append((SCANN_DIR, f"{SCANN_DIR}/{v}"))
            resolved = index.params
            scann_info = {
                "path": f"{SCANN_DIR}/{v}",
                "params": index.params,
                "recall": index.recall,
                "build_seconds": index.build_seconds,
            }
        else:
            warnings.warn(
                "scann is not installed: the export has no ScaNN index; the Retriever "
                "will search items.parquet by brute force.",
                RuntimeWarning,
                stacklevel=2,
            )

        scann_model_info = None
        if include_scann_model:
            module = _signatures.TowerModule(user_tower)
            scann_model_signatures = _save_scann_model(
                module, embeddings, ids, resolved, float(scale), stage.path(SCANN_MODEL)
            )
            moves.append((SCANN_MODEL, f"{SCANN_MODEL}/{v}"))
            scann_model_info = {"path": f"{SCANN_MODEL}/{v}", "signatures": scann_model_signatures}
            warnings.warn(
                SCANN_MODEL_WARNING.format(path=f"{SCANN_MODEL}/{v}"), UserWarning, stacklevel=2
            )

        manifest = {
            "format": FORMAT,
            "version": int(version),
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "model": dict(config),
            "scale": float(scale),
            "catalog_size": int(len(ids)),
            "embedding_dim": int(embeddings.shape[1]),
            "num_neighbors": int(min(num_neighbors, len(ids))),
            "items": {
                "path": ITEMS_FILE,
                "ids_sha256": ids_digest(ids),
                "embeddings_sha256": embeddings_digest(embeddings),
            },
            "user_tower": {"path": f"{USER_TOWER}/{v}", "signatures": user_signatures},
            "item_tower": {"path": f"{ITEM_TOWER}/{v}", "signatures": item_signatures},
            "scann": scann_info,
            "scann_model": scann_model_info,
            "versions": {
                "tfcro": __version__,
                "tensorflow": tf.__version__,
                "tf-keras": installed_version("tf-keras"),
                "tensorflow-recommenders": installed_version("tensorflow-recommenders"),
                "scann": installed_version("scann"),
            },
        }
        with open(stage.path(MANIFEST), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, default=runfolder.json_default)
        moves += [(ITEMS_FILE, ITEMS_FILE), (MANIFEST, MANIFEST)]
        stage.commit(moves)
    if keep_versions is not None:
        prune_versions(output_dir, keep_versions, VERSIONED_DIRS, protect=[int(version)])

    def where(relative: str | None) -> str | None:
        return None if relative is None else os.path.join(output_dir, relative)

    return ExportResult(
        output_dir=output_dir,
        version=int(version),
        user_tower_dir=where(f"{USER_TOWER}/{v}"),
        item_tower_dir=where(f"{ITEM_TOWER}/{v}"),
        items_path=where(ITEMS_FILE),
        manifest_path=where(MANIFEST),
        scann_dir=where(scann_info and scann_info["path"]),
        scann_model_dir=where(scann_model_info and scann_model_info["path"]),
        manifest=manifest,
    )


def read_manifest(export_dir: str) -> dict[str, Any]:
    """Reads ``export_dir/export.json``."""
    path = os.path.join(export_dir, MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"no {MANIFEST} in {export_dir!r}: not a tfcro export folder "
            "(create one with `python -m pipelines.export`)"
        )
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# --------------------------------------------------------------------------------------------
# Exporting a training run folder (layout: tfcro.runfolder).


def export_from_run(
    run_dir: str,
    output_dir: str,
    **kwargs: Any,
) -> ExportResult:
    """Exports the trained model of a run folder with :func:`export_model`.

    The model is rebuilt by :func:`tfcro.training.load_model` (the catalog from
    ``run_dir/items.txt``, the best weights); the scale comes from the model
    config. Extra keyword arguments go to :func:`export_model`
    (``scann_params``, ``include_scann_model``, ...).
    """
    from tfcro.training import load_model  # the training stack loads only when used

    model, run_config = load_model(run_dir)
    kwargs.setdefault("scale", float(run_config["model"]["scale"]))
    kwargs.setdefault("config", run_config["model"])
    if model.config.item_features:  # the item tower's feature values, aligned with the catalog
        kwargs.setdefault("item_features", dict(model._item_feature_values))
    return export_model(model.user_tower, model.item_tower, model.items, output_dir, **kwargs)
