"""Largest error of the tfcro losses and gradients against the NumPy loop reference.

    .venv/bin/python -m benchmarks.loss_reference_error

Runs the grid of tests/loss_grid.py, that of tests/test_losses_reference.py
(kernels x alphas x num_items x one/several positives x float32/float16,
CROLoss and the lambda method), and prints the largest absolute and relative
differences, per dtype.
"""

from __future__ import annotations

import itertools

import numpy as np

import tfcro
from tests import loss_grid as grid
from tests import reference


def main() -> None:
    import tensorflow as tf

    worst: dict[tuple[str, str], list[float]] = {}
    for dtype, kernel, alpha, num_items, layout, method in itertools.product(
        [tf.float32, tf.float16],
        grid.KERNELS,
        grid.ALPHAS,
        grid.NUM_ITEMS,
        grid.LAYOUTS,
        ["cro", "lambda"],
    ):
        labels, scores = grid.batch(layout, seed=0 if method == "cro" else 1)
        scores = np.asarray(tf.cast(tf.constant(scores, dtype), tf.float64))
        options = dict(
            kernel=kernel,
            alpha=alpha,
            scale=grid.SCALE,
            num_items=num_items,
            margin=grid.MARGIN,
            reduction="none",
        )
        loss = (
            tfcro.CROLoss(**options)
            if method == "cro"
            else tfcro.LambdaCROLoss("sigmoid", **options)
        )
        got_loss, got_grad = grid.tf_losses_and_grads(loss, labels, scores, dtype)
        ref_loss, ref_grad = reference.row_losses_and_grads(
            labels,
            scores,
            method=method,
            weight_kernel="sigmoid",
            kernel=kernel,
            alpha=alpha,
            scale=grid.SCALE,
            num_items=num_items,
            margin=grid.MARGIN,
        )
        for what, got, ref in (("loss", got_loss, ref_loss), ("grad", got_grad, ref_grad)):
            key = (dtype.name, what)
            abs_err = float(np.max(np.abs(got - ref)))
            rel_err = float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-3)))
            prev = worst.get(key, [0.0, 0.0])
            worst[key] = [max(prev[0], abs_err), max(prev[1], rel_err)]
    print(f"{'dtype':<8} {'quantity':<8} {'max abs err':>12} {'max rel err':>12}")
    for (dtype, what), (abs_err, rel_err) in sorted(worst.items()):
        print(f"{dtype:<8} {what:<8} {abs_err:>12.3e} {rel_err:>12.3e}")


if __name__ == "__main__":
    main()
