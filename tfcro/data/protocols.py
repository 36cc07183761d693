"""Evaluation protocols: :class:`Interactions` -> :class:`RetrievalData`.

Two protocols, both vectorised over integer codes (no per-row Python loops):

**Sequential** (:func:`sequential_split`, the CROLoss paper's protocol, its section 4.1,
as in ComiRec): users are shuffled with ``seed`` and split 8:1:1 into train/valid/test users.
A training user with time-ordered behaviours ``b_1..b_n`` gives one sample per
prefix: history = ``b_1..b_k`` truncated to the last ``L``, target = ``b_{k+1}``
for ``k = min_history..n-1``. An evaluation user's first ``floor(0.8 n)``
behaviours (clamped to ``[1, n-1]``) are the history (last ``L`` kept), the rest
are targets; ``seen`` is empty (no exclusion), and evaluation users with fewer
than 2 behaviours are dropped (logged). The catalog is every item in the data.

**Collaborative** (:func:`collaborative_split`, LightGCN-style): every user is in
every split. A random ``valid_fraction`` of each user's *training* interactions is
held out for validation (never the test set). Each remaining training
interaction is a sample whose history is up to ``L`` *other* training items of
the user; test users rank the catalog with their training items excluded
(``seen``).

History arrays are ``[n, L]`` str, **oldest first and padded with**
:data:`~tfcro.data.types.PAD` **on the right**, i.e. ``["a", "b", "", ""]``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tfcro.data.preprocess import clean
from tfcro.data.types import PAD, EvalUsers, Interactions, RetrievalData, TrainExamples
from tfcro.validation import check_choice, check_fraction, check_int, invalid

logger = logging.getLogger("tfcro.data")

__all__ = ["sequential_split", "collaborative_split", "random_holdout"]


#: ``collaborative_split(valid_split=...)``: how each user's validation items are chosen.
VALID_SPLITS = ("random", "last")

# --------------------------------------------------------------------------- validation


def _check_split(split: Sequence[float]) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in split)
    except (TypeError, ValueError):
        parts = ()
    if (
        len(parts) != 3
        or any(not np.isfinite(p) or p < 0 for p in parts)
        or not np.isclose(sum(parts), 1.0)
    ):
        raise invalid(
            "split",
            "three non-negative (train, valid, test) fractions summing to 1, e.g. (0.8, 0.1, 0.1)",
            split,
        )
    return parts  # type: ignore[return-value]


# --------------------------------------------------------------------------- helpers


class _Grouped:
    """Rows grouped by user (stable: time order within a user), as integer codes."""

    def __init__(self, user_code: np.ndarray, num_users: int, key: np.ndarray | None = None):
        if key is None:
            self.order = np.argsort(user_code, kind="stable")
        else:
            self.order = np.lexsort((key, user_code))
        self.user = user_code[self.order]
        self.counts = np.bincount(user_code, minlength=num_users)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        self.position = np.arange(len(self.user)) - self.starts[self.user]


def _windows(end: np.ndarray, length: np.ndarray, max_history: int) -> tuple[np.ndarray, ...]:
    """Index matrix of ``length`` rows ending before ``end``; returns (index, valid)."""
    offsets = np.arange(max_history)
    index = end[:, None] - length[:, None] + offsets[None, :]
    valid = offsets[None, :] < length[:, None]
    return np.where(valid, index, 0), valid


def _to_strings(codes: np.ndarray, valid: np.ndarray, vocabulary: np.ndarray) -> np.ndarray:
    padded = np.append(vocabulary.astype(object), PAD)
    return padded[np.where(valid, codes, len(vocabulary))]


def _split_by_counts(values: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    return np.split(values, np.cumsum(counts)[:-1]) if len(counts) else []


def _retrieval_data(
    protocol: str,
    interactions: Interactions,
    items: np.ndarray,
    train: TrainExamples,
    valid: EvalUsers,
    test: EvalUsers,
    max_history: int,
) -> RetrievalData:
    """The protocol's result with the interactions' side features aligned to ``items``."""
    item_features, user_features = _features(interactions, items)
    data = RetrievalData(
        items=items,
        train=train,
        valid=valid,
        test=test,
        item_features=item_features,
        user_features=user_features,
        protocol=protocol,
        max_history=max_history,
        name=interactions.name,
    )
    logger.info("%s", data)
    return data


def _features(interactions: Interactions, items: np.ndarray):
    item_features: dict[str, np.ndarray] = {}
    if interactions.item_features is not None and len(interactions.item_features):
        table = interactions.item_features.drop_duplicates("item").set_index("item")
        table.index = table.index.astype(str)
        for column in table.columns:
            values = table[column].astype(str).reindex(items.astype(str))
            item_features[column] = values.fillna(PAD).to_numpy(dtype=object)
    user_features: dict[str, dict[str, str]] = {}
    if interactions.user_features is not None and len(interactions.user_features):
        table = interactions.user_features.drop_duplicates("user")
        users = table["user"].astype(str).tolist()
        for column in table.columns.drop("user"):
            values = table[column].astype(str).tolist()
            user_features[column] = dict(zip(users, values, strict=True))
    return item_features, user_features


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes, sorted unique values): hashing, then sorting only the uniques."""
    codes, uniques = pd.factorize(values)
    uniques = np.asarray(uniques, dtype=object)
    order = np.argsort(uniques, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], uniques[order]


# --------------------------------------------------------------------------- sequential


def sequential_split(
    interactions: Interactions,
    max_history: int = 20,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    history_fraction: float = 0.8,
    seed: int = 0,
    min_history: int = 1,
) -> RetrievalData:
    """The paper's protocol: user-disjoint 8:1:1 split, prefix samples, 80/20 evaluation.

    Interactions are first cleaned (stable time sort, deduplication), so each
    user's behaviours are in time order (file order when there is no ``time``).

    Args:
        interactions: the dataset.
        max_history: ``L``, the last ``L`` behaviours kept as history (20 for Amazon
            Books, 50 for Taobao in the paper).
        split: fractions of users for (train, valid, test); must sum to 1.
        history_fraction: the share of an evaluation user's behaviours used as
            history, ``floor(history_fraction * n)`` clamped to ``[1, n - 1]``.
        seed: shuffles the users.
        min_history: the shortest training prefix (``k >= min_history``).

    Returns:
        RetrievalData with ``protocol="sequential"`` and empty ``seen`` arrays.

    Example:
        >>> from tfcro.data import synthetic
        >>> data = sequential_split(synthetic.generate(num_users=50, num_items=40), 10)
        >>> data.train.history.shape[1], data.protocol
        (10, 'sequential')
    """
    max_history = check_int("max_history", max_history, 1)
    min_history = check_int("min_history", min_history, 1)
    fractions = _check_split(split)
    history_fraction = check_fraction(
        "history_fraction", history_fraction, low_open=True, high_open=True
    )
    seed = check_int("seed", seed, 0)

    frame = clean(interactions).frame
    item_code, items = _factorize(frame["item"].to_numpy(dtype=object))
    user_code, users = _factorize(frame["user"].to_numpy(dtype=object))
    rows = _Grouped(user_code, len(users))
    item_sorted = item_code[rows.order]

    # Users shuffled with the seed, then cut 8:1:1.
    permutation = np.random.default_rng(seed).permutation(len(users))
    n_train = int(round(fractions[0] * len(users)))
    n_valid = min(int(round(fractions[1] * len(users))), len(users) - n_train)
    role = np.empty(len(users), dtype=np.int8)
    role[permutation[:n_train]] = 0
    role[permutation[n_train : n_train + n_valid]] = 1
    role[permutation[n_train + n_valid :]] = 2

    # Training samples: every prefix of a training user.
    sample = (role[rows.user] == 0) & (rows.position >= min_history)
    end = np.flatnonzero(sample)  # the target row; the history ends just before it
    length = np.minimum(rows.position[end], max_history)
    index, valid = _windows(end, length, max_history)
    train = TrainExamples(
        user_id=users[rows.user[end]],
        history=_to_strings(item_sorted[index], valid, items),
        target=items[item_sorted[end]],
        history_codes=np.where(valid, item_sorted[index], -1).astype(np.int32),
        target_codes=item_sorted[end].astype(np.int32),
    )

    def evaluation(which: int, label: str) -> EvalUsers:
        chosen = np.flatnonzero(role == which)
        too_short = rows.counts[chosen] < 2
        if too_short.any():
            logger.info(
                "sequential_split: dropped %d %s users with fewer than 2 behaviours",
                int(too_short.sum()),
                label,
            )
        chosen = chosen[~too_short]
        if not len(chosen):
            return EvalUsers.empty(max_history)
        count = rows.counts[chosen]
        n_hist = np.clip(np.floor(history_fraction * count).astype(np.int64), 1, count - 1)
        start = rows.starts[chosen]
        length = np.minimum(n_hist, max_history)
        index, valid = _windows(start + n_hist, length, max_history)
        split_at = np.full(len(users), np.iinfo(np.int64).max)
        split_at[chosen] = n_hist
        target_rows = np.flatnonzero(rows.position >= split_at[rows.user])  # user-major
        return EvalUsers(
            user_id=users[chosen],
            history=_to_strings(item_sorted[index], valid, items),
            targets=_split_by_counts(items[item_sorted[target_rows]], count - n_hist),
            seen=[np.empty(0, dtype=object) for _ in range(len(chosen))],
        )

    return _retrieval_data(
        "sequential",
        interactions,
        items,
        train,
        evaluation(1, "valid"),
        evaluation(2, "test"),
        max_history,
    )


# --------------------------------------------------------------------------- collaborative


def collaborative_split(
    train_interactions: Interactions,
    test_interactions: Interactions | None = None,
    max_history: int = 50,
    valid_fraction: float = 0.1,
    seed: int = 0,
    valid_split: str = "random",
) -> RetrievalData:
    """LightGCN-style collaborative filtering protocol on a given train/test split.

    - **valid**: ``round(valid_fraction * n_u)`` of each user's ``n_u`` training
      interactions (at most ``n_u - 1``) are held out: drawn with ``seed``
      (``valid_split="random"``) or the user's last ones in the data's order
      (``"last"``: for time-ordered training data whose test split holds later
      interactions, as LightGCN's Yelp2018 files; the validation then mimics the
      test). They are the validation targets and are *not* trained on. ``seen`` =
      the user's remaining training items. (With ``"last"`` a training sample's
      history is a window of the user's earlier items in time rather than a random
      subset; this matters to history towers only.)
    - **train**: one sample per remaining training interaction: target = the item,
      history = up to ``L`` *other* remaining training items of the user (a
      seeded random subset: a window of a per-user random permutation, so it
      never contains the target), ``user_id`` for a user-id tower.
    - **test**: the test interactions as targets, history = up to ``L`` of the
      user's training items, ``seen`` = all the user's training items (held-out
      validation items included). Test items the user also has in training are
      dropped from the targets (logged).

    The catalog is every item of train and test.

    Args:
        train_interactions: the training interactions, or pre-split data (column
            ``split``) when ``test_interactions`` is ``None``.
        test_interactions: the test interactions.
        max_history: ``L``.
        valid_fraction: the share of each user's training interactions held out,
            in ``[0, 1)``.
        seed: the hold-out draw and history sampling.
        valid_split: ``"random"`` or ``"last"`` (see above; :data:`VALID_SPLITS`).

    Example:
        >>> import pandas as pd
        >>> train = Interactions(pd.DataFrame({"user": list("aaab"), "item": list("xyzx")}))
        >>> test = Interactions(pd.DataFrame({"user": ["a"], "item": ["w"]}))
        >>> data = collaborative_split(train, test, max_history=2, valid_fraction=0)
        >>> data.test.targets[0].tolist(), sorted(data.test.seen[0].tolist())
        (['w'], ['x', 'y', 'z'])
    """
    max_history = check_int("max_history", max_history, 1)
    valid_fraction = check_fraction("valid_fraction", valid_fraction, high_open=True)
    seed = check_int("seed", seed, 0)
    check_choice("valid_split", valid_split, VALID_SPLITS)
    if test_interactions is None:
        train_interactions, test_interactions = train_interactions.train_test()

    train_frame = clean(train_interactions).frame
    test_frame = clean(test_interactions).frame
    n_train = len(train_frame)
    item_codes, items = _factorize(
        np.concatenate([train_frame["item"].to_numpy(object), test_frame["item"].to_numpy(object)])
    )
    user_codes, users = _factorize(
        np.concatenate([train_frame["user"].to_numpy(object), test_frame["user"].to_numpy(object)])
    )
    rng = np.random.default_rng(seed)

    # Group training rows by user in a random order (or, for "last", the data's order
    # reversed): the first k_u are held out.
    user_code, item_code = user_codes[:n_train], item_codes[:n_train]
    order_key = rng.random(len(user_code))
    if valid_split == "last":
        order_key = -np.arange(len(user_code), dtype=np.float64)
    rows = _Grouped(user_code, len(users), key=order_key)
    item_sorted = item_code[rows.order]
    held = np.minimum(
        np.round(valid_fraction * rows.counts).astype(np.int64), np.maximum(rows.counts - 1, 0)
    )
    is_held = rows.position < held[rows.user]
    kept = rows.counts - held  # per user: the fit items, positions held..count-1

    # Training samples: a circular window over the user's (shuffled) fit items.
    fit = np.flatnonzero(~is_held)
    fit_user = rows.user[fit]
    fit_pos = rows.position[fit] - held[fit_user]  # 0..kept-1
    offsets = np.arange(max_history)
    length = np.minimum(kept[fit_user] - 1, max_history)
    ring = (fit_pos[:, None] + 1 + offsets[None, :]) % np.maximum(kept[fit_user], 1)[:, None]
    valid = offsets[None, :] < length[:, None]
    index = np.where(valid, rows.starts[fit_user][:, None] + held[fit_user][:, None] + ring, 0)
    train = TrainExamples(
        user_id=users[fit_user],
        history=_to_strings(item_sorted[index], valid, items),
        target=items[item_sorted[fit]],
        history_codes=np.where(valid, item_sorted[index], -1).astype(np.int32),
        target_codes=item_sorted[fit].astype(np.int32),
    )

    def first_items(which: np.ndarray, offset: np.ndarray, count: np.ndarray) -> np.ndarray:
        length = np.minimum(count, max_history)
        index, valid = _windows(rows.starts[which] + offset + length, length, max_history)
        return _to_strings(item_sorted[index], valid, items)

    # Validation: users with held-out items.
    fit_items = _split_by_counts(items[item_sorted[fit]], kept)
    held_items = _split_by_counts(items[item_sorted[np.flatnonzero(is_held)]], held)
    valid_users = np.flatnonzero(held > 0)
    valid_split = (
        EvalUsers(
            user_id=users[valid_users],
            history=first_items(valid_users, held[valid_users], kept[valid_users]),
            targets=[held_items[u] for u in valid_users],
            seen=[fit_items[u] for u in valid_users],
        )
        if len(valid_users)
        else EvalUsers.empty(max_history)
    )

    # Test: targets minus the user's training items.
    test_user, test_item = user_codes[n_train:], item_codes[n_train:]
    train_pairs = pd.MultiIndex.from_arrays([user_code, item_code])
    in_train = pd.MultiIndex.from_arrays([test_user, test_item]).isin(train_pairs)
    if in_train.any():
        logger.info(
            "collaborative_split: dropped %d test interactions already in training",
            int(in_train.sum()),
        )
    test_user, test_item = test_user[~in_train], test_item[~in_train]
    test_rows = _Grouped(test_user, len(users))
    test_counts = test_rows.counts
    test_targets = _split_by_counts(items[test_item[test_rows.order]], test_counts)
    all_train = _split_by_counts(items[item_sorted], rows.counts)
    test_users = np.flatnonzero(test_counts > 0)
    test_split = (
        EvalUsers(
            user_id=users[test_users],
            history=first_items(
                test_users, np.zeros(len(test_users), np.int64), rows.counts[test_users]
            ),
            targets=[test_targets[u] for u in test_users],
            seen=[all_train[u] for u in test_users],
        )
        if len(test_users)
        else EvalUsers.empty(max_history)
    )

    return _retrieval_data(
        "collaborative", train_interactions, items, train, valid_split, test_split, max_history
    )


def random_holdout(interactions: Interactions, test_fraction: float = 0.2, seed: int = 0):
    """Pre-split data for :func:`collaborative_split` from data without a test split.

    Each user's interactions (after :func:`~tfcro.data.preprocess.clean`) are shuffled
    with ``seed`` and ``round(test_fraction * n_u)`` of them (at most ``n_u - 1``) become
    the user's test interactions: column ``split`` = ``"train"``/``"test"``.

    Example:
        >>> import pandas as pd
        >>> data = Interactions(pd.DataFrame({"user": list("aaaaab"), "item": list("vwxyzv")}))
        >>> random_holdout(data, 0.2).frame["split"].tolist().count("test")
        1
    """
    test_fraction = check_fraction("test_fraction", test_fraction, high_open=True)
    seed = check_int("seed", seed, 0)
    frame = clean(interactions).frame.copy()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    shuffled = frame.iloc[order]
    rank = shuffled.groupby("user", sort=False).cumcount().to_numpy()
    size = shuffled.groupby("user", sort=False)["item"].transform("size").to_numpy()
    quota = np.minimum(np.round(test_fraction * size), size - 1)
    split = np.where(rank < quota, "test", "train")
    frame["split"] = pd.Series(split, index=shuffled.index).reindex(frame.index).to_numpy()
    return interactions.replace(frame.reset_index(drop=True))
