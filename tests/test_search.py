"""tfcro.search: the one exact / ScaNN top-k with exclusions, parameter policy and import guard."""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import pytest

from tests.test_serving_support import clustered_embeddings, make_towers
from tfcro import evaluation as ev
from tfcro import search
from tfcro.search import (
    BRUTE_FORCE_THRESHOLD,
    ScannIndex,
    ScannParams,
    build_scann_index,
    exact_top_k,
    import_scann,
    scann_available,
    scann_top_k,
)
from tfcro.serving import Retriever, export_model

# (`tfcro.evaluation.evaluate` the attribute is the function)
evaluate_module = importlib.import_module("tfcro.evaluation.catalog")


def loop_top_k(queries, items, k, exclude=None):
    """Plain-Python reference: sort by (-score, index), skip excluded, pad with -1 / NaN."""
    scores = np.asarray(queries, np.float64) @ np.asarray(items, np.float64).T
    indices = np.full((len(queries), k), -1, np.int64)
    values = np.full((len(queries), k), np.nan)
    for u in range(len(queries)):
        banned = set(np.asarray(exclude[u]).tolist()) if exclude is not None else set()
        ranked = sorted(range(len(items)), key=lambda i: (-scores[u, i], i))
        kept = [i for i in ranked if i not in banned][:k]
        indices[u, : len(kept)] = kept
        values[u, : len(kept)] = scores[u, kept]
    return indices, values


def test_exact_top_k_matches_a_loop_with_ties_exclusions_and_short_rows():
    rng = np.random.default_rng(0)
    # Small integer embeddings: many exactly equal scores (ties keep the lower index).
    items = rng.integers(-2, 3, size=(40, 3)).astype(np.float32)
    queries = rng.integers(-2, 3, size=(9, 3)).astype(np.float32)
    exclude = [rng.choice(40, size=rng.integers(0, 12), replace=False) for _ in range(9)]
    exclude[1] = np.arange(40)  # everything excluded
    exclude[2] = np.arange(35)  # fewer than k left
    exclude[3] = np.array([-1, 5, 5, 99, 7])  # missing ids (-1), a duplicate, out of range
    exclude[4] = set(exclude[4].tolist()) | {0}  # any collection of rows
    for k in (1, 7, 40, 55):  # 55 > catalog
        got, got_scores = exact_top_k(queries, items, k, exclude=exclude, chunk_size=4)
        want, want_scores = loop_top_k(queries, items, k, exclude)
        assert got.dtype == np.int64 and got_scores.dtype == np.float32
        assert got.shape == got_scores.shape == (9, k)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(got_scores, want_scores, atol=1e-6)  # NaN == NaN
    got, scores = exact_top_k(queries, items, 10, exclude=exclude)
    assert (got[1] == -1).all() and np.isnan(scores[1]).all()
    assert (got[2, :5] >= 0).all() and (got[2, 5:] == -1).all()
    no_exclusion, _ = exact_top_k(queries, items, 12)
    np.testing.assert_array_equal(no_exclusion, loop_top_k(queries, items, 12)[0])


def test_exact_top_k_bounds_the_scored_chunk(monkeypatch):
    rng = np.random.default_rng(1)
    items, queries = rng.normal(size=(50, 4)), rng.normal(size=(23, 4))
    monkeypatch.setattr(search, "EXACT_SCORE_BUDGET", 100)  # at most 2 queries x 50 items
    got, _ = exact_top_k(queries, items, 5)
    np.testing.assert_array_equal(got, loop_top_k(queries, items, 5)[0])
    empty, empty_scores = exact_top_k(np.zeros((0, 4)), items, 3)
    assert empty.shape == empty_scores.shape == (0, 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": 0}, "`k` should be an integer >= 1"),
        ({"queries": np.zeros((2, 3))}, "`queries` should be a \\[U, 4\\] array"),
        ({"exclude": [[1]]}, "`exclude` should be None or one collection"),
        ({"chunk_size": 0}, "`chunk_size`"),
    ],
)
def test_exact_top_k_checks_its_arguments(kwargs, match):
    args = {"queries": np.zeros((2, 4)), "embeddings": np.zeros((5, 4)), "k": 3} | kwargs
    with pytest.raises(ValueError, match=match):
        exact_top_k(**args)


def test_scann_brute_force_equals_exact():
    rng = np.random.default_rng(3)
    items = rng.normal(size=(700, 8)).astype(np.float32)
    users = rng.normal(size=(30, 8)).astype(np.float32)
    exclude = [rng.choice(700, size=rng.integers(0, 20), replace=False) for _ in range(30)]
    index = build_scann_index(items, range(700), 10, evaluate=False)
    assert index.params == {"algorithm": "brute_force", "num_neighbors": 10}
    for k in (10, 60):
        rows, scores = scann_top_k(index, users, k, exclude=exclude, chunk_size=7)
        want, want_scores = exact_top_k(users, items, k, exclude=exclude)
        np.testing.assert_array_equal(rows, want)
        np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    tiny = build_scann_index(items[:4], range(4), 2, evaluate=False)
    rows, scores = scann_top_k(tiny, users[:2], 6, exclude=[[1], []])
    want, want_scores = exact_top_k(users[:2], items[:4], 6, exclude=[[1], []])
    np.testing.assert_array_equal(rows, want)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


def test_scann_over_fetch_returns_n_items_when_the_top_is_excluded():
    # Few leaves searched: the top-100 of each query is excluded, so the first fetch
    # (10 + 100 candidates of 2 leaves) comes back short and the loop must fetch more.
    items = clustered_embeddings(6000, 16, seed=1)
    index = build_scann_index(
        items, range(6000), 10, {"num_leaves": 100, "num_leaves_to_search": 2}, evaluate=False
    )
    assert index.params["algorithm"] == "tree_ah"
    queries = items[:40]
    top, _ = exact_top_k(queries, items, 100)
    rows, scores = scann_top_k(index, queries, 10, exclude=list(top))
    assert (rows >= 0).all() and not np.isnan(scores).any()
    for u in range(40):
        assert not set(rows[u].tolist()) & set(top[u].tolist())
        assert len(set(rows[u].tolist())) == 10
        np.testing.assert_allclose(scores[u], items[rows[u]] @ queries[u], atol=1e-4)
        assert np.all(np.diff(scores[u]) <= 1e-5)
    # Excluding all but three items leaves exactly those three.
    left = [np.setdiff1d(np.arange(6000), [5, 17, 4000])] * 2
    rows, scores = scann_top_k(index, queries[:2], 5, exclude=left)
    assert sorted(rows[0, :3].tolist()) == [5, 17, 4000] and (rows[:, 3:] == -1).all()
    assert np.isnan(scores[:, 3:]).all()


class _CandidateIndex:
    """Stands in for a ScannIndex whose search returns fixed candidate rows."""

    params = {"algorithm": "brute_force", "num_neighbors": 4}

    def __init__(self, candidates, num_items):
        self.candidates = np.asarray(candidates, np.int64)
        self.num_items = num_items
        self.fetches = []

    def __len__(self):
        return self.num_items

    def search(self, queries, k, *, leaves_to_search=None):
        self.fetches.append(k)
        rows = self.candidates[: len(queries), :k]
        return rows, np.where(rows >= 0, -np.arange(rows.shape[1], dtype=np.float32), np.nan)


def test_scann_filter_keeps_order_and_fetches_more_for_short_rows():
    index = _CandidateIndex([[4, 1, 3, 2], [0, 5, 6, -1]], num_items=7)
    rows, _ = scann_top_k(index, np.zeros((2, 3)), 3, exclude=[np.array([1, 2]), np.array([5])])
    assert rows.tolist() == [[4, 3, -1], [0, 6, -1]]
    assert index.fetches == [5, 7]  # 3 + 2 excluded, then the whole catalog for the short rows


def test_evaluation_searches_the_index_the_export_writes(tmp_path, monkeypatch):
    num_items = BRUTE_FORCE_THRESHOLD + 200  # a tree index
    user_tower, item_tower, items = make_towers(num_items=num_items, dim=8, seed=2)
    result = export_model(
        user_tower, item_tower, items, str(tmp_path / "export"), config={}, scale=1.0
    )
    exported = result.manifest["scann"]["params"]
    assert exported["algorithm"] == "tree_ah"
    assert exported == ScannParams().resolve(num_items, result.manifest["num_neighbors"])

    built = []
    real = evaluate_module.scann_index_for

    def spy(*args, **kwargs):
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(evaluate_module, "scann_index_for", spy)
    model = types.SimpleNamespace(user_tower=user_tower, item_tower=item_tower)
    rng = np.random.default_rng(0)
    seen = [rng.choice(num_items, 3, replace=False) for _ in range(30)]
    users = {
        "user_id": np.arange(30).astype(str),
        "history": items[np.stack(seen)].astype(str),
        "seen": [items[s] for s in seen],
    }
    # Targets: each user's exact top-10 without the seen items (exact recall@10 = 1).
    top, _ = exact_top_k(
        ev.embed_users(model, users), ev.embed_items(model, items), 10, exclude=seen
    )
    users["targets"] = [items[t] for t in top]
    metrics = ev.evaluate(model, users, items, ks=[10], method="scann")
    assert len(built) == 1 and built[0].params == exported
    assert ev.evaluate(model, users, items, ks=[10])["recall@10"] == 1.0
    assert metrics["recall@10"] >= 0.9

    # The exported index itself, its rows in another order than the evaluated catalog.
    loaded = ScannIndex.load(result.scann_dir)
    again = ev.evaluate(model, users, items[::-1], ks=[10], method="scann", scann_index=loaded)
    assert again["recall@10"] >= 0.9
    with pytest.raises(ValueError, match="`scann_index` should be an index over exactly"):
        ev.evaluate(model, users, items[:-1], ks=[10], method="scann", scann_index=loaded)


def test_retriever_follows_the_same_threshold(tmp_path):
    user_tower, item_tower, items = make_towers(num_items=300, dim=8, seed=4)
    export_model(user_tower, item_tower, items, str(tmp_path), config={}, scale=2.0)
    assert not Retriever(str(tmp_path)).uses_scann  # 300 <= BRUTE_FORCE_THRESHOLD
    assert Retriever(str(tmp_path), brute_force_threshold=299).uses_scann
    assert ScannParams(brute_force_threshold=299).resolve(300, 10)["algorithm"] == "tree_ah"
    with pytest.raises(ValueError, match="`brute_force_threshold`"):
        Retriever(str(tmp_path), brute_force_threshold=0)


def test_import_guard_says_what_to_install(monkeypatch):
    assert scann_available()
    calls = []
    from tfcro import _compat

    monkeypatch.setattr(_compat, "check_scann", lambda strict=False: calls.append(strict))
    import_scann()
    assert calls == [False]  # the working-set check runs where ScaNN is imported
    monkeypatch.setitem(sys.modules, "scann", None)
    monkeypatch.setitem(sys.modules, "scann.scann_ops", None)
    monkeypatch.setitem(sys.modules, "scann.scann_ops.py", None)
    with pytest.raises(ImportError) as error:
        import_scann()
    message = str(error.value)
    assert "pip install tensorflow==2.20.0 scann==1.4.2" in message
    assert "method='exact'" in message and "use_scann=False" in message
    assert not scann_available()
