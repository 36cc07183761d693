"""Largest error of the tfcro losses and gradients against the NumPy loop reference.

    .venv/bin/python -m benchmarks.loss_reference_error            # Keras 2 (tf-keras)
    KERAS_BACKEND=jax .venv/bin/python -m benchmarks.loss_reference_error --keras3
    KERAS_BACKEND=tensorflow .venv/bin/python -m benchmarks.loss_reference_error --keras3

Runs the grids of tests/loss_grid.py, those of tests/test_losses_reference.py
(kernels x alphas x num_items x one/several positives x float32/float16,
CROLoss and the lambda method) and tests/test_losses_peers.py (PSL, SL@K, BSL
over their parameters), and prints the largest absolute and relative differences
(relative to max(|reference|, 1e-3)), per loss and dtype. ``--keras3`` checks the
losses of :mod:`tfcro.keras3` on the Keras backend of ``KERAS_BACKEND`` instead.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from tests import loss_grid as grid


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keras3", action="store_true", help="tfcro.keras3's losses")
    args = parser.parse_args(argv)
    api = None
    if args.keras3:
        import keras

        import tfcro.keras3 as api

        print(f"tfcro.keras3 on the {keras.backend.backend()} backend")
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
            method, kernel, alpha, num_items, layout, dtype, api=api
        )
        for what, got, ref in (("loss", got_loss, ref_loss), ("grad", got_grad, ref_grad)):
            key = (dtype, what)
            abs_err = float(np.max(np.abs(got - ref)))
            rel_err = float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-3)))
            prev = worst.get(key, [0.0, 0.0])
            worst[key] = [max(prev[0], abs_err), max(prev[1], rel_err)]
    print(f"{'loss':<10} {'dtype':<8} {'quantity':<8} {'max abs err':>12} {'max rel err':>12}")
    for (dtype, what), (abs_err, rel_err) in sorted(worst.items()):
        print(f"{'cro':<10} {dtype:<8} {what:<8} {abs_err:>12.3e} {rel_err:>12.3e}")
    peers: dict[tuple[str, str, str], list[float]] = {}
    for name, cases in grid.PEER_GRIDS.items():
        for dtype, params, layout in itertools.product(grid.PEER_DTYPES, cases, grid.LAYOUTS):
            (got_loss, got_grad), (ref_loss, ref_grad) = grid.compare_peer(
                name, params, layout, dtype, api=api
            )
            for what, got, ref in (("loss", got_loss, ref_loss), ("grad", got_grad, ref_grad)):
                key = (name, dtype, what)
                abs_err = float(np.max(np.abs(got - ref)))
                rel_err = float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-3)))
                prev = peers.get(key, [0.0, 0.0])
                peers[key] = [max(prev[0], abs_err), max(prev[1], rel_err)]
    for (name, dtype, what), (abs_err, rel_err) in peers.items():
        print(f"{name:<10} {dtype:<8} {what:<8} {abs_err:>12.3e} {rel_err:>12.3e}")


if __name__ == "__main__":
    main()
