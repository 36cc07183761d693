"""A Keras 3 two-tower retrieval model on keras-rs layers, trained with a tfcro loss.

Needs ``keras-rs`` (``pip install 'tfcro[keras3]'``); runs on every Keras backend.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tfcro.constants import MASKED_SCORE
from tfcro.core import definitions
from tfcro.core.sampling import mixture_probability
from tfcro.keras3.losses import LambdaCROLoss, RetrievalLoss
from tfcro.keras3.retrieval import RemoveAccidentalHits
from tfcro.validation import check_bool, check_float, check_fraction, check_int


class TwoTowerRetrieval(keras.Model):
    """Matrix factorisation as a two-tower model: a user-id tower and an item-id tower,
    unit-norm embeddings scored by ``scale * cosine``; in-batch, shared uniform and
    per-row uniform negatives.

    The training step (:meth:`compute_loss`) scores each user against the candidates
    ``[the batch's items, K uniform items, R uniform items of its own]``
    (``[B, B + K + R]``, labels ``eye(B, B + K + R)``; the first two blocks are the
    layout and the options of the Keras 2 :class:`tfcro.TwoTowerModel`, the third
    draws ``R`` items for every row independently, as the published MF recipes of
    BSL and IR-Benchmark do), subtracts ``log q`` of each candidate under the row's
    mixture proposal (:func:`tfcro.core.sampling.mixture_probability`, ``K + R``
    uniform draws) with
    ``keras_rs.layers.SamplingProbabilityCorrection`` when ``item_probabilities`` are
    given (in-batch negatives are drawn by popularity), masks accidental hits with
    :class:`tfcro.keras3.RemoveAccidentalHits` (and the other rows' items when
    ``in_batch_negatives=False``), applies ``loss`` and adds the LightGCN-style L2
    penalty ``embedding_l2 * sum ||e||^2 / B`` over the embedding rows the batch used.
    Top-N retrieval is ``keras_rs.layers.BruteForceRetrieval`` over the item tower
    (:meth:`index`, then :meth:`recommend`, which masks each user's excluded items
    before its top-N). The model's ``call`` is the query tower (user ids to
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
      num_negatives: ``K`` items drawn uniformly (with replacement) per batch, shared
        by its rows; 0 for none.
      num_row_negatives: ``R`` items drawn uniformly (with replacement) for each row,
        not shared; 0 for none. ``B * R`` embedding rows per step, against ``K`` for
        the shared ones: more distinct negatives at a higher cost (a gather and an
        einsum of ``[B, R, D]``). A draw equal to the row's positive is masked like
        any accidental hit; the user's other training items are not excluded.
      in_batch_negatives: the other rows' items are negatives too (False needs
        ``num_negatives + num_row_negatives >= 1``).
      embedding_l2: ``lambda`` of the L2 penalty on the batch's embedding rows (the
        user of each row and every candidate, before normalisation); 0 for none.
      user_dropout: dropout rate on the user embedding before its normalisation, in
        training only (BSL's MF recipe: 0.1); 0 for none.
      embeddings_initializer: the Keras initializer of both embedding tables, or its
        name (``"uniform"``, Keras's default: U(-0.05, 0.05); ``"glorot_uniform"``: the
        Xavier-uniform start of the published MF code); each table gets an initializer
        of its own (an instance is copied from its config: an unseeded one draws a seed
        per table, a seeded one gives both its seed). With cosine scores the start's
        norm sets how far an Adam step turns an embedding.
      sparse_updates: train with lazy Adam row updates (JAX backend; compile with a
        plain ``keras.optimizers.Adam``): each step updates only the embedding rows the
        batch used, and a row's moments decay only when the batch uses it (the lazy
        Adam of TensorFlow Addons and of the Keras 2 trainer's ``lazy_adam``;
        :mod:`tfcro.keras3.sparse`), instead of Adam's pass over every row of both
        tables: half the step time on a CPU at Yelp2018's sizes with 512 shared
        negatives, but slower with per-row negatives (more ids a step than rows;
        docs/benchmarks.md, "Keras 3 on a CPU: lazy Adam"). The first step is Adam's
        exactly; later ones differ for the rows a batch skips.
      seed: seed of the negative sampler (the dropout's: ``seed + 1``; None: Keras's
        global seed).
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
        num_negatives: int = 0,
        num_row_negatives: int = 0,
        in_batch_negatives: bool = True,
        embedding_l2: float = 0.0,
        user_dropout: float = 0.0,
        embeddings_initializer: str | keras.initializers.Initializer = "uniform",
        sparse_updates: bool = False,
        seed: int | None = None,
        **kwargs,
    ):
        keras_rs = _import_keras_rs()
        super().__init__(**kwargs)
        self.num_users = check_int("num_users", num_users, 1)
        self.num_items = check_int("num_items", num_items, 1)
        self.embedding_dim = check_int("embedding_dim", embedding_dim, 1)
        self.scale = check_float("scale", scale, minimum=0.0, strict=True)
        self.top_n = check_int("top_n", top_n, 1)
        self.num_negatives = check_int("num_negatives", num_negatives, 0)
        self.num_row_negatives = check_int("num_row_negatives", num_row_negatives, 0)
        self.in_batch_negatives = check_bool("in_batch_negatives", in_batch_negatives)
        if not self.in_batch_negatives and self.num_negatives + self.num_row_negatives == 0:
            raise ValueError(
                "`in_batch_negatives=False` needs sampled negatives, `num_negatives` >= 1 "
                "or `num_row_negatives` >= 1. Received: num_negatives=0, num_row_negatives=0"
            )
        self.embedding_l2 = check_float("embedding_l2", embedding_l2, minimum=0.0)
        self.user_dropout = check_fraction("user_dropout", user_dropout, high_open=True)
        self.sparse_updates = check_bool("sparse_updates", sparse_updates)
        if self.sparse_updates and keras.backend.backend() != "jax":
            raise ValueError(
                "`sparse_updates=True` needs the JAX backend (KERAS_BACKEND=jax). Received: "
                f"backend {keras.backend.backend()!r}"
            )
        self.seed_generator = keras.random.SeedGenerator(seed)
        if loss is not None and not isinstance(loss, keras.losses.Loss):
            raise ValueError(
                "`loss` should be a Keras 3 loss, e.g. tfcro.keras3.LambdaCROLoss(). "
                f"Received: loss={loss!r}"
            )
        loss = loss if loss is not None else LambdaCROLoss(alpha=1.0)
        if isinstance(loss, RetrievalLoss):  # the catalog size and score scale it needs
            loss = loss.__class__.from_config(
                definitions.for_model(loss.get_config(), self.num_items, self.scale)
            )
        self.retrieval_loss = loss
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
        try:  # one initializer per table: an unseeded one draws a seed of its own for each
            self.user_embedding, self.item_embedding = (
                keras.layers.Embedding(
                    rows,
                    embedding_dim,
                    embeddings_initializer=_fresh(embeddings_initializer),
                    name=name,
                )
                for rows, name in ((num_users, "users"), (num_items, "items"))
            )
        except (ValueError, TypeError):
            raise ValueError(
                "`embeddings_initializer` should be a Keras initializer or its name, e.g. "
                f"'uniform' or 'glorot_uniform'. Received: {embeddings_initializer!r}"
            ) from None
        # only when used (its seed generator would draw from the global seed); a seed of
        # its own, so that its masks are not the negative sampler's draws
        self.dropout = None
        if self.user_dropout:
            dropout_seed = None if seed is None else seed + 1
            self.dropout = keras.layers.Dropout(self.user_dropout, seed=dropout_seed)
        self.remove_accidental_hits = RemoveAccidentalHits()
        self.retrieval = keras_rs.layers.BruteForceRetrieval(k=top_n, return_scores=False)

    def build(self, input_shape=None):
        self.user_embedding.build((None,))
        self.item_embedding.build((None,))
        super().build(input_shape)

    def call(self, user_ids, training=None):
        """Unit-norm user embeddings ``[B, D]`` (the query tower; ``user_dropout`` on the
        raw embedding when ``training``).
        """
        return self.query_from_rows(self.user_embedding(user_ids), training=training)

    def embed_items(self, item_ids):
        """Unit-norm item embeddings ``[B, D]``."""
        return ops.normalize(self.item_embedding(item_ids), axis=-1, order=2)

    def query_from_rows(self, rows, training=None):
        """The query tower on gathered user embedding rows ``[B, D]`` (what :meth:`call`
        does after its lookup): ``user_dropout`` when ``training``, then unit norm.
        """
        if self.dropout is not None:
            rows = self.dropout(rows, training=training)
        return ops.normalize(rows, axis=-1, order=2)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The retrieval loss of users ``x`` (embedded: ``y_pred``) and items ``y``: the
        mean row loss plus the L2 penalty.
        """
        users, candidates, row_ids = self._draw(x, y)
        raw_items = self.item_embedding(candidates)
        raw_rows = None if row_ids is None else self.item_embedding(row_ids)
        raw_users = self.user_embedding(users) if self.embedding_l2 > 0 else None
        return self._loss_from_rows(
            y_pred, raw_users, raw_items, raw_rows, candidates, row_ids, sample_weight
        )

    def _draw(self, x, y):
        """The ids of a training batch: ``users [B]``, ``candidates [B + K]`` (the rows'
        positives, then the ``K`` shared negatives) and ``row_ids [B, R]`` (each row's own
        negatives; None without them). Draws the negatives.
        """
        users = ops.cast(ops.reshape(x, (-1,)), "int32")
        positives = ops.cast(ops.reshape(y, (-1,)), "int32")
        candidates = positives
        if self.num_negatives:
            negatives = keras.random.randint(
                (self.num_negatives,), 0, self.num_items, dtype="int32", seed=self.seed_generator
            )
            candidates = ops.concatenate([positives, negatives], axis=0)
        row_ids = None
        if self.num_row_negatives:
            row_ids = keras.random.randint(
                (ops.shape(positives)[0], self.num_row_negatives),
                0,
                self.num_items,
                dtype="int32",
                seed=self.seed_generator,
            )
        return users, candidates, row_ids

    def _loss_from_rows(
        self, queries, raw_users, raw_items, raw_rows, candidates, row_ids, sample_weight
    ):
        """The loss from the batch's embeddings: ``queries [B, D]`` (the query tower's
        output), ``raw_users [B, D]`` (for the L2 penalty; None without one),
        ``raw_items [B + K, D]`` and ``raw_rows [B, R, D]`` (None without per-row
        negatives), the rows of :meth:`_draw`'s ids.
        """
        rows = ops.shape(queries)[0]
        items = ops.normalize(raw_items, axis=-1, order=2)
        scores = self.scale * ops.matmul(queries, ops.transpose(items))
        raw_blocks = [raw_items]  # what the L2 penalty covers
        if row_ids is not None:  # [B, R] ids of each row's own, [B, R, D] embeddings
            row_items = ops.normalize(raw_rows, axis=-1, order=2)
            row_scores = self.scale * ops.einsum("bd,brd->br", queries, row_items)
            scores = ops.concatenate([scores, row_scores], axis=1)
            shared = ops.broadcast_to(candidates[None, :], (rows, ops.shape(candidates)[0]))
            candidates = ops.concatenate([shared, row_ids], axis=1)
            raw_blocks.append(raw_rows)
        columns = ops.shape(scores)[1]
        labels = ops.eye(rows, columns, dtype="float32")
        if self.log_q is not None:
            frequencies = ops.take(ops.convert_to_tensor(self.log_q), candidates)
            in_batch = ops.cast(rows, "float32") if self.in_batch_negatives else 0.0
            uniform = self.num_negatives + self.num_row_negatives
            q = mixture_probability(frequencies, in_batch, uniform, self.num_items)
            if len(q.shape) == 1:
                q = q[None, :]
            scores = self.correction(scores, ops.broadcast_to(q, ops.shape(scores)))
        scores = self.remove_accidental_hits(scores, labels, candidates)
        if not self.in_batch_negatives:
            others = ops.logical_and(
                ops.less(ops.arange(columns)[None, :], rows), ops.less(labels, 0.5)
            )
            scores = ops.where(others, ops.cast(MASKED_SCORE, scores.dtype), scores)
        if isinstance(self.retrieval_loss, RetrievalLoss):  # tfcro: the eye-label fast path
            row_losses = self.retrieval_loss.diagonal_call(scores)
            if sample_weight is not None:
                row_losses = row_losses * ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
            loss = ops.sum(row_losses) / ops.cast(rows, "float32")
        else:
            loss = self.retrieval_loss(labels, scores, sample_weight)
        if self.embedding_l2 > 0:
            penalty = ops.sum(ops.square(raw_users))
            penalty = penalty + sum(ops.sum(ops.square(block)) for block in raw_blocks)
            loss = loss + self.embedding_l2 * penalty / ops.cast(rows, "float32")
        return loss

    def compile(self, optimizer="rmsprop", *args, **kwargs):
        if self.sparse_updates:
            from tfcro.keras3.sparse import check_optimizer

            optimizer = keras.optimizers.get(optimizer)
            check_optimizer(optimizer)
        super().compile(optimizer, *args, **kwargs)

    def train_step(self, *args):
        if not self.sparse_updates:
            return super().train_step(*args)
        from tfcro.keras3.sparse import check_optimizer, train_step

        check_optimizer(self.optimizer)
        tables = {
            id(v): v.path for v in (self.user_embedding.embeddings, self.item_embedding.embeddings)
        }
        trainable = {id(v): v.path for v in self.trainable_variables}
        frozen = [path for key, path in tables.items() if key not in trainable]
        if frozen:
            raise ValueError(
                "`sparse_updates=True` trains both embedding tables. Received a frozen "
                f"one (trainable=False): {frozen}"
            )
        others = [path for key, path in trainable.items() if key not in tables]
        if others:
            raise ValueError(
                "`sparse_updates=True` trains the two embedding tables only. Received "
                f"other trainable variables: {others}"
            )
        return train_step(self, *args)

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

    def recommend(
        self, user_ids, exclude=None, batch_size: int = 1024, top_n: int | None = None
    ) -> np.ndarray:
        """``[B, top_n]`` item ids, best first (``top_n`` default: the model's), without
        each user's ``exclude`` ids (e.g. the items seen in training), which are masked on
        the device before the top-N (-1 pads a row that runs out). Call :meth:`index`
        after training first.
        """
        embeddings = self.retrieval.candidate_embeddings
        if embeddings is None:
            raise ValueError("call `index()` before `recommend()`: no item is indexed yet")
        top_n = self.top_n if top_n is None else check_int("top_n", top_n, 1)
        batch_size = check_int("batch_size", batch_size, 1)
        user_ids = np.asarray(user_ids, dtype="int32").reshape(-1)
        if exclude is not None and len(exclude) != len(user_ids):
            raise ValueError(
                "`exclude` should hold one list of item ids per user. "
                f"Received: {len(exclude)} lists for {len(user_ids)} users"
            )
        depth = min(top_n, self.num_items)
        out = np.full((len(user_ids), top_n), -1, dtype="int32")
        for start in range(0, len(user_ids), batch_size):
            users = user_ids[start : start + batch_size]
            scores = self.retrieval.compute_score(self(ops.convert_to_tensor(users)), embeddings)
            if exclude is not None:
                scores = self._mask(scores, exclude[start : start + batch_size])
            values, top = ops.top_k(scores, k=depth)
            values, top = np.asarray(values), np.asarray(top).astype("int32")
            out[start : start + len(users), :depth] = np.where(values > MASKED_SCORE / 2, top, -1)
        return out

    def _mask(self, scores, exclude):
        """``scores [b, num_items]`` with each row's ``exclude`` ids at the masked score."""
        lengths = [len(ids) for ids in exclude]
        if sum(lengths) == 0:
            return scores
        columns = np.concatenate([np.asarray(ids, dtype="int64").reshape(-1) for ids in exclude])
        if columns.min() < 0 or columns.max() >= self.num_items:
            bad = columns[(columns < 0) | (columns >= self.num_items)][0]
            raise ValueError(
                f"`exclude` should hold item ids in [0, {self.num_items}). Received: {bad}"
            )
        rows = np.repeat(np.arange(len(exclude)), lengths)
        # padded to a power of two (zeros add nothing): few shapes, few compilations
        size = 1 << (len(columns) - 1).bit_length()
        indices = np.zeros((size, 2), dtype="int32")
        indices[: len(columns), 0], indices[: len(columns), 1] = rows, columns
        values = np.zeros(size, dtype="float32")
        values[: len(columns)] = 1.0
        masked = ops.scatter(indices, values, ops.shape(scores))
        return ops.where(masked > 0, ops.cast(MASKED_SCORE, scores.dtype), scores)


def _import_keras_rs():
    """``keras_rs``, imported without touching the global random states: its first
    import draws from Python's ``random`` (through the modules it loads), so a model
    built after ``keras.utils.set_random_seed`` would start from other weights in the
    process's first model than in a later one.
    """
    import random

    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        import keras_rs
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    return keras_rs


def _fresh(initializer):
    """A name as it is (Keras makes one initializer per layer); an initializer instance
    copied from its config, so that an unseeded one draws a seed per table (a seeded
    one gives both tables its seed, as asked).
    """
    if isinstance(initializer, keras.initializers.Initializer):
        return initializer.__class__.from_config(initializer.get_config())
    return initializer
