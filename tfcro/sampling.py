"""Negative sampling for the two-tower model's training batches.

Layout of the candidates of one batch of ``B`` (user, positive item) rows with
``K`` sampled negatives: ``[positive_0 .. positive_{B-1}, negative_0 .. negative_{K-1}]``,
so that TFRS's ``labels = tf.eye(B, B + K)`` marks each row's own positive.

- The ``K`` negatives are drawn uniformly from the catalog, with replacement,
  once per batch and shared by all rows (paper: ``K = 10 * B``).
- Per-row negatives (:func:`row_negatives`): ``R`` more uniform draws for each row on
  its own, scored as a ``[B, R]`` block after the ``[B, B + K]`` one (the published MF
  recipes' negatives: BSL draws 800 per row).
- In-batch negatives (the other rows' positives) are kept or masked out with
  :func:`in_batch_score_mask`.
- A sampled negative (or another row's positive) equal to a row's positive is
  an accidental hit, removed by id in ``tfrs.tasks.Retrieval(remove_accidental_hits=True)``.
- logQ correction: every candidate ``j`` is corrected with its probability under the
  row's mixture proposal, ``q_j = (B f_j + (K + R) / N) / (B + K + R)``
  (:func:`mixture_probability`; the formula's home is :mod:`tfcro.core.sampling`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tfcro._compat import tf
from tfcro.core import sampling as core_sampling
from tfcro.validation import check_int


def check_num_negatives(value: object) -> int:
    """``num_negatives`` as an int >= 0, or ValueError naming it."""
    return check_int("num_negatives", value, 0, hint="the items sampled per batch")


def uniform_negatives(
    num_items: int, num_negatives: int, seed: tf.Tensor | Sequence[int] | None = None
) -> tf.Tensor:
    """``[num_negatives]`` int64 catalog indices drawn uniformly with replacement.

    ``seed``: None draws from TensorFlow's stateful generator; a shape ``[2]``
    integer seed (e.g. ``[config_seed, step]``) draws statelessly and reproducibly.

    >>> uniform_negatives(10, 3, seed=[1, 0]).shape
    TensorShape([3])
    """
    return _uniform_indices([check_num_negatives(num_negatives)], num_items, seed)


def _uniform_indices(shape, num_items: int, seed) -> tf.Tensor:
    """int64 catalog indices of ``shape``, uniform with replacement (``seed`` as in
    :func:`uniform_negatives`).
    """
    if num_items < 1:
        raise ValueError(f"`num_items` should be >= 1. Received: num_items={num_items!r}")
    if seed is None:
        return tf.random.uniform(shape, 0, num_items, dtype=tf.int64)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    return tf.random.stateless_uniform(shape, seed=seed, minval=0, maxval=num_items, dtype=tf.int64)


def check_num_row_negatives(value: object) -> int:
    """``num_row_negatives`` as an int >= 0, or ValueError naming it."""
    return check_int("num_row_negatives", value, 0, hint="the items sampled for each row")


def row_negatives(
    num_items: int,
    batch_size: tf.Tensor | int,
    num_row_negatives: int,
    seed: tf.Tensor | Sequence[int] | None = None,
) -> tf.Tensor:
    """``[batch_size, num_row_negatives]`` int64 catalog indices drawn uniformly with
    replacement, independently for every row (``seed`` as in :func:`uniform_negatives`).

    >>> row_negatives(10, 2, 3, seed=[1, 0]).shape
    TensorShape([2, 3])
    """
    num_row_negatives = check_num_row_negatives(num_row_negatives)
    shape = tf.stack([tf.cast(batch_size, tf.int32), num_row_negatives])
    return _uniform_indices(shape, num_items, seed)


def in_batch_score_mask(batch_size: tf.Tensor | int, num_negatives: int) -> tf.Tensor:
    """``[B, B + K]`` bool mask that keeps each row's positive and the sampled negatives only.

    Pass as ``score_mask`` to ``tfrs.tasks.Retrieval`` to turn in-batch negatives off.

    >>> in_batch_score_mask(2, 1).numpy().tolist()
    [[True, False, True], [False, True, True]]
    """
    own = tf.cast(tf.eye(batch_size), tf.bool)
    sampled = tf.ones(tf.stack([batch_size, num_negatives]), tf.bool)
    return tf.concat([own, sampled], axis=1)


def item_frequencies(
    train_items: Sequence[str] | np.ndarray,
    items: Sequence[str] | np.ndarray,
    smoothing: float = 0.0,
) -> np.ndarray:
    """``f_j``: the frequency of catalog item ``j`` among the training targets (sums to 1).

    ``f_j = (count_j + smoothing) / (n + smoothing * N)``; ids outside the catalog
    are ignored.

    >>> item_frequencies(["a", "a", "b"], ["a", "b", "c"]).round(3).tolist()
    [0.667, 0.333, 0.0]
    """
    items = np.asarray(items).astype(str)
    order = np.argsort(items)
    position = np.searchsorted(items[order], np.asarray(train_items).astype(str))
    position = np.clip(position, 0, len(items) - 1)
    known = items[order][position] == np.asarray(train_items).astype(str)
    counts = np.bincount(order[position[known]], minlength=len(items)).astype(np.float64)
    counts += float(smoothing)
    total = counts.sum()
    return counts / total if total > 0 else np.full(len(items), 1.0 / len(items))


def mixture_probability(
    frequencies: tf.Tensor,
    batch_size: tf.Tensor | int,
    num_negatives: int,
    num_items: int,
    in_batch: bool = True,
) -> tf.Tensor:
    """Per-draw probability of each candidate under the batch's mixture proposal.

    ``q_j = (B_in f_j + K / N) / (B_in + K)`` with ``B_in = B`` when in-batch
    negatives are used, else 0 (then ``q_j = 1 / N``): the formula of
    :func:`tfcro.core.sampling.mixture_probability`. ``frequencies`` are the ``f_j``
    of the candidates (any shape). Feed ``q`` to
    ``Retrieval(candidate_sampling_probability=q)``, which subtracts ``log q_j``.

    >>> float(mixture_probability(tf.constant(0.5), 2, 2, 4))  # (2*0.5 + 2/4) / 4
    0.375
    """
    b_in = tf.cast(batch_size, tf.float32) if in_batch else tf.constant(0.0)
    if num_negatives == 0:  # in-batch only: q = f (and no 0 / 0 for an empty batch)
        b_in = tf.maximum(b_in, 1.0)
    return core_sampling.mixture_probability(
        tf.cast(frequencies, tf.float32), b_in, num_negatives, num_items
    )
