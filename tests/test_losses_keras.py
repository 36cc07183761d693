"""Keras integration: serialization, model.fit, TFRS Retrieval, validation errors, import."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

import tfcro
from tfcro import losses as losses_lib


@tf.keras.utils.register_keras_serializable(package="tfcro_tests")
def cubic_kernel(x):
    return tf.nn.relu(x + 1.0) ** 3


ALL_LOSSES = [
    tfcro.CROLoss(kernel="sigmoid", alpha=1.4, scale=10.0, num_items=500),
    tfcro.CROLoss(kernel="hinge", alpha=0.6, margin=5.0),
    tfcro.CROLoss(kernel=cubic_kernel, alpha=0.8),
    tfcro.LambdaCROLoss("unit_step", "exponential", alpha=1.4, scale=10.0, num_items=10**6),
    tfcro.LambdaCROLoss("sigmoid", "softplus", alpha=1.0, reduction="sum"),
    tfcro.SoftmaxLoss(scale=10.0),
    tfcro.BPRLoss(scale=2.0),
    tfcro.TripletLoss(scale=10.0, margin=5.0),
]


def _data(seed=0, batch=6, cols=12):
    rng = np.random.default_rng(seed)
    labels = np.zeros((batch, cols), np.float32)
    labels[np.arange(batch), rng.integers(0, cols, batch)] = 1.0
    labels[0, 1] = 1.0
    return labels, (0.3 * rng.normal(size=(batch, cols))).astype(np.float32)


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda loss: loss.name)
def test_config_round_trip_gives_same_values(loss):
    labels, scores = _data()
    config = loss.get_config()
    restored = type(loss).from_config(config)
    assert restored.get_config() == config
    np.testing.assert_allclose(
        restored(labels, scores).numpy(), loss(labels, scores).numpy(), rtol=1e-6
    )
    generic = tf.keras.losses.deserialize(tf.keras.losses.serialize(loss))
    assert type(generic) is type(loss)
    np.testing.assert_allclose(
        generic(labels, scores).numpy(), loss(labels, scores).numpy(), rtol=1e-6
    )


@tf.keras.utils.register_keras_serializable(package="tfcro_tests")
class ShiftedCube(tfcro.kernels.Kernel):
    """A custom kernel with a parameter: ``max(0, x + shift) ** 3``."""

    bounded = True

    def __init__(self, shift=1.0):
        self.shift = shift

    def value(self, x):
        return tf.nn.relu(x + self.shift) ** 3

    def get_config(self):
        return {"shift": self.shift}


@pytest.mark.parametrize(
    "make_loss",
    [
        lambda: tfcro.CROLoss(kernel=tfcro.kernels.Hinge(2.0), alpha=0.8),
        lambda: tfcro.LambdaCROLoss(
            weight_kernel=tfcro.kernels.Hinge(0.5), kernel=tfcro.kernels.Hinge(3.0), alpha=1.2
        ),
        lambda: tfcro.CROLoss(kernel=ShiftedCube(0.25), alpha=1.0),
        lambda: tfcro.CROLoss(kernel=cubic_kernel, alpha=0.6),
    ],
    ids=["hinge-2", "lambda-two-hinges", "custom-subclass", "callable"],
)
def test_kernel_objects_round_trip_with_their_parameters(make_loss):
    # Hinge(2.0) used to come back as a margin-1 hinge (another loss value).
    labels, scores = _data(seed=3)
    loss = make_loss()
    restored = type(loss).from_config(loss.get_config())
    assert restored.kernel == loss.kernel
    np.testing.assert_allclose(
        restored(labels, scores).numpy(), loss(labels, scores).numpy(), rtol=1e-6
    )
    default_margin = type(loss)(kernel="hinge", alpha=loss.alpha)
    if isinstance(loss.kernel, tfcro.kernels.Hinge):
        assert not np.isclose(default_margin(labels, scores).numpy(), loss(labels, scores).numpy())


def test_hinge_margin_shortcut_and_object_agree():
    labels, scores = _data(seed=4)
    by_name = tfcro.CROLoss(kernel="hinge", margin=2.0, alpha=0.8)
    by_object = tfcro.CROLoss(kernel=tfcro.kernels.Hinge(2.0), alpha=0.8)
    assert by_name.kernel == by_object.kernel == tfcro.kernels.Hinge(2.0)
    np.testing.assert_allclose(by_name(labels, scores).numpy(), by_object(labels, scores).numpy())


def _local_kernel():
    class Unregistered(tfcro.kernels.Kernel):  # local: Keras cannot locate it again
        bounded = True

        def value(self, x):
            return tf.nn.relu(x)

    return Unregistered()


def _unregistered_function(x):
    return tf.nn.relu(x)


@pytest.mark.parametrize(
    "kernel",
    [_local_kernel(), _unregistered_function, lambda x: tf.nn.relu(x)],
    ids=["subclass", "function", "lambda"],
)
def test_unserialisable_kernel_is_refused_at_construction(kernel):
    with pytest.raises(ValueError, match="register_keras_serializable") as info:
        tfcro.CROLoss(kernel=kernel)
    assert "`kernel`" in str(info.value) and "round-trip" in str(info.value)
    # the pure functions need no serialisation and still take it
    value = losses_lib.functional.cro_loss(*map(tf.constant, _data()), kernel=kernel)
    assert np.all(np.isfinite(value.numpy()))


def _ranking_model(cols):
    inputs = tf.keras.Input((4,))
    hidden = tf.keras.layers.Dense(16, activation="relu")(inputs)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(cols)(hidden))


def _planted(n=256, cols=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    target = np.argmax(x @ rng.normal(size=(4, cols)), axis=1)
    return x, np.eye(cols, dtype=np.float32)[target]


@pytest.mark.parametrize("fmt", ["keras", "tf"])
def test_saved_and_reloaded_model_gives_same_loss(tmp_path, fmt):
    x, y = _planted()
    model = _ranking_model(12)
    loss = tfcro.LambdaCROLoss("sigmoid", "softplus", alpha=1.2, scale=2.0, num_items=1000)
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    path = str(tmp_path / ("model.keras" if fmt == "keras" else "savedmodel"))
    model.save(path) if fmt == "keras" else model.save(path, save_format="tf")
    reloaded = tf.keras.models.load_model(path)
    assert isinstance(reloaded.loss, tfcro.LambdaCROLoss)
    assert reloaded.loss.get_config() == loss.get_config()
    np.testing.assert_allclose(
        reloaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-5
    )


def test_functional_model_trains_with_cro_loss():
    x, y = _planted()
    model = _ranking_model(12)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(0.01),
        loss=tfcro.CROLoss(kernel="softplus", alpha=1.0, scale=2.0),
    )
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0).history["loss"]
    assert history[-1] < 0.7 * history[0], history


def test_xla_compiled_fit():
    x, y = _planted(seed=1)
    model = _ranking_model(12)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(0.01),
        jit_compile=True,
        loss=tfcro.CROLoss(kernel="sigmoid", alpha=1.4, scale=2.0, num_items=100),
    )
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0).history["loss"]
    assert np.isfinite(history).all() and history[-1] < history[0]


class _TinyRetrieval(tfrs.Model):
    def __init__(self, loss, num_users=64, num_items=48):
        super().__init__()
        self.users = tf.keras.layers.Embedding(num_users, 8)
        self.items = tf.keras.layers.Embedding(num_items, 8)
        self.task = tfrs.tasks.Retrieval(loss=loss, temperature=0.1, remove_accidental_hits=True)

    def compute_loss(self, features, training=False):
        query = tf.math.l2_normalize(self.users(features["user"]), -1)
        cand = tf.math.l2_normalize(self.items(features["item"]), -1)
        return self.task(query, cand, candidate_ids=features["item"], compute_metrics=False)


def test_tfrs_retrieval_trains_with_lambda_cro_loss():
    tf.keras.utils.set_random_seed(0)  # the initial embeddings: not whatever ran before
    rng = np.random.default_rng(0)
    users = rng.integers(0, 64, 2048)
    items = (users * 7 + rng.integers(0, 3, 2048)) % 48  # each user likes 3 items
    ds = tf.data.Dataset.from_tensor_slices({"user": users, "item": items}).batch(128)
    loss = tfcro.LambdaCROLoss("sigmoid", "softplus", alpha=1.0, num_items=48, reduction="sum")
    model = _TinyRetrieval(loss)
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.2))
    history = model.fit(ds, epochs=6, verbose=0).history["loss"]
    # The lambda surrogate has a floor well above 0 (a user's other liked items are
    # legitimate in-batch negatives), so judge the loss by its trend and the model by ranks.
    assert np.all(np.diff(history) < 0), history
    # each user's 3 liked items should rank 1-3 of 48 (mean 2; random is ~24)
    scores = model.users(np.arange(64)) @ tf.transpose(model.items(np.arange(48)))
    liked = (np.arange(64)[:, None] * 7 + np.arange(3)) % 48
    ranks = 1 + np.sum(
        scores.numpy()[:, None, :] > np.take_along_axis(scores.numpy(), liked, 1)[:, :, None],
        axis=2,
    )
    assert ranks.mean() < 3.0, ranks.mean()


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "factory,parameter,value",
    [
        (lambda: tfcro.CROLoss(kernel="gaussian"), "kernel", "'gaussian'"),
        (lambda: tfcro.CROLoss(kernel="unit_step"), "kernel", "'unit_step'"),
        (lambda: tfcro.LambdaCROLoss(kernel="unit_step"), "kernel", "'unit_step'"),
        (lambda: tfcro.LambdaCROLoss(weight_kernel="cosine"), "weight_kernel", "'cosine'"),
        (lambda: tfcro.CROLoss(kernel=3), "kernel", "3"),
        (lambda: tfcro.CROLoss(alpha=-0.1), "alpha", "-0.1"),
        (lambda: tfcro.CROLoss(alpha=float("nan")), "alpha", "nan"),
        (lambda: tfcro.LambdaCROLoss(alpha=-1), "alpha", "-1"),
        (lambda: tfcro.CROLoss(scale=0.0), "scale", "0.0"),
        (lambda: tfcro.CROLoss(scale=-2), "scale", "-2"),
        (lambda: tfcro.SoftmaxLoss(scale="big"), "scale", "'big'"),
        (lambda: tfcro.CROLoss(num_items=0), "num_items", "0"),
        (lambda: tfcro.CROLoss(num_items=2.5), "num_items", "2.5"),
        (lambda: tfcro.LambdaCROLoss(num_items=-5), "num_items", "-5"),
        (lambda: tfcro.CROLoss(kernel="hinge", margin=float("inf")), "margin", "inf"),
        (lambda: tfcro.TripletLoss(margin=None), "margin", "None"),
        (lambda: tfcro.TripletLoss(margin=-1.0), "margin", "-1.0"),
        (lambda: tfcro.LambdaCROLoss(kernel="hinge", margin=-0.5), "margin", "-0.5"),
        (lambda: losses_lib.get("listnet"), "loss", "'listnet'"),
    ],
)
def test_invalid_options_raise_value_error(factory, parameter, value):
    with pytest.raises(ValueError) as info:
        factory()
    message = str(info.value)
    assert f"`{parameter}`" in message and f"{parameter}={value}" in message, message


def test_unknown_kernel_message_lists_valid_names():
    with pytest.raises(ValueError, match="sigmoid.*softplus.*exponential.*hinge"):
        tfcro.CROLoss(kernel="tanh")
    with pytest.raises(ValueError, match="unit_step"):
        tfcro.LambdaCROLoss(weight_kernel="tanh")


@pytest.mark.parametrize(
    "y_true_shape,y_pred_shape",
    [((4, 5), (4, 6)), ((4,), (4, 5)), ((4, 5), (4, 5, 1)), ((3, 5), (4, 5))],
)
def test_shape_mismatch_raises_value_error(y_true_shape, y_pred_shape):
    with pytest.raises(ValueError, match="y_true.*y_pred|y_pred"):
        tfcro.CROLoss()(np.zeros(y_true_shape, np.float32), np.zeros(y_pred_shape, np.float32))


def test_loss_factory_builds_every_name():
    for name, cls in losses_lib.LOSSES.items():
        loss = losses_lib.get(
            name,
            kernel="softplus",
            alpha=1.2,
            scale=10.0,
            margin=2.0,
            weight_kernel="sigmoid",
            num_items=None,
        )
        assert isinstance(loss, cls) and loss.scale == 10.0


# ---------------------------------------------------------------- import behaviour


def _run(code, **env_overrides):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_USE_LEGACY_KERAS", None)
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_import_sets_legacy_keras_and_fails_clearly_on_keras3():
    ok = _run("""
        import tfcro, os, sys
        assert "tensorflow" not in sys.modules  # loaded with the first Keras 2 part
        import tensorflow as tf
        assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
        assert tf.keras.__name__.startswith("tf_keras"), tf.keras.__name__
        print("OK")
    """)
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stderr[-2000:]
    bad = _run("""
        import tensorflow as tf
        tf.keras.layers  # Keras 3 now
        import tfcro
        tfcro.CROLoss
    """)
    assert bad.returncode != 0
    assert "ImportError" in bad.stderr and "TF_USE_LEGACY_KERAS=1" in bad.stderr


def test_docstring_examples_run():
    import doctest

    from tfcro.losses import baselines, cro, peers

    for module in (cro, baselines, peers, losses_lib):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
