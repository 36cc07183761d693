"""``tf.data`` pipelines over :class:`TrainExamples` and :class:`EvalUsers`.

Both build a ``tf.data.Dataset`` over row indices (shuffled with a seed, then
batched) whose batches are gathered in-graph from constant tensors: string
columns are stored once as int32 codes plus a vocabulary, so even ``[600k, 50]``
histories cost ~120 MB, and there is no Python generator or per-step Python
work. They yield dicts of ``tf.string`` tensors in the towers' input format
(docs/architecture.md):

- ``"history"``: ``[B, L]``, padded with ``""``;
- ``"user_id"``: ``[B]``;
- ``"item_id"``: ``[B]``, the target item (training only);
- one ``[B]`` column per extra feature passed in ``features``.

Example:
    >>> from tfcro.data import synthetic, sequential_split
    >>> data = sequential_split(synthetic.generate(num_users=50, num_items=40), 5)
    >>> batch = next(iter(train_dataset(data.train, batch_size=8)))
    >>> batch["history"].shape.as_list(), batch["item_id"].dtype.name
    ([8, 5], 'string')
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from tfcro._compat import tf
from tfcro.data.types import EvalUsers, TrainExamples
from tfcro.validation import check_int

__all__ = ["train_dataset", "index_dataset", "eval_batches"]

_RESERVED = ("history", "user_id", "item_id")


def _columns(base: dict[str, np.ndarray], features: Mapping[str, np.ndarray] | None, n: int):
    columns = dict(base)
    for name, values in (features or {}).items():
        if name in _RESERVED:
            raise ValueError(
                f"`features` must not redefine {list(_RESERVED)}. Received: feature {name!r}"
            )
        values = np.asarray(values)
        if values.shape[:1] != (n,):
            raise ValueError(
                f"`features[{name!r}]` should have {n} rows (one per example). "
                f"Received shape: {values.shape}"
            )
        columns[name] = values
    return columns


class _Columns:
    """Columns held as small integer codes plus one string vocabulary each.

    ``[n, L]`` string arrays of a large dataset would be tens of millions of
    ``tf.string`` scalars; codes (int32) and a vocabulary keep the memory to a few
    bytes per cell, and a batch is materialised with two ``tf.gather`` calls.
    """

    def __init__(self, columns: dict[str, np.ndarray]):
        self.codes: dict[str, tf.Tensor] = {}
        self.vocab: dict[str, tf.Tensor] = {}
        self.plain: dict[str, tf.Tensor] = {}
        for name, values in columns.items():
            if values.dtype.kind in "OU":
                codes, uniques = pd.factorize(values.ravel())
                self.codes[name] = tf.constant(codes.astype(np.int32).reshape(values.shape))
                self.vocab[name] = tf.constant(np.asarray(uniques, dtype=object), tf.string)
            else:
                self.plain[name] = tf.constant(values)

    def batch(self, index: tf.Tensor) -> dict[str, tf.Tensor]:
        out = {
            name: tf.gather(self.vocab[name], tf.gather(codes, index))
            for name, codes in self.codes.items()
        }
        out.update({name: tf.gather(values, index) for name, values in self.plain.items()})
        return out


def _batches(
    columns: dict[str, np.ndarray],
    n: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    drop_remainder: bool,
) -> tf.data.Dataset:
    table = _Columns(columns)
    dataset = tf.data.Dataset.range(n)
    if shuffle and n:
        # Shuffling row indices (not rows) keeps the buffer small and fast.
        dataset = dataset.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.map(table.batch).prefetch(tf.data.AUTOTUNE)


def train_dataset(
    train: TrainExamples,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    features: Mapping[str, np.ndarray] | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of training examples: ``{"history", "user_id", "item_id", *features}``.

    Args:
        train: the training examples (``RetrievalData.train``).
        batch_size: examples per batch.
        shuffle: reshuffle every epoch (a full-size buffer, seeded by ``seed``).
        seed: the shuffle seed (same seed, same batch order).
        features: extra ``[n]`` columns aligned with ``train`` (e.g.
            ``data.example_features(data.train.user_id, data.train.target)``).
        drop_remainder: drop the last short batch (static batch dimension).

    Returns:
        A prefetched ``tf.data.Dataset`` of dicts of ``tf.string`` tensors.
    """
    batch_size = check_int("batch_size", batch_size)
    n = len(train)
    columns = _columns(
        {"history": train.history, "user_id": train.user_id, "item_id": train.target},
        features,
        n,
    )
    return _batches(columns, n, batch_size, shuffle, seed, drop_remainder)


def index_dataset(
    columns: Mapping[str, np.ndarray],
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of numeric columns (e.g. the int32 indices of ``TwoTowerModel.encode``).

    The columns are held as constant tensors; each batch is one ``tf.gather`` of a
    shuffled index range per column (no per-example Python, no string op).
    """
    batch_size = check_int("batch_size", batch_size)
    columns = {name: np.asarray(values) for name, values in columns.items()}
    sizes = {len(values) for values in columns.values()}
    if len(sizes) != 1:
        raise ValueError(
            "`columns` should all have the same number of rows. Received: "
            f"{ {name: len(values) for name, values in columns.items()} }"
        )
    kinds = {name: values.dtype.kind for name, values in columns.items()}
    if any(kind in "OUS" for kind in kinds.values()):
        raise ValueError(f"`columns` should be numeric (encode raw ids first). Received: {kinds}")
    return _batches(columns, sizes.pop(), batch_size, shuffle, seed, drop_remainder)


def eval_batches(
    users: EvalUsers,
    batch_size: int,
    features: Mapping[str, np.ndarray] | None = None,
) -> tf.data.Dataset:
    """Batches of evaluation queries ``{"history", "user_id", *features}``, in user order.

    Row ``j`` of the concatenated batches is ``users.user_id[j]``, so targets and
    seen items are looked up by position (``users.targets[j]``, ``users.seen[j]``).
    """
    batch_size = check_int("batch_size", batch_size)
    columns = _columns({"history": users.history, "user_id": users.user_id}, features, len(users))
    return _batches(columns, len(users), batch_size, False, 0, False)
