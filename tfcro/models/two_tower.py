"""The TFRS two-tower retrieval model trained with a tfcro loss.

Score ``s(u, i) = scale * cos(user_tower(u), item_tower(i))``: both towers
return L2-normalised vectors and the model multiplies their dot product by
``scale`` (paper: 10), so the loss itself must use ``scale=1``. The batch loss is
what ``tfrs.tasks.Retrieval`` computes (:meth:`TwoTowerModel.retrieval_loss`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import tensorflow_recommenders as tfrs

from tfcro import losses as losses_lib
from tfcro import sampling
from tfcro._compat import keras, tf
from tfcro.constants import MASKED_SCORE, PAD
from tfcro.core import definitions
from tfcro.layers import pooling as pooling_lib
from tfcro.layers.towers import (
    CategoricalEmbedding,
    build_item_tower,
    build_user_tower,
    check_vocabulary,
)
from tfcro.validation import check_choice, check_fields, check_float, check_int

#: ``TwoTowerConfig.user_tower`` values: what the user tower embeds.
USER_TOWERS = ("history", "id", "id+history")


@dataclasses.dataclass
class TwoTowerConfig:
    """Hyper-parameters of :class:`TwoTowerModel` (JSON-friendly: ``to_dict``/``from_dict``).

    Attributes:
      embedding_dim: size ``D`` of item/history embeddings and of both tower
        outputs (paper: 32).
      hidden_units: hidden Dense layers of the user tower before the output
        projection ``Dense(D)`` (paper "DNN": none).
      activation: activation of the hidden layers.
      pooling: history encoder, a name in ``tfcro.layers.POOLINGS`` ("mean").
      share_item_embeddings: the history lookup uses the item tower's id
        embedding table (YouTube DNN); False gives the history its own table.
      user_tower: what the user tower embeds, one of :data:`USER_TOWERS`:
        ``"history"`` (the paper's DNN: pooled history items, plus user features),
        ``"id"`` (matrix factorisation: a user-id embedding, the literature's MF
        baseline; with no features or hidden layers it is the embedding itself,
        normalised, with no projection) or ``"id+history"`` (both, concatenated and
        projected). ``"id"`` towers need ``users=`` in the model.
      use_user_id: whether the user tower has a user-id embedding, derived from
        ``user_tower``. ``use_user_id=True`` with ``user_tower="history"`` is the
        former spelling of ``user_tower="id+history"`` (config files of older runs).
      user_features / item_features: names of categorical string features.
      scale: score scale ``rho``; Retrieval's ``temperature = 1 / scale`` (paper: 10).
      num_negatives: items drawn uniformly per batch, shared by its rows
        (paper: 10 x batch size); 0 for none.
      num_row_negatives: items drawn uniformly for each row on its own (not shared),
        scored after the shared ones; 0 for none. The published MF recipes' negatives
        (BSL: 800 per row, no in-batch); each costs a pass of the item tower, ``B x R``
        per step against ``K`` shared.
      in_batch_negatives: the other rows' positives are negatives too.
      cross_replica_negatives: under ``tf.distribute`` with several replicas, the
        other replicas' positives are negatives too (all-gathered, see
        :func:`tfcro.distributed.gather_other_replicas`); needs ``in_batch_negatives``.
      remove_accidental_hits: a negative with the row's positive id is dropped.
      logq_correction: subtract ``log q_j`` of the sampling proposal
        (:func:`tfcro.sampling.mixture_probability`); needs ``item_frequencies``.
      loss: a name of :func:`tfcro.losses.get`; ``loss_options`` its options.
        ``num_items=None`` losses get the catalog size.
      embedding_l2: ``lambda`` of the LightGCN-style L2 penalty on the id-embedding
        rows the batch uses, ``lambda * sum ||e||^2 / B`` added to the batch loss
        (:meth:`TwoTowerModel.embedding_penalty`); 0 for none.
      seed: seed of the negative sampler (None: TensorFlow's global RNG).
    """

    embedding_dim: int = 32
    hidden_units: tuple[int, ...] = ()
    activation: str = "relu"
    pooling: str = "mean"
    share_item_embeddings: bool = True
    user_tower: str = "history"
    use_user_id: bool = False
    user_features: tuple[str, ...] = ()
    item_features: tuple[str, ...] = ()
    scale: float = 10.0
    num_negatives: int = 0
    num_row_negatives: int = 0
    in_batch_negatives: bool = True
    cross_replica_negatives: bool = False
    remove_accidental_hits: bool = True
    logq_correction: bool = False
    loss: str = "cro-lambda"
    loss_options: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {"weight_kernel": "sigmoid", "kernel": "softplus", "alpha": 1.0}
    )
    embedding_l2: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        self.embedding_dim = check_int("embedding_dim", self.embedding_dim)
        self.hidden_units = tuple(check_int("hidden_units[]", u) for u in self.hidden_units)
        self.user_features = tuple(self.user_features)
        self.item_features = tuple(self.item_features)
        self.num_negatives = sampling.check_num_negatives(self.num_negatives)
        self.num_row_negatives = sampling.check_num_row_negatives(self.num_row_negatives)
        if isinstance(self.pooling, str) and self.pooling not in pooling_lib.POOLINGS:
            raise ValueError(
                f"`pooling` should be one of {sorted(pooling_lib.POOLINGS)}. "
                f"Received: pooling={self.pooling!r}"
            )
        self.scale = check_float("scale", self.scale, minimum=0.0, strict=True)
        self.embedding_l2 = check_float("embedding_l2", self.embedding_l2, minimum=0.0)
        check_choice("user_tower", self.user_tower, USER_TOWERS)
        if self.use_user_id and self.user_tower == "history":
            self.user_tower = "id+history"  # the former spelling
        self.use_user_id = self.user_tower != "history"
        check_choice("loss", self.loss, losses_lib.LOSSES)
        if not self.in_batch_negatives and self.num_negatives + self.num_row_negatives == 0:
            raise ValueError(
                "`in_batch_negatives=False` needs sampled negatives, `num_negatives` >= 1 "
                "or `num_row_negatives` >= 1. Received: num_negatives=0, num_row_negatives=0"
            )
        if self.cross_replica_negatives and not self.in_batch_negatives:
            raise ValueError(
                "`cross_replica_negatives=True` shares in-batch negatives across "
                "replicas and needs `in_batch_negatives=True`. "
                "Received: in_batch_negatives=False"
            )
        reserved = {"history", "user_id", "item_id"}
        for field in ("user_features", "item_features"):
            clash = reserved.intersection(getattr(self, field))
            if clash:
                raise ValueError(
                    f"`{field}` should not use the reserved names {sorted(reserved)}. "
                    f"Received: {field}={getattr(self, field)!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (tuples become lists)."""
        data = dataclasses.asdict(self)
        for key in ("hidden_units", "user_features", "item_features"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TwoTowerConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError naming them."""
        data = check_fields(cls, data)
        for key in ("hidden_units", "user_features", "item_features"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


def prepare_loss(
    loss: keras.losses.Loss, num_items: int, score_scale: float = 1.0
) -> keras.losses.Loss:
    """A copy of ``loss`` with reduction ``"sum"``; when it has ``num_items=None``,
    ``num_items`` set to the catalog size; when it has ``input_scale=None`` (losses with
    temperatures on raw scores, :mod:`tfcro.losses.peers`), the model's ``score_scale``.
    """
    config = definitions.for_model(loss.get_config(), num_items, score_scale)
    config["reduction"] = keras.losses.Reduction.SUM
    return loss.__class__.from_config(config)


def _as_strings(values: Any) -> np.ndarray:
    return np.asarray(values).astype(str)


class TwoTowerModel(tfrs.Model):
    """Two-tower retrieval model (YouTube-DNN user tower, id item tower) with a tfcro loss.

    Args:
      items: the catalog, unique raw item ids (``RetrievalData.items``).
      config: a :class:`TwoTowerConfig`; keyword overrides of its fields may be
        given as ``**overrides`` (e.g. ``num_negatives=2560``).
      loss: a Keras loss instance that replaces ``config.loss``/``loss_options``
        (use ``scale=1``: the model's ``scale`` is already applied).
      users: user-id vocabulary, required with ``config.use_user_id``.
      item_feature_values: ``{name: [N] str}`` aligned with ``items``
        (``RetrievalData.item_features``) for the names in ``config.item_features``;
        also used to featurise sampled negatives and the catalog.
      user_feature_values: ``{name: {user_id: value}}`` (``RetrievalData.user_features``);
        its values make the feature vocabulary, and user features missing from a
        batch are looked up from it by ``user_id``.
      item_frequencies: ``[N]`` training frequencies of ``items``
        (:func:`tfcro.sampling.item_frequencies`), required by ``logq_correction``.

    Training input: a ``tf.data`` dataset of dicts ``{"history": [B, L] str,
    "item_id": [B] str (the positive), "user_id": [B] str, <features>: [B] str,
    "sample_weight": [B] float (optional)}``::

        model = TwoTowerModel(data.items, TwoTowerConfig(num_negatives=10 * 256))
        model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
        model.fit(dataset, epochs=10, callbacks=[RetrievalEvaluationCallback(data.valid,
                                                                           data.items)])

    The loss is summed over the rows and divided by the *global* batch size:
    TFRS computes the loss inside ``compute_loss`` (outside ``compile``), so
    Keras does not average it across replicas; under ``tf.distribute`` each
    replica returns ``sum_local / (B_local * replicas)`` and the gradients summed
    over replicas are those of the global mean.
    """

    def __init__(
        self,
        items: Sequence[str] | np.ndarray,
        config: TwoTowerConfig | None = None,
        *,
        loss: keras.losses.Loss | None = None,
        users: Sequence[str] | np.ndarray | None = None,
        item_feature_values: Mapping[str, Sequence[str]] | None = None,
        user_feature_values: Mapping[str, Mapping[str, str]] | None = None,
        item_frequencies: Sequence[float] | np.ndarray | None = None,
        **overrides: Any,
    ):
        super().__init__()
        config = config or TwoTowerConfig()
        if overrides:
            config = TwoTowerConfig.from_dict({**config.to_dict(), **overrides})
        self.config = config
        self.items = np.asarray(check_vocabulary("items", items), dtype=object)
        self.num_items = len(self.items)
        dim = config.embedding_dim

        # Item side: id embedding (shared with the history by default) + features.
        item_features = dict(item_feature_values or {})
        _check_feature_names("item", config.item_features, item_features)
        self._item_feature_values = {}
        for name in config.item_features:
            values = _as_strings(item_features[name])
            if values.shape != (self.num_items,):
                raise ValueError(
                    f"item feature `{name}` should have shape ({self.num_items},). "
                    f"Received: shape={values.shape}"
                )
            self._item_feature_values[name] = values
        self.item_embedding = CategoricalEmbedding(self.items, dim, name="item_id_embedding")
        item_feature_layers = {
            name: CategoricalEmbedding(_vocab(values), dim, name=f"item_{name}_embedding")
            for name, values in self._item_feature_values.items()
        }
        self.item_tower = build_item_tower(self.item_embedding, item_feature_layers)
        self.item_index_tower = self.item_tower.get_layer("item_tower_index")
        # Item index -> feature index (rows 0/1, the pad and OOV items: the pad feature).
        self._item_feature_index = {
            name: tf.constant(
                np.concatenate([[0, 0], item_feature_layers[name].indices(values)]).astype(np.int32)
            )
            for name, values in self._item_feature_values.items()
        }
        self._item_tables = {
            name: _static_table(self.items, values, name=f"item_{name}")
            for name, values in self._item_feature_values.items()
        }
        self._items_tensor = tf.constant(self.items.astype(str))

        # User side.
        history_embedding = None
        if config.user_tower != "id":
            history_embedding = (
                self.item_embedding
                if config.share_item_embeddings
                else CategoricalEmbedding(self.items, dim, name="history_embedding")
            )
        user_embedding = None
        if config.use_user_id:
            if users is None:
                raise ValueError(
                    f"`user_tower={config.user_tower!r}` needs `users`, the user-id vocabulary"
                )
            user_embedding = CategoricalEmbedding(
                check_vocabulary("users", users), dim, name="user_id_embedding"
            )
        user_features = dict(user_feature_values or {})
        _check_feature_names("user", config.user_features, user_features)
        self._user_feature_maps = {name: dict(user_features[name]) for name in config.user_features}
        user_feature_layers = {
            name: CategoricalEmbedding(
                _vocab(list(mapping.values())), dim, name=f"user_{name}_embedding"
            )
            for name, mapping in self._user_feature_maps.items()
        }
        self._user_tables = {
            name: _static_table(
                _as_strings(list(m.keys())), _as_strings(list(m.values())), name=f"user_{name}"
            )
            for name, m in self._user_feature_maps.items()
        }
        self.user_tower = build_user_tower(
            history_embedding,
            dim,
            pooling=config.pooling,
            user_embedding=user_embedding,
            feature_embeddings=user_feature_layers,
            hidden_units=config.hidden_units,
            activation=config.activation,
        )
        self.user_index_tower = self.user_tower.get_layer("user_tower_index")
        object.__setattr__(self, "_embed_functions", {})  # compiled embedding functions
        self._user_input_names = list(self.user_index_tower.input_names)
        self._input_embeddings = {"item_id": self.item_embedding}
        if history_embedding is not None:
            self._input_embeddings["history"] = history_embedding
        if user_embedding is not None:
            self._input_embeddings["user_id"] = user_embedding
        self._input_embeddings.update(user_feature_layers)

        # Sampling probabilities for logQ, indexed like the item lookup (0 pad, 1 OOV).
        self._item_probabilities = None
        if config.logq_correction:
            if item_frequencies is None:
                raise ValueError(
                    "`logq_correction=True` needs `item_frequencies` "
                    "(tfcro.sampling.item_frequencies(train targets, items))"
                )
            freq = np.asarray(item_frequencies, dtype=np.float32)
            if freq.shape != (self.num_items,):
                raise ValueError(
                    f"`item_frequencies` should have shape ({self.num_items},). "
                    f"Received: shape={freq.shape}"
                )
            self._item_probabilities = tf.constant(
                np.concatenate([[0.0, 1.0 / self.num_items], freq]).astype(np.float32)
            )

        if loss is None:
            loss = losses_lib.get(config.loss, **config.loss_options)
        if getattr(loss, "scale", 1.0) != 1.0:
            warnings.warn(
                f"The loss has scale={loss.scale} and the model scale={config.scale}: "
                "scores are multiplied by both. Use scale=1 in the loss.",
                UserWarning,
                stacklevel=2,
            )
        self.loss_fn = prepare_loss(loss, self.num_items, config.scale)

    # -- Keras config ----------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The model settings (the catalog and vocabularies are data, saved beside it)."""
        return {"config": self.config.to_dict(), "num_items": self.num_items}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], custom_objects=None):
        raise NotImplementedError(
            "TwoTowerModel needs its catalog and vocabularies to be rebuilt: use "
            "tfcro.training.load_model(run_dir) (or load_run(run_dir) with its data split)"
        )

    # -- inputs ----------------------------------------------------------------------------
    def item_inputs(self, item_ids: Any) -> dict[str, tf.Tensor]:
        """Item tower inputs for raw ids: ``{"item_id": ids, <feature>: looked up}``."""
        ids = (
            tf.convert_to_tensor(item_ids, tf.string)
            if not isinstance(item_ids, np.ndarray)
            else tf.constant(item_ids.astype(str))
        )
        inputs = {"item_id": ids}
        for name, table in self._item_tables.items():
            inputs[name] = table.lookup(ids)
        return inputs

    def user_inputs(self, features: Mapping[str, Any]) -> dict[str, tf.Tensor]:
        """User tower inputs from a batch dict; user features it lacks are looked up by user id."""
        inputs = {}
        for name in self._user_input_names:
            if name in features:
                inputs[name] = tf.convert_to_tensor(features[name])
            elif name in self._user_tables:
                if "user_id" not in features:
                    raise ValueError(
                        f"user feature `{name}` is missing and there is no `user_id` to look it up"
                    )
                inputs[name] = self._user_tables[name].lookup(
                    tf.convert_to_tensor(features["user_id"])
                )
            else:
                raise ValueError(
                    f"the batch should hold `{name}`. Received keys: {sorted(features)}"
                )
        return inputs

    # -- embeddings for evaluation/serving -------------------------------------------------
    def embed_items(self, item_ids: Any = None, batch_size: int = 4096) -> np.ndarray:
        """``[N, D]`` float32 item embeddings of ``item_ids`` (default: the catalog).

        Raw ids are encoded once (vectorised) and embedded by the item index tower in
        a compiled function, batch by batch.
        """
        if item_ids is None:
            index = np.arange(2, self.num_items + 2, dtype=np.int32)
        else:
            index = self.item_embedding.indices(_as_strings(item_ids)).reshape(-1)
        inputs = {"item_id": index}
        for name, table in self._item_feature_index.items():
            inputs[name] = table.numpy()[index]
        return self._embed("item", inputs, len(index), batch_size)

    def embed_users(self, features: Mapping[str, Any], batch_size: int = 4096) -> np.ndarray:
        """``[U, D]`` user embeddings of a dict of NumPy arrays (``history``, ``user_id``, ...).

        Raw ids are encoded once (:meth:`encode`; user features missing from
        ``features`` are looked up by ``user_id``) and embedded by the user index
        tower in a compiled function, batch by batch.
        """
        columns = self.encode({k: v for k, v in features.items() if k != "item_id"})
        missing = [name for name in self._user_input_names if name not in columns]
        if missing:
            raise ValueError(
                f"the users should hold {missing} (or `user_id` to look user features up). "
                f"Received keys: {sorted(features)}"
            )
        inputs = {name: columns[name] for name in self._user_input_names}
        return self._embed("user", inputs, len(next(iter(inputs.values()))), batch_size)

    def _embed(self, side: str, inputs: dict[str, np.ndarray], n: int, batch_size: int):
        if side not in self._embed_functions:
            tower = self.user_index_tower if side == "user" else self.item_index_tower
            self._embed_functions[side] = tf.function(
                lambda batch: tower(batch, training=False), reduce_retracing=True
            )
        embed = self._embed_functions[side]
        out = [
            embed({k: v[i : i + batch_size] for k, v in inputs.items()}).numpy()
            for i in range(0, n, batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.config.embedding_dim), np.float32)

    def call(self, features, training=False):
        """User embeddings ``[B, D]`` of a batch dict."""
        return self.user_tower(self.user_inputs(features), training=training)

    # -- training: integer ids (the fast path) or raw strings -----------------------------
    def encode(self, features: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Raw-id columns -> the int32 lookup indices the index towers take, vectorised.

        ``features``: NumPy columns such as ``{"history": [n, L], "user_id": [n],
        "item_id": [n], <user feature>: [n]}`` of raw ids; user features that are
        missing are looked up by ``user_id``; ``sample_weight`` passes as float32;
        other keys (item features: the model looks them up by item) are dropped.
        Batches of the result train through :meth:`compute_loss` with no string op.
        """
        columns = {}
        for name in ["item_id", *self._user_input_names]:
            if name in features:
                values = np.asarray(features[name], dtype=object)
            elif name in self._user_feature_maps and "user_id" in features:
                users = pd.Series(np.asarray(features["user_id"], dtype=object)).astype(str)
                values = users.map(self._user_feature_maps[name]).fillna(PAD).to_numpy(object)
            else:
                continue
            columns[name] = self._input_embeddings[name].indices(values)
        if "sample_weight" in features:
            columns["sample_weight"] = np.asarray(features["sample_weight"], np.float32)
        return columns

    def _candidates(self, positives: tf.Tensor, negatives: tf.Tensor | None, training: bool):
        """``(candidate lookup indices [C], candidate embeddings [C, D])``."""
        if positives.dtype == tf.string:
            ids = positives
            if negatives is not None:
                ids = tf.concat([positives, tf.gather(self._items_tensor, negatives)], 0)
            # as int64 lookup indices: accidental hits are compared over the [B, C] scores
            return self.item_embedding.index(ids), self.item_tower(
                self.item_inputs(ids), training=training
            )
        index = tf.cast(positives, tf.int32)
        if negatives is not None:
            index = tf.concat([index, tf.cast(negatives, tf.int32) + 2], 0)
        inputs = {"item_id": index}
        for name, table in self._item_feature_index.items():
            inputs[name] = tf.gather(table, index)
        return index, self.item_index_tower(inputs, training=training)

    def _user_embeddings(self, features: Mapping[str, tf.Tensor], training: bool) -> tf.Tensor:
        first = features[self._user_input_names[0]]
        if tf.convert_to_tensor(first).dtype == tf.string:
            return self.user_tower(self.user_inputs(features), training=training)
        return self.user_index_tower(
            {name: features[name] for name in self._user_input_names}, training=training
        )

    def retrieval_loss(
        self,
        user_embeddings: tf.Tensor,
        candidate_embeddings: tf.Tensor,
        candidate_index: tf.Tensor,
        sample_weight: tf.Tensor | None = None,
        candidate_sampling_probability: tf.Tensor | None = None,
        score_mask: tf.Tensor | None = None,
        row_embeddings: tf.Tensor | None = None,
        row_index: tf.Tensor | None = None,
        row_sampling_probability: tf.Tensor | None = None,
    ) -> tf.Tensor:
        """The summed loss of ``[B, D]`` users against ``[C, D]`` candidates, row ``b``'s
        positive being candidate ``b``: what ``tfrs.tasks.Retrieval(loss, temperature=
        1 / scale, remove_accidental_hits=...)`` computes, in fewer passes over ``[B, C]``.

        Scores ``scale * u.v``, minus ``log q`` of the candidates (logQ), with
        accidental hits (another column of the row's positive id) and columns off
        ``score_mask`` set to TFRS's masked value (absent for the losses); then each
        row's own negatives (``row_embeddings [B, R, D]`` of lookup indices
        ``row_index [B, R]``, ``row_sampling_probability [B, R]``), scored, corrected
        and cleared of accidental hits the same way, as ``R`` more columns; the
        loss's :meth:`~tfcro.losses.RetrievalLoss.diagonal_call` gives the row
        losses, weighted by ``sample_weight`` and summed.
        """
        scores = float(self.config.scale) * tf.matmul(
            user_embeddings, candidate_embeddings, transpose_b=True
        )
        if candidate_sampling_probability is not None:
            scores -= tf.math.log(tf.clip_by_value(candidate_sampling_probability, 1e-6, 1.0))
        rows, columns = tf.shape(scores)[0], tf.shape(scores)[1]
        absent = None
        if self.config.remove_accidental_hits:
            diagonal = tf.range(rows)[:, None] == tf.range(columns)[None, :]
            hits = candidate_index[:rows, None] == candidate_index[None, :]
            absent = tf.logical_and(hits, tf.logical_not(diagonal))
        if score_mask is not None:
            off = tf.logical_not(score_mask)
            absent = off if absent is None else tf.logical_or(absent, off)
        if absent is not None:
            scores = tf.where(absent, tf.constant(MASKED_SCORE, scores.dtype), scores)
        if row_embeddings is not None:  # each row's own negatives, [B, R]
            own = float(self.config.scale) * tf.einsum(
                "bd,brd->br", user_embeddings, row_embeddings
            )
            if row_sampling_probability is not None:
                own -= tf.math.log(tf.clip_by_value(row_sampling_probability, 1e-6, 1.0))
            if self.config.remove_accidental_hits:
                hits = tf.equal(row_index, tf.cast(candidate_index[:rows, None], row_index.dtype))
                own = tf.where(hits, tf.constant(MASKED_SCORE, own.dtype), own)
            scores = tf.concat([scores, own], axis=1)
        losses = self.loss_fn.diagonal_call(scores)
        if sample_weight is not None:
            losses *= tf.cast(tf.reshape(sample_weight, [-1]), losses.dtype)
        return tf.reduce_sum(losses)

    def compute_loss(self, features, training: bool = False) -> tf.Tensor:
        """The summed loss of a batch over the global batch size.

        ``features`` holds raw string ids (``history``, ``item_id``, ...) or their
        int lookup indices from :meth:`encode` (the training path: no string op,
        XLA-compilable); negatives are sampled as indices either way.
        """
        config = self.config
        positives = tf.convert_to_tensor(features["item_id"])
        batch_size = tf.shape(positives)[0]
        seed = step = None
        if config.seed is not None:
            step = (
                self.optimizer.iterations
                if self.optimizer is not None
                else tf.constant(0, tf.int64)
            )
            step = tf.cast(step, tf.int64)
            seed = tf.stack([tf.constant(config.seed, tf.int64), step])
        negatives = None
        if config.num_negatives > 0:
            negatives = sampling.uniform_negatives(self.num_items, config.num_negatives, seed)
        user_embeddings = self._user_embeddings(features, training)
        candidate_index, candidate_embeddings = self._candidates(positives, negatives, training)
        row_index = row_embeddings = None
        if config.num_row_negatives > 0:  # a stream apart from the shared draws: -1 - step
            row_seed = None if seed is None else tf.stack([seed[0], -1 - step])
            draws = sampling.row_negatives(
                self.num_items, batch_size, config.num_row_negatives, row_seed
            )
            row_index, flat = self._candidates(positives[:0], tf.reshape(draws, [-1]), training)
            row_index = tf.reshape(row_index, tf.shape(draws))
            row_embeddings = tf.reshape(flat, tf.concat([tf.shape(draws), tf.shape(flat)[1:]], 0))
        in_batch = batch_size
        if config.cross_replica_negatives:
            from tfcro.distributed import gather_other_replicas

            # [own positives, sampled, other replicas' positives]: the diagonal stays the label.
            other_index, other_embeddings = gather_other_replicas(
                [candidate_index[:batch_size], candidate_embeddings[:batch_size]]
            )
            candidate_index = tf.concat([candidate_index, other_index], 0)
            candidate_embeddings = tf.concat([candidate_embeddings, other_embeddings], 0)
            in_batch = batch_size + tf.shape(other_index)[0]
        score_mask = None
        if not config.in_batch_negatives:
            score_mask = sampling.in_batch_score_mask(batch_size, config.num_negatives)
        probability = row_probability = None
        if config.logq_correction:  # both blocks: the row's K + R uniform draws

            def proposal(index):
                return sampling.mixture_probability(
                    tf.gather(self._item_probabilities, index),
                    in_batch,
                    config.num_negatives + config.num_row_negatives,
                    self.num_items,
                    in_batch=config.in_batch_negatives,
                )

            probability = proposal(candidate_index)
            if row_index is not None:
                row_probability = proposal(row_index)
        loss_sum = self.retrieval_loss(
            user_embeddings,
            candidate_embeddings,
            candidate_index,
            sample_weight=features.get("sample_weight"),
            candidate_sampling_probability=probability,
            score_mask=score_mask,
            row_embeddings=row_embeddings,
            row_index=row_index,
            row_sampling_probability=row_probability,
        )
        if config.embedding_l2 > 0:
            used = candidate_index
            if row_index is not None:
                used = tf.concat([used, tf.cast(tf.reshape(row_index, [-1]), used.dtype)], 0)
            penalty = self.embedding_penalty(features, used)
            loss_sum += config.embedding_l2 * tf.cast(penalty, loss_sum.dtype)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        global_batch = tf.cast(batch_size * replicas, loss_sum.dtype)
        return loss_sum / global_batch

    def embedding_penalty(self, features: Mapping[str, Any], candidate_index: tf.Tensor):
        """``sum ||e||^2`` over the id-embedding rows a batch uses (LightGCN's regulariser).

        The rows: each row's user id (``user_tower`` with an id), its history items
        (padding excluded) and every candidate (positives and sampled negatives),
        counted once per use. ``features`` holds raw ids or lookup indices.
        """
        total = tf.reduce_sum(tf.square(self._rows(self.item_embedding, candidate_index)))
        for name in ("user_id", "history"):
            if name not in self._user_input_names:
                continue
            embedding = self._input_embeddings[name]
            index = tf.convert_to_tensor(features[name])
            if index.dtype == tf.string:
                index = embedding.index(index)
            rows = self._rows(embedding, index)
            if name == "history":  # index 0 pads
                rows *= tf.cast(index != 0, rows.dtype)[..., None]
            total += tf.reduce_sum(tf.square(rows))
        return total

    @staticmethod
    def _rows(embedding: CategoricalEmbedding, index: tf.Tensor) -> tf.Tensor:
        return tf.gather(embedding.embedding.embeddings, tf.cast(index, tf.int32))


def _check_feature_names(side: str, wanted: Sequence[str], available: Mapping[str, Any]):
    """Every name of ``config.<side>_features`` must be a key of ``<side>_feature_values``."""
    if any(name not in available for name in wanted):
        raise ValueError(
            f"`{side}_features` should name {side} features present in "
            f"`{side}_feature_values` (the dataset's {side} features), which has "
            f"{sorted(available) or 'none'}. Received: {side}_features={list(wanted)}"
        )


def _vocab(values: Any) -> list[str]:
    unique = sorted({str(v) for v in np.asarray(values, dtype=object).reshape(-1)} - {PAD})
    return unique or ["<none>"]


def _static_table(keys: np.ndarray, values: np.ndarray, name: str):
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(_as_strings(keys)), tf.constant(_as_strings(values))
        ),
        default_value=PAD,
        name=name,
    )
