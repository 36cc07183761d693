"""``tf.data`` pipelines over :class:`TrainExamples` and :class:`EvalUsers`.

Both build a ``tf.data.Dataset`` with ``from_tensor_slices`` over the NumPy
arrays (no Python generator, no per-step Python work) and yield dicts of
``tf.string`` tensors in the towers' input format (docs/architecture.md):

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

from tfcro._compat import tf
from tfcro.data.types import EvalUsers, TrainExamples

__all__ = ["train_dataset", "eval_batches"]

_RESERVED = ("history", "user_id", "item_id")


def _check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or (
        batch_size < 1
    ):
        raise ValueError(
            f"`batch_size` should be a positive integer. Received: `batch_size`={batch_size!r}"
        )
    return int(batch_size)


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
        columns[name] = values.astype(object) if values.dtype.kind in "OU" else values
    return columns


def _strings(values: np.ndarray) -> tf.Tensor:
    return tf.constant(values, dtype=tf.string)


def _to_tensors(columns: dict[str, np.ndarray]) -> dict[str, tf.Tensor]:
    out = {}
    for name, values in columns.items():
        out[name] = _strings(values) if values.dtype.kind in "OU" else tf.constant(values)
    return out


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
    batch_size = _check_batch_size(batch_size)
    n = len(train)
    columns = _columns(
        {"history": train.history, "user_id": train.user_id, "item_id": train.target},
        features,
        n,
    )
    dataset = tf.data.Dataset.from_tensor_slices(_to_tensors(columns))
    if shuffle and n:
        dataset = dataset.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def eval_batches(
    users: EvalUsers,
    batch_size: int,
    features: Mapping[str, np.ndarray] | None = None,
) -> tf.data.Dataset:
    """Batches of evaluation queries ``{"history", "user_id", *features}``, in user order.

    Row ``j`` of the concatenated batches is ``users.user_id[j]``, so targets and
    seen items are looked up by position (``users.targets[j]``, ``users.seen[j]``).
    """
    batch_size = _check_batch_size(batch_size)
    columns = _columns(
        {"history": users.history, "user_id": users.user_id}, features, len(users)
    )
    dataset = tf.data.Dataset.from_tensor_slices(_to_tensors(columns))
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
