"""The synthetic generator: determinism, shape of the data, power law, planted structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tfcro  # noqa: F401
from tfcro.data import synthetic


@pytest.fixture(scope="module")
def data():
    return synthetic.generate(num_users=600, num_items=400, num_interests=10, seed=0)


def test_deterministic_with_seed():
    a = synthetic.generate(num_users=50, num_items=60, num_interests=5, seed=7)
    b = synthetic.generate(num_users=50, num_items=60, num_interests=5, seed=7)
    c = synthetic.generate(num_users=50, num_items=60, num_interests=5, seed=8)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    pd.testing.assert_frame_equal(a.item_features, b.item_features)
    assert not a.frame.equals(c.frame)


def test_contract_and_sizes(data):
    frame = data.frame
    assert frame.columns.tolist() == ["user", "item", "time"]
    assert frame["time"].is_monotonic_increasing
    assert not frame.duplicated(["user", "item"]).any()
    lengths = frame.groupby("user").size()
    assert data.num_users == 600 and lengths.max() <= 40 and 25 <= lengths.mean() <= 32
    assert set(data.item_features.columns) == {"item", "category"}
    assert data.item_features["category"].nunique() == 10


def test_power_law_popularity(data):
    counts = np.sort(data.frame["item"].value_counts().to_numpy())[::-1]
    top_decile_share = counts[: len(counts) // 10].sum() / counts.sum()
    assert top_decile_share > 0.3  # uniform would give 0.1
    # log-log slope of count vs rank over the head is clearly negative
    ranks = np.arange(1, 101)
    slope = np.polyfit(np.log(ranks), np.log(counts[:100]), 1)[0]
    assert slope < -0.3  # flatter than Zipf 1: users never repeat an item


def test_planted_interests_beat_popularity(data):
    """Recommending popular items of the history's categories beats global popularity."""
    frame = data.frame.assign(
        category=data.frame["item"].map(data.item_features.set_index("item")["category"])
    )
    position = frame.groupby("user").cumcount()
    size = frame.groupby("user")["item"].transform("size")
    history, targets = frame[position < 0.8 * size], frame[position >= 0.8 * size]
    popularity = history["item"].value_counts()
    n = 40
    popular_hits = targets["item"].isin(popularity.index[:n]).mean()
    by_category = history.groupby(["category", "item"]).size().rename("count").reset_index()
    share = history.groupby(["user", "category"]).size().rename("share").reset_index()
    scored = share.merge(by_category, on="category")
    scored["score"] = scored["share"] * scored["count"]
    top = scored.sort_values(["user", "score"], ascending=[True, False]).groupby("user").head(n)
    hits = targets.merge(top[["user", "item"]], on=["user", "item"], how="inner")
    assert len(hits) / len(targets) > 2 * popular_hits


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"num_users": 0}, r"`num_users` should be an integer >= 1. Received: num_users=0"),
        (
            {"num_interests": 500, "num_items": 10},
            r"`num_interests` should be <= `num_items` \(10\). Received: num_interests=500",
        ),
        ({"seq_len": (5, 2)}, r"`seq_len` should be .* Received: seq_len=\(5, 2\)"),
        ({"noise": 2}, r"`noise` should be a number in \[0, 1\]. Received: noise=2"),
        (
            {"session_length": 0.5},
            "`session_length` should be a float >= 1. Received: session_length=0.5",
        ),
    ],
)
def test_bad_options(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        synthetic.generate(**kwargs)
