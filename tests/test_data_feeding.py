"""tf.data feeding: shapes, dtypes, determinism, features, evaluation order."""

from __future__ import annotations

import numpy as np
import pytest

import tfcro  # noqa: F401
from tfcro._compat import tf
from tfcro.data import eval_batches, load_dataset, sequential_split, train_dataset


@pytest.fixture(scope="module")
def data():
    interactions = load_dataset(
        "synthetic", num_users=60, num_items=50, num_interests=5, seq_len=(4, 8)
    )
    return sequential_split(interactions, max_history=5)


def test_train_dataset_shapes_and_dtypes(data):
    dataset = train_dataset(data.train, batch_size=16, seed=0)
    batch = next(iter(dataset))
    assert set(batch) == {"history", "user_id", "item_id"}
    assert batch["history"].shape.as_list() == [16, 5]
    assert batch["user_id"].shape.as_list() == [16] == batch["item_id"].shape.as_list()
    assert all(t.dtype == tf.string for t in batch.values())
    total = sum(int(b["item_id"].shape[0]) for b in dataset)
    assert total == len(data.train)


def test_train_dataset_seeded_shuffle(data):
    first = [b["item_id"].numpy() for b in train_dataset(data.train, 32, seed=3)]
    again = [b["item_id"].numpy() for b in train_dataset(data.train, 32, seed=3)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    ordered = next(iter(train_dataset(data.train, 32, shuffle=False)))["item_id"].numpy()
    assert [x.decode() for x in ordered] == data.train.target[:32].tolist()


def test_train_dataset_features_and_drop_remainder(data):
    features = data.example_features(data.train.user_id, data.train.target)
    assert set(features) == {"category"} and features["category"].shape == data.train.target.shape
    dataset = train_dataset(data.train, 7, shuffle=False, features=features, drop_remainder=True)
    assert dataset.element_spec["category"].shape.as_list() == [7]
    batch = next(iter(dataset))
    lookup = dict(zip(data.items, data.item_features["category"], strict=True))
    assert [c.decode() for c in batch["category"].numpy()] == [
        lookup[t] for t in data.train.target[:7]
    ]


def test_eval_batches_keep_user_order(data):
    batches = list(eval_batches(data.test, batch_size=4))
    users = np.concatenate([b["user_id"].numpy() for b in batches])
    assert [u.decode() for u in users] == data.test.user_id.tolist()
    assert set(batches[0]) == {"history", "user_id"}
    assert batches[0]["history"].shape.as_list()[1] == 5


def test_bad_arguments(data):
    with pytest.raises(ValueError, match=r"`batch_size` should be an integer >= 1"):
        train_dataset(data.train, 0)
    with pytest.raises(ValueError, match=r"should have \d+ rows"):
        train_dataset(data.train, 4, features={"x": np.array(["a"])})
    with pytest.raises(ValueError, match="must not redefine"):
        train_dataset(data.train, 4, features={"history": data.train.target})
