"""Exact special cases of the losses, rank estimates, numerical extremes, execution modes."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import tfcro
from tfcro import kernels, ranking, weighting


def _one_hot_batch(seed=0, batch=6, cols=9, spread=1.0):
    rng = np.random.default_rng(seed)
    labels = np.zeros((batch, cols), np.float32)
    labels[np.arange(batch), rng.integers(0, cols, batch)] = 1.0
    return labels, (spread * rng.normal(size=(batch, cols))).astype(np.float32)


# ---------------------------------------------------------------- special cases


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_exponential_alpha_one_is_softmax_cross_entropy(scale):
    labels, scores = _one_hot_batch()
    cro = tfcro.CROLoss(kernel="exponential", alpha=1.0, scale=scale, reduction="none")
    cce = tf.keras.losses.CategoricalCrossentropy(from_logits=True, reduction="none")
    want = cce(labels, scale * scores).numpy()
    np.testing.assert_allclose(cro(labels, scores).numpy(), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        tfcro.SoftmaxLoss(scale=scale, reduction="none")(labels, scores).numpy(),
        want,
        rtol=1e-5,
        atol=1e-6,
    )


def test_softplus_alpha_zero_is_log_m_plus_one_times_bpr():
    labels, scores = _one_hot_batch(seed=1)
    m = labels.shape[1] - 1
    cro = tfcro.CROLoss(kernel="softplus", alpha=0.0, scale=3.0, reduction="none")
    bpr = tfcro.BPRLoss(scale=3.0, reduction="none")
    np.testing.assert_allclose(
        cro(labels, scores).numpy(), np.log(m + 1) * bpr(labels, scores).numpy(), rtol=1e-5
    )


def test_hinge_alpha_zero_is_log_m_plus_one_times_triplet():
    labels, scores = _one_hot_batch(seed=2)
    m = labels.shape[1] - 1
    cro = tfcro.CROLoss(kernel="hinge", alpha=0.0, scale=10.0, margin=5.0, reduction="none")
    triplet = tfcro.TripletLoss(scale=10.0, margin=5.0, reduction="none")
    np.testing.assert_allclose(
        cro(labels, scores).numpy(), np.log(m + 1) * triplet(labels, scores).numpy(), rtol=1e-5
    )


def test_hand_worked_example():
    # One row, positive score 0.9, negatives 0.1 and 0.5, scale 1, N = M = 2, R = 1.
    # sigmoid kernel: r_hat = 1 + sigmoid(-0.8) + sigmoid(-0.4)
    #               = 1 + 0.310026 + 0.401312 = 1.711338
    # alpha = 1: F = log(1.711338) = 0.537276
    # alpha = 0: c_0 = log(3) / 2 = 0.549306; F = c_0 * (r_hat - 1) = 0.390742
    y_true, y_pred = [[1.0, 0.0, 0.0]], [[0.9, 0.1, 0.5]]
    got1 = tfcro.CROLoss(kernel="sigmoid", alpha=1.0)(y_true, y_pred)
    got0 = tfcro.CROLoss(kernel="sigmoid", alpha=0.0)(y_true, y_pred)
    assert float(got1) == pytest.approx(0.537276, abs=2e-6)
    assert float(got0) == pytest.approx(0.390742, abs=2e-6)


def test_transform_hits_log_n_plus_one_at_the_bottom_for_every_alpha():
    n = 1000.0
    for alpha in [0.0, 0.3, 0.6, 1.0, 1.4, 2.5]:
        value = weighting.transform(tf.math.log(n + 1.0), alpha, tf.constant(n))
        assert float(value) == pytest.approx(np.log(n + 1.0), rel=1e-5)
        assert float(weighting.transform(tf.constant(0.0), alpha, tf.constant(n))) == 0.0


# ---------------------------------------------------------------- rank estimates


def test_sharp_sigmoid_reproduces_exact_integer_ranks():
    rng = np.random.default_rng(3)
    # distinct scores on a grid of step 0.01, so scale 1e4 puts every gap beyond |100|
    scores = rng.permutation(400)[:120].reshape(4, 30).astype(np.float32) / 100.0
    labels = (rng.random((4, 30)) < 0.2).astype(np.float32)
    labels[:, 0] = 1.0
    exact = ranking.exact_ranks(labels, scores).numpy()
    smooth = ranking.rank_estimates(labels, scores, kernel="sigmoid", scale=1e4).numpy()
    step = ranking.rank_estimates(labels, scores, kernel="unit_step").numpy()
    # exact ranks by a plain loop
    loop = np.zeros_like(exact)
    for b in range(4):
        for i in np.flatnonzero(labels[b]):
            loop[b, i] = 1 + sum(scores[b, j] > scores[b, i] for j in np.flatnonzero(1 - labels[b]))
    np.testing.assert_array_equal(exact, loop)
    np.testing.assert_allclose(smooth, exact, rtol=1e-6)
    np.testing.assert_array_equal(step, exact)
    assert np.all(exact[labels > 0] == np.round(exact[labels > 0]))


def test_rank_estimate_scales_by_catalog_ratio():
    labels, scores = [[1.0, 0.0, 0.0, 0.0]], [[0.0, 5.0, -5.0, 5.0]]
    # two negatives strictly above; R = 400 / 3
    est = ranking.rank_estimates(labels, scores, kernel="unit_step", num_items=400).numpy()
    assert est[0, 0] == pytest.approx(1 + 400 / 3 * 2)


# ---------------------------------------------------------------- extremes


def _finite_loss_and_grad(loss_obj, labels, scores, dtype=tf.float32):
    y_pred = tf.Variable(tf.constant(scores, dtype))
    with tf.GradientTape() as tape:
        value = loss_obj(labels, y_pred)
    grad = tape.gradient(value, y_pred)
    return np.isfinite(value.numpy()).all() and np.isfinite(grad.numpy()).all()


EXTREME_ALPHAS = [0.0, 0.6, 1.0, 1.4, 3.0]


@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.bfloat16], ids=["f32", "f16", "bf16"])
@pytest.mark.parametrize("alpha", EXTREME_ALPHAS)
@pytest.mark.parametrize("kernel", ["sigmoid", "softplus", "hinge"])
def test_extreme_scores_stay_finite(kernel, alpha, dtype):
    rng = np.random.default_rng(4)
    labels = np.eye(6, 40, dtype=np.float32)
    labels[2, 7] = 1.0
    scores = rng.choice([-1e4, 1e4, 0.0, 3.0], size=(6, 40)).astype(np.float32)
    # float16 gradients come back in float16 (max 65504); with num_items=1e7 the true
    # gradient R * phi'(d) * scale is ~6e5 and not representable, so f16 uses N = M.
    for num_items in [None] if dtype == tf.float16 else [None, 10**7]:
        for loss in [
            tfcro.CROLoss(kernel=kernel, alpha=alpha, scale=10.0, num_items=num_items),
            tfcro.LambdaCROLoss("sigmoid", kernel, alpha=alpha, scale=10.0, num_items=num_items),
            tfcro.LambdaCROLoss("unit_step", kernel, alpha=alpha, scale=10.0, num_items=num_items),
        ]:
            assert _finite_loss_and_grad(loss, labels, scores, dtype), loss.get_config()


@pytest.mark.parametrize("alpha", EXTREME_ALPHAS)
def test_exponential_kernel_extremes(alpha):
    rng = np.random.default_rng(5)
    labels = np.eye(6, 40, dtype=np.float32)
    if alpha >= 1.0:  # log-space all the way: any score gap
        scores = rng.choice([-1e4, 1e4, 0.0], size=(6, 40)).astype(np.float32)
        losses = [tfcro.CROLoss(kernel="exponential", alpha=alpha, scale=10.0)]
    else:  # grows like exp((1 - alpha) * gap): documented limit scale * |gap| <= 60
        scores = rng.uniform(-3.0, 3.0, size=(6, 40)).astype(np.float32)
        losses = [tfcro.CROLoss(kernel="exponential", alpha=alpha, scale=10.0)]
    scores_60 = rng.uniform(-3.0, 3.0, size=(6, 40)).astype(np.float32)
    lam = tfcro.LambdaCROLoss("sigmoid", "exponential", alpha=alpha, scale=10.0, num_items=10**6)
    for loss in losses:
        assert _finite_loss_and_grad(loss, labels, scores)
    assert _finite_loss_and_grad(lam, labels, scores_60)
    assert _finite_loss_and_grad(
        tfcro.SoftmaxLoss(scale=10.0),
        labels,
        rng.choice([-1e4, 1e4], size=(6, 40)).astype(np.float32),
    )


def test_degenerate_rows_are_finite_and_zero():
    # no negatives at all, all candidates absent, no positives
    labels = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]], np.float32)
    scores = np.array([[0.3, 0.2], [0.5, -np.inf], [0.1, 0.2]], np.float32)
    for loss in [
        tfcro.CROLoss(alpha=0.6, reduction="none"),
        tfcro.LambdaCROLoss(alpha=1.4, reduction="none"),
        tfcro.BPRLoss(reduction="none"),
        tfcro.TripletLoss(reduction="none"),
        tfcro.SoftmaxLoss(reduction="none"),
    ]:
        y_pred = tf.Variable(scores)
        with tf.GradientTape() as tape:
            value = loss(labels, y_pred)
        grad = tape.gradient(value, y_pred).numpy()
        assert np.isfinite(grad).all()
        expected_rows = (
            [0.0, 0.0, 0.0] if not isinstance(loss, tfcro.LambdaCROLoss) else [1.0, 1.0, 0.0]
        )  # lambda surrogate: w(1) * r_hat_2 = c_alpha * 1 at N = M = 0
        np.testing.assert_allclose(value.numpy(), expected_rows, atol=1e-7)


# ---------------------------------------------------------------- execution modes


@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_tf_function_and_xla_match_eager(jit):
    labels, scores = _one_hot_batch(seed=6, batch=8, cols=20)
    labels[3, 4] = labels[3, 5] = 1.0  # a multi-hot row: more than one loop iteration
    loss = tfcro.LambdaCROLoss("sigmoid", "softplus", alpha=1.2, scale=5.0, num_items=1000)
    var = tf.Variable(scores)

    def step():
        with tf.GradientTape() as tape:
            value = loss(labels, var)
        return value, tape.gradient(value, var)

    eager_value, eager_grad = step()
    fn_value, fn_grad = tf.function(step, jit_compile=jit)()
    np.testing.assert_allclose(fn_value.numpy(), eager_value.numpy(), rtol=1e-5)
    np.testing.assert_allclose(fn_grad.numpy(), eager_grad.numpy(), rtol=1e-4, atol=1e-7)


def test_dynamic_shapes_in_tf_function():
    loss = tfcro.CROLoss(kernel="sigmoid", alpha=1.4, reduction="none")
    fn = tf.function(loss.call, input_signature=[tf.TensorSpec([None, None], tf.float32)] * 2)
    for batch, cols in [(3, 5), (7, 11)]:
        labels, scores = _one_hot_batch(seed=batch, batch=batch, cols=cols)
        np.testing.assert_allclose(
            fn(labels, scores).numpy(), loss(labels, scores).numpy(), rtol=1e-5
        )


_DISTRIBUTE_SCRIPT = textwrap.dedent("""
    import numpy as np
    import tfcro
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rng = np.random.default_rng(0)
    labels = np.eye(8, 24, dtype=np.float32)
    scores = rng.normal(size=(8, 24)).astype(np.float32)
    for reduction in ["sum", "none"]:
        with strategy.scope():
            loss = tfcro.CROLoss(kernel="softplus", alpha=1.4, scale=5.0, num_items=500,
                                 reduction=reduction)
            var = tf.Variable(scores)
        ds = tf.data.Dataset.from_tensor_slices(labels).batch(8)
        dist = strategy.experimental_distribute_dataset(ds)

        @tf.function
        def step(y):
            def replica(y_local):
                ctx = tf.distribute.get_replica_context()
                start = ctx.replica_id_in_sync_group * tf.shape(y_local)[0]
                rows = var[start:start + tf.shape(y_local)[0]]
                with tf.GradientTape() as tape:
                    tape.watch(rows)
                    value = tf.reduce_sum(loss(y_local, rows))
                return value
            return strategy.reduce("SUM", strategy.run(replica, args=(y,)), axis=None)

        got = float(step(next(iter(dist))))
        want = float(tf.reduce_sum(loss(labels, scores)))
        assert abs(got - want) <= 1e-4 * abs(want), (reduction, got, want)
    print("OK")
""")


def test_mirrored_strategy_sum_and_none():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-c", _DISTRIBUTE_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]


def test_kernels_log_value_matches_value():
    x = tf.constant(np.linspace(-30, 30, 61), tf.float32)
    for name in ["sigmoid", "softplus", "exponential", "hinge", "unit_step"]:
        kernel = kernels.get(name, margin=2.0)
        np.testing.assert_allclose(
            np.exp(kernel.log_value(x).numpy()), kernel.value(x).numpy(), rtol=1e-5, atol=1e-30
        )


# ---------------------------------------------------------------- the eye-label fast path

DIAGONAL_CASES = [
    ("softmax", {"scale": 3.0}),
    ("bpr", {}),
    ("triplet", {"margin": 0.5}),
    ("cro", {"kernel": "softplus", "alpha": 0.8, "num_items": 40}),
    ("cro", {"kernel": "exponential", "alpha": 1.2, "scale": 2.0}),
    ("cro-lambda", {"weight_kernel": "sigmoid", "kernel": "softplus", "alpha": 1.4}),
    ("psl", {"surrogate": "tanh", "scale": 4.0, "input_scale": 2.0}),
    ("psl", {"surrogate": "relu", "surrogate_tau": 0.5}),
    ("sl-at-k", {"top_k": 3, "weight_tau": 0.5, "scale": 2.0, "num_items": 30}),
    ("sl-at-k", {"top_k": 2}),
    ("bsl", {"temperature_ratio": 1.5, "scale": 2.0}),
]


def _diagonal_batch(rows, cols, seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(rows, cols)).astype(np.float32)
    scores[0, min(3, cols - 1)] = -3.4e36  # an absent candidate (TFRS's masked value)
    scores[1, 1] = -np.inf  # an absent positive: its row is 0
    scores[2, :] = -1e31  # a row with nothing present
    scores[2, 2] = 0.4  # ... but its positive: no negative
    return scores


def _diagonal_and_eye(loss, rows, cols, jit=None):
    var = tf.Variable(_diagonal_batch(rows, cols, seed=rows * cols))

    def both():
        with tf.GradientTape(persistent=True) as tape:
            fast = loss.diagonal_call(var)
            full = loss.call(tf.eye(rows, cols), var)
        return fast, full, tape.gradient(fast, var), tape.gradient(full, var)

    if jit is not None:
        both = tf.function(both, jit_compile=jit)
    fast, full, fast_grad, full_grad = (t.numpy() for t in both())
    assert np.isfinite(fast).all() and np.isfinite(fast_grad).all()
    assert fast[1] == 0.0 and (rows <= cols or fast[-1] == 0.0)
    np.testing.assert_allclose(fast, full, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast_grad, full_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("rows", "cols"), [(5, 9), (6, 6), (6, 4)], ids=["wide", "square", "tall"])
@pytest.mark.parametrize(("name", "options"), DIAGONAL_CASES, ids=lambda v: str(v))
def test_diagonal_call_equals_call_with_eye_labels(name, options, rows, cols):
    """The models' path (no label matrix, one positive per row) against ``call(eye)``:
    the same values and gradients, with absent candidates and positives, a row with no
    negative, and rows without a positive (``B > C``)."""
    _diagonal_and_eye(tfcro.losses.get(name, **options), rows, cols)


@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
@pytest.mark.parametrize("name", ["cro-lambda", "sl-at-k", "bsl"])
def test_diagonal_call_compiles(name, jit):
    _diagonal_and_eye(tfcro.losses.get(name, scale=2.0), 6, 8, jit=jit)


def test_softmax_diagonal_call_with_unknown_shapes():
    """The fused softmax path with sizes known only at run time, C >= B and C < B."""
    loss = tfcro.SoftmaxLoss(scale=2.0)
    fn = tf.function(loss.diagonal_call, input_signature=[tf.TensorSpec([None, None])])
    for rows, cols in [(5, 9), (6, 4)]:
        scores = _diagonal_batch(rows, cols, seed=rows)
        want = loss.call(tf.eye(rows, cols), scores).numpy()
        np.testing.assert_allclose(fn(tf.constant(scores)).numpy(), want, rtol=1e-5, atol=1e-6)


def test_diagonal_call_honours_a_subclass_math():
    class Doubled(tfcro.SLatKLoss):  # overrides row_losses below the class with a fast path
        def row_losses(self, y_true, y_pred):
            return 2.0 * super().row_losses(y_true, y_pred)

    class Squared(tfcro.CROLoss):  # the engine's fast path uses its own positive_loss
        def positive_loss(self, gaps, negatives, num_negatives):
            return tf.square(super().positive_loss(gaps, negatives, num_negatives))

    scores = _diagonal_batch(4, 7, seed=1)
    for subclass, base in [(Doubled, tfcro.SLatKLoss()), (Squared, tfcro.CROLoss())]:
        want = subclass().call(tf.eye(4, 7), scores).numpy()
        np.testing.assert_allclose(subclass().diagonal_call(scores).numpy(), want, rtol=1e-6)
        assert not np.allclose(base.diagonal_call(scores).numpy(), want)
