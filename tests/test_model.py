"""Tests of tfcro.models: config, forward pass, and training on planted structure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tfcro import evaluation, losses
from tfcro._compat import tf
from tfcro.models import TwoTowerConfig, TwoTowerModel

ITEMS = np.array([f"i{k}" for k in range(30)])


def test_config_round_trip():
    config = TwoTowerConfig(
        embedding_dim=16,
        hidden_units=(32,),
        num_negatives=100,
        num_row_negatives=8,
        use_user_id=True,
        item_features=("genre",),
        seed=3,
        loss="cro",
        loss_options={"kernel": "sigmoid", "alpha": 1.2},
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert TwoTowerConfig.from_dict(data) == config
    with pytest.raises(ValueError, match="Unknown TwoTowerConfig keys"):
        TwoTowerConfig.from_dict({"embedding_size": 3})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"embedding_dim": 0}, "`embedding_dim`"),
        ({"num_negatives": -1}, "`num_negatives`"),
        ({"num_row_negatives": -2}, "`num_row_negatives` should be an integer >= 0"),
        ({"num_row_negatives": 1.5}, "`num_row_negatives`"),
        ({"pooling": "lstm"}, "`pooling`"),
        ({"scale": 0.0}, "`scale`"),
        ({"loss": "hinge"}, "`loss`"),
        ({"in_batch_negatives": False}, "`num_negatives` >= 1 or `num_row_negatives` >= 1"),
        ({"item_features": ("item_id",)}, "reserved"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TwoTowerConfig(**kwargs)


@pytest.mark.parametrize(
    "side, values, has",
    [
        ("item", {"genre": np.array(["a"] * 30)}, "['genre']"),
        ("user", None, "none"),
    ],
)
def test_feature_names_must_be_in_the_feature_values(side, values, has):
    with pytest.raises(ValueError) as info:
        TwoTowerModel(ITEMS, **{f"{side}_features": ("color",), f"{side}_feature_values": values})
    message = str(info.value)
    assert f"`{side}_features`" in message and f"{side}_features=['color']" in message
    assert f"which has {has}" in message


def test_forward_shapes_norms_oov_and_empty_history():
    model = TwoTowerModel(
        ITEMS,
        embedding_dim=8,
        use_user_id=True,
        users=["u0", "u1"],
        item_features=("genre",),
        user_features=("country",),
        item_feature_values={"genre": np.array(["a", "b", "c"] * 10)},
        user_feature_values={"country": {"u0": "fr", "u1": "de"}},
    )
    users = model.user_tower(
        {
            "history": tf.constant([["i1", "i2", ""], ["", "", ""], ["unknown", "", ""]]),
            "user_id": tf.constant(["u0", "new", "u1"]),
            "country": tf.constant(["fr", "", "xx"]),
        }
    ).numpy()
    items = model.item_tower(
        {"item_id": tf.constant(["i0", "nope"]), "genre": tf.constant(["a", ""])}
    ).numpy()
    assert users.shape == (3, 8) and items.shape == (2, 8)
    assert np.isfinite(users).all() and np.isfinite(items).all()
    np.testing.assert_allclose(np.linalg.norm(users, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, atol=1e-5)
    # Features missing from a batch are looked up from the tables.
    assert model.item_inputs(["i1", "zz"])["genre"].numpy().tolist() == [b"b", b""]
    assert model.user_inputs({"history": [["i1"]], "user_id": ["u1"]})["country"].numpy() == b"de"
    assert model.embed_items().shape == (30, 8)


def test_loss_gets_catalog_size_and_sum_reduction():
    model = TwoTowerModel(ITEMS, loss=losses.CROLoss(alpha=1.2))
    assert model.loss_fn.num_items == 30 and model.loss_fn.reduction == "sum"
    assert TwoTowerModel(ITEMS).loss_fn.num_items == 30  # the default lambda loss too
    with pytest.warns(UserWarning, match="scale"):
        TwoTowerModel(ITEMS, loss=losses.CROLoss(scale=10.0))


def test_loss_is_the_batch_mean_of_scaled_softmax():
    # Softmax over in-batch candidates with scores 10 * cos: the loss is the mean over rows
    # (sum reduction divided by the global batch size, one replica here).
    model = TwoTowerModel(ITEMS, embedding_dim=4, loss=losses.SoftmaxLoss())
    batch = {
        "history": tf.constant([["i1", ""], ["i2", "i3"], ["", ""]]),
        "item_id": tf.constant(["i4", "i5", "i6"]),
    }
    u = model.user_tower({"history": batch["history"]}).numpy()
    v = model.item_tower({"item_id": batch["item_id"]}).numpy()
    logits = 10.0 * u @ v.T
    rows = np.log(np.exp(logits).sum(axis=1)) - np.diag(logits)
    assert float(model.compute_loss(batch)) == pytest.approx(rows.mean(), rel=1e-5)


def planted_data(seed=0, num_items=200, clusters=20, train_users=1500, eval_users=200, length=5):
    """Items in clusters; a user's history and targets come from one cluster.

    Item popularity is skewed independently of the clusters, so the popularity
    baseline is weak and a model must learn the cluster structure.
    """
    rng = np.random.default_rng(seed)
    items = np.array([f"item{k}" for k in range(num_items)])
    cluster_of = rng.permutation(num_items) % clusters
    weights = rng.pareto(1.5, num_items) + 0.1

    def draw(cluster, size):
        members = np.flatnonzero(cluster_of == cluster)
        p = weights[members] / weights[members].sum()
        return items[rng.choice(members, size=size, replace=False, p=p)]

    def users(n):
        history, targets = [], []
        for _ in range(n):
            picked = draw(rng.integers(clusters), length + 3)
            history.append(picked[:length])
            targets.append(picked[length:])
        return np.array(history), targets

    train_history, train_targets = users(train_users)
    train = {
        "history": train_history,
        "user_id": np.array([f"u{k}" for k in range(train_users)]),
        "item_id": np.array([t[0] for t in train_targets]),
    }
    history, targets = users(eval_users)
    valid = {
        "user_id": np.array([f"v{k}" for k in range(eval_users)]),
        "history": history,
        "targets": targets,
        "seen": [h for h in history],
    }
    return items, train, valid


def test_training_beats_popularity_on_planted_structure():
    tf.keras.utils.set_random_seed(0)
    items, train, valid = planted_data()
    model = TwoTowerModel(items, embedding_dim=16, num_negatives=64, seed=0)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.02))
    dataset = tf.data.Dataset.from_tensor_slices(train).shuffle(2000, seed=0).batch(64)
    callback = evaluation.RetrievalEvaluationCallback(
        valid, items, ks=(10,), monitor="recall@10", patience=2
    )
    history = model.fit(dataset, epochs=6, verbose=0, callbacks=[callback])
    assert np.all(np.isfinite(history.history["loss"]))
    assert "val_recall@10" in history.history
    learned = evaluation.evaluate(model, valid, items, ks=(10,))
    popular = evaluation.evaluate(
        evaluation.PopularityBaseline(train["item_id"], items), valid, items, ks=(10,)
    )
    # A cluster has 10 items; 5 are in the history (excluded), 3 are targets.
    assert learned["recall@10"] > 0.6
    assert learned["recall@10"] > 3 * popular["recall@10"]
    assert learned["recall@10"] == pytest.approx(callback.best, abs=1e-6)
    scann = evaluation.evaluate(model, valid, items, ks=(10,), method="scann")
    assert scann["recall@10"] == pytest.approx(learned["recall@10"], abs=0.02)


def test_keras_config_names_the_settings_and_from_config_says_how_to_rebuild():
    model = TwoTowerModel(np.array(["a", "b", "c"]), TwoTowerConfig(embedding_dim=4))
    config = model.get_config()
    assert config == {"config": model.config.to_dict(), "num_items": 3}
    with pytest.raises(NotImplementedError, match="load_run"):
        TwoTowerModel.from_config(config)
