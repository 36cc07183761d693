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

from tests import loss_grid as grid


def main() -> None:
    worst: dict[tuple[str, str], list[float]] = {}
    for dtype, kernel, alpha, num_items, layout, method in itertools.product(
        grid.DTYPES,
        grid.KERNELS,
        grid.ALPHAS,
        grid.NUM_ITEMS,
        grid.LAYOUTS,
        ["cro", "lambda"],
    ):
        (got_loss, got_grad), (ref_loss, ref_grad) = grid.compare_at(
            method, kernel, alpha, num_items, layout, dtype
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
