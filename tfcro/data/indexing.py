"""Integer ids for id-tower models: a :class:`~tfcro.data.RetrievalData` split with users
and items as positions ``0 .. n - 1`` (NumPy ``int32``), for models that embed ids
directly (e.g. :class:`tfcro.keras3.TwoTowerRetrieval`; any framework).

>>> from tfcro import data as tdata
>>> split = tdata.collaborative_split(
...     tdata.random_holdout(tdata.load_dataset("synthetic", num_users=50, num_items=40), 0.2),
...     max_history=1, valid_fraction=0.1)
>>> ids = tdata.index_split(split)
>>> ids.num_items == len(split.items), ids.train_items.dtype.name
(True, 'int32')
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfcro.data.types import EvalUsers, RetrievalData


@dataclasses.dataclass
class IndexedQueries:
    """Evaluation users as positions: ``users [u]``, and per user the ``targets`` to
    retrieve and the ``seen`` items to exclude (``int32`` arrays of item positions).
    """

    users: np.ndarray
    targets: list[np.ndarray]
    seen: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.users)


@dataclasses.dataclass
class IndexedSplit:
    """A split with integer ids. ``user_ids[k]`` / ``items[k]`` is the raw id of user /
    item position ``k``; ``train_users[i]`` interacted with ``train_items[i]``.
    """

    user_ids: np.ndarray
    items: np.ndarray
    train_users: np.ndarray
    train_items: np.ndarray
    valid: IndexedQueries
    test: IndexedQueries

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.items)

    def refit_split(self) -> IndexedSplit:
        """The split a refit trains on: the validation targets join the training pairs
        (the whole training file), no validation users left; the test is unchanged.
        """
        lengths = [len(targets) for targets in self.valid.targets]
        empty = np.zeros(0, np.int32)
        valid_items = np.concatenate(self.valid.targets) if sum(lengths) else empty
        return dataclasses.replace(
            self,
            train_users=np.concatenate(
                [self.train_users, np.repeat(self.valid.users, lengths).astype(np.int32)]
            ),
            train_items=np.concatenate([self.train_items, valid_items.astype(np.int32)]),
            valid=IndexedQueries(users=empty, targets=[], seen=[]),
        )

    def item_probabilities(self) -> np.ndarray:
        """``[num_items]`` float32: each item's share of the training interactions (the
        probability that an in-batch candidate is that item: the logQ correction's ``f``).
        """
        counts = np.bincount(self.train_items, minlength=self.num_items)
        return (counts / max(len(self.train_items), 1)).astype(np.float32)


def _positions(ids: np.ndarray, vocabulary: np.ndarray, what: str) -> np.ndarray:
    """Positions of ``ids`` in the sorted ``vocabulary`` (ValueError for unknown ids)."""
    ids = np.asarray(ids).astype(str)
    position = np.clip(np.searchsorted(vocabulary, ids), 0, max(len(vocabulary) - 1, 0))
    known = vocabulary[position] == ids if len(vocabulary) else np.zeros(len(ids), bool)
    if not np.all(known):
        raise ValueError(f"{what} id {ids[~known][0]!r} is not in the split's {what}s")
    return position.astype(np.int32)


def _ragged(lists: list[np.ndarray], vocabulary: np.ndarray, what: str) -> list[np.ndarray]:
    lengths = [len(values) for values in lists]
    if not lists or sum(lengths) == 0:
        return [np.zeros(0, np.int32) for _ in lists]
    flat = _positions(np.concatenate([np.asarray(v).astype(str) for v in lists]), vocabulary, what)
    return np.split(flat, np.cumsum(lengths)[:-1])


def _queries(users: EvalUsers, user_ids: np.ndarray, items: np.ndarray) -> IndexedQueries:
    return IndexedQueries(
        users=_positions(users.user_id, user_ids, "user"),
        targets=_ragged(users.targets, items, "item"),
        seen=_ragged(users.seen, items, "item"),
    )


def index_split(split: RetrievalData) -> IndexedSplit:
    """``split`` with users and items as integer positions (users sorted by raw id; items
    in catalog order). Needs a split with user ids (``collaborative_split``).
    """
    items = np.asarray(split.items).astype(str)
    if np.any(items[1:] <= items[:-1]):
        raise ValueError("`split.items` should be the sorted, unique catalog of the split")
    parts = [split.train.user_id, split.valid.user_id, split.test.user_id]
    user_ids = np.unique(np.concatenate([np.asarray(p).astype(str) for p in parts]))
    if split.train.target_codes is not None:
        train_items = np.asarray(split.train.target_codes, np.int32)
    else:
        train_items = _positions(split.train.target, items, "item")
    return IndexedSplit(
        user_ids=user_ids,
        items=items,
        train_users=_positions(split.train.user_id, user_ids, "user"),
        train_items=train_items,
        valid=_queries(split.valid, user_ids, items),
        test=_queries(split.test, user_ids, items),
    )
