"""The training path on integer ids (issue 9): encoding, index towers, XLA, speed columns.

Raw ids become int32 lookup indices once (``TwoTowerModel.encode`` or the split
protocols' catalog positions); the index towers and ``compute_loss`` on them must
give exactly what the string path gives, with and without XLA.
"""

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest

from tests import cli
from tfcro import data as data_lib
from tfcro._compat import keras, tf
from tfcro.layers.towers import CategoricalEmbedding, vocabulary_indices
from tfcro.models import TwoTowerConfig, TwoTowerModel
from tfcro.training import TrainingConfig, build_model, train
from tfcro.training.build import build_variables, train_columns


def test_vocabulary_indices_match_the_string_lookup():
    vocabulary = [f"i{k}" for k in range(50)]
    rng = np.random.default_rng(0)
    pool = np.array(vocabulary + ["", "unknown", "i999"], dtype=object)
    ids = pool[rng.integers(0, len(pool), size=(40, 7))]
    layer = CategoricalEmbedding(vocabulary, 4)
    expected = layer.index(tf.constant(ids.astype(str))).numpy()
    np.testing.assert_array_equal(vocabulary_indices(ids, vocabulary), expected)
    np.testing.assert_array_equal(layer.indices(ids), expected)
    assert vocabulary_indices(np.zeros((0, 3), object), vocabulary).shape == (0, 3)


@pytest.fixture(scope="module")
def data():
    interactions = data_lib.synthetic.generate(num_users=200, num_items=120, seed=3)
    split = data_lib.sequential_split(interactions, max_history=8, seed=0)
    users = sorted(set(split.train.user_id) | set(split.valid.user_id) | set(split.test.user_id))
    groups = {user: f"g{k % 3}" for k, user in enumerate(users[::2])}  # the others: no value
    return dataclasses.replace(split, user_features={"group": groups})


VARIANTS = {
    "plain": {},
    "features-logq": {
        "use_user_id": True,
        "item_features": ("category",),
        "user_features": ("group",),
        "logq_correction": True,
        "hidden_units": (16,),
    },
    "sampled-only": {"in_batch_negatives": False, "loss": "softmax", "loss_options": {}},
}


def _model(data, **overrides):
    config = TrainingConfig(
        dataset="synthetic",
        max_history=8,
        model={"num_negatives": 24, "seed": 5, "embedding_dim": 8, **overrides},
    )
    keras.utils.set_random_seed(1)
    model = build_model(config, data)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    build_variables(model, data)
    return model


def _string_batch(data, rows):
    train = data.train
    features = data.example_features(train.user_id[rows])
    batch = {
        "history": train.history[rows],
        "user_id": train.user_id[rows],
        "item_id": train.target[rows],
        **features,
    }
    return {name: tf.constant(values.astype(str)) for name, values in batch.items()}


def _loss_and_gradients(model, batch):
    with tf.GradientTape() as tape:
        loss = model.compute_loss(batch, training=True)
    gradients = tape.gradient(loss, model.trainable_variables)
    return loss.numpy(), [tf.convert_to_tensor(g).numpy() for g in gradients]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_index_batches_give_the_string_path_loss_and_gradients(data, variant):
    model = _model(data, **VARIANTS[variant])
    rows = slice(0, 48)
    index_batch = {k: tf.constant(v) for k, v in train_columns(model, data, rows).items()}
    assert all(t.dtype == tf.int32 for t in index_batch.values())
    want_loss, want_grads = _loss_and_gradients(model, _string_batch(data, rows))
    got_loss, got_grads = _loss_and_gradients(model, index_batch)
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-6)
    for got, want in zip(got_grads, want_grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_train_columns_from_the_protocol_codes_equal_encoded_raw_ids(data):
    model = _model(data, **VARIANTS["features-logq"])
    assert data.train.history_codes is not None
    from_codes = train_columns(model, data)
    raw = dataclasses.replace(data.train, history_codes=None, target_codes=None)
    from_raw = train_columns(model, dataclasses.replace(data, train=raw))
    assert sorted(from_codes) == sorted(from_raw) == ["group", "history", "item_id", "user_id"]
    for name in from_codes:
        np.testing.assert_array_equal(from_codes[name], from_raw[name])


def test_embeddings_through_the_index_towers_equal_the_string_towers(data):
    model = _model(data, **VARIANTS["features-logq"])
    users = data.test
    inputs = model.user_inputs(
        {
            "history": tf.constant(users.history.astype(str)),
            "user_id": tf.constant(users.user_id.astype(str)),
        }
    )
    want = model.user_tower(inputs, training=False).numpy()
    got = model.embed_users({"history": users.history, "user_id": users.user_id}, batch_size=7)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    ids = np.asarray(data.items[::3])
    want = model.item_tower(model.item_inputs(ids), training=False).numpy()
    np.testing.assert_allclose(model.embed_items(ids, batch_size=5), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model.embed_items()[::3], want, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="user_id"):
        model.embed_users({"history": users.history})


def test_encode_and_index_dataset_reject_what_they_cannot_feed(data):
    model = _model(data)
    encoded = model.encode({"history": [["", data.items[0]]], "item_id": ["not-an-item"]})
    assert encoded["history"].tolist() == [[0, 2]] and encoded["item_id"].tolist() == [1]
    with pytest.raises(ValueError, match="numeric"):
        data_lib.index_dataset({"item_id": np.array(["a", "b"])}, 2)
    with pytest.raises(ValueError, match="same number of rows"):
        data_lib.index_dataset({"a": np.zeros(3, np.int32), "b": np.zeros(4, np.int32)}, 2)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["softmax", "bpr", "triplet", "cro", "cro-lambda"])
def test_the_xla_step_trains_like_the_graph_step(data, loss):
    weights = []
    for jit in (False, True):
        model = _model(data, loss=loss, loss_options={}, use_user_id=True)
        model.compile(optimizer=keras.optimizers.Adam(0.01), jit_compile=jit)
        columns = train_columns(model, data)
        dataset = data_lib.index_dataset(columns, 64, shuffle=False).take(4)
        history = model.fit(dataset, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][-1])
        weights.append([w.numpy() for w in model.trainable_variables])
    for graph, xla in zip(*weights, strict=True):
        np.testing.assert_allclose(xla, graph, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_history_records_epoch_seconds_and_examples_per_second(tmp_path):
    config = TrainingConfig(
        dataset="synthetic",
        dataset_options=dict(cli.SIZES),
        epochs=2,
        batch_size=64,
        patience=None,
        ks=(10,),
        monitor="recall@10",
        model={"num_negatives": 32},
    )
    result = train(config, str(tmp_path), verbose=0)
    history = pd.read_csv(os.path.join(tmp_path, "history.csv"))
    assert list(history["epoch"]) == [1, 2]
    assert (history["seconds"] > 0).all()
    expected = len(result.data.train) / history["seconds"]
    np.testing.assert_allclose(history["examples_per_second"], expected, rtol=0.01)
    # XLA is an execution setting: the run resumes with it off and a larger budget
    resumed = train(
        dataclasses.replace(config, epochs=3, jit_compile=False), str(tmp_path), verbose=0
    )
    assert resumed.epochs_run == 3


def test_raw_string_batches_still_train():
    # users who feed raw strings (no encode) still train: compute_loss takes both
    items = [f"i{k}" for k in range(30)]
    model = TwoTowerModel(items, TwoTowerConfig(num_negatives=8, embedding_dim=4))
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    batch = {
        "history": tf.constant([["i1", "i2"], ["i3", ""]]),
        "item_id": tf.constant(["i4", "i5"]),
    }
    assert np.isfinite(model.compute_loss(batch, training=True).numpy())


@pytest.mark.parametrize("loss", ["softmax", "cro-lambda", "bpr"])
@pytest.mark.parametrize("masks", ["none", "logq+weights", "sampled-only"])
def test_retrieval_loss_equals_the_tfrs_retrieval_task(data, loss, masks):
    import tensorflow_recommenders as tfrs

    model = _model(data, loss=loss, loss_options={})
    rng = np.random.default_rng(7)
    users = tf.math.l2_normalize(tf.constant(rng.normal(size=(16, 8)), tf.float32), -1)
    items = tf.math.l2_normalize(tf.constant(rng.normal(size=(40, 8)), tf.float32), -1)
    ids = tf.constant(rng.integers(2, 30, size=40), tf.int32)  # with accidental hits
    options = {}
    if masks == "logq+weights":
        options["candidate_sampling_probability"] = tf.constant(
            rng.uniform(0.01, 0.5, 40), tf.float32
        )
        options["sample_weight"] = tf.constant(rng.uniform(0.5, 2.0, 16), tf.float32)
    if masks == "sampled-only":
        options["score_mask"] = tf.concat(
            [tf.eye(16, 16, dtype=tf.bool), tf.ones([16, 24], tf.bool)], 1
        )
    task = tfrs.tasks.Retrieval(
        loss=model.loss_fn, temperature=1.0 / model.config.scale, remove_accidental_hits=True
    )
    want = task(
        users,
        items,
        candidate_ids=ids,
        compute_metrics=False,
        compute_batch_metrics=False,
        **options,
    )
    got = model.retrieval_loss(users, items, ids, **options)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-5)


def test_softmax_fast_paths_equal_the_pairwise_engine():
    from tfcro.losses import functional
    from tfcro.losses.pairwise import row_losses

    rng = np.random.default_rng(3)
    scores = rng.normal(size=(6, 9)).astype(np.float32)
    scores[1, 4] = scores[3, 0] = -3.4e36  # absent candidates
    scores[5, 5] = -1e31  # an absent positive: its row is 0
    labels = np.eye(6, 9, dtype=np.float32)
    engine = row_losses(labels, scores, functional.softmax_positive_loss, 2.0).numpy()
    assert engine[5] == 0.0
    np.testing.assert_allclose(functional.softmax_diagonal_loss(scores, 2.0), engine, rtol=1e-5)
    labels[0, 3] = labels[2, [5, 7]] = 1.0  # multi-hot rows
    engine = row_losses(labels, scores, functional.softmax_positive_loss, 2.0).numpy()
    np.testing.assert_allclose(functional.softmax_loss(labels, scores, 2.0), engine, rtol=1e-5)
