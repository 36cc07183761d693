"""PSL, SL@K and BSL against the independent loop reference (values and gradients), their
special cases, numerical extremes, serialisation, XLA, and training with them."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

import tfcro
from tests import loss_grid
from tests import reference_peers as ref
from tests.loss_grid import batch
from tfcro import losses as losses_lib
from tfcro.losses import functional
from tfcro.models import TwoTowerConfig, TwoTowerModel
from tfcro.models.two_tower import prepare_loss

TOLERANCE = loss_grid.PEER_TOLERANCE
CASES = [(name, params) for name, grid in loss_grid.PEER_GRIDS.items() for params in grid]


@pytest.mark.parametrize("layout", loss_grid.LAYOUTS)
@pytest.mark.parametrize("dtype", loss_grid.PEER_DTYPES, ids=["f32", "f16"])
@pytest.mark.parametrize("name, params", CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_peer_losses_match_the_reference(name, params, layout, dtype):
    (loss, grad), (ref_loss, ref_grad) = loss_grid.compare_peer(name, params, layout, dtype)
    np.testing.assert_allclose(loss, ref_loss, **TOLERANCE[dtype])
    np.testing.assert_allclose(grad, ref_grad, **TOLERANCE[dtype])


# ----------------------------------------------------------------------------- special cases


def test_bsl_at_ratio_one_is_softmax_without_the_positive_in_the_denominator():
    labels, scores = batch("one", seed=6)
    bsl = tfcro.BSLLoss(1.0, scale=2.0, reduction="none")(labels, scores).numpy()
    softmax = tfcro.SoftmaxLoss(scale=2.0, reduction="none")(labels, scores).numpy()
    np.testing.assert_allclose(np.exp(bsl) + 1.0, np.exp(softmax), rtol=1e-5)


def test_psl_with_a_wide_surrogate_is_softmax_without_the_positive():
    labels, scores = batch("one", seed=7)
    psl = tfcro.PSLLoss("tanh", surrogate_tau=1e4, scale=1.0, reduction="none")
    bsl = tfcro.BSLLoss(1.0, scale=1e-4, reduction="none")  # log sum_j exp((s_j - s_i) / 1e4)
    np.testing.assert_allclose(psl(labels, scores).numpy(), bsl(labels, scores).numpy(), atol=1e-4)


def test_psl_bounds_each_pair_below_softmax():
    # sigma(d) <= d: each pair weighs at most its softmax weight (same temperature)
    labels, scores = batch("one", seed=8)
    for surrogate in ("tanh", "atan", "relu"):
        psl = tfcro.PSLLoss(surrogate, surrogate_tau=2.0, scale=0.5, reduction="none")
        bsl = tfcro.BSLLoss(1.0, scale=0.25, reduction="none")  # gaps / (tau * ... ) = d
        # PSL: log sum exp(0.5 * sigma(d)); the exponential pair term: log sum exp(0.5 * d)
        assert np.all(psl(labels, scores).numpy() <= 2.0 * bsl(labels, scores).numpy() + 1e-5)


def test_slatk_with_a_flat_weight_is_half_the_softmax_term():
    labels, scores = batch("several", seed=9)
    slatk = tfcro.SLatKLoss(top_k=3, weight_tau=1e6, scale=2.0, reduction="none")
    bsl = tfcro.BSLLoss(1.0, scale=2.0, reduction="none")
    one = np.eye(5, 7)
    np.testing.assert_allclose(
        slatk(one, scores).numpy(), 0.5 * bsl(one, scores).numpy(), rtol=1e-5
    )
    assert np.all(np.isfinite(slatk(labels, scores).numpy()))


def test_the_topk_quantile_is_exact_when_every_item_is_a_candidate():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4, 50)).astype(np.float32)
    present = tf.ones_like(scores, tf.bool)
    for k in (1, 5, 20):
        beta = functional.topk_quantile_score(tf.constant(scores), present, k, num_items=50)
        exact = -np.sort(-scores, axis=1)[:, k - 1]
        np.testing.assert_allclose(beta.numpy(), exact)


def test_the_topk_quantile_of_a_sample_is_the_same_quantile():
    rng = np.random.default_rng(1)
    catalog = rng.normal(size=10_000)
    exact = np.sort(catalog)[::-1][99]  # the 100th best of the catalog
    sample = rng.choice(catalog, size=(200, 2_000), replace=True).astype(np.float32)
    present = tf.ones_like(sample, tf.bool)
    beta = functional.topk_quantile_score(tf.constant(sample), present, 100, num_items=10_000)
    # k = ceil(100 * 2000 / 10000) = 20: the 20th best of each sample; unbiased-ish
    assert abs(float(np.median(beta.numpy())) - exact) < 0.05
    # absent candidates are not in the sample
    masked = np.where(np.arange(2_000) < 1_000, sample, -1e31).astype(np.float32)
    beta_half = functional.topk_quantile_score(
        tf.constant(masked), tf.constant(masked > -1e30), 100, num_items=10_000
    )
    np.testing.assert_allclose(beta_half.numpy(), -np.sort(-sample[:, :1000], axis=1)[:, 9])


def test_slatk_weight_keeps_its_gradient_and_beta_has_none():
    scores = tf.Variable([[0.9, 0.1, 0.5, 0.3]])
    labels = tf.constant([[1.0, 0.0, 0.0, 0.0]])
    loss = tfcro.SLatKLoss(top_k=2, weight_tau=0.5, reduction="none")
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(loss(labels, scores))
    grad = tape.gradient(value, scores).numpy()
    want = ref.slatk(labels.numpy(), scores.numpy(), top_k=2, weight_tau=0.5)[1]
    np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "loss",
    [
        tfcro.PSLLoss("tanh", 2.0, scale=10.0),
        tfcro.PSLLoss("relu", 2.0, scale=10.0),
        tfcro.PSLLoss("atan", 2.0, scale=10.0),
        tfcro.SLatKLoss(20, 1.0, scale=10.0, num_items=1000),
        tfcro.BSLLoss(1.5, scale=10.0),
    ],
    ids=lambda loss: f"{loss.name}-{getattr(loss, 'surrogate', '')}",
)
@pytest.mark.parametrize("dtype", loss_grid.PEER_DTYPES, ids=["f32", "f16"])
def test_extreme_scores_stay_finite(loss, dtype):
    scores = np.array([[50.0, -50.0, 40.0, 1e4, -1e4, -1e31], [-1e4, 1e4, 0.0, 0.0, 3.0, 2.0]])
    labels = np.array([[1, 0, 0, 0, 0, 0], [1, 0, 0, 1, 0, 0]], np.float32)
    dtype = tf.as_dtype(dtype)
    y = tf.Variable(tf.cast(tf.constant(np.clip(scores, -6e4, 6e4)), dtype))
    if dtype == tf.float16:
        y = tf.Variable(tf.where(tf.constant(scores) < -1e30, tf.float16.min, y))
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(loss(labels, y))
    grad = tape.gradient(value, y)
    assert np.isfinite(value.numpy()) and np.all(np.isfinite(grad.numpy()))


def test_absent_candidates_are_ignored():
    labels, scores = batch("several", seed=10)
    masked = scores.copy()
    masked[:, 4] = -1e31
    keep = [c for c in range(7) if c != 4]
    for loss in (tfcro.PSLLoss(), tfcro.SLatKLoss(top_k=2), tfcro.BSLLoss(1.3)):
        loss = type(loss).from_config({**loss.get_config(), "reduction": "none"})
        np.testing.assert_allclose(
            loss(labels, masked).numpy(), loss(labels[:, keep], scores[:, keep]).numpy(), rtol=1e-6
        )


# ----------------------------------------------------------------------------- Keras


PEERS = [
    tfcro.PSLLoss("atan", 3.0, scale=5.0, input_scale=2.0),
    tfcro.SLatKLoss(10, 2.0, scale=5.0, num_items=500, input_scale=2.0),
    tfcro.BSLLoss(1.2, scale=5.0, reduction="sum"),
]


@pytest.mark.parametrize("loss", PEERS, ids=lambda loss: loss.name)
def test_peer_config_round_trip_gives_same_values(loss):
    labels, scores = batch("several", seed=11)
    restored = type(loss).from_config(loss.get_config())
    assert restored.get_config() == loss.get_config()
    generic = tf.keras.losses.deserialize(tf.keras.losses.serialize(loss))
    assert type(generic) is type(loss)
    for other in (restored, generic):
        np.testing.assert_allclose(
            other(labels, scores).numpy(), loss(labels, scores).numpy(), rtol=1e-6
        )


def test_peer_losses_weight_samples_like_every_keras_loss():
    labels, scores = batch("one", seed=12)
    weights = np.array([1.0, 0.0, 2.0, 1.0, 0.5])
    for loss in PEERS:
        loss = type(loss).from_config({**loss.get_config(), "reduction": "sum"})
        rows = type(loss).from_config({**loss.get_config(), "reduction": "none"})(labels, scores)
        np.testing.assert_allclose(
            loss(labels, scores, sample_weight=weights).numpy(),
            np.sum(rows.numpy() * weights),
            rtol=1e-5,
        )


@pytest.mark.parametrize(
    "name, options, parameter",
    [
        ("psl", {"surrogate": "exp"}, "surrogate"),
        ("psl", {"surrogate_tau": 0.0}, "surrogate_tau"),
        ("psl", {"input_scale": -1.0}, "input_scale"),
        ("sl-at-k", {"top_k": 0}, "top_k"),
        ("sl-at-k", {"weight_tau": -1.0}, "weight_tau"),
        ("sl-at-k", {"num_items": 0}, "num_items"),
        ("bsl", {"temperature_ratio": 0.0}, "temperature_ratio"),
    ],
)
def test_bad_peer_options_are_clear_errors(name, options, parameter):
    with pytest.raises(ValueError, match=f"`{parameter}` should"):
        losses_lib.get(name, **options)


def test_xla_compiles_the_peer_losses_and_their_gradients():
    labels, scores = batch("several", seed=13)
    for loss in PEERS:
        loss = type(loss).from_config({**loss.get_config(), "reduction": "none"})

        @tf.function(jit_compile=True)
        def step(y, s, loss=loss):
            with tf.GradientTape() as tape:
                tape.watch(s)
                value = tf.reduce_sum(loss(y, s))
            return value, tape.gradient(value, s)

        value, grad = step(tf.constant(labels, tf.float32), tf.constant(scores, tf.float32))
        eager = loss(labels, scores).numpy().sum()
        np.testing.assert_allclose(value.numpy(), eager, rtol=1e-5)
        assert np.all(np.isfinite(grad.numpy()))


def test_the_model_gives_raw_score_losses_its_scale_and_catalog():
    prepared = prepare_loss(tfcro.SLatKLoss(top_k=5), num_items=300, score_scale=12.0)
    assert (prepared.input_scale, prepared.num_items, prepared.reduction) == (12.0, 300, "sum")
    prepared = prepare_loss(tfcro.PSLLoss(input_scale=3.0), num_items=300, score_scale=12.0)
    assert prepared.input_scale == 3.0  # an explicit value stays


@pytest.mark.parametrize("name", ["psl", "sl-at-k", "bsl"])
def test_two_tower_model_learns_with_each_peer_loss(name):
    rng = np.random.default_rng(0)
    items = [f"i{k}" for k in range(40)]
    users = rng.integers(0, 60, 1024)
    targets = (users * 7 + rng.integers(0, 2, 1024)) % 40  # each user likes 2 items
    config = TwoTowerConfig(
        user_tower="id", embedding_dim=8, num_negatives=16, loss=name, loss_options={}, seed=0
    )
    model = TwoTowerModel(items, config, users=[str(u) for u in range(60)])
    columns = model.encode(
        {"user_id": users.astype(str), "item_id": np.asarray(items, object)[targets]}
    )
    data = tf.data.Dataset.from_tensor_slices(columns).shuffle(1024, seed=0).batch(64)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    history = model.fit(data, epochs=6, verbose=0).history["loss"]
    assert np.isfinite(history).all()  # learning is judged by ranks below
    user_vectors = model.embed_users({"user_id": np.arange(60).astype(str)})
    scores = user_vectors @ model.embed_items().T
    liked = (np.arange(60)[:, None] * 7 + np.arange(2)) % 40
    hits = np.mean([len(set(np.argsort(-scores[u])[:5]) & set(liked[u])) / 2 for u in range(60)])
    assert hits > 0.5, hits  # random: 5 / 40


class _TinyRetrieval(tfrs.Model):
    def __init__(self, loss):
        super().__init__()
        self.users = tf.keras.layers.Embedding(64, 8)
        self.items = tf.keras.layers.Embedding(48, 8)
        self.task = tfrs.tasks.Retrieval(loss=loss, temperature=0.2, remove_accidental_hits=True)

    def compute_loss(self, features, training=False):
        query = tf.math.l2_normalize(self.users(features["user"]), -1)
        cand = tf.math.l2_normalize(self.items(features["item"]), -1)
        return self.task(query, cand, candidate_ids=features["item"], compute_metrics=False)


@pytest.mark.parametrize(
    "loss",
    [
        tfcro.PSLLoss(input_scale=5.0, reduction="sum"),
        tfcro.SLatKLoss(top_k=5, input_scale=5.0, num_items=48, reduction="sum"),
        tfcro.BSLLoss(1.2, reduction="sum"),
    ],
    ids=lambda loss: loss.name,
)
def test_a_plain_tfrs_retrieval_task_trains_with_each_peer_loss(loss):
    rng = np.random.default_rng(0)
    users = rng.integers(0, 64, 2048)
    items = (users * 7 + rng.integers(0, 3, 2048)) % 48
    ds = tf.data.Dataset.from_tensor_slices({"user": users, "item": items}).batch(128)
    tf.keras.utils.set_random_seed(0)
    model = _TinyRetrieval(loss)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    history = model.fit(ds, epochs=5, verbose=0).history["loss"]
    # judged by ranks: SL@K's value can rise as positives enter the top K (its weight grows)
    assert np.isfinite(history).all()
    scores = model.users(np.arange(64)) @ tf.transpose(model.items(np.arange(48)))
    liked = (np.arange(64)[:, None] * 7 + np.arange(3)) % 48
    ranks = 1 + np.sum(
        scores.numpy()[:, None, :] > np.take_along_axis(scores.numpy(), liked, 1)[:, :, None],
        axis=2,
    )
    assert ranks.mean() < 6.0, ranks.mean()  # each user's 3 liked items of 48; random: ~24


def test_the_factory_builds_every_peer_loss():
    assert isinstance(losses_lib.get("psl", surrogate="relu"), tfcro.PSLLoss)
    assert losses_lib.get("sl-at-k", top_k=50).top_k == 50
    assert losses_lib.get("bsl", temperature_ratio=1.1).temperature_ratio == 1.1


def test_cli_flags_reach_the_peer_losses():
    from tests.cli import training_config

    config = training_config(["--loss", "sl-at-k", "--top-k", "50", "--weight-tau", "2"])
    assert config.model["loss_options"] == {"top_k": 50, "weight_tau": 2.0}
    config = training_config(["--loss", "psl", "--surrogate", "relu", "--surrogate-tau", "3"])
    assert config.model["loss_options"] == {"surrogate": "relu", "surrogate_tau": 3.0}
    config = training_config(["--loss", "bsl", "--temperature-ratio", "1.2"])
    assert config.model["loss_options"] == {"temperature_ratio": 1.2}
    # a peer flag another loss does not take is left out
    assert "top_k" not in training_config(["--loss", "cro", "--top-k", "5"]).model["loss_options"]


@pytest.mark.parametrize(
    "loss",
    [
        tfcro.PSLLoss("relu", surrogate_tau=0.1),  # every pair outside relu's domain
        tfcro.PSLLoss("tanh"),
        tfcro.SLatKLoss(top_k=2),
        tfcro.BSLLoss(1.2),
    ],
    ids=lambda loss: f"{loss.name}-{getattr(loss, 'surrogate', '')}",
)
def test_positives_without_negatives_add_zero_with_finite_gradients(loss):
    loss = type(loss).from_config({**loss.get_config(), "reduction": "none"})
    labels = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]], np.float32)
    scores = tf.Variable([[0.5, 0.3, -1e31], [0.9, 0.1, -1e31]])
    with tf.GradientTape() as tape:
        values = loss(labels, scores)
        total = tf.reduce_sum(values)
    grad = tape.gradient(total, scores).numpy()
    assert values.numpy()[0] == 0.0 and np.all(np.isfinite(values.numpy()))
    assert np.all(np.isfinite(grad)) and np.all(grad[0] == 0.0)
