"""Serving signatures for the towers: raw string inputs by name, ``embedding`` out.

A tower (see the model contract in ``docs/architecture.md``) is a Keras model
taking a dict of string tensors. :func:`save_tower` wraps it in a plain
``tf.Module`` whose signatures only use core TensorFlow ops, so the SavedModel
loads with ``tf.saved_model.load`` (no tfcro, no Keras classes, no ScaNN) and in
stock TF Serving.

Signatures (``user_tower``; the item tower has the same with ``item_id`` and no ragged one):

- ``serving_default``: ``history`` ``[batch, length]`` string, padded with ``""``
  (any length; rows may be all ``""``: an empty history), plus ``user_id`` and
  user features ``[batch]`` string when the tower has them -> ``embedding``
  ``[batch, D]`` float32.
- ``serving_ragged``: the history as the two components of a ragged tensor,
  ``history_values`` ``[total]`` string and ``history_row_lengths`` ``[batch]``
  int64, plus the same ``[batch]`` inputs -> ``embedding``.

When the tower was built with a fixed history length ``L``, the signatures drop
the ``""`` padding, keep each row's last ``L`` items and right-pad to ``L``.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfcro._compat import keras
from tfcro.constants import PAD  # noqa: F401  (re-exported for the serving modules)

HISTORY = "history"
ITEM_ID = "item_id"
EMBEDDING = "embedding"


def tower_input_specs(tower: keras.Model) -> dict[str, tf.TensorSpec]:
    """The named string inputs of a tower, batch dimension free.

    Reads the functional inputs of a Keras model, or the save spec of a
    subclassed model that has been called once on a dict.

    Raises:
      ValueError: when the inputs are not a dict of string tensors.
    """
    structure: Any = None
    if getattr(tower, "_is_graph_network", False):
        structure = tower.input
    else:
        spec = tower.save_spec(dynamic_batch=True) if hasattr(tower, "save_spec") else None
        if spec is not None:
            args, kwargs = spec
            structure = args[0] if args else kwargs.get("inputs")
    if not isinstance(structure, dict) or not structure:
        raise ValueError(
            "`tower` should take a dict of named string tensors (the model contract in "
            "docs/architecture.md); call a subclassed tower once on such a dict before "
            f"exporting. Received inputs: {structure!r}"
        )
    specs = {}
    for name, tensor in structure.items():
        dtype = tf.as_dtype(tensor.dtype)
        if dtype != tf.string:
            raise ValueError(
                f"`tower` input {name!r} should be a string tensor (raw ids). "
                f"Received: {dtype.name}"
            )
        shape = tf.TensorShape(tensor.shape)
        specs[name] = tf.TensorSpec([None, *shape.as_list()[1:]], tf.string, name=name)
    return specs


def _fit_history(history: tf.RaggedTensor, length: int | None) -> tf.Tensor:
    """Dense right-padded history; with a fixed ``length``, the last ``length`` items per row."""
    if length is None:
        return history.to_tensor(default_value=PAD)
    return history[:, -length:].to_tensor(default_value=PAD, shape=[None, length])


def _dense_history_fn(length: int | None):
    def fit(history: tf.Tensor) -> tf.Tensor:
        if length is None:
            return history
        ragged = tf.ragged.boolean_mask(history, tf.not_equal(history, PAD))
        return _fit_history(ragged, length)

    return fit


class TowerModule(tf.Module):
    """A tf.Module holding a tower and its serving functions (saved with :func:`save_tower`)."""

    def __init__(self, tower: keras.Model, name: str = "tower"):
        super().__init__(name=name)
        self.tower = tower
        self.input_specs = tower_input_specs(tower)
        history = self.input_specs.get(HISTORY)
        self._history_length = None
        if history is not None:
            if history.shape.rank != 2:
                raise ValueError(
                    f"`tower` input 'history' should be [batch, length]. Received: {history.shape}"
                )
            self._history_length = history.shape[1]
        self._fit = _dense_history_fn(self._history_length)

    def _embed(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        inputs = dict(inputs)
        if HISTORY in inputs:
            inputs[HISTORY] = self._fit(inputs[HISTORY])
        embedding = self.tower(inputs, training=False)
        return {EMBEDDING: tf.identity(tf.cast(embedding, tf.float32), name=EMBEDDING)}

    def signatures(self) -> dict[str, Any]:
        """The concrete functions to save as signatures."""
        dense_specs = {
            name: (tf.TensorSpec([None, None], tf.string, name=name) if name == HISTORY else spec)
            for name, spec in self.input_specs.items()
        }
        serve = tf.function(self._embed, input_signature=[dense_specs])
        signatures = {"serving_default": serve.get_concrete_function()}
        if HISTORY in self.input_specs:
            ragged_specs = {name: spec for name, spec in dense_specs.items() if name != HISTORY}
            ragged_specs["history_values"] = tf.TensorSpec([None], tf.string, name="history_values")
            ragged_specs["history_row_lengths"] = tf.TensorSpec(
                [None], tf.int64, name="history_row_lengths"
            )
            length = self._history_length

            def serve_ragged(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
                inputs = dict(inputs)
                ragged = tf.RaggedTensor.from_row_lengths(
                    inputs.pop("history_values"), inputs.pop("history_row_lengths")
                )
                inputs[HISTORY] = _fit_history(ragged, length)
                embedding = self.tower(inputs, training=False)
                return {EMBEDDING: tf.identity(tf.cast(embedding, tf.float32), name=EMBEDDING)}

            ragged_fn = tf.function(serve_ragged, input_signature=[ragged_specs])
            signatures["serving_ragged"] = ragged_fn.get_concrete_function()
        return signatures


def save_tower(tower: keras.Model, path: str, *, options: Any = None) -> dict[str, Any]:
    """Saves ``tower`` as a SavedModel with the serving signatures at ``path``.

    Returns a description of the signatures (input names/dtypes/shapes and output)
    for the export manifest.
    """
    module = TowerModule(tower)
    signatures = module.signatures()
    tf.saved_model.save(module, path, signatures=signatures, options=options)
    return describe_signatures(signatures)


def describe_signatures(signatures: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready description of concrete functions' inputs and outputs."""
    out = {}
    for key, fn in signatures.items():
        args, kwargs = fn.structured_input_signature
        flat_inputs = {}
        for value in [*args, kwargs]:
            for name, spec in value.items() if isinstance(value, dict) else []:
                flat_inputs[name] = {"dtype": spec.dtype.name, "shape": _shape(spec)}
        outputs = {
            name: {"dtype": spec.dtype.name, "shape": _shape(spec)}
            for name, spec in fn.structured_outputs.items()
        }
        out[key] = {"inputs": flat_inputs, "outputs": outputs}
    return out


def _shape(spec: Any) -> list[int | None] | None:
    shape = tf.TensorShape(spec.shape)
    return shape.as_list() if shape.rank is not None else None
