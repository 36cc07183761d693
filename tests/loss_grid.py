"""The parameter grid of the loss-vs-reference tests, shared with
``benchmarks/loss_reference_error.py`` (which reports the largest errors over it) and
with the Keras 3 checks (``tests/keras3_cases.py``, every backend).

``api`` is the module whose loss classes are checked: ``tfcro`` (Keras 2, the default)
or ``tfcro.keras3``; values and gradients come from that API's framework
(:func:`losses_and_grads`). No framework is imported here at module level.
"""

import numpy as np

from tests import reference

DTYPES = ["float32", "float16"]
KERNELS = ["sigmoid", "softplus", "exponential", "hinge"]
ALPHAS = [0.0, 0.6, 1.0, 1.4]
NUM_ITEMS = [None, 50]
LAYOUTS = ["one", "several"]
SCALE = 2.0
MARGIN = 0.5
SEEDS = {"cro": 0, "lambda": 1}  # the seed of each method's batch


def batch(layout: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(5, 7))
    if layout == "one":
        labels = np.eye(5, 7)
    else:
        labels = np.zeros((5, 7))
        labels[0, [0, 3]] = 1
        labels[1, [1, 2, 6]] = 1
        labels[2, 5] = 1
        labels[4, [0, 1]] = 1  # row 3 has no positive: contributes 0
    return labels, scores


def check(got, want, dtype):
    """CROLoss tolerances (tests/test_losses_reference.py says why): float32 loss rtol 1e-4 /
    atol 1e-5, gradient rtol 1e-3 / atol 1e-5; float16 gradient rtol 5e-3 / atol 1e-3."""
    (got_loss, got_grad), (want_loss, want_grad) = got, want
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-4, atol=1e-5)
    if dtype_name(dtype) == "float32":
        np.testing.assert_allclose(got_grad, want_grad, rtol=1e-3, atol=1e-5)
    else:
        np.testing.assert_allclose(got_grad, want_grad, rtol=5e-3, atol=1e-3)


#: The peer losses' tolerances, by dtype.
PEER_TOLERANCE = {"float32": dict(rtol=2e-5, atol=2e-6), "float16": dict(rtol=2e-2, atol=2e-2)}


def _api(api):
    if api is None:
        import tfcro

        return tfcro
    return api


def losses_and_grads(loss_obj, labels, scores, dtype):
    """``(row losses, gradient of their sum)`` as float64 NumPy arrays, computed by the
    loss's framework: TensorFlow for Keras 2 losses and Keras 3 on TensorFlow, ``jax.vjp``
    on JAX, ``torch.autograd`` on PyTorch."""
    backend, dtype = "tensorflow", dtype_name(dtype)
    if type(loss_obj).__module__.startswith("tfcro.keras3"):
        import keras

        backend = keras.backend.backend()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        values, vjp = jax.vjp(
            lambda s: loss_obj(jnp.asarray(labels, jnp.float32), s), jnp.asarray(scores, dtype)
        )
        (grad,) = vjp(jnp.ones_like(values))
        assert values.dtype == jnp.float32 and grad.dtype == jnp.dtype(dtype)
        return np.asarray(values, np.float64), np.asarray(grad, np.float64)
    if backend == "torch":
        import torch

        s = torch.tensor(scores, dtype=getattr(torch, dtype), requires_grad=True)
        values = loss_obj(torch.tensor(labels, dtype=torch.float32), s)
        values.sum().backward()
        return values.detach().double().numpy(), s.grad.double().numpy()
    return tf_losses_and_grads(loss_obj, labels, scores, dtype)


def tf_losses_and_grads(loss_obj, labels, scores, dtype):
    import tensorflow as tf

    dtype = tf.as_dtype(dtype)
    y_pred = tf.Variable(tf.constant(scores, dtype))
    with tf.GradientTape() as tape:
        values = loss_obj(tf.constant(labels, tf.float32), y_pred)
        total = tf.reduce_sum(values)
    grad = tape.gradient(total, y_pred)
    assert values.dtype == tf.float32
    assert grad.dtype == dtype
    return values.numpy(), grad.numpy().astype(np.float64)


def point(kernel, alpha, num_items):
    """The options of a grid point, the same for the loss and the reference."""
    return dict(kernel=kernel, alpha=alpha, scale=SCALE, num_items=num_items, margin=MARGIN)


def make_loss(method, kernel, alpha, num_items, weight_kernel="sigmoid", api=None):
    """The unreduced loss of a grid point: ``CROLoss`` (method "cro") or ``LambdaCROLoss``."""
    options = point(kernel, alpha, num_items)
    if method == "cro":
        return _api(api).CROLoss(**options, reduction="none")
    return _api(api).LambdaCROLoss(weight_kernel=weight_kernel, **options, reduction="none")


def dtype_name(dtype) -> str:
    """``"float32"`` for ``"float32"``, ``tf.float32`` or ``np.float32``."""
    return getattr(dtype, "name", None) or np.dtype(dtype).name


def rounded(scores, dtype):
    """``scores`` rounded to ``dtype`` and back to float64 (what the loss receives)."""
    return np.asarray(scores, np.float64).astype(dtype_name(dtype)).astype(np.float64)


def compare(loss_obj, labels, scores, dtype, **reference_options):
    """``loss_obj``'s row losses and gradients on ``scores`` in ``dtype``, and the reference's
    on the same rounded scores: ``((loss, grad), (reference loss, reference grad))``."""
    scores = rounded(scores, dtype)
    got = losses_and_grads(loss_obj, labels, scores, dtype)
    return got, reference.row_losses_and_grads(labels, scores, **reference_options)


def compare_at(method, kernel, alpha, num_items, layout, dtype, weight_kernel="sigmoid", api=None):
    """``compare`` at a grid point: ``make_loss``'s loss on the method's batch of ``layout``."""
    labels, scores = batch(layout, seed=SEEDS[method])
    loss = make_loss(method, kernel, alpha, num_items, weight_kernel, api)
    options = point(kernel, alpha, num_items)
    return compare(
        loss, labels, scores, dtype, method=method, weight_kernel=weight_kernel, **options
    )


# ----------------------------------------------------------------------------- peer losses

PEER_DTYPES = DTYPES
#: (surrogate, surrogate_tau, scale, input_scale)
PSL_GRID = [
    (surrogate, tau, scale, input_scale)
    for surrogate in ("tanh", "atan", "relu")
    for tau in (2.0, 5.0)
    for scale in (1.0, 3.0)
    for input_scale in (None, 2.0)
]
#: (top_k, weight_tau, scale, num_items, input_scale)
SLATK_GRID = [
    (top_k, weight_tau, scale, num_items, input_scale)
    for top_k in (1, 3)
    for weight_tau in (0.5, 2.0)
    for scale in (1.0, 3.0)
    for num_items in (None, 50)
    for input_scale in (None, 2.0)
]
#: (temperature_ratio, scale)
BSL_GRID = [(ratio, scale) for ratio in (0.5, 1.0, 1.5) for scale in (1.0, 3.0)]
PEER_SEEDS = {"psl": 2, "sl-at-k": 3, "bsl": 4}


def peer_case(name: str, params: tuple, api=None):
    """``(loss, reference, input factor)`` of a peer-loss grid point: the unreduced loss,
    the loop reference with the same options, and the factor applied to the batch's
    scores (PSL keeps raw differences inside its surrogates' domain)."""
    from tests import reference_peers as ref

    api = _api(api)
    if name == "psl":
        surrogate, tau, scale, input_scale = params
        loss = api.PSLLoss(surrogate, tau, scale, input_scale, reduction="none")

        def reference(y, s):
            return ref.psl(
                y, s, surrogate=surrogate, tau=tau, scale=scale, input_scale=input_scale or 1.0
            )

        return loss, reference, 0.4 * (input_scale or 1.0)
    if name == "sl-at-k":
        top_k, weight_tau, scale, num_items, input_scale = params
        loss = api.SLatKLoss(top_k, weight_tau, scale, num_items, input_scale, reduction="none")

        def reference(y, s):
            return ref.slatk(
                y,
                s,
                top_k=top_k,
                weight_tau=weight_tau,
                scale=scale,
                input_scale=input_scale or 1.0,
                num_items=num_items,
            )

        return loss, reference, 1.0
    ratio, scale = params
    loss = api.BSLLoss(ratio, scale, reduction="none")
    return loss, (lambda y, s: ref.bsl(y, s, ratio=ratio, scale=scale)), 1.0


PEER_GRIDS = {"psl": PSL_GRID, "sl-at-k": SLATK_GRID, "bsl": BSL_GRID}


def compare_peer(name: str, params: tuple, layout: str, dtype, api=None):
    """A peer loss's row losses and gradients and the reference's on the same rounded
    scores: ``((loss, grad), (reference loss, reference grad))``."""
    loss, reference, factor = peer_case(name, params, api)
    labels, scores = batch(layout, seed=PEER_SEEDS[name])
    scores = rounded(factor * scores, dtype)
    return losses_and_grads(loss, labels, scores, dtype), reference(labels, scores)
