"""tfcro losses and their gradients against the NumPy loop reference.

Tolerances: float32 inputs agree with the float64 reference to rtol 1e-4 /
atol 1e-5 (loss) and rtol 1e-3 / atol 1e-5 (gradient; float32 accumulation of
up to C terms). float16 inputs are compared with the reference evaluated on
the same float16-rounded scores: the loss is computed in float32, so it keeps
rtol 1e-4; the gradient comes back in float16 (~3 significant digits), so
rtol 5e-3 / atol 1e-3.
"""

import numpy as np
import pytest
import tensorflow as tf

import tfcro
from tests import loss_grid as grid
from tests import reference

_check = grid.check


def _over_the_grid(test):
    """Parametrizes ``test`` over the grid (kernel, alpha, num_items, layout, dtype)."""
    for mark in (
        pytest.mark.parametrize("kernel", grid.KERNELS),
        pytest.mark.parametrize("alpha", grid.ALPHAS),
        pytest.mark.parametrize("num_items", grid.NUM_ITEMS, ids=["N=M", "N=50"]),
        pytest.mark.parametrize("layout", grid.LAYOUTS),
        pytest.mark.parametrize("dtype", grid.DTYPES, ids=["f32", "f16"]),
    ):
        test = mark(test)
    return test


@_over_the_grid
def test_cro_loss_matches_reference(kernel, alpha, num_items, layout, dtype):
    got, want = grid.compare_at("cro", kernel, alpha, num_items, layout, dtype)
    _check(got, want, dtype)


@_over_the_grid
@pytest.mark.parametrize("weight_kernel", ["unit_step", "sigmoid"])
def test_lambda_cro_loss_matches_reference(weight_kernel, kernel, alpha, num_items, layout, dtype):
    got, want = grid.compare_at("lambda", kernel, alpha, num_items, layout, dtype, weight_kernel)
    _check(got, want, dtype)


@pytest.mark.parametrize("layout", grid.LAYOUTS)
@pytest.mark.parametrize(
    "loss_obj,method",
    [
        (tfcro.SoftmaxLoss(scale=grid.SCALE, reduction="none"), "softmax"),
        (tfcro.BPRLoss(scale=grid.SCALE, reduction="none"), "bpr"),
        (tfcro.TripletLoss(scale=grid.SCALE, margin=grid.MARGIN, reduction="none"), "triplet"),
    ],
    ids=["softmax", "bpr", "triplet"],
)
def test_baselines_match_reference(loss_obj, method, layout):
    labels, scores = grid.batch(layout, seed=2)
    got, want = grid.compare(
        loss_obj, labels, scores, tf.float32, method=method, scale=grid.SCALE, margin=grid.MARGIN
    )
    _check(got, want, tf.float32)


def test_absent_candidates_are_neither_negatives_nor_counted():
    """TFRS masks with ~-3.4e36; -inf is accepted too. Both must drop out of M."""
    labels, scores = grid.batch("several", seed=3)
    masked = scores.copy()
    masked[0, 5] = np.finfo(np.float32).min / 100.0
    masked[1, 0] = -np.inf
    masked[2, 5] = -1e31  # a masked positive is not a positive: row 2 has none left
    loss = tfcro.CROLoss(
        kernel="sigmoid", alpha=1.4, scale=grid.SCALE, num_items=50, reduction="none"
    )
    got_loss, got_grad = grid.tf_losses_and_grads(loss, labels, masked, tf.float32)
    want_loss, want_grad = reference.row_losses_and_grads(
        labels, masked, method="cro", kernel="sigmoid", alpha=1.4, scale=grid.SCALE, num_items=50
    )
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-3, atol=1e-6)
    assert got_loss[2] == 0.0
    assert got_grad[0, 5] == 0.0 and got_grad[1, 0] == 0.0


def test_sample_weight_and_reductions():
    labels, scores = grid.batch("several", seed=4)
    weights = np.array([1.0, 0.5, 2.0, 1.0, 0.0])
    rows = tfcro.CROLoss(alpha=0.6, reduction="none")(labels, scores).numpy()
    total = tfcro.CROLoss(alpha=0.6, reduction="sum")(labels, scores, sample_weight=weights)
    mean = tfcro.CROLoss(alpha=0.6)(labels, scores, sample_weight=weights)
    np.testing.assert_allclose(float(total), np.sum(rows * weights), rtol=1e-6)
    np.testing.assert_allclose(float(mean), np.sum(rows * weights) / len(rows), rtol=1e-6)
