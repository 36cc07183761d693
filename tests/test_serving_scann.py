"""ScaNN index: parameters from the catalog size, recall against exact search, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_serving_support import clustered_embeddings
from tfcro.serving import (
    ScannIndex,
    ScannParams,
    build_scann_index,
    exact_top_k,
    recall_against_exact,
)


def test_parameters_follow_the_catalog_size():
    small = ScannParams().resolve(1_000, 10)
    assert small == {"algorithm": "brute_force", "num_neighbors": 10}
    big = ScannParams().resolve(1_000_000, 100)
    assert big["algorithm"] == "tree_ah"
    assert big["num_leaves"] == 1000  # ~ sqrt(N)
    assert big["num_leaves_to_search"] == 100
    assert big["reordering_num_neighbors"] == 400
    assert big["training_sample_size"] == 250_000
    custom = ScannParams(num_leaves=50, reordering_num_neighbors=77).resolve(1_000_000, 10)
    assert custom["num_leaves"] == 50 and custom["reordering_num_neighbors"] == 77
    assert ScannParams.coerce({"algorithm": "tree_ah"}).resolve(4000, 10)["num_leaves"] == 63


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"algorithm": "hnsw"}, "`algorithm` should be one of"),
        ({"num_leaves": 0}, "`num_leaves` should be an integer >= 1"),
        ({"brute_force_threshold": -1}, "`brute_force_threshold`"),
    ],
)
def test_invalid_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ScannParams(**kwargs)


def test_exact_top_k_matches_argsort():
    rng = np.random.default_rng(0)
    emb, queries = rng.normal(size=(300, 5)), rng.normal(size=(7, 5))
    idx, scores = exact_top_k(queries, emb, 10, chunk_size=3)
    expected = np.argsort(-(queries @ emb.T), axis=1)[:, :10]
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ emb.T, expected, 1), 1e-5)
    assert recall_against_exact(idx[:, :5], expected[:, :5]) == 1.0
    assert recall_against_exact(np.array([[1, 2]]), np.array([[2, 3]])) == 0.5


def test_tree_ah_recall_against_exact_on_a_few_thousand_items(tmp_path):
    emb = clustered_embeddings(4000, 32, seed=3)
    ids = np.asarray([f"item{i}" for i in range(4000)], dtype=object)
    index = build_scann_index(emb, ids, 100, {"algorithm": "tree_ah"}, num_recall_queries=200)
    assert index.params["algorithm"] == "tree_ah" and index.params["num_leaves"] == 63
    assert index.recall["recall"] >= 0.95, index.recall
    # Independent check on user-like queries (perturbed items), through a save/load.
    index.save(str(tmp_path / "scann"))
    loaded = ScannIndex.load(str(tmp_path / "scann"))
    assert loaded.params == index.params and loaded.recall == index.recall
    rng = np.random.default_rng(4)
    queries = emb[rng.integers(0, 4000, 100)] + 0.3 * rng.normal(size=(100, 32))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    approx, scores = loaded.search(queries, 100)
    exact, exact_scores = exact_top_k(queries, emb, 100)
    assert recall_against_exact(approx, exact) >= 0.95
    np.testing.assert_allclose(scores[:, 0], exact_scores[:, 0], atol=1e-4)
    single_rows, _ = loaded.search(queries[0], 5)
    assert single_rows.shape == (5,)
    assert set(loaded.ids[approx[0, :3]]) <= set(ids)


def test_brute_force_is_exact_for_small_catalogs():
    emb = clustered_embeddings(500, 8, seed=5)
    index = build_scann_index(emb, range(500), 10)
    assert index.params["algorithm"] == "brute_force"
    assert index.recall["recall"] == pytest.approx(1.0)
    rows, _ = index.search(emb[:3], 10)
    np.testing.assert_array_equal(rows, exact_top_k(emb[:3], emb, 10)[0])
    assert index.ids[0] == "0"


def test_build_validates_its_inputs():
    emb = clustered_embeddings(10, 4)
    with pytest.raises(ValueError, match="one id per embedding row"):
        build_scann_index(emb, range(9), 5)
    with pytest.raises(ValueError, match="unique"):
        build_scann_index(emb, ["a"] * 10, 5)
    with pytest.raises(ValueError, match="`num_neighbors`"):
        build_scann_index(emb, range(10), 0)
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        build_scann_index(emb[0], range(4), 5)
