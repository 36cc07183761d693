"""Checks of :mod:`tfcro.keras3` on the Keras backend of this process (``KERAS_BACKEND``).

Not collected by the main test run (the backend is fixed per process):
``tests/test_keras3.py`` runs this file in a subprocess per backend, and in the
TensorFlow-free environment; by hand:

    KERAS_BACKEND=jax .venv/bin/python -m pytest tests/keras3_cases.py

Tests marked ``needs_tensorflow`` are skipped where TensorFlow is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import keras
import numpy as np
import pytest
from keras import ops

import tfcro.keras3 as cro
from tests import loss_grid as grid
from tests import reference

BACKEND = keras.backend.backend()
HAS_TF = importlib.util.find_spec("tensorflow") is not None
needs_tensorflow = pytest.mark.skipif(not HAS_TF, reason="TensorFlow is not installed")
needs_keras_rs = pytest.mark.skipif(
    importlib.util.find_spec("keras_rs") is None, reason="keras-rs is not installed"
)

GRID = [
    (kernel, alpha, num_items, layout)
    for kernel in grid.KERNELS
    for alpha in grid.ALPHAS
    for num_items in grid.NUM_ITEMS
    for layout in grid.LAYOUTS
]
PEERS = [(name, params) for name, cases in grid.PEER_GRIDS.items() for params in cases]


def test_import_left_the_legacy_switch_and_tensorflow_alone():
    assert os.environ.get("TF_USE_LEGACY_KERAS") is None
    if BACKEND != "tensorflow":
        assert "tensorflow" not in sys.modules


# The whole grid in float32; Keras 3 losses cast their inputs to their own dtype (float32)
# first, so float16 inputs are checked at a few points (values, and a float16 gradient).
F16_POINTS = [("exponential", 1.4, None, "several"), ("softplus", 0.6, 50, "one")]


@pytest.mark.parametrize("method", ["cro", "lambda"])
@pytest.mark.parametrize("kernel,alpha,num_items,layout", GRID)
def test_cro_losses_match_the_reference(kernel, alpha, num_items, layout, method):
    got, want = grid.compare_at(method, kernel, alpha, num_items, layout, "float32", api=cro)
    grid.check(got, want, "float32")


@pytest.mark.parametrize("method", ["cro", "lambda"])
@pytest.mark.parametrize("kernel,alpha,num_items,layout", F16_POINTS)
def test_float16_inputs_match_the_reference(kernel, alpha, num_items, layout, method):
    got, want = grid.compare_at(method, kernel, alpha, num_items, layout, "float16", api=cro)
    grid.check(got, want, "float16")


@pytest.mark.parametrize("layout", grid.LAYOUTS)
@pytest.mark.parametrize("name,params", PEERS)
def test_peer_losses_match_the_reference(name, params, layout):
    got, want = grid.compare_peer(name, params, layout, "float32", api=cro)
    for value, reference_value in zip(got, want, strict=True):
        np.testing.assert_allclose(value, reference_value, **grid.PEER_TOLERANCE["float32"])


@pytest.mark.parametrize("method", ["softmax", "bpr", "triplet"])
def test_baselines_match_the_reference(method):
    labels, scores = grid.batch("several", seed=5)
    loss = cro.get(method, scale=grid.SCALE, margin=grid.MARGIN)
    loss = type(loss).from_config({**loss.get_config(), "reduction": "none"})
    got, want = grid.compare(
        loss, labels, scores, "float32", method=method, scale=grid.SCALE, margin=grid.MARGIN
    )
    grid.check(got, want, "float32")


def test_absent_candidates_are_ignored():
    labels, scores = grid.batch("several", seed=10)
    masked = scores.copy()
    masked[:, 4] = -1e31
    keep = [c for c in range(7) if c != 4]
    loss = cro.LambdaCROLoss(alpha=1.2, scale=2.0, reduction="none")
    got, grad = grid.losses_and_grads(loss, labels * (np.arange(7) != 4), masked, "float32")
    want, want_grad = reference.row_losses_and_grads(
        (labels * (np.arange(7) != 4))[:, keep],
        scores[:, keep],
        method="lambda",
        alpha=1.2,
        scale=2.0,
    )
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grad[:, keep], want_grad, rtol=1e-3, atol=1e-5)
    assert np.all(grad[:, 4] == 0.0)


def _jitted_value_and_grad(loss, labels, scores):
    if BACKEND == "jax":
        import jax

        fn = jax.jit(jax.value_and_grad(lambda s: ops.sum(loss(labels, s))))
        value, grad = fn(scores)
        return float(value), np.asarray(grad)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def fn(s):
            with tf.GradientTape() as tape:
                tape.watch(s)
                value = tf.reduce_sum(loss(labels, s))
            return value, tape.gradient(value, s)

        value, grad = fn(tf.constant(scores))
        return float(value), grad.numpy()
    pytest.skip(f"no compiled mode checked on the {BACKEND} backend")


@pytest.mark.parametrize(
    "loss",
    [
        cro.CROLoss(alpha=1.2, scale=2.0, reduction="none"),
        cro.LambdaCROLoss("sigmoid", "exponential", alpha=1.4, scale=2.0, reduction="none"),
        cro.SLatKLoss(3, 1.0, scale=2.0, num_items=50, reduction="none"),
        cro.PSLLoss("tanh", 2.0, scale=2.0, reduction="none"),
        cro.BSLLoss(1.5, scale=2.0, reduction="none"),
        cro.SoftmaxLoss(scale=2.0, reduction="none"),
    ],
    ids=lambda loss: loss.name,
)
def test_compiled_equals_eager(loss):
    """``jax.jit`` / ``tf.function(jit_compile=True)`` of the loss and its gradient (multi-hot
    rows: the backend's loop over further positives runs inside the compiled function)."""
    labels, scores = grid.batch("several", seed=6)
    labels, scores = labels.astype("float32"), scores.astype("float32")
    value, grad = _jitted_value_and_grad(loss, labels, scores)
    eager, eager_grad = grid.losses_and_grads(loss, labels, scores, "float32")
    np.testing.assert_allclose(value, eager.sum(), rtol=1e-5)
    np.testing.assert_allclose(grad, eager_grad, rtol=1e-4, atol=1e-6)


def test_extreme_scores_stay_finite():
    scores = np.array([[50.0, -50.0, 40.0, 1e4, -1e4, -1e31], [-1e4, 1e4, 0.0, 0.0, 3.0, 2.0]])
    labels = np.array([[1, 0, 0, 0, 0, 0], [1, 0, 0, 1, 0, 0]], np.float32)
    # bounded kernels: the exponential one is documented to need scale * |gap| < ~60
    for name, kernel, alpha in [(name, "softplus", 0.8) for name in cro.LOSSES] + [
        ("cro", "hinge", 0.0),
        ("cro-lambda", "sigmoid", 1.4),
    ]:
        loss = cro.get(name, scale=10.0, kernel=kernel, alpha=alpha, num_items=1000)
        loss = type(loss).from_config({**loss.get_config(), "reduction": "none"})
        value, grad = grid.losses_and_grads(loss, labels, scores.astype("float32"), "float32")
        assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad)), (name, kernel)


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match=r"`alpha` should be a float >= 0. Received: alpha=-1"):
        cro.CROLoss(alpha=-1)
    with pytest.raises(ValueError, match="`kernel` should be one of"):
        cro.CROLoss(kernel="unit_step")
    with pytest.raises(ValueError, match="`top_k` should be an integer >= 1"):
        cro.SLatKLoss(top_k=0)
    with pytest.raises(ValueError, match="`loss` should be one of"):
        cro.get("nope")
    with pytest.raises(ValueError, match="same \\[batch, candidates\\] shape"):
        cro.CROLoss()(np.zeros((2, 3)), np.zeros((2, 4)))


def _scorer(num_items=50, dim=8):
    """A model whose outputs are a score row per query: user embedding x item embeddings."""
    users = keras.Input(shape=(), dtype="int32")
    user_vectors = keras.layers.Embedding(40, dim)(users)
    scores = keras.layers.Dense(num_items, use_bias=False)(user_vectors)
    return keras.Model(users, scores)


def _interactions(seed=0, num_users=40, num_items=50):
    """Each user likes the items of its cluster (5 clusters): learnable from ids alone."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, num_users, 2000).astype("int32")
    cluster = users % 5
    items = (cluster * 10 + rng.integers(0, 10, users.size)) % num_items
    return users, np.eye(num_items, dtype="float32")[items]


def _recall_at_10(model, num_users=40, num_items=50):
    scores = np.asarray(model.predict(np.arange(num_users, dtype="int32"), verbose=0))
    top = np.argsort(-scores, axis=1)[:, :10]
    relevant = [set(range((u % 5) * 10, (u % 5) * 10 + 10)) for u in range(num_users)]
    return float(np.mean([len(relevant[u] & set(top[u])) / 10 for u in range(num_users)]))


@pytest.mark.parametrize(
    "loss",
    [cro.LambdaCROLoss(alpha=1.2, scale=5.0), cro.CROLoss(scale=5.0)],
    ids=["lambda", "cro"],
)
def test_model_fit_learns_and_saves(loss, tmp_path):
    keras.utils.set_random_seed(0)
    model = _scorer()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss)
    before = _recall_at_10(model)
    users, labels = _interactions()
    history = model.fit(users, labels, batch_size=100, epochs=5, verbose=0)
    if isinstance(loss, cro.CROLoss):  # the lambda loss's value is a surrogate, not a rank
        assert history.history["loss"][-1] < history.history["loss"][0]
    after = _recall_at_10(model)
    assert after > 0.9 > before, (before, after)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored.loss) is type(loss)
    assert restored.loss.get_config() == model.loss.get_config()
    batch = model.predict(users[:64], verbose=0)
    np.testing.assert_allclose(
        np.asarray(restored.loss(labels[:64], batch)), np.asarray(model.loss(labels[:64], batch))
    )
    np.testing.assert_allclose(restored.predict(users[:64], verbose=0), batch, rtol=1e-6)


def test_custom_kernel_round_trips_through_keras_saving():
    @keras.saving.register_keras_serializable(package="tests")
    def cube(x):
        return ops.relu(x + 1.0) ** 3

    loss = cro.CROLoss(kernel=cube, alpha=0.8, reduction="none")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    y, s = grid.batch("several", seed=3)
    np.testing.assert_allclose(np.asarray(restored(y, s)), np.asarray(loss(y, s)), rtol=1e-6)
    with pytest.raises(ValueError, match="does not round-trip"):
        cro.CROLoss(kernel=lambda x: ops.exp(x))


def test_remove_accidental_hits_makes_them_absent():
    logits = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]], "float32")
    labels = np.array([[0, 0, 1, 0], [0, 1, 0, 0]], "float32")
    ids = np.array([[7, 5, 7, 8], [5, 5, 9, 9]], "int32")
    masked = np.asarray(cro.RemoveAccidentalHits()(logits, labels, ids))
    assert masked[0, 0] < -1e30 and masked[1, 0] < -1e30  # per-row positive ids
    np.testing.assert_array_equal(np.delete(masked[0], 0), np.delete(logits[0], 0))
    loss = cro.LambdaCROLoss(reduction="none")
    np.testing.assert_allclose(
        np.asarray(loss(labels[:1], masked[:1])),
        np.asarray(loss(labels[:1, 1:], logits[:1, 1:])),
        rtol=1e-6,
    )


@needs_keras_rs
def test_keras_rs_remove_accidental_hits_leaves_logits_unchanged():
    """keras-rs 0.4.0's layer adds ~1e-40 (keras-team/keras-rs PR #206): when this fails,
    keras-rs masks for real and the docs of tfcro.keras3.RemoveAccidentalHits need a look."""
    import keras_rs

    logits = np.array([[1.0, 2.0, 3.0, 4.0]], "float32")
    labels = np.array([[0, 0, 1, 0]], "float32")
    out = keras_rs.layers.RemoveAccidentalHits()(logits, labels, np.array([7, 5, 7, 8]))
    np.testing.assert_array_equal(np.asarray(out), logits)


def _two_tower(loss, q=None):
    keras.utils.set_random_seed(0)
    model = cro.TwoTowerRetrieval(40, 50, 16, loss=loss, scale=10.0, item_probabilities=q, top_n=10)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    return model


@needs_keras_rs
@pytest.mark.parametrize("logq", [False, True], ids=["plain", "logq"])
def test_keras_rs_two_tower_learns_with_lambda_croloss(logq):
    users, labels = _interactions(seed=1)
    items = labels.argmax(1).astype("int32")
    q = np.bincount(items, minlength=50) / len(items) if logq else None
    model = _two_tower(cro.LambdaCROLoss(alpha=1.2), q)
    model.fit(users, items, batch_size=64, epochs=8, verbose=0)
    model.index()
    top = model.recommend(np.arange(40, dtype="int32"))
    assert top.shape == (40, 10)
    relevant = [set(range((u % 5) * 10, (u % 5) * 10 + 10)) for u in range(40)]
    recall = np.mean([len(relevant[u] & set(top[u].tolist())) / 10 for u in range(40)])
    assert recall > 0.8, recall  # a random ranking gets 0.2
    seen = [top[u][:3] for u in range(40)]
    excluded = model.recommend(np.arange(40, dtype="int32"), exclude=seen)
    assert not any(set(seen[u].tolist()) & set(excluded[u].tolist()) for u in range(40))
    np.testing.assert_array_equal(excluded[:, :7], top[:, 3:])


@needs_keras_rs
def test_two_tower_refuses_bad_arguments():
    with pytest.raises(ValueError, match="`num_items` should be an integer >= 1"):
        cro.TwoTowerRetrieval(10, 0)
    with pytest.raises(ValueError, match="`item_probabilities` should be num_items"):
        cro.TwoTowerRetrieval(10, 5, item_probabilities=[0.5, 0.5])
    with pytest.raises(ValueError, match="`loss` should be a Keras 3 loss"):
        cro.TwoTowerRetrieval(10, 5, loss="softmax")
    with pytest.raises(ValueError, match="call `index\\(\\)` before"):
        cro.TwoTowerRetrieval(10, 5).recommend([0])


@needs_keras_rs
@pytest.mark.skipif(BACKEND != "tensorflow", reason="model.export: TensorFlow backend")
def test_user_tower_exports_for_tf_serving(tmp_path):
    import tensorflow as tf

    users, labels = _interactions(seed=2)
    model = _two_tower(cro.LambdaCROLoss())
    model.fit(users, labels.argmax(1).astype("int32"), batch_size=64, epochs=1, verbose=0)
    path = str(tmp_path / "user_tower")
    model.export(
        path,
        format="tf_saved_model",
        input_signature=[keras.InputSpec(shape=(None,), dtype="int32")],
        verbose=False,
    )
    probe = np.arange(40, dtype="int32")
    loaded = tf.saved_model.load(path)  # kept: its variables die with it
    served = loaded.serve(tf.constant(probe))
    np.testing.assert_allclose(served.numpy(), np.asarray(model(probe)), rtol=1e-6, atol=1e-7)
    assert np.allclose(np.linalg.norm(served.numpy(), axis=1), 1.0, atol=1e-5)


def _softmax_rows(scores):
    shifted = scores - scores.max(axis=1, keepdims=True)
    return -(np.diag(shifted) - np.log(np.exp(shifted).sum(axis=1)))


@needs_keras_rs
def test_two_tower_loss_matches_numpy_with_logq_and_l2():
    """In-batch softmax with logQ and the L2 penalty, against NumPy on the model's weights."""
    keras.utils.set_random_seed(3)
    q = np.random.default_rng(0).dirichlet(np.ones(50)).astype("float32")
    model = cro.TwoTowerRetrieval(
        40, 50, 8, loss=cro.SoftmaxLoss(), scale=5.0, item_probabilities=q, embedding_l2=0.01
    )
    users = np.array([0, 1, 2, 3, 4, 5], "int32")
    items = np.array([7, 3, 3, 9, 0, 11], "int32")  # 3 twice: an accidental hit
    got = float(model.compute_loss(users, items, model(users)))
    u_raw = np.asarray(model.user_embedding.embeddings)[users]
    v_raw = np.asarray(model.item_embedding.embeddings)[items]
    u = u_raw / np.linalg.norm(u_raw, axis=1, keepdims=True)
    v = v_raw / np.linalg.norm(v_raw, axis=1, keepdims=True)
    scores = 5.0 * u @ v.T - np.log(q[items])[None, :]
    hits = (items[:, None] == items[None, :]) & ~np.eye(6, dtype=bool)
    scores[hits] = -np.inf
    penalty = 0.01 * ((u_raw**2).sum() + (v_raw**2).sum()) / 6
    np.testing.assert_allclose(got, _softmax_rows(scores).mean() + penalty, rtol=1e-5)


@needs_keras_rs
@pytest.mark.parametrize("shared, own", [(20, 0), (0, 20)])
def test_two_tower_uniform_negatives_without_in_batch_learn(shared, own):
    """Shared or per-row uniform negatives alone, compiled by ``fit`` (a last batch of
    another size included)."""
    users, labels = _interactions(seed=4)
    items = labels.argmax(1).astype("int32")
    keras.utils.set_random_seed(0)
    model = cro.TwoTowerRetrieval(
        40,
        50,
        16,
        loss=cro.LambdaCROLoss(),
        scale=10.0,
        num_negatives=shared,
        num_row_negatives=own,
        in_batch_negatives=False,
        embedding_l2=1e-4,
        seed=1,
        top_n=10,
    )
    batch = (users[:8], items[:8])
    first = float(model.compute_loss(*batch, model(batch[0])))
    second = float(model.compute_loss(*batch, model(batch[0])))
    assert np.isfinite(first) and first != second  # fresh negatives each call
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model.fit(users, items, batch_size=64, epochs=8, verbose=0)
    model.index()
    top = model.recommend(np.arange(40, dtype="int32"))
    relevant = [set(range((u % 5) * 10, (u % 5) * 10 + 10)) for u in range(40)]
    assert np.mean([len(relevant[u] & set(top[u].tolist())) / 10 for u in range(40)]) > 0.8


@needs_keras_rs
def test_two_tower_negative_options_are_checked():
    with pytest.raises(ValueError, match="`in_batch_negatives=False` needs sampled negatives"):
        cro.TwoTowerRetrieval(10, 5, in_batch_negatives=False)
    with pytest.raises(ValueError, match="`in_batch_negatives` should be True or False"):
        cro.TwoTowerRetrieval(10, 5, in_batch_negatives="yes")
    with pytest.raises(ValueError, match="`num_negatives` should be an integer >= 0"):
        cro.TwoTowerRetrieval(10, 5, num_negatives=-1)
    with pytest.raises(ValueError, match="`num_row_negatives` should be an integer >= 0"):
        cro.TwoTowerRetrieval(10, 5, num_row_negatives=-2)
    model = cro.TwoTowerRetrieval(10, 5, in_batch_negatives=False, num_row_negatives=1)
    assert model.num_row_negatives == 1
    with pytest.raises(ValueError, match="`embedding_l2` should be"):
        cro.TwoTowerRetrieval(10, 5, embedding_l2=-0.1)


@needs_keras_rs
def test_two_tower_user_dropout_and_initializer():
    keras.utils.set_random_seed(0)
    plain = cro.TwoTowerRetrieval(40, 50, 16, seed=3)
    plain.build()
    keras.utils.set_random_seed(0)
    model = cro.TwoTowerRetrieval(40, 50, 16, user_dropout=0.5, seed=3)
    model.build()
    for got, want in zip(model.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)  # the option draws nothing at build
    users = np.arange(8, dtype="int32")
    served = np.asarray(model(users))
    np.testing.assert_allclose(served, np.asarray(plain(users)), rtol=1e-6)  # inference
    trained = np.asarray(model(users, training=True))
    assert not np.allclose(trained, served)
    np.testing.assert_allclose(np.linalg.norm(trained, axis=1), 1.0, rtol=1e-5)
    raw = np.asarray(model.user_embedding(users))
    dropped = np.isclose(trained, 0.0) & ~np.isclose(raw, 0.0)
    assert 0.3 < dropped.mean() < 0.7  # rate 0.5 of the raw coordinates
    xavier = cro.TwoTowerRetrieval(40, 50, 16, embeddings_initializer="glorot_uniform")
    xavier.build()
    limit = np.sqrt(6 / (50 + 16))  # Glorot-uniform bound of the [50, 16] item table
    users, items = xavier.get_weights()
    assert np.abs(items).max() <= limit and np.abs(items).max() > 0.9 * limit
    shared = cro.TwoTowerRetrieval(
        40, 50, 16, embeddings_initializer=keras.initializers.RandomUniform()
    )
    shared.build()
    for model_users, model_items in (plain.get_weights(), (users, items), shared.get_weights()):
        # a seed per table: the tables do not start as copies of each other
        assert not np.allclose(model_users[:40].ravel()[:100], model_items.ravel()[:100])
    for bad, message in (
        ({"user_dropout": 1.0}, "`user_dropout` should be a number in \\[0, 1\\)"),
        ({"user_dropout": -0.1}, "`user_dropout`"),
        ({"embeddings_initializer": "nope"}, "`embeddings_initializer` should be a Keras"),
    ):
        with pytest.raises(ValueError, match=message):
            cro.TwoTowerRetrieval(10, 5, **bad)


@needs_keras_rs
def test_recommend_masks_exclusions_on_the_device():
    model = _two_tower(cro.LambdaCROLoss())
    model.index()
    users = np.arange(6, dtype="int32")
    full = model.recommend(users, top_n=50)  # the whole catalog, best first
    exclude = [full[0, :3], [], full[2, :49], full[3, [0, 5]], np.arange(50), [1]]
    got = model.recommend(users, exclude=exclude, top_n=5, batch_size=4)
    for row, seen in enumerate(exclude):
        kept = [i for i in full[row] if i not in set(np.asarray(seen).tolist())][:5]
        np.testing.assert_array_equal(got[row, : len(kept)], kept)
        assert np.all(got[row, len(kept) :] == -1)  # ran out of items
    with pytest.raises(ValueError, match="`exclude` should hold item ids in \\[0, 50\\)"):
        model.recommend(users[:1], exclude=[[50]])
    with pytest.raises(ValueError, match="one list of item ids per user"):
        model.recommend(users, exclude=[[1]])


@needs_keras_rs
def test_ranking_evaluation_stops_early_and_restores_the_best_weights():
    from tfcro.evaluation.metrics import ranking_metrics

    users, labels = _interactions(seed=5)
    items = labels.argmax(1).astype("int32")
    relevant = [np.arange((u % 5) * 10, (u % 5) * 10 + 10, dtype="int32") for u in range(40)]

    class Queries:  # the fields of tfcro.data.IndexedQueries (no pandas here)
        users = np.arange(40, dtype="int32")
        targets = relevant
        seen = [np.zeros(0, "int32")] * 40

    model = _two_tower(cro.LambdaCROLoss())
    callback = cro.RankingEvaluation(Queries, ks=(10,), monitor="recall@10", patience=1)
    history = model.fit(users, items, batch_size=64, epochs=30, verbose=0, callbacks=[callback])
    assert callback.stopped_epoch is not None and callback.stopped_epoch < 29
    assert "val_recall@10" in history.history
    assert callback.best == max(h["recall@10"] for h in callback.history)
    again = cro.evaluate(model, Queries, ks=(10,))
    assert again["recall@10"] == pytest.approx(callback.best)  # the best weights are back
    model.index()
    top = model.recommend(Queries.users, top_n=10)
    assert ranking_metrics(top, relevant, ks=(10,))["recall@10"] == pytest.approx(callback.best)


class _Queries:  # the fields of tfcro.data.IndexedQueries (no pandas here)
    users = np.arange(40, dtype="int32")
    targets = [np.arange((u % 5) * 10, (u % 5) * 10 + 10, dtype="int32") for u in range(40)]
    seen = [np.zeros(0, "int32")] * 40


class _KillAt(keras.callbacks.Callback):
    """Raises at the start of ``epoch`` (a killed process) after recording the weights
    and optimizer variables of every epoch's end."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.weights, self.optimizer = epoch, {}, {}

    def on_epoch_end(self, epoch, logs=None):
        self.weights[epoch + 1] = self.model.get_weights()
        self.optimizer[epoch + 1] = [np.array(v) for v in self.model.optimizer.variables]

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("killed")


@needs_keras_rs
@pytest.mark.skipif(BACKEND != "jax", reason="one backend is enough: a subprocess each")
def test_first_model_of_a_process_starts_from_the_seeded_weights():
    """keras_rs's first import draws from Python's random: a model built after seeding
    starts from the same weights whether or not keras_rs was imported before."""
    import subprocess

    script = (
        "import sys, keras, numpy as np\n"
        "if sys.argv[1] == 'first': import keras_rs\n"
        "import tfcro.keras3 as cro\n"
        "keras.utils.set_random_seed(0)\n"
        "model = cro.TwoTowerRetrieval(40, 50, 8); model.build()\n"
        "print(float(np.asarray(model.user_embedding.embeddings).sum()).hex())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    sums = [
        subprocess.run(
            [sys.executable, "-c", script, order],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[-1]
        for order in ("first", "later")
    ]
    assert sums[0] == sums[1]


@pytest.mark.skipif(BACKEND != "jax", reason="lazy Adam row updates: the JAX backend")
@pytest.mark.parametrize("shape", [(2, 4), (4, 5)], ids=["fewer-ids-than-rows", "more"])
def test_lazy_adam_rows_match_a_numpy_loop(shape):
    from tfcro.keras3.sparse import lazy_adam_rows

    rng = np.random.default_rng(0)
    rows, dim, lr, b1, b2, eps = 12, 3, 0.1, 0.9, 0.999, 1e-7
    table = rng.normal(size=(rows, dim)).astype("float32")
    m, v = np.zeros_like(table), np.zeros_like(table)
    want_table, want_m, want_v = table.astype("float64"), m.astype("float64"), v.astype("float64")
    for step in range(1, 6):
        ids = rng.integers(0, 6 if step % 2 else rows, size=shape)  # duplicates, gaps
        grads = rng.normal(size=(*shape, dim)).astype("float32")
        alpha = lr * np.sqrt(1 - b2**step) / (1 - b1**step)
        table, m, v = lazy_adam_rows(table, m, v, ids, grads, alpha, b1, b2, eps)
        summed = {}
        for row, grad in zip(ids.ravel(), grads.reshape(-1, dim), strict=True):
            summed[row] = summed.get(row, 0.0) + grad.astype("float64")
        for row, grad in summed.items():  # the rows the step touched; the others stay
            want_m[row] = b1 * want_m[row] + (1 - b1) * grad
            want_v[row] = b2 * want_v[row] + (1 - b2) * grad**2
            want_table[row] -= alpha * want_m[row] / (np.sqrt(want_v[row]) + eps)
        untouched = sorted(set(range(rows)) - set(summed))
        assert untouched  # the case has rows a step skips
        np.testing.assert_allclose(np.asarray(m), want_m, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(np.asarray(v), want_v, rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(np.asarray(table), want_table, rtol=1e-5, atol=1e-6)


def _sparse_pair(sparse, num_users=40, num_items=50, **options):
    keras.utils.set_random_seed(0)
    model = cro.TwoTowerRetrieval(
        num_users,
        num_items,
        16,
        loss=cro.SoftmaxLoss(),
        scale=6.3,
        seed=0,
        sparse_updates=sparse,
        **options,
    )
    model.compile(optimizer=keras.optimizers.Adam(0.02), steps_per_execution=2)
    return model


@needs_keras_rs
@pytest.mark.skipif(BACKEND != "jax", reason="lazy Adam row updates: the JAX backend")
@pytest.mark.parametrize(
    "tables",
    [(40, 50), (400, 800)],  # a batch's ids: more than each table's rows / fewer
    ids=["masked-pass", "distinct-rows"],
)
def test_sparse_updates_take_adams_steps_on_the_rows_a_batch_uses(tables):
    users, labels = _interactions(seed=6)
    items = labels.argmax(1).astype("int32")
    options = dict(  # every part of the step: each draw, logQ, masks, L2, dropout
        num_users=tables[0],
        num_items=tables[1],
        num_negatives=8,
        num_row_negatives=4,
        in_batch_negatives=False,
        embedding_l2=1e-3,
        user_dropout=0.2,
        item_probabilities=np.bincount(items, minlength=tables[1]) / len(items),
    )
    # one step from zero moments: lazy Adam is Adam (a skipped row has m = v = 0)
    dense, sparse = _sparse_pair(False, **options), _sparse_pair(True, **options)
    for model in (dense, sparse):
        model.fit(users[:64], items[:64], batch_size=64, epochs=1, verbose=0, shuffle=False)
    for got, want in zip(
        sparse.optimizer.variables + sparse.weights,
        dense.optimizer.variables + dense.weights,
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-7)

    # every row in every batch: the lazy steps are Adam's for all of training
    full_users, full_items = np.arange(40, dtype="int32"), np.arange(40, dtype="int32") % 50
    dense, sparse = _sparse_pair(False, num_items=40), _sparse_pair(True, num_items=40)
    for model in (dense, sparse):
        model.fit(full_users, full_items, batch_size=40, epochs=6, verbose=0, shuffle=False)
    assert int(sparse.optimizer.iterations) == 6
    for got, want in zip(sparse.weights, dense.weights, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-6)

    # rows a batch skips keep their values and moments; Adam moves them on
    def touched_then_skipped(sparse):
        model = _sparse_pair(sparse, *tables)
        model.fit(users, items, batch_size=64, epochs=1, verbose=0)  # every user
        before = np.asarray(model.user_embedding.embeddings)[20:40].copy()
        assert "users_embeddings_momentum" in model.optimizer.variables[2].path
        moments = [np.asarray(v)[20:40].copy() for v in model.optimizer.variables[2:4]]
        assert moments[0].any()
        model.fit(users[users < 20], items[users < 20], batch_size=64, epochs=1, verbose=0)
        after = np.asarray(model.user_embedding.embeddings)[20:40]
        moments_after = [np.asarray(v)[20:40] for v in model.optimizer.variables[2:4]]
        return before, after, moments, moments_after

    before, after, moments, moments_after = touched_then_skipped(True)
    np.testing.assert_array_equal(after, before)
    for got, want in zip(moments_after, moments, strict=True):
        np.testing.assert_array_equal(got, want)
    before, after, moments, moments_after = touched_then_skipped(False)
    assert not np.allclose(after, before)  # dense Adam: the momentum keeps moving them
    assert not np.allclose(moments_after[0], moments[0])

    # many steps with every draw: the same negatives and dropout masks as the dense
    # path (the seed generators' states advance alike) and the same step count
    dense, sparse = _sparse_pair(False, **options), _sparse_pair(True, **options)
    for model in (dense, sparse):
        model.fit(users[:640], items[:640], batch_size=64, epochs=2, verbose=0, shuffle=False)
    assert int(sparse.optimizer.iterations) == int(dense.optimizer.iterations) == 20
    states = [
        (np.asarray(v), np.asarray(w))
        for v, w in zip(sparse.non_trainable_variables, dense.non_trainable_variables, strict=True)
    ]
    assert len(states) == 2  # the negative sampler's and the dropout's seeds
    for got, want in states:
        np.testing.assert_array_equal(got, want)

    # and it learns what the dense model learns (test_keras_rs_two_tower_learns_...)
    keras.utils.set_random_seed(0)
    model = cro.TwoTowerRetrieval(
        40, 50, 16, loss=cro.LambdaCROLoss(alpha=1.2), scale=10.0, top_n=10, sparse_updates=True
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model.fit(users, items, batch_size=64, epochs=8, verbose=0)
    model.index()
    top = model.recommend(np.arange(40, dtype="int32"))
    relevant = [set(range((u % 5) * 10, (u % 5) * 10 + 10)) for u in range(40)]
    recall = np.mean([len(relevant[u] & set(top[u].tolist())) / 10 for u in range(40)])
    assert recall > 0.8, recall  # a random ranking gets 0.2


@needs_keras_rs
def test_sparse_updates_bad_arguments():
    if BACKEND != "jax":
        with pytest.raises(ValueError, match="`sparse_updates=True` needs the JAX backend"):
            cro.TwoTowerRetrieval(10, 5, sparse_updates=True)
        return
    with pytest.raises(ValueError, match="`sparse_updates` should be"):
        cro.TwoTowerRetrieval(10, 5, sparse_updates="yes")
    model = cro.TwoTowerRetrieval(10, 5, sparse_updates=True)
    for optimizer, message in (
        (keras.optimizers.SGD(0.1), "needs `optimizer=keras.optimizers.Adam"),
        (keras.optimizers.AdamW(0.1), "needs `optimizer=keras.optimizers.Adam"),
        (keras.optimizers.Adam(0.1, amsgrad=True), "without `amsgrad`. Received: amsgrad=True"),
        (keras.optimizers.Adam(0.1, clipnorm=1.0), "without `clipnorm`"),
    ):
        with pytest.raises(ValueError, match=message):
            model.compile(optimizer=optimizer)
    users, items = np.arange(8, dtype="int32"), np.arange(8, dtype="int32") % 5
    model.compile(optimizer="adam")  # a name is resolved first
    model.user_embedding.trainable = False
    with pytest.raises(ValueError, match="trains both embedding tables. Received a frozen"):
        model.fit(users, items, batch_size=4, epochs=1, verbose=0)


def _selection(tmp_path, **kwargs):
    options = dict(ks=(10, 20), monitor="recall@10", also_monitor=("recall@20",), frequency=2)
    return cro.RankingEvaluation(_Queries, backup_dir=tmp_path / "backup", **{**options, **kwargs})


@needs_keras_rs
def test_ranking_evaluation_backup_resumes_a_killed_fit(tmp_path):
    from tfcro.keras3 import backup

    users, labels = _interactions(seed=5)
    items = labels.argmax(1).astype("int32")
    model = _two_tower(cro.LambdaCROLoss())
    first, kill = _selection(tmp_path), _KillAt(5)
    with pytest.raises(KeyboardInterrupt):
        model.fit(users, items, batch_size=64, epochs=8, verbose=0, callbacks=[first, kill])
    assert first.evaluated_epochs == [1, 3]
    epochs_done, _, state, kept = backup.read_latest(str(tmp_path / "backup"))
    assert epochs_done == 4 and state["evaluated_epochs"] == [1, 3]
    assert sorted(os.listdir(tmp_path / "backup")) == ["epoch-00004"]  # epoch 2's is gone
    assert set(kept) == {"recall@10", "recall@20"}

    # a new process: a fresh model (initial weights), the same folder; fit with
    # epochs=4 trains nothing and shows what was loaded
    resumed = _two_tower(cro.LambdaCROLoss())
    again = _selection(tmp_path, restore_best_weights=False, delete_backup=False)
    resumed.fit(users, items, batch_size=64, epochs=4, verbose=0, callbacks=[again])
    assert again.resumed_epoch == 4 and again.history == first.history
    assert again.best_of == first.best_of and again.best_epoch == first.best_epoch
    for got, want in zip(resumed.get_weights(), kill.weights[4], strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(resumed.optimizer.variables, kill.optimizer[4], strict=True):
        np.testing.assert_array_equal(np.array(got), want)  # Adam's moments and step
    kept, wanted = again.best_weights_of("recall@20"), first.best_weights_of("recall@20")
    for got, want in zip(kept, wanted, strict=True):
        np.testing.assert_array_equal(got, want)

    # resumed to the end: epochs 5-8 only, the selection continues the first run's
    steps = int(np.ceil(len(users) / 64))
    final = _selection(tmp_path)
    history = resumed.fit(users, items, batch_size=64, epochs=8, verbose=0, callbacks=[final])
    assert len(history.history["loss"]) == 4 and final.resumed_epoch == 4
    assert int(resumed.optimizer.iterations) == 8 * steps
    assert final.evaluated_epochs == [1, 3, 5, 7] and final.history[:2] == first.history
    assert final.best == max(row["recall@10"] for row in final.history)
    assert cro.evaluate(resumed, _Queries, ks=(10,))["recall@10"] == pytest.approx(final.best)
    assert not os.path.exists(tmp_path / "backup")  # deleted at the end (delete_backup)
    assert resumed._initial_epoch is None  # a later fit is not shifted


@needs_keras_rs
def test_ranking_evaluation_backup_of_a_stopped_run_trains_no_further(tmp_path):
    users, labels = _interactions(seed=5)
    items = labels.argmax(1).astype("int32")
    model = _two_tower(cro.LambdaCROLoss())
    first = _selection(tmp_path, patience=1, delete_backup=False, frequency=1)
    model.fit(users, items, batch_size=64, epochs=40, verbose=0, callbacks=[first])
    assert first.stopped_epoch is not None and first.stopped_epoch < 39
    chosen = model.get_weights()  # the best weights, put back
    resumed = _two_tower(cro.LambdaCROLoss())
    again = _selection(tmp_path, patience=1, frequency=1)
    history = resumed.fit(users, items, batch_size=64, epochs=40, verbose=0, callbacks=[again])
    assert history.history == {} and again.resumed_epoch == first.stopped_epoch + 1
    assert again.stopped_epoch == first.stopped_epoch
    for got, want in zip(resumed.get_weights(), chosen, strict=True):
        np.testing.assert_array_equal(got, want)


def test_ranking_evaluation_backup_bad_arguments(tmp_path):
    for bad in (3, ""):
        with pytest.raises(ValueError, match="`backup_dir` should be a folder path or None"):
            cro.RankingEvaluation(_Queries, backup_dir=bad)
    with pytest.raises(ValueError, match="`delete_backup`"):
        cro.RankingEvaluation(_Queries, backup_dir=str(tmp_path), delete_backup="no")


def test_a_damaged_backup_is_a_clear_error(tmp_path):
    from tfcro.keras3 import backup

    (tmp_path / "epoch-00002").mkdir()
    (tmp_path / "epoch-00002" / "selection.json").write_text("{")
    (tmp_path / "epoch-00003.tmp-77").mkdir()  # a killed write: never read
    with pytest.raises(ValueError, match="backup .*epoch-00002.* is damaged.*delete"):
        backup.read_latest(str(tmp_path))
    assert backup.read_latest(str(tmp_path / "missing")) is None
    (tmp_path / "epoch-00002" / "selection.json").write_text('{"kept": {"m": 1}}')
    (tmp_path / "epoch-00002" / "selection.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="is damaged"):
        backup.read_latest(str(tmp_path))
    # only its own folders are ever deleted
    (tmp_path / "notes.txt").write_text("keep me")
    backup.remove(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@needs_keras_rs
@pytest.mark.skipif(BACKEND != "jax", reason="the benchmark's own logic: one backend is enough")
def test_bench_negatives_times_every_layout(capsys):
    from benchmarks import bench_negatives

    bench_negatives.main(["--steps", "2", "--rounds", "1", "--batch-size", "16"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| " + n for n in bench_negatives.LAYOUTS]
    assert rows[1].endswith("| 1.00x |")  # the first layout is the reference
    assert "| no | 0 | 800 | 816 | dense |" in rows[2]
    argv = ["--steps", "2", "--rounds", "1", "--batch-size", "16", "--layouts", "shared512"]
    bench_negatives.main([*argv, "--updates", "dense,sparse"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[5] for row in rows[1:]] == ["dense", "sparse"]
    with pytest.raises(SystemExit, match="unknown"):
        bench_negatives.main(["--layouts", "round1,bsl8"])
    with pytest.raises(SystemExit, match="--updates: got \\['lazy'\\]"):
        bench_negatives.main([*argv, "--updates", "lazy"])


@pytest.mark.skipif(BACKEND != "jax", reason="the benchmark's own logic: one backend is enough")
def test_keras3_leaderboard_runs_resumes_and_reports(tmp_path):
    pytest.importorskip("pandas")
    from benchmarks import keras3_leaderboard as lb

    argv = ["--dataset", "synthetic", "--out", str(tmp_path), "--losses", "softmax,cro-lambda"]
    argv += ["--trials", "1", "--seeds", "0,1", "--top", "1", "--epochs", "2", "--frequency", "1"]
    argv += ["--batch-size", "512", "--eval-batch-size", "64"]
    base = {**lb.BASE, "num_negatives": 64}
    argv += ["--base", json.dumps(base)]
    assert lb.main(argv) == 0
    runs = lb.read_runs(str(tmp_path))
    tuned = runs[runs.phase == "tune"]
    assert len(tuned) == 2 and set(tuned.trial) == {0}
    assert [json.loads(p) for p in tuned.params] == [base, base]  # trial 0 is --base
    # seed 1 of the best loss and of softmax (seed 0 is the tuning run)
    best = tuned.loc[tuned["val_recall@20"].idxmax()].loss
    assert set(runs[runs.phase == "seed"].loss) == {best, "softmax"}
    assert set(runs[runs.phase == "seed"].seed) == {1}
    count = len(runs)
    assert lb.main(argv) == 0 and len(lb.read_runs(str(tmp_path))) == count  # resumed
    report = (tmp_path / lb.REPORT_FILE).read_text()
    assert "1 complete trial(s) per loss, selected on" in report  # trial 0 only: no space
    assert "| softmax | 2 |" in report
    assert (tmp_path / lb.PLOT_FILE).stat().st_size > 0
    # --refit: every seed run (0 and 1 of each chosen loss) again on the whole training
    # file, for the epochs it selected
    assert lb.main([*argv, "--refit"]) == 0
    runs = lb.read_runs(str(tmp_path))
    refits = runs[runs.phase == "refit"].set_index(["loss", "seed"])
    chosen = {best, "softmax"}
    assert sorted(refits.index) == sorted((loss, s) for loss in chosen for s in (0, 1))
    sources = runs[(runs.phase == "seed") | ((runs.phase == "tune") & runs.loss.isin(chosen))]
    for row in sources.itertuples():
        assert refits.loc[(row.loss, row.seed)].best_epoch == row.best_epoch
    assert refits["val_recall@20"].isna().all() and refits["test_recall@20"].notna().all()
    assert "Refits:" in (tmp_path / lb.REPORT_FILE).read_text()
    # --alphas: CROLoss-lambda's best trial with each alpha, each seed; nothing else reruns
    count = len(runs)
    assert lb.main([*argv, "--refit", "--alphas", "0.8,1.2", "--ks", "5,20"]) == 0
    runs = lb.read_runs(str(tmp_path))
    sweep = runs[runs.phase == "alpha"]
    # and softmax's best trial under the same per-N protocol, each seed (the pair)
    reference = runs[runs.phase == "alpha-reference"]
    assert set(reference.loss) == {"softmax"} and sorted(reference.seed) == [0, 1]
    assert reference["sel_test_recall@5"].notna().all()
    assert len(runs) == count + 6 and set(sweep.loss) == {"cro-lambda"}
    pairs = sorted(zip(sweep.alpha, sweep.seed, strict=True))
    assert pairs == [(0.8, 0), (0.8, 1), (1.2, 0), (1.2, 1)]
    assert [json.loads(p)["alpha"] for p in sweep.params] == list(sweep.alpha)
    assert sweep["test_recall@5"].notna().all()
    # each N's own model: selected on validation Recall@N, within the epochs run
    for k in (5, 20):
        assert sweep[f"sel_test_recall@{k}"].notna().all()
        assert (sweep[f"sel_val_recall@{k}"] >= sweep[f"val_recall@{k}"] - 1e-9).all()
        assert (
            (1 <= sweep[f"sel_epoch@{k}"]) & (sweep[f"sel_epoch@{k}"] <= sweep.epochs_run)
        ).all()
    report = (tmp_path / lb.REPORT_FILE).read_text()
    assert "Alpha sweep, cro-lambda" in report and "| 5 |" in report
    assert "softmax test Recall@N" in report
    assert (tmp_path / lb.ALPHA_PLOT_FILE).stat().st_size > 0


@pytest.mark.skipif(BACKEND != "jax", reason="the benchmark's own logic: one backend is enough")
def test_keras3_leaderboard_resumes_a_run_killed_before_its_row(tmp_path, monkeypatch):
    """Killed after training, before the row is written: the rerun trains no epoch again
    (the selection run's backup, the refit's BackupAndRestore) and writes the same row."""
    pytest.importorskip("pandas")
    from benchmarks import keras3_leaderboard as lb

    argv = ["--dataset", "synthetic", "--out", str(tmp_path), "--losses", "softmax"]
    argv += ["--trials", "1", "--seeds", "0", "--top", "1", "--epochs", "2", "--frequency", "1"]
    argv += ["--batch-size", "512", "--eval-batch-size", "64", "--refit"]
    argv += ["--base", json.dumps({**lb.BASE, "num_negatives": 64})]
    killed, recorded, append_run = {}, {}, lb.append_run

    def append_or_die(out, row):
        if row["phase"] not in killed:
            (folder,) = os.listdir(tmp_path / lb.BACKUP_DIR)
            with open(tmp_path / lb.BACKUP_DIR / folder / lb.SECONDS_FILE) as handle:
                recorded[row["phase"]] = json.load(handle)  # epochs done -> seconds
            killed[row["phase"]] = row
            raise KeyboardInterrupt("killed")
        append_run(out, row)

    monkeypatch.setattr(lb, "append_run", append_or_die)
    for phase in ("tune", "refit"):
        with pytest.raises(KeyboardInterrupt):
            lb.main(argv)
        (left,) = os.listdir(tmp_path / lb.BACKUP_DIR)  # the killed run's backup
        assert left.startswith(f"{phase}-softmax-t0-s0-")
    assert lb.main(argv) == 0
    runs = lb.read_runs(str(tmp_path))
    assert list(runs.phase) == ["tune", "refit"]
    assert list(runs.resumed_epoch) == [2, runs.best_epoch[0]]  # nothing left to train
    for _, row in runs.iterrows():  # the same model tested: the same metrics
        first = killed[row.phase]
        assert "resumed_epoch" not in first
        for metric in ("test_recall@20", "test_ndcg@20", "test_recall@100"):
            assert row[metric] == pytest.approx(first[metric], rel=1e-6), metric
        # train_s adds the killed process's seconds (every epoch of it, compilation
        # included) to the rerun's, which trained nothing
        seconds = recorded[row.phase]
        assert sorted(map(int, seconds)) == list(range(1, int(row.resumed_epoch) + 1))
        done = seconds[str(int(row.resumed_epoch))]
        assert 0.5 * first["train_s"] < done <= first["train_s"] + 0.05  # (rounded to 0.1)
        assert done - 0.05 <= row.train_s < done + first["train_s"]
    assert os.listdir(tmp_path / lb.BACKUP_DIR) == []  # removed once the rows were written


@pytest.mark.skipif(BACKEND != "jax", reason="the benchmark's own logic: one backend is enough")
def test_keras3_leaderboard_clock_counts_each_epoch_of_a_resumed_run_once(tmp_path):
    """A run killed after epoch 3 whose backup holds 2 epochs: the resumed process starts
    from the seconds recorded for epoch 2 and replaces the record of the epoch 3 it trains
    again."""
    import time

    from benchmarks import keras3_leaderboard as lb

    path = str(tmp_path / "run" / lb.SECONDS_FILE)
    x, y = np.zeros((8, 2), "float32"), np.zeros((8, 1), "float32")

    class Die(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt("killed")

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    first = lb._training_clock(keras, path, time.perf_counter() - 100.0)  # 100 s ago
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=5, verbose=0, callbacks=[first, Die()])
    with open(path) as handle:
        killed = json.load(handle)
    assert sorted(killed, key=int) == ["1", "2", "3"] and killed["2"] >= 100.0
    again = lb._training_clock(keras, path, time.perf_counter())
    model.fit(x, y, epochs=5, initial_epoch=2, verbose=0, callbacks=[again])  # the backup's
    with open(path) as handle:
        resumed = json.load(handle)
    assert again.before == killed["2"] and sorted(resumed, key=int) == ["1", "2", "3", "4", "5"]
    assert resumed["2"] == killed["2"] and killed["2"] <= resumed["3"] < killed["2"] + 50.0


@needs_keras_rs
def test_two_tower_loss_with_uniform_negatives_matches_numpy():
    """In-batch + uniform negatives: the mixture logQ, accidental hits among the sampled
    items and the L2 over every candidate, against NumPy (the same seeded draws)."""
    keras.utils.set_random_seed(4)
    f = np.random.default_rng(1).dirichlet(np.ones(12)).astype("float32")
    model = cro.TwoTowerRetrieval(
        10,
        12,
        8,
        loss=cro.SoftmaxLoss(),
        scale=4.0,
        item_probabilities=f,
        num_negatives=16,  # 16 draws of 12 items: some repeat a row's positive
        embedding_l2=0.02,
        seed=7,
    )
    users = np.array([0, 1, 2, 3], "int32")
    items = np.array([5, 6, 5, 1], "int32")
    got = float(model.compute_loss(users, items, model(users)))
    negatives = np.asarray(
        keras.random.randint((16,), 0, 12, dtype="int32", seed=keras.random.SeedGenerator(7))
    )
    candidates = np.concatenate([items, negatives])
    u_raw = np.asarray(model.user_embedding.embeddings)[users]
    v_raw = np.asarray(model.item_embedding.embeddings)[candidates]
    u = u_raw / np.linalg.norm(u_raw, axis=1, keepdims=True)
    v = v_raw / np.linalg.norm(v_raw, axis=1, keepdims=True)
    q = (4 * f[candidates] + 16 / 12) / (4 + 16)
    scores = 4.0 * u @ v.T - np.log(q)[None, :]
    hits = (items[:, None] == candidates[None, :]) & ~np.eye(4, 20, dtype=bool)
    assert hits[:, 4:].any()  # the case is exercised
    scores[hits] = -np.inf
    penalty = 0.02 * ((u_raw**2).sum() + (v_raw**2).sum()) / 4
    np.testing.assert_allclose(got, _softmax_rows(scores).mean() + penalty, rtol=1e-5)


@needs_keras_rs
@pytest.mark.parametrize("in_batch", [True, False])
def test_two_tower_loss_with_row_negatives_matches_numpy(in_batch):
    """Shared and per-row uniform negatives: each row's own draws, the mixture logQ with
    ``K + R`` uniform draws, accidental hits among a row's own items and the L2 over
    every embedding row, against NumPy (the same seeded draws, in the model's order)."""
    keras.utils.set_random_seed(5)
    f = np.random.default_rng(2).dirichlet(np.ones(9)).astype("float32")
    model = cro.TwoTowerRetrieval(
        10,
        9,
        8,
        loss=cro.LambdaCROLoss(alpha=1.2) if in_batch else cro.SoftmaxLoss(),
        scale=3.0,
        item_probabilities=f,
        num_negatives=3,
        num_row_negatives=6,  # 6 draws of 9 items per row: some repeat the row's positive
        in_batch_negatives=in_batch,
        embedding_l2=0.01,
        seed=11,
    )
    users = np.array([0, 1, 2, 3, 4], "int32")
    items = np.array([2, 6, 2, 0, 8], "int32")
    got = float(model.compute_loss(users, items, model(users)))
    generator = keras.random.SeedGenerator(11)
    shared = np.asarray(keras.random.randint((3,), 0, 9, dtype="int32", seed=generator))
    own = np.asarray(keras.random.randint((5, 6), 0, 9, dtype="int32", seed=generator))
    ids = np.concatenate([np.tile(np.concatenate([items, shared]), (5, 1)), own], axis=1)
    users_raw = np.asarray(model.user_embedding.embeddings)[users]
    table = np.asarray(model.item_embedding.embeddings)
    u = users_raw / np.linalg.norm(users_raw, axis=1, keepdims=True)
    v = table / np.linalg.norm(table, axis=1, keepdims=True)
    scores = np.zeros(ids.shape, "float64")
    for b in range(5):
        for c in range(ids.shape[1]):
            q = ((5 * f[ids[b, c]] if in_batch else 0.0) + 9 / 9) / ((5 if in_batch else 0) + 9)
            scores[b, c] = 3.0 * u[b] @ v[ids[b, c]] - np.log(q)
    hits = (ids == items[:, None]) & ~np.eye(5, 14, dtype=bool)
    assert hits[:, 8:].any()  # a row's own draw hits its positive
    scores[hits] = -np.inf
    if in_batch:
        scores[hits] = 2 * reference.ABSENT  # absent for the reference
        rows, _ = reference.row_losses_and_grads(
            np.eye(5, 14), scores, method="lambda", alpha=1.2, num_items=9
        )
    else:
        scores[:, :5][~np.eye(5, dtype=bool)] = -np.inf
        rows = _softmax_rows(scores)
    embedding_rows = np.concatenate([items, shared, own.reshape(-1)])
    penalty = 0.01 * ((users_raw**2).sum() + (table[embedding_rows] ** 2).sum()) / 5
    np.testing.assert_allclose(got, rows.mean() + penalty, rtol=1e-5)


def _rows_and_grad(fn, scores):
    """``fn(scores)`` ``[B]`` and the gradient of its sum, eager, on this backend."""
    if BACKEND == "jax":
        import jax

        values, vjp = jax.vjp(fn, jax.numpy.asarray(scores))
        return np.asarray(values), np.asarray(vjp(jax.numpy.ones_like(values))[0])
    if BACKEND == "tensorflow":
        import tensorflow as tf

        var = tf.Variable(scores)
        with tf.GradientTape() as tape:
            values = fn(var)
        return values.numpy(), tape.gradient(values, var).numpy()
    pytest.skip(f"gradients are checked on JAX and TensorFlow, not {BACKEND}")


@pytest.mark.parametrize("name", sorted(cro.LOSSES))
@pytest.mark.parametrize(("rows", "cols"), [(5, 9), (6, 4)], ids=["wide", "tall"])
def test_diagonal_call_equals_call_with_eye_labels(name, rows, cols):
    """The models' eye-label path against ``call(eye)``: absent candidates and positives,
    a row with no negative, rows without a positive (``B > C``)."""
    rng = np.random.default_rng(rows * cols)
    scores = rng.normal(size=(rows, cols)).astype("float32")
    scores[0, 3] = -3.4e36
    scores[1, 1] = -np.inf
    scores[2, :] = -1e31
    scores[2, 2] = 0.4
    options = {"num_items": 30} if name in ("cro", "sl-at-k") else {}
    loss = cro.get(name, scale=2.0, **options)
    eye = ops.eye(rows, cols, dtype="float32")
    fast, fast_grad = _rows_and_grad(loss.diagonal_call, scores)
    full, full_grad = _rows_and_grad(lambda s: loss.call(eye, s), scores)
    assert np.isfinite(fast).all() and np.isfinite(fast_grad).all() and fast[1] == 0.0
    np.testing.assert_allclose(fast, full, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast_grad, full_grad, rtol=1e-5, atol=1e-6)


@needs_keras_rs
@pytest.mark.skipif(BACKEND != "jax", reason="the README's example sets the JAX backend")
def test_the_readme_example_runs_as_written(tmp_path, monkeypatch):
    """The Keras 3 example of the README, on a small LightGCN-style split in place of
    Yelp2018 and with fewer epochs: the split, the model, early stopping and the refit."""
    pytest.importorskip("pandas")
    import re

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    section = readme[readme.index("## Keras 3") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert code.count('"path/to/yelp2018"') == 1 and code.count("epochs=100") == 1
    code = code.replace('"path/to/yelp2018"', repr(str(tmp_path)))
    code = code.replace("epochs=100", "epochs=6").replace("batch_size=1024", "batch_size=64")
    # 40 users in 5 clusters of 20 items: 10 training items each (file order), 3 test items
    rng = np.random.default_rng(0)
    train, test = [], []
    for user in range(40):
        items = (user % 5) * 20 + rng.permutation(20)[:13]
        train.append(" ".join(map(str, [user, *items[:10]])))
        test.append(" ".join(map(str, [user, *items[10:]])))
    (tmp_path / "train.txt").write_text("\n".join(train) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(test) + "\n")
    namespace: dict = {}
    monkeypatch.setenv("KERAS_BACKEND", BACKEND)  # the example sets it
    exec(compile(code, "README.md (Keras 3 example)", "exec"), namespace)
    ids, full, stop, final = (namespace[k] for k in ("ids", "full", "stop", "final"))
    assert 0 <= stop.best_epoch < 6
    held_out = sum(len(targets) for targets in ids.valid.targets)
    assert held_out > 0 and len(full.train_users) == len(ids.train_users) + held_out
    steps = -(-len(full.train_users) // 64)  # the refit's steps per epoch
    assert int(final.optimizer.iterations) == (stop.best_epoch + 1) * steps
    np.testing.assert_allclose(final.log_q, full.item_probabilities())  # the refit's logQ
    metrics = cro.evaluate(final, full.test, ks=(20,))
    assert 0.0 <= metrics["recall@20"] <= 1.0 and 0.0 <= metrics["ndcg@20"] <= 1.0
