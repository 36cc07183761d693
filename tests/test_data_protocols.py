"""Cleaning (dedup, k-core, time order) and the sequential / collaborative protocols."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

import tfcro  # noqa: F401
from tfcro.data import (
    PAD,
    Interactions,
    collaborative_split,
    preprocess,
    sequential_split,
    synthetic,
)


def interactions(rows, time=True) -> Interactions:
    columns = ["user", "item", "time"] if time else ["user", "item"]
    return Interactions(pd.DataFrame(rows, columns=columns).astype({"user": str, "item": str}))


@pytest.fixture(scope="module")
def synth():
    return synthetic.generate(num_users=200, num_items=120, num_interests=8, seq_len=(5, 15))


# --------------------------------------------------------------------------- preprocess


def test_clean_sorts_stably_and_keeps_first_duplicate(caplog):
    data = interactions([("a", "x", 3), ("a", "y", 1), ("a", "x", 2), ("b", "x", 1)])
    with caplog.at_level(logging.INFO, logger="tfcro.data"):
        out = preprocess.clean(data)
    assert "dropped 1 duplicate" in caplog.text
    # time ties (1, 1) keep file order; (a, x) keeps t=2, the earliest
    assert out.frame.values.tolist() == [["a", "y", 1.0], ["b", "x", 1.0], ["a", "x", 2.0]]


def test_k_core_is_iterative():
    # c has 1 row -> dropped; then item z has 1 row -> dropped; then b has 1 row -> dropped ...
    rows = [("a", "x"), ("a", "y"), ("b", "x"), ("b", "z"), ("c", "z"), ("d", "x"), ("d", "y")]
    out = preprocess.k_core(interactions(rows, time=False), 2)
    assert out.frame.values.tolist() == [["a", "x"], ["a", "y"], ["d", "x"], ["d", "y"]]
    counts = [out.frame[c].value_counts().min() for c in ("user", "item")]
    assert min(counts) >= 2


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_k_core_rejects_bad_k(k):
    with pytest.raises(ValueError, match="`k` should be an integer >= 1"):
        preprocess.k_core(interactions([("a", "x")], time=False), k)


# --------------------------------------------------------------------------- sequential


def test_sequential_hand_worked():
    # one user, behaviours a b c d (time order), everyone in train: 3 prefix samples
    data = interactions([("u", "a", 0), ("u", "b", 1), ("u", "c", 2), ("u", "d", 3)])
    out = sequential_split(data, max_history=2, split=(1, 0, 0))
    assert out.train.history.tolist() == [["a", PAD], ["a", "b"], ["b", "c"]]
    assert out.train.target.tolist() == ["b", "c", "d"]
    assert out.train.user_id.tolist() == ["u", "u", "u"]
    assert out.items.tolist() == ["a", "b", "c", "d"]


def test_sequential_eval_user_history_and_targets():
    data = interactions([("v", str(i), 10 - i) for i in range(10)])  # time reverses file order
    out = sequential_split(data, max_history=3, split=(0, 0, 1))
    # time order: 9 8 7 ... 0; first 8 are history (last 3 kept), last 2 are targets
    assert out.test.history.tolist() == [["4", "3", "2"]]
    assert out.test.targets[0].tolist() == ["1", "0"]
    assert out.test.seen[0].size == 0
    assert len(out.train) == 0 and len(out.valid) == 0


def test_sequential_invariants(synth):
    out = sequential_split(synth, max_history=6, seed=3)
    train_users = set(out.train.user_id)
    valid_users, test_users = set(out.valid.user_id), set(out.test.user_id)
    assert not (train_users & valid_users or train_users & test_users or valid_users & test_users)
    # ~8:1:1 of 200 users (a few short evaluation users may be dropped)
    assert len(train_users) == 160 and 15 <= len(valid_users) <= 20 and 15 <= len(test_users) <= 20
    # training histories only contain the user's own earlier items, never the target
    frame = synth.frame
    time_of = dict(zip(zip(frame["user"], frame["item"], strict=True), frame["time"], strict=True))
    for user, history, target in zip(
        out.train.user_id, out.train.history, out.train.target, strict=True
    ):
        items = [h for h in history if h != PAD]
        assert items and target not in items
        times = [time_of[(user, h)] for h in items]
        assert times == sorted(times) and times[-1] < time_of[(user, target)]
        assert list(history[len(items) :]) == [PAD] * (len(history) - len(items))  # right padding
    for split in (out.valid, out.test):
        for user, history, targets in zip(split.user_id, split.history, split.targets, strict=True):
            items = [h for h in history if h != PAD]
            assert items and len(targets) and not set(items) & set(targets)
            assert max(time_of[(user, h)] for h in items) < min(time_of[(user, t)] for t in targets)
    assert len(out.items) == synth.num_items
    assert out.item_features["category"].shape == out.items.shape


def test_sequential_is_deterministic(synth):
    a, b = sequential_split(synth, seed=1), sequential_split(synth, seed=1)
    c = sequential_split(synth, seed=2)
    assert np.array_equal(a.train.history, b.train.history)
    assert np.array_equal(a.test.user_id, b.test.user_id)
    assert not np.array_equal(a.test.user_id, c.test.user_id)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"split": (0.8, 0.1, 0.2)}, r"`split` should be .* Received: split=\(0.8, 0.1, 0.2\)"),
        ({"split": (0.5, 0.5)}, "`split` should be three"),
        ({"max_history": 0}, r"`max_history` should be an integer >= 1. Received: max_history=0"),
        ({"history_fraction": 1.0}, r"`history_fraction` should be a number in \(0, 1\)"),
        ({"min_history": 0}, "`min_history` should be an integer >= 1"),
    ],
)
def test_sequential_bad_options(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        sequential_split(interactions([("a", "x", 1)]), **kwargs)


# --------------------------------------------------------------------------- collaborative


def test_collaborative_hand_worked():
    train = interactions([("a", "x"), ("a", "y"), ("a", "z"), ("b", "x")], time=False)
    test = interactions([("a", "w"), ("a", "x"), ("b", "y")], time=False)
    out = collaborative_split(train, test, max_history=5, valid_fraction=0)
    assert out.items.tolist() == ["w", "x", "y", "z"]
    assert len(out.valid) == 0
    assert out.test.user_id.tolist() == ["a", "b"]
    # (a, x) is already a training item: dropped from the targets
    assert [t.tolist() for t in out.test.targets] == [["w"], ["y"]]
    assert [sorted(s.tolist()) for s in out.test.seen] == [["x", "y", "z"], ["x"]]
    # each training sample: the other training items of the user, never the target
    for user, history, target in zip(
        out.train.user_id, out.train.history, out.train.target, strict=True
    ):
        others = {i for u, i in train.frame.values if u == user and i != target}
        assert set(history) - {PAD} == others
    assert sorted(zip(out.train.user_id, out.train.target, strict=True)) == sorted(
        map(tuple, train.frame.values)
    )


def test_collaborative_holdout_and_sampling(synth):
    frame = synth.frame
    is_test = frame.groupby("user").cumcount(ascending=False) < 2
    train = synth.replace(frame[~is_test])
    test = synth.replace(frame[is_test])
    out = collaborative_split(train, test, max_history=4, valid_fraction=0.2, seed=5)
    train_items = train.frame.groupby("user")["item"].apply(set).to_dict()
    valid_targets = {u: set(t) for u, t in zip(out.valid.user_id, out.valid.targets, strict=True)}
    for user, history, target in zip(
        out.train.user_id, out.train.history, out.train.target, strict=True
    ):
        hist = [h for h in history if h != PAD]
        assert target not in hist and len(set(hist)) == len(hist) <= 4
        assert set(hist) <= train_items[user] - valid_targets.get(user, set())
        assert target not in valid_targets.get(user, set())  # held-out items are not trained
    for user, targets, seen, history in zip(
        out.valid.user_id, out.valid.targets, out.valid.seen, out.valid.history, strict=True
    ):
        assert set(targets) <= train_items[user]  # validation comes from TRAIN, not test
        assert set(seen) == train_items[user] - set(targets)
        assert not set(history) & set(targets)
        assert len(targets) == round(0.2 * len(train_items[user]))
    for user, targets, seen in zip(out.test.user_id, out.test.targets, out.test.seen, strict=True):
        assert set(seen) == train_items[user] and not set(targets) & set(seen)
    # users appear in all splits
    assert set(out.test.user_id) == set(out.train.user_id) == set(out.valid.user_id)
    again = collaborative_split(train, test, max_history=4, valid_fraction=0.2, seed=5)
    assert np.array_equal(again.train.history, out.train.history)


def test_collaborative_last_holdout_takes_each_users_last_items_in_file_order():
    rows = [("a", "x1"), ("b", "y1"), ("a", "x2"), ("a", "x3"), ("b", "y2"), ("a", "x4")]
    rows += [("a", "x5"), ("b", "y3"), ("b", "y4"), ("b", "y5")]
    train = Interactions(pd.DataFrame(rows, columns=["user", "item"]))
    test = Interactions(pd.DataFrame({"user": ["a", "b"], "item": ["x9", "y9"]}))
    out = collaborative_split(train, test, max_history=3, valid_fraction=0.4, valid_split="last")
    held = {u: sorted(t) for u, t in zip(out.valid.user_id, out.valid.targets, strict=True)}
    assert held == {"a": ["x4", "x5"], "b": ["y4", "y5"]}
    # the validation history is the user's most recent training items
    history = dict(zip(out.valid.user_id, out.valid.history, strict=True))
    assert set(history["a"]) - {PAD} == {"x1", "x2", "x3"}
    assert sorted(out.train.target[out.train.user_id == "a"]) == ["x1", "x2", "x3"]
    # the same for any seed; "random" varies with it
    again = collaborative_split(
        train, test, max_history=3, valid_fraction=0.4, valid_split="last", seed=9
    )
    assert [sorted(t) for t in again.valid.targets] == [sorted(t) for t in out.valid.targets]
    with pytest.raises(ValueError, match=r"`valid_split` should be one of"):
        collaborative_split(train, test, valid_split="first")


def test_collaborative_from_pre_split_interactions():
    frame = pd.DataFrame(
        {"user": ["a", "a", "a"], "item": ["x", "y", "z"], "split": ["train", "train", "test"]}
    )
    out = collaborative_split(Interactions(frame), valid_fraction=0)
    assert out.test.targets[0].tolist() == ["z"] and len(out.train) == 2
    with pytest.raises(ValueError, match="not pre-split"):
        collaborative_split(interactions([("a", "x")], time=False))
    with pytest.raises(ValueError, match=r"`valid_fraction` should be a number in \[0, 1\)"):
        collaborative_split(Interactions(frame), valid_fraction=1)


def test_summary_counts(synth):
    out = sequential_split(synth)
    summary = out.summary()
    assert summary["train_examples"] == len(out.train)
    assert summary["test_targets"] == sum(len(t) for t in out.test.targets)
    assert "protocol=sequential" in str(out)


def test_clean_converts_raw_ids_to_strings():
    frame = pd.DataFrame({"user": [1, 1, 2], "item": [5, 6, 5], "time": [2, 1, 3]})
    out = preprocess.clean(Interactions(frame))
    assert out.frame.values.tolist() == [["1", "6", 1.0], ["1", "5", 2.0], ["2", "5", 3.0]]
    split = sequential_split(Interactions(frame), split=(1, 0, 0))
    assert split.items.tolist() == ["5", "6"] and split.train.target.tolist() == ["5"]


def test_random_holdout_holds_out_a_share_of_each_user_and_never_all():
    import pandas as pd

    from tfcro.data import Interactions, random_holdout

    frame = pd.DataFrame(
        {
            "user": ["a"] * 10 + ["b"] * 5 + ["c"],
            "item": [f"i{k}" for k in range(10)] + [f"j{k}" for k in range(5)] + ["k0"],
        }
    )
    data = Interactions(frame)
    split = random_holdout(data, 0.2, seed=3).frame
    tests = split[split["split"] == "test"].groupby("user").size().to_dict()
    assert tests == {"a": 2, "b": 1}  # round(0.2 * n), and never a user's only item
    again = random_holdout(data, 0.2, seed=3).frame
    assert again["split"].tolist() == split["split"].tolist()
    other = random_holdout(data, 0.2, seed=4).frame
    assert other["split"].tolist() != split["split"].tolist()
    train, test = random_holdout(data, 0.2).train_test()
    assert len(train) + len(test) == len(frame)
    with pytest.raises(ValueError, match="`test_fraction` should be"):
        random_holdout(data, 1.0)
    with pytest.raises(ValueError, match="`seed` should be an integer >= 0"):
        random_holdout(data, 0.2, seed=-1)


def test_index_split_maps_back_to_the_raw_ids(synth):
    from tfcro.data import index_split, random_holdout

    split = collaborative_split(random_holdout(synth, 0.2, seed=1), max_history=5, seed=1)
    ids = index_split(split)
    assert ids.num_items == len(split.items) and ids.train_users.dtype == np.int32
    np.testing.assert_array_equal(ids.user_ids[ids.train_users], split.train.user_id.astype(str))
    np.testing.assert_array_equal(ids.items[ids.train_items], split.train.target.astype(str))
    for queries, users in ((ids.valid, split.valid), (ids.test, split.test)):
        np.testing.assert_array_equal(ids.user_ids[queries.users], users.user_id.astype(str))
        for got, want in zip(queries.targets, users.targets, strict=True):
            assert list(ids.items[got]) == list(np.asarray(want).astype(str))
        for got, want in zip(queries.seen, users.seen, strict=True):
            assert list(ids.items[got]) == list(np.asarray(want).astype(str))
    shares = ids.item_probabilities()
    assert shares.dtype == np.float32 and shares.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(
        shares, np.bincount(ids.train_items, minlength=ids.num_items) / len(ids.train_items)
    )


def test_refit_split_trains_on_the_validation_targets_too(synth):
    from tfcro.data import index_split, random_holdout

    split = collaborative_split(random_holdout(synth, 0.2, seed=1), max_history=5, seed=1)
    ids = index_split(split)
    refit = ids.refit_split()
    assert len(refit.valid) == 0 and refit.test is ids.test
    want = set(zip(ids.train_users.tolist(), ids.train_items.tolist(), strict=True))
    for user, targets in zip(ids.valid.users, ids.valid.targets, strict=True):
        want |= {(int(user), int(item)) for item in targets}
    pairs = list(zip(refit.train_users.tolist(), refit.train_items.tolist(), strict=True))
    assert len(pairs) == len(ids.train_users) + sum(map(len, ids.valid.targets))
    assert set(pairs) == want and refit.train_users.dtype == refit.train_items.dtype == np.int32
    # nothing held out: the refit of a refit is itself
    again = refit.refit_split()
    np.testing.assert_array_equal(again.train_items, refit.train_items)


def test_index_split_refuses_an_unsorted_catalog(synth):
    import dataclasses

    from tfcro.data import index_split, random_holdout

    split = collaborative_split(random_holdout(synth, 0.2, seed=1), max_history=5, seed=1)
    with pytest.raises(ValueError, match="sorted, unique catalog"):
        index_split(dataclasses.replace(split, items=split.items[::-1]))
