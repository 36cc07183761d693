"""A Keras 3 two-tower retrieval model on keras-rs layers, trained with a tfcro loss.

Needs ``keras-rs`` (``pip install 'tfcro[keras3]'``); runs on every Keras backend.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tfcro.keras3.losses import LambdaCROLoss
from tfcro.keras3.retrieval import RemoveAccidentalHits
from tfcro.validation import check_float, check_int


class TwoTowerRetrieval(keras.Model):
    """Matrix factorisation as a two-tower model: a user-id tower and an item-id tower,
    unit-norm embeddings scored by ``scale * cosine``, in-batch negatives.

    The training step (:meth:`compute_loss`) scores each user against the batch's
    items (``[B, B]``, labels ``eye(B)``), subtracts ``log q`` of each candidate with
    ``keras_rs.layers.SamplingProbabilityCorrection`` when ``item_probabilities`` are
    given (in-batch negatives are drawn by popularity), masks accidental hits with
    :class:`tfcro.keras3.RemoveAccidentalHits`, and applies ``loss``. Top-N retrieval
    is ``keras_rs.layers.BruteForceRetrieval`` over the item tower (:meth:`index`, then
    :meth:`recommend`). The model's ``call`` is the query tower (user ids to
    embeddings): what ``model.export(...)`` serves.

    Args:
      num_users: user ids are ``0 .. num_users - 1``.
      num_items: item ids are ``0 .. num_items - 1``.
      embedding_dim: the embedding size.
      loss: a :mod:`tfcro.keras3` loss (default ``LambdaCROLoss(alpha=1.0)``; its
        ``scale`` multiplies the model's already scaled scores, so keep it at 1) or any
        Keras loss of ``(labels [B, B], logits [B, B])`` such as
        ``keras.losses.CategoricalCrossentropy(from_logits=True)``.
      scale: ``1 / temperature`` of the cosine scores.
      item_probabilities: ``[num_items]`` sampling probability of each item as an
        in-batch candidate (its share of the training interactions) for the logQ
        correction; None: no correction.
      top_n: how many items :meth:`recommend` returns.
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        embedding_dim: int = 32,
        loss: keras.losses.Loss | None = None,
        scale: float = 10.0,
        item_probabilities=None,
        top_n: int = 100,
        **kwargs,
    ):
        import keras_rs

        super().__init__(**kwargs)
        self.num_users = check_int("num_users", num_users, 1)
        self.num_items = check_int("num_items", num_items, 1)
        self.embedding_dim = check_int("embedding_dim", embedding_dim, 1)
        self.scale = check_float("scale", scale, minimum=0.0, strict=True)
        self.top_n = check_int("top_n", top_n, 1)
        if loss is not None and not isinstance(loss, keras.losses.Loss):
            raise ValueError(
                "`loss` should be a Keras 3 loss, e.g. tfcro.keras3.LambdaCROLoss(). "
                f"Received: loss={loss!r}"
            )
        self.retrieval_loss = loss if loss is not None else LambdaCROLoss(alpha=1.0)
        self.log_q = None
        if item_probabilities is not None:
            q = np.asarray(item_probabilities, dtype="float32")
            if q.shape != (self.num_items,) or not np.all(q >= 0):
                raise ValueError(
                    "`item_probabilities` should be num_items non-negative probabilities. "
                    f"Received: shape {q.shape}, minimum {q.min() if q.size else None}"
                )
            self.log_q = q
            self.correction = keras_rs.layers.SamplingProbabilityCorrection()
        self.user_embedding = keras.layers.Embedding(num_users, embedding_dim, name="users")
        self.item_embedding = keras.layers.Embedding(num_items, embedding_dim, name="items")
        self.remove_accidental_hits = RemoveAccidentalHits()
        self.retrieval = keras_rs.layers.BruteForceRetrieval(k=top_n, return_scores=False)

    def build(self, input_shape=None):
        self.user_embedding.build((None,))
        self.item_embedding.build((None,))
        super().build(input_shape)

    def call(self, user_ids):
        """Unit-norm user embeddings ``[B, D]`` (the query tower)."""
        return ops.normalize(self.user_embedding(user_ids), axis=-1, order=2)

    def embed_items(self, item_ids):
        """Unit-norm item embeddings ``[B, D]``."""
        return ops.normalize(self.item_embedding(item_ids), axis=-1, order=2)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The in-batch retrieval loss of users ``x`` (embedded: ``y_pred``) and items ``y``."""
        items = self.embed_items(y)
        scores = self.scale * ops.matmul(y_pred, ops.transpose(items))
        rows = ops.shape(scores)[0]
        labels = ops.eye(rows, dtype="float32")
        if self.log_q is not None:
            q = ops.take(ops.convert_to_tensor(self.log_q), y)
            scores = self.correction(scores, ops.broadcast_to(q[None, :], ops.shape(scores)))
        scores = self.remove_accidental_hits(scores, labels, y)
        return self.retrieval_loss(labels, scores, sample_weight)

    def index(self, batch_size: int = 4096) -> None:
        """Loads every item's embedding into the brute-force top-N layer."""
        ids = np.arange(self.num_items, dtype="int32")
        vectors = np.concatenate(
            [
                np.asarray(self.embed_items(ids[start : start + batch_size]))
                for start in range(0, len(ids), batch_size)
            ]
        )
        self.retrieval.update_candidates(vectors, ids)

    def recommend(self, user_ids, exclude=None, batch_size: int = 1024) -> np.ndarray:
        """``[B, top_n]`` item ids, best first, without each user's ``exclude`` ids (e.g.
        the items seen in training; -1 pads a row that runs out). Call :meth:`index`
        after training first.
        """
        if self.retrieval.candidate_embeddings is None:
            raise ValueError("call `index()` before `recommend()`: no item is indexed yet")
        user_ids = np.asarray(user_ids, dtype="int32")
        extra = max((len(e) for e in exclude), default=0) if exclude is not None else 0
        depth = min(self.top_n + extra, self.num_items)
        if depth != self.retrieval.k:
            self.retrieval.k = depth
        top = np.concatenate(
            [
                np.asarray(
                    self.retrieval(self(ops.convert_to_tensor(user_ids[i : i + batch_size])))
                )
                for i in range(0, len(user_ids), batch_size)
            ]
        ).reshape(len(user_ids), depth)
        if exclude is None:
            return top[:, : self.top_n]
        out = np.full((len(user_ids), self.top_n), -1, dtype=top.dtype)
        for row, (ids, seen) in enumerate(zip(top, exclude, strict=True)):
            kept = ids[~np.isin(ids, np.asarray(seen, dtype=ids.dtype))][: self.top_n]
            out[row, : len(kept)] = kept
        return out
