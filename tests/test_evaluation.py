"""Tests of tfcro.evaluation: metrics, exact/ScaNN top-N, evaluate, callback, popularity.

The search itself (tfcro.search) has its own tests in test_search.py.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tfcro import evaluation as ev
from tfcro._compat import tf


def reference_metrics(top, targets, ks):
    """Plain-Python loop reference, written from the definitions."""
    out = {}
    for k in ks:
        rec, hit, nd, tot_hits, tot_targets, users = 0.0, 0.0, 0.0, 0, 0, 0
        for row, t in zip(top, targets, strict=True):
            t = set(t.tolist())
            if not t:
                continue
            users += 1
            hits = [1 if (x in t and x >= 0) else 0 for x in row[:k]]
            rec += sum(hits) / len(t)
            hit += 1.0 if sum(hits) else 0.0
            dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
            idcg = sum(1 / math.log2(r + 2) for r in range(min(len(t), k)))
            nd += dcg / idcg
            tot_hits += sum(hits)
            tot_targets += len(t)
        out[f"recall@{k}"] = rec / users
        out[f"hitrate@{k}"] = hit / users
        out[f"ndcg@{k}"] = nd / users
        out[f"pair_recall@{k}"] = tot_hits / tot_targets
    return out


def test_hand_computed_example():
    # user 0: targets {1, 2}, top-3 [1, 9, 2]; user 1: targets {5, 6, 7, 8}, top-3 [4, 5, 3]
    top = np.array([[1, 9, 2], [4, 5, 3]])
    targets = [np.array([1, 2]), np.array([5, 6, 7, 8])]
    r = ev.ranking_metrics(top, targets, ks=[1, 3])
    # @1: user0 hits 1/2, user1 hits 0/4 -> recall = (0.5 + 0) / 2 = 0.25
    assert r["recall@1"] == pytest.approx(0.25)
    # pair recall@1 = 1 hit / 6 targets
    assert r["pair_recall@1"] == pytest.approx(1 / 6)
    assert r["hitrate@1"] == pytest.approx(0.5)
    # ndcg@1: user0 1/1, user1 0 -> 0.5
    assert r["ndcg@1"] == pytest.approx(0.5)
    # @3: user0 2/2, user1 1/4 -> recall = (1 + 0.25) / 2 = 0.625; pair = 3 / 6
    assert r["recall@3"] == pytest.approx(0.625)
    assert r["pair_recall@3"] == pytest.approx(0.5)
    assert r["hitrate@3"] == pytest.approx(1.0)
    # ndcg@3 user0: (1 + 1/log2(4)) / (1 + 1/log2(3)) = 1.5 / 1.63093 = 0.91972
    # user1: (1/log2(3)) / (1 + 1/log2(3) + 1/log2(4)) = 0.63093 / 2.13093 = 0.29608
    assert r["ndcg@3"] == pytest.approx((0.919721 + 0.296082) / 2, abs=1e-5)


@pytest.mark.parametrize("as_strings", [False, True])
def test_metrics_match_loop_reference(as_strings):
    rng = np.random.default_rng(0)
    top = np.stack([rng.permutation(60)[:25] for _ in range(40)])
    top[3, 10:] = -1  # a short list
    targets = [rng.choice(60, size=rng.integers(0, 8), replace=False) for _ in range(40)]
    ks = [1, 5, 10, 25, 30]
    expected = reference_metrics(top, targets, ks)
    if as_strings:
        top_s = np.where(top >= 0, np.char.add("i", top.astype(str)), "")
        targets = [np.char.add("i", t.astype(str)) for t in targets]
        got = ev.ranking_metrics(top_s, targets, ks)
    else:
        got = ev.ranking_metrics(top, targets, ks)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


@pytest.mark.parametrize("ks", [[], [0], [5, -1], [2.5], "x", [True]])
def test_bad_ks(ks):
    with pytest.raises(ValueError, match="`ks`"):
        ev.check_ks(ks)


def test_exact_top_n_matches_argsort_and_excludes():
    rng = np.random.default_rng(1)
    users = rng.normal(size=(37, 8)).astype(np.float32)
    items = rng.normal(size=(300, 8)).astype(np.float32)
    brute = np.argsort(-(users @ items.T), axis=1, kind="stable")[:, :20]
    got = ev.top_n(users, items, 20, batch_size=16)
    np.testing.assert_array_equal(got, brute)
    exclude = [brute[u, : u % 5] for u in range(37)]
    got = ev.top_n(users, items, 20, exclude=exclude, batch_size=16)
    for u in range(37):
        assert not set(exclude[u]).intersection(got[u])
        expected = [i for i in np.argsort(-(users[u] @ items.T)) if i not in set(exclude[u])]
        np.testing.assert_array_equal(got[u], expected[:20])


def test_exact_top_n_small_catalog_pads_with_minus_one():
    users = np.eye(2, dtype=np.float32)
    items = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], np.float32)
    got = ev.top_n(users, items, 5, exclude=[np.array([0]), np.array([])])
    assert got.tolist() == [[2, 1, -1, -1, -1], [1, 2, 0, -1, -1]]


def _clustered(rng, n, centers):
    x = centers[rng.integers(0, len(centers), n)] + 0.5 * rng.normal(size=(n, centers.shape[1]))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_scann_top_n_close_to_exact():
    # Unit-norm items in 30 clusters (like trained embeddings), the export's tree + AH + reorder
    # (3,000 items are below the brute-force threshold: ask for the tree).
    rng = np.random.default_rng(2)
    centers = rng.normal(size=(30, 16))
    items, users = _clustered(rng, 3000, centers), _clustered(rng, 100, centers)
    exclude = [rng.choice(3000, size=rng.integers(0, 6), replace=False) for _ in range(100)]
    exact = ev.top_n(users, items, 50, exclude=exclude)
    approx = ev.top_n(
        users, items, 50, exclude=exclude, method="scann", scann_params={"algorithm": "tree_ah"}
    )
    for u in range(100):
        assert not set(exclude[u]).intersection(approx[u])
        assert (approx[u] >= 0).all()
    overlap = np.mean([len(set(a) & set(e)) / 50 for a, e in zip(approx, exact, strict=True)])
    assert overlap >= 0.95


def test_scann_brute_force_equals_exact():
    rng = np.random.default_rng(3)
    items = rng.normal(size=(500, 8)).astype(np.float32)
    users = rng.normal(size=(20, 8)).astype(np.float32)
    exclude = [rng.choice(500, size=3, replace=False) for _ in range(20)]
    exact = ev.top_n(users, items, 10, exclude=exclude)
    np.testing.assert_array_equal(
        ev.top_n(users, items, 10, exclude=exclude, method="scann"), exact
    )


class _FixedModel:
    """Embeddings given directly: user u and item i as rows of two matrices."""

    def __init__(self, users, items):
        self.u, self.i = users, items

    def embed_users(self, features, batch_size=0):
        return self.u[np.asarray(features["user_id"]).astype(int)]

    def embed_items(self, ids, batch_size=0):
        return self.i[np.char.lstrip(np.asarray(ids).astype(str), "i").astype(int)]


def _users(user_ids, targets, seen):
    return {
        "user_id": np.asarray(user_ids),
        "history": np.full((len(user_ids), 2), ""),
        "targets": targets,
        "seen": seen,
    }


@pytest.mark.parametrize("method", ["exact", "scann"])
def test_evaluate_with_seen_exclusion(method):
    # Item i scores 10 - i for every user: the ranking is i0, i1, i2, ...
    items = np.array([f"i{k}" for k in range(10)])
    model = _FixedModel(np.ones((2, 1), np.float32), (10.0 - np.arange(10))[:, None])
    users = _users(
        ["0", "1"],
        [np.array(["i2"]), np.array(["i5", "i9", "unknown"])],
        [np.array(["i0", "i1"]), np.array([], str)],
    )
    r = ev.evaluate(model, users, items, ks=[1, 3], method=method)
    # user 0: seen i0, i1 excluded -> top-1 = i2 = target -> recall@1 = 1
    # user 1: top-3 = i0, i1, i2 -> 0 hits of 3 targets ("unknown" still counts)
    assert r["recall@1"] == pytest.approx(0.5)
    assert r["pair_recall@3"] == pytest.approx(1 / 4)
    r = ev.evaluate(model, users, items, ks=[1, 3], exclude_seen=False, method=method)
    assert r["recall@3"] == pytest.approx(0.5)  # user 0 finds i2 at rank 3
    with pytest.raises(ValueError, match="`method`"):
        ev.evaluate(model, users, items, method="faiss")


def test_popularity_baseline():
    base = ev.PopularityBaseline(["b", "c", "c", "a", "c", "b", "zz"], ["a", "b", "c", "d"])
    assert base.counts.tolist() == [1, 2, 3, 0]
    assert base.top_n(2).tolist() == [2, 1]
    users = _users(["u", "v"], [np.array(["b"]), np.array(["a"])], [np.array(["c"]), []])
    r = ev.evaluate(base, users, np.array(["a", "b", "c", "d"]), ks=[1, 3])
    # u: c excluded -> top [b, a, d] -> hit at 1; v: top [c, b, a] -> hit at rank 3
    assert r["recall@1"] == pytest.approx(0.5)
    assert r["recall@3"] == pytest.approx(1.0)


class _ScheduledModel(tf.keras.Model):
    """Item scores jump to a scripted vector each epoch (one step per epoch)."""

    SCHEDULE = np.array(
        [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 1, 1]], np.float32
    )

    def __init__(self):
        super().__init__()
        self.scores = tf.Variable(np.zeros(4, np.float32))
        self.step = tf.Variable(0)

    def train_step(self, data):
        self.scores.assign(tf.gather(self.SCHEDULE, self.step))
        self.step.assign_add(1)
        return {"loss": tf.constant(0.0)}

    def embed_users(self, features, batch_size=0):
        return np.ones((len(features["user_id"]), 1), np.float32)

    def embed_items(self, ids, batch_size=0):
        return self.scores.numpy()[:, None]


def test_callback_logs_early_stops_and_restores_best():
    model = _ScheduledModel()
    model.compile(optimizer="sgd")
    users = _users(["0"], [np.array(["a"])], [np.array([], str)])
    callback = ev.RetrievalEvaluationCallback(
        users, np.array(["a", "b", "c", "d"]), ks=[1], monitor="val_ndcg@1", patience=2
    )
    history = model.fit(np.zeros((1, 1)), epochs=5, verbose=0, callbacks=[callback])
    # epoch 1 ranks "a" first (ndcg@1 = 1), epochs 2 and 3 do not: stop after epoch 3.
    assert history.history["val_ndcg@1"] == [0.0, 1.0, 0.0, 0.0]
    assert "val_recall@1" in history.history
    assert callback.best_epoch == 1 and callback.stopped_epoch == 3
    np.testing.assert_array_equal(model.scores.numpy(), [1, 0, 0, 0])


class _TwoTargetModel(_ScheduledModel):
    # scores of a, b, c, d per epoch; the user's targets are a and b
    SCHEDULE = np.array(
        [[1, 0, 3, 2], [3, 0, 2, 1], [3, 2, 1, 0], [0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3]],
        np.float32,
    )


@pytest.mark.parametrize("also", [(), ("recall@3",)])
def test_callback_also_monitor_keeps_each_best_and_waits_for_all(also):
    model = _TwoTargetModel()
    model.compile(optimizer="sgd")
    users = _users(["0"], [np.array(["a", "b"])], [np.array([], str)])
    callback = ev.RetrievalEvaluationCallback(
        users,
        np.array(["a", "b", "c", "d"]),
        ks=[1, 3],
        monitor="recall@1",
        patience=2,
        also_monitor=also,
    )
    history = model.fit(np.zeros((1, 1)), epochs=6, verbose=0, callbacks=[callback])
    # recall@1 is best at epoch 1 (a first); recall@3 at epoch 2 (a, b, c)
    assert history.history["val_recall@1"][:4] == [0.0, 0.5, 0.5, 0.0]
    assert history.history["val_recall@3"][:4] == [0.5, 0.5, 1.0, 0.5]
    assert callback.best_epoch == 1
    np.testing.assert_array_equal(model.scores.numpy(), [3, 0, 2, 1])  # monitor's weights
    if not also:
        assert callback.stopped_epoch == 3 and callback.best_of == {}
        return
    # epoch 2 improved recall@3: patience counts from there
    assert callback.stopped_epoch == 4
    assert callback.best_of == {"recall@3": (1.0, 2)}
    model.set_weights(callback.best_weights_of("val_recall@3"))
    np.testing.assert_array_equal(model.scores.numpy(), [3, 2, 1, 0])
    model.set_weights(callback.best_weights_of("recall@1"))
    np.testing.assert_array_equal(model.scores.numpy(), [3, 0, 2, 1])
    with pytest.raises(ValueError, match="`metric` should be one of the monitored"):
        callback.best_weights_of("ndcg@3")


def test_selection_state_round_trips_through_json():
    model = _TwoTargetModel()
    model.compile(optimizer="sgd")
    users = _users(["0"], [np.array(["a", "b"])], [np.array([], str)])
    items = np.array(["a", "b", "c", "d"])
    options = dict(ks=[1, 3], monitor="recall@1", patience=2, also_monitor=("recall@3",))
    callback = ev.RetrievalEvaluationCallback(users, items, **options)
    model.fit(np.zeros((1, 1)), epochs=6, verbose=0, callbacks=[callback])
    state, kept = callback.get_selection_state()
    state = json.loads(json.dumps(state))  # what a backup file holds
    assert state["best"] == 0.5 and state["best_epoch"] == 1 and state["stopped_epoch"] == 4
    assert set(kept) == {"recall@1", "recall@3"}
    other = ev.RetrievalEvaluationCallback(users, items, **options)
    other.set_selection_state(state, kept)
    for name in ("best", "best_epoch", "wait", "stopped_epoch", "history", "evaluated_epochs"):
        assert getattr(other, name) == getattr(callback, name), name
    assert other.best_of == callback.best_of == {"recall@3": (1.0, 2)}
    np.testing.assert_array_equal(other.best_weights_of("recall@3")[0], [3, 2, 1, 0])
    np.testing.assert_array_equal(other.best_weights[0], [3, 0, 2, 1])
    fresh, _ = ev.RetrievalEvaluationCallback(users, items, **options).get_selection_state()
    assert fresh["best"] is None and fresh["best_epoch"] is None and fresh["history"] == []
    mismatch = ev.RetrievalEvaluationCallback(users, items, ks=[1, 3], monitor="recall@3")
    with pytest.raises(ValueError, match="saved selection state monitors 'recall@1'"):
        mismatch.set_selection_state(state, kept)
    other_patience = ev.RetrievalEvaluationCallback(users, items, **{**options, "patience": 5})
    with pytest.raises(ValueError, match="made with .*'patience': 2.*this selection has"):
        other_patience.set_selection_state(state, kept)


def test_callback_bad_options():
    with pytest.raises(ValueError, match="`monitor`"):
        ev.RetrievalEvaluationCallback({}, [], monitor="auc")
    with pytest.raises(ValueError, match="`also_monitor` should hold metrics.*'auc@5'"):
        ev.RetrievalEvaluationCallback({}, [], also_monitor=("recall@5", "auc@5"))
    with pytest.raises(ValueError, match="`patience`"):
        ev.RetrievalEvaluationCallback({}, [], patience=-1)
