"""Tests of tfcro.sampling and of the negatives as the two-tower model uses them."""

from __future__ import annotations

import numpy as np
import pytest

from tfcro import losses, sampling
from tfcro._compat import tf
from tfcro.models import TwoTowerModel


def test_uniform_negatives_shape_range_and_seed():
    draws = sampling.uniform_negatives(7, 50, seed=[3, 1]).numpy()
    assert draws.shape == (50,) and draws.min() >= 0 and draws.max() < 7
    np.testing.assert_array_equal(draws, sampling.uniform_negatives(7, 50, seed=[3, 1]).numpy())
    assert not np.array_equal(draws, sampling.uniform_negatives(7, 50, seed=[3, 2]).numpy())
    assert sampling.uniform_negatives(7, 0).shape == (0,)


def test_uniform_negatives_are_uniform():
    # 20 bins, 40,000 seeded draws: chi-square has 19 dof (mean 19, sd ~6.2);
    # 60 is > 6 sd above the mean, so the bound fails only for a real bias.
    draws = sampling.uniform_negatives(20, 40_000, seed=[0, 0]).numpy()
    counts = np.bincount(draws, minlength=20)
    expected = 40_000 / 20
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 60


@pytest.mark.parametrize("value", [-1, 2.0, True, "3"])
def test_bad_num_negatives(value):
    with pytest.raises(ValueError, match="`num_negatives` should be an integer >= 0"):
        sampling.check_num_negatives(value)


def test_in_batch_mask_and_frequencies_and_mixture():
    assert sampling.in_batch_score_mask(2, 1).numpy().tolist() == [
        [True, False, True],
        [False, True, True],
    ]
    freq = sampling.item_frequencies(["a", "c", "c", "zz"], ["a", "b", "c"])
    np.testing.assert_allclose(freq, [1 / 3, 0, 2 / 3])
    # B = 4 in-batch draws from f, K = 6 uniform over N = 3: q = (4 f + 6/3) / 10
    q = sampling.mixture_probability(tf.constant(freq), 4, 6, 3).numpy()
    np.testing.assert_allclose(q, (4 * freq + 2) / 10, rtol=1e-6)
    q = sampling.mixture_probability(tf.constant(freq), 4, 6, 3, in_batch=False).numpy()
    np.testing.assert_allclose(q, 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(
        sampling.mixture_probability(tf.constant(freq), 4, 0, 3), freq, rtol=1e-6
    )


class _SpyLoss(losses.SoftmaxLoss):
    """Records the score matrix it receives."""

    seen: list = []

    def call(self, y_true, y_pred):
        _SpyLoss.seen.append(y_pred.numpy())
        return super().call(y_true, y_pred)


def _batch():
    return {
        "history": tf.constant([["i1", ""], ["i0", "i2"], ["", ""]]),
        "item_id": tf.constant(["i0", "i1", "i0"]),
    }


@pytest.mark.parametrize("in_batch", [True, False])
def test_model_removes_accidental_hits_and_masks_in_batch(in_batch):
    items = np.array(["i0", "i1", "i2"])
    model = TwoTowerModel(
        items, num_negatives=30, seed=5, in_batch_negatives=in_batch, loss=_SpyLoss()
    )
    _SpyLoss.seen.clear()
    loss = model.compute_loss(_batch())
    assert np.isfinite(float(loss))
    scores = _SpyLoss.seen[-1]
    negatives = items[sampling.uniform_negatives(3, 30, seed=[5, 0]).numpy()]
    candidates = np.concatenate([["i0", "i1", "i0"], negatives])
    assert scores.shape == (3, 33)
    for row, positive in enumerate(["i0", "i1", "i0"]):
        assert scores[row, row] > -1e30
        for col, cand in enumerate(candidates):
            if col == row:
                continue
            absent = cand == positive or (not in_batch and col < 3)
            assert (scores[row, col] <= -1e30) == absent, (row, col)


def test_out_of_vocabulary_positives_are_one_candidate():
    """Hits are compared as lookup indices: two ids outside the catalog share the OOV
    embedding (identical scores), so each is an accidental hit of the other."""
    items = np.array(["i0", "i1", "i2"])
    model = TwoTowerModel(items, num_negatives=0, loss=_SpyLoss())
    _SpyLoss.seen.clear()
    batch = {
        "history": tf.constant([["i1"], ["i0"], ["i2"]]),
        "item_id": tf.constant(["new-a", "i1", "new-b"]),
    }
    assert np.isfinite(float(model.compute_loss(batch)))
    present = _SpyLoss.seen[-1] > -1e30
    np.testing.assert_array_equal(present, [[1, 1, 0], [1, 1, 1], [0, 1, 1]])


def test_model_logq_correction_shifts_scores():
    items = np.array(["i0", "i1", "i2"])
    freq = np.array([0.5, 0.25, 0.25])
    plain = TwoTowerModel(items, num_negatives=4, seed=1, loss=_SpyLoss())
    corrected = TwoTowerModel(
        items, num_negatives=4, seed=1, loss=_SpyLoss(), logq_correction=True, item_frequencies=freq
    )
    corrected.set_weights(plain.get_weights())
    _SpyLoss.seen.clear()
    plain.compute_loss(_batch())
    corrected.compute_loss(_batch())
    s0, s1 = _SpyLoss.seen
    negatives = items[sampling.uniform_negatives(3, 4, seed=[1, 0]).numpy()]
    ids = np.concatenate([["i0", "i1", "i0"], negatives])
    f = freq[[int(i[1]) for i in ids]]
    q = (3 * f + 4 / 3) / 7
    present = s0 > -1e30
    np.testing.assert_allclose(s1[present], (s0 - np.log(q))[present], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="item_frequencies"):
        TwoTowerModel(items, logq_correction=True)


def test_row_negatives_are_per_row_seeded_draws():
    draws = sampling.row_negatives(7, 3, 5, seed=[2, 0]).numpy()
    assert draws.shape == (3, 5) and draws.min() >= 0 and draws.max() < 7
    np.testing.assert_array_equal(draws, sampling.row_negatives(7, 3, 5, seed=[2, 0]).numpy())
    assert len({tuple(row) for row in draws}) > 1  # rows draw on their own
    assert sampling.row_negatives(7, tf.constant(4), 2).shape == (4, 2)
    with pytest.raises(ValueError, match="`num_row_negatives` should be an integer >= 0"):
        sampling.row_negatives(7, 3, -1)


def _softmax_rows(scores):
    shifted = scores - scores.max(axis=1, keepdims=True)
    return np.log(np.exp(shifted).sum(axis=1)) - np.diag(shifted)


@pytest.mark.parametrize("in_batch", [True, False])
def test_model_row_negatives_match_numpy(in_batch):
    """Shared and per-row negatives: each row's own draws (a seed stream apart from the
    shared one), logQ with K + R uniform draws, accidental hits among a row's own
    items, the L2 over every embedding row; raw ids and lookup indices alike."""
    items = np.array([f"i{k}" for k in range(6)])
    freq = np.array([0.3, 0.2, 0.2, 0.1, 0.1, 0.1])
    model = TwoTowerModel(
        items,
        embedding_dim=4,
        loss=losses.SoftmaxLoss(),
        num_negatives=2,
        num_row_negatives=5,
        in_batch_negatives=in_batch,
        logq_correction=True,
        item_frequencies=freq,
        embedding_l2=0.01,
        seed=3,
    )
    batch = {
        "history": np.array([["i1", ""], ["i0", "i2"], ["", ""]]),
        "item_id": np.array(["i0", "i4", "i0"]),
    }
    got = float(model.compute_loss({k: tf.constant(v) for k, v in batch.items()}))
    shared = sampling.uniform_negatives(6, 2, seed=[3, 0]).numpy()
    own = sampling.row_negatives(6, 3, 5, seed=[3, -1]).numpy()
    positives = np.array([0, 4, 0])
    ids = np.concatenate([np.tile(np.concatenate([positives, shared]), (3, 1)), own], axis=1)
    u = model.user_tower({"history": tf.constant(batch["history"])}).numpy()
    v = model.item_tower({"item_id": tf.constant(items)}).numpy()
    b_in = 3 if in_batch else 0
    scores = np.zeros(ids.shape)
    for b in range(3):
        for c in range(ids.shape[1]):
            q = (b_in * freq[ids[b, c]] + 7 / 6) / (b_in + 7)
            scores[b, c] = 10.0 * u[b] @ v[ids[b, c]] - np.log(q)
    hits = (ids == positives[:, None]) & ~np.eye(3, 10, dtype=bool)
    assert hits[:, 5:].any()  # a row's own draw hits its positive
    scores[hits] = -np.inf
    if not in_batch:
        scores[:, :3][~np.eye(3, dtype=bool)] = -np.inf
    table = model.item_embedding.embedding.embeddings.numpy()  # lookup index = catalog + 2
    history = [1, 0, 2]  # the history items used (padding excluded)
    used = np.concatenate([positives, shared, own.reshape(-1), history]) + 2
    penalty = 0.01 * (table[used] ** 2).sum() / 3
    np.testing.assert_allclose(got, _softmax_rows(scores).mean() + penalty, rtol=1e-5)
    encoded = {k: tf.constant(v) for k, v in model.encode(batch).items()}
    np.testing.assert_allclose(float(model.compute_loss(encoded)), got, rtol=1e-5)
