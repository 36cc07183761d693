"""Candidate retrieval from an export folder: embed users, search the index, drop seen items.

The :class:`Retriever` reads ``export.json``, the ScaNN index (``scann/<v>/``)
or, for catalogs up to :data:`tfcro.search.BRUTE_FORCE_THRESHOLD` items or
without ScaNN, ``items.parquet`` for an exact search (the rule of
:mod:`tfcro.search`); users are embedded by the ``user_tower`` SavedModel loaded
in-process (default) or by a TF Serving server (:mod:`tfcro.serving.tf_serving`).

Example:
  >>> retriever = Retriever("saved_models/run1")
  >>> result = retriever.retrieve([["12", "7"], ["3"]], n=10, exclude=[["12", "7"], ["3"]])
  >>> result.ids[0], result.scores[0]
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tfcro.search import (
    BRUTE_FORCE_THRESHOLD,
    ScannIndex,
    exact_top_k,
    scann_available,
    scann_top_k,
)
from tfcro.serving import export as _export
from tfcro.serving.signatures import EMBEDDING, HISTORY, PAD
from tfcro.validation import check_int

UserEncoder = Callable[[Mapping[str, Any]], np.ndarray]


def pad_histories(histories: Sequence[Sequence[Any]], length: int | None = None) -> np.ndarray:
    """Right-pads lists of raw item ids with ``""`` into a ``[B, L]`` object array of str.

    ``L`` is the longest history (at least 1) unless ``length`` is given, in which
    case longer histories keep their last ``length`` items.
    """
    rows = [[str(i) for i in h] for h in histories]
    if length is not None:
        rows = [r[-length:] if length else [] for r in rows]
    width = length if length is not None else max([len(r) for r in rows] + [1])
    out = np.full((len(rows), max(width, 1)), PAD, dtype=object)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


class SavedModelUserEncoder:
    """Embeds users with the ``user_tower`` SavedModel loaded in this process (plain TensorFlow)."""

    def __init__(self, path: str, signature_name: str = "serving_default"):
        import tensorflow as tf

        self._tf = tf
        self.model = tf.saved_model.load(path)
        if signature_name not in self.model.signatures:
            raise ValueError(
                f"`signature_name` should be one of {sorted(self.model.signatures)}. "
                f"Received: signature_name={signature_name!r}"
            )
        self.signature = self.model.signatures[signature_name]
        _, self.input_specs = self.signature.structured_input_signature

    def __call__(self, inputs: Mapping[str, Any]) -> np.ndarray:
        tf = self._tf
        missing = sorted(set(self.input_specs) - set(inputs))
        if missing:
            raise ValueError(
                f"user inputs are missing {missing}; "
                f"the user tower takes {sorted(self.input_specs)}"
            )
        feed = {
            name: tf.constant(np.asarray(inputs[name]), dtype=spec.dtype)
            for name, spec in self.input_specs.items()
        }
        return self.signature(**feed)[EMBEDDING].numpy()


@dataclasses.dataclass
class RetrievalResult:
    """Top-N per user: ``ids`` ``[B, n]`` raw ids (``""`` where fewer than ``n`` remain) and
    ``scores`` ``[B, n]`` float32 (``scale * cosine``; NaN for padding).
    """

    ids: np.ndarray
    scores: np.ndarray

    def rows(self) -> list[list[tuple[str, float]]]:
        """Per user, the list of ``(item_id, score)`` without padding."""
        return [
            [(i, float(s)) for i, s in zip(ids, scores, strict=False) if i != PAD]
            for ids, scores in zip(self.ids, self.scores, strict=False)
        ]


class Retriever:
    """Top-N raw item ids and scores for users, from a ``tfcro`` export folder.

    Args:
      export_dir: the folder written by :func:`~tfcro.serving.export_model`.
      encoder: how to embed users: ``None`` (the ``user_tower`` SavedModel in
        this process), or a callable from raw inputs to ``[B, D]`` embeddings
        such as :class:`~tfcro.serving.RestUserEncoder` or
        :class:`~tfcro.serving.GrpcUserEncoder`.
      use_scann: ``None`` (ScaNN when the export has an index, ScaNN imports and
        the catalog is larger than ``brute_force_threshold``, else exact), True or False.
      brute_force_threshold: catalogs up to this size are searched exactly; default
        :data:`tfcro.search.BRUTE_FORCE_THRESHOLD`, the size up to which the
        export's index is itself brute force (one rule, see :mod:`tfcro.search`).
    """

    def __init__(
        self,
        export_dir: str,
        *,
        encoder: UserEncoder | None = None,
        use_scann: bool | None = None,
        brute_force_threshold: int = BRUTE_FORCE_THRESHOLD,
    ):
        brute_force_threshold = check_int("brute_force_threshold", brute_force_threshold)
        self.export_dir = export_dir
        self.manifest = _export.read_manifest(export_dir)
        self.scale = float(self.manifest["scale"])
        self.catalog_size = int(self.manifest["catalog_size"])
        has_index = self.manifest.get("scann") is not None
        if use_scann is None:
            use_scann = (
                has_index and self.catalog_size > brute_force_threshold and scann_available()
            )
        elif use_scann and not has_index:
            raise ValueError(
                f"`use_scann`=True but the export in {export_dir!r} has no ScaNN index "
                "(it was made without scann installed). Allowed: False or None."
            )
        self.index: ScannIndex | None = None
        self.embeddings: np.ndarray | None = None
        if use_scann:
            self.index = ScannIndex.load(os.path.join(export_dir, self.manifest["scann"]["path"]))
            self.ids = self.index.ids
        else:
            self.ids, self.embeddings = _export.read_items(
                os.path.join(export_dir, self.manifest["items"]["path"])
            )
        expected = self.manifest["items"]
        if (
            len(self.ids) != self.catalog_size
            or _export.ids_digest(self.ids) != expected["ids_sha256"]
            or (  # exports before the embeddings' digest have none
                self.embeddings is not None
                and "embeddings_sha256" in expected
                and _export.embeddings_digest(self.embeddings) != expected["embeddings_sha256"]
            )
        ):
            raise RuntimeError(
                f"the items in {export_dir!r} do not match its export.json (a new export "
                "was written while loading?); load the Retriever again"
            )
        self._row = {item: row for row, item in enumerate(self.ids.tolist())}
        self._encoder = encoder
        self.input_names: list[str] = sorted(
            self.manifest["user_tower"]["signatures"]["serving_default"]["inputs"]
        )

    @property
    def encoder(self) -> UserEncoder:
        """The user encoder (loads the user-tower SavedModel on first use)."""
        if self._encoder is None:
            path = os.path.join(self.export_dir, self.manifest["user_tower"]["path"])
            self._encoder = SavedModelUserEncoder(path)
        return self._encoder

    @property
    def uses_scann(self) -> bool:
        return self.index is not None

    def user_inputs(
        self, users: Mapping[str, Any] | Sequence[Sequence[Any]]
    ) -> dict[str, np.ndarray]:
        """Raw signature inputs: a dict as given, or a list of histories padded with ``""``."""
        if isinstance(users, Mapping):
            return {k: np.asarray(v, dtype=object) for k, v in users.items()}
        if set(self.input_names) != {HISTORY}:
            raise ValueError(
                f"the user tower takes {self.input_names}: pass a dict of raw inputs, "
                "not only histories"
            )
        return {HISTORY: pad_histories(users)}

    def embed(self, users: Mapping[str, Any] | Sequence[Sequence[Any]]) -> np.ndarray:
        """``[B, D]`` user embeddings from raw inputs (see :meth:`user_inputs`)."""
        return np.asarray(self.encoder(self.user_inputs(users)), np.float32)

    def retrieve(
        self,
        users: Mapping[str, Any] | Sequence[Sequence[Any]],
        n: int = 10,
        *,
        exclude: Sequence[Iterable[Any]] | None = None,
    ) -> RetrievalResult:
        """Top-``n`` items for raw user inputs, without each user's ``exclude`` items."""
        return self.search(self.embed(users), n, exclude=exclude)

    def search(
        self,
        embeddings: np.ndarray,
        n: int = 10,
        *,
        exclude: Sequence[Iterable[Any]] | None = None,
    ) -> RetrievalResult:
        """Top-``n`` items for user embeddings ``[B, D]``.

        Exclusions: :func:`tfcro.search.exact_top_k` masks them;
        :func:`tfcro.search.scann_top_k` over-fetches ``n + len(exclude_i)``
        candidates, filters, and fetches more if needed.
        """
        n = check_int("n", n)
        queries = np.asarray(embeddings, np.float32)
        if queries.ndim != 2:
            raise ValueError(f"`embeddings` should be [B, D]. Received shape: {queries.shape}")
        batch = queries.shape[0]
        if exclude is not None and len(exclude) != batch:
            raise ValueError(
                f"`exclude` should have one collection per user ({batch}). Received: {len(exclude)}"
            )
        excluded_rows = (
            [  # catalog rows; ids outside the catalog cannot be returned anyway
                [self._row[str(i)] for i in exclude[b] if str(i) in self._row] for b in range(batch)
            ]
            if exclude is not None
            else None
        )
        if self.index is None:
            assert self.embeddings is not None
            rows, scores = exact_top_k(queries, self.embeddings, n, exclude=excluded_rows)
        else:
            rows, scores = scann_top_k(self.index, queries, n, exclude=excluded_rows)
        out_ids = np.full((batch, n), PAD, dtype=object)
        found = rows >= 0
        out_ids[found] = self.ids[rows[found]]
        return RetrievalResult(out_ids, (self.scale * scores).astype(np.float32))
