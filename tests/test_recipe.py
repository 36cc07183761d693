"""The training recipe: user-tower backbones, the embedding L2 penalty, weight decay,
learning-rate schedules, training without validation and the refit."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from pipelines import train as train_cli
from tests import cli
from tfcro import sampling
from tfcro._compat import keras, tf
from tfcro.layers.towers import CategoricalEmbedding, build_user_tower
from tfcro.models import TwoTowerConfig, TwoTowerModel
from tfcro.training import TrainingConfig, load_model, schedules, train
from tfcro.training.faults import check_same_run
from tfcro.training.run import refit_config

# ----------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    """A tiny pre-split collaborative dataset (``pairs`` format) with planted tastes."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(120):
        group = user % 4  # each group prefers a quarter of the 60 items
        preferred = np.arange(group * 15, group * 15 + 15)
        items = rng.choice(preferred, size=10, replace=False)
        rows += [(user, int(item)) for item in items]
    frame = pd.DataFrame(rows, columns=["user_procid", "item_procid"])
    is_test = rng.random(len(frame)) < 0.2
    folder = tmp_path_factory.mktemp("pairs")
    frame[~is_test].to_csv(folder / "train.tsv", sep="\t", index=False)
    frame[is_test].to_csv(folder / "test.tsv", sep="\t", index=False)
    return str(folder)


def _config(data_dir, **overrides):
    model = {
        "user_tower": "id",
        "embedding_dim": 8,
        "num_negatives": 16,
        "loss": "softmax",
        "loss_options": {},
    }
    model.update(overrides.pop("model", {}))
    values = dict(
        dataset="pairs",
        data_dir=data_dir,
        protocol="collaborative",
        epochs=3,
        batch_size=32,
        learning_rate=0.02,
        patience=None,
        ks=(5, 10),
        monitor="recall@10",
        model=model,
    )
    values.update(overrides)
    return TrainingConfig(**values)


# ----------------------------------------------------------------------------- backbones


def test_an_id_only_user_tower_is_the_normalised_user_embedding():
    users = CategoricalEmbedding(["a", "b", "c"], 4, name="users")
    tower = build_user_tower(None, 4, user_embedding=users, ids="index")
    assert tower.input_names == ["user_id"]
    assert not [layer for layer in tower.layers if isinstance(layer, keras.layers.Dense)]
    index = np.array([2, 3, 4], np.int32)
    table = users.embedding.embeddings.numpy()[index]
    expected = table / np.linalg.norm(table, axis=1, keepdims=True)
    np.testing.assert_allclose(tower({"user_id": index}).numpy(), expected, rtol=1e-5)


def test_an_id_only_user_tower_checks_its_size():
    users = CategoricalEmbedding(["a"], 4, name="users")
    with pytest.raises(ValueError, match="output_dim"):
        build_user_tower(None, 8, user_embedding=users)
    with pytest.raises(ValueError, match="`history_embedding`, `user_embedding`"):
        build_user_tower(None, 8)


@pytest.mark.parametrize(
    "given, tower, uses_id",
    [
        ({}, "history", False),
        ({"user_tower": "id"}, "id", True),
        ({"user_tower": "id+history"}, "id+history", True),
        ({"use_user_id": True}, "id+history", True),  # the former spelling
        ({"use_user_id": True, "user_tower": "id"}, "id", True),
    ],
)
def test_user_tower_setting_and_its_former_spelling(given, tower, uses_id):
    config = TwoTowerConfig(**given)
    assert (config.user_tower, config.use_user_id) == (tower, uses_id)
    assert TwoTowerConfig.from_dict(config.to_dict()) == config


def test_a_bad_user_tower_is_a_clear_error():
    with pytest.raises(ValueError, match=r"`user_tower` should be one of .*Received: user_tower"):
        TwoTowerConfig(user_tower="mf")


def test_an_old_model_config_without_user_tower_still_loads():
    old = TwoTowerConfig(use_user_id=True).to_dict()
    del old["user_tower"], old["embedding_l2"]
    assert TwoTowerConfig.from_dict(old).user_tower == "id+history"


def test_the_id_tower_refuses_the_user_disjoint_sequential_protocol():
    with pytest.raises(ValueError, match="user_tower.*'id'.*sequential"):
        TrainingConfig(protocol="sequential", model={"user_tower": "id"})


@pytest.mark.slow
def test_an_mf_model_trains_reloads_and_exports(tmp_path, pairs_dir):
    result = train(_config(pairs_dir, epochs=4), str(tmp_path / "run"), verbose=0)
    assert result.model.user_index_tower.input_names == ["user_id"]
    model, _ = load_model(str(tmp_path / "run"))
    users = {"user_id": np.asarray(result.data.test.user_id)}
    np.testing.assert_allclose(
        model.embed_users(users), result.model.embed_users(users), rtol=1e-5, atol=1e-6
    )
    from tfcro.serving import export_from_run

    exported = export_from_run(str(tmp_path / "run"), str(tmp_path / "export"))
    inputs = exported.manifest["user_tower"]["signatures"]["serving_default"]["inputs"]
    assert list(inputs) == ["user_id"]


def test_per_row_negatives_alone_train_through_the_trainer(tmp_path, pairs_dir):
    """The published recipes' negatives (each row's own, no in-batch, no shared ones)
    through the compiled training step; the run reloads with them in its config."""
    model = {"num_negatives": 0, "num_row_negatives": 24, "in_batch_negatives": False}
    result = train(_config(pairs_dir, epochs=2, model=model), str(tmp_path / "run"), verbose=0)
    assert result.epochs_run == 2 and 0 < result.metrics["recall@10"] <= 1
    reloaded, _ = load_model(str(tmp_path / "run"))
    assert reloaded.config.num_row_negatives == 24 and reloaded.config.num_negatives == 0


# ----------------------------------------------------------------------------- L2 penalty


def _tiny_model(**overrides):
    config = TwoTowerConfig(embedding_dim=4, num_negatives=3, loss="softmax", loss_options={})
    config = TwoTowerConfig.from_dict({**config.to_dict(), "seed": 1, **overrides})
    items = [f"i{k}" for k in range(10)]
    return TwoTowerModel(items, config, users=["a", "b", "c"])


def _batch():
    return {
        "history": tf.constant([[2, 3, 0], [4, 0, 0]], tf.int32),
        "user_id": tf.constant([2, 3], tf.int32),
        "item_id": tf.constant([5, 6], tf.int32),
    }


def test_the_embedding_penalty_sums_the_rows_the_batch_uses():
    model = _tiny_model(user_tower="id+history")
    candidates = tf.constant([5, 6, 9, 2, 5], tf.int32)
    item_table = model.item_embedding.embedding.embeddings.numpy()
    user_table = model._input_embeddings["user_id"].embedding.embeddings.numpy()
    expected = (
        sum(np.sum(item_table[k] ** 2) for k in [5, 6, 9, 2, 5])  # candidates, once per use
        + sum(np.sum(user_table[k] ** 2) for k in [2, 3])
        + sum(np.sum(item_table[k] ** 2) for k in [2, 3, 4])  # history, padding excluded
    )
    penalty = model.embedding_penalty(_batch(), candidates)
    np.testing.assert_allclose(float(penalty), expected, rtol=1e-5)
    # raw string ids give the same rows
    strings = {
        "history": tf.constant([["i0", "i1", ""], ["i2", "", ""]]),
        "user_id": tf.constant(["a", "b"]),
    }
    np.testing.assert_allclose(
        float(model.embedding_penalty(strings, candidates)), expected, rtol=1e-5
    )


def test_the_penalty_is_added_to_the_batch_loss_over_the_batch_size():
    plain = _tiny_model(user_tower="id")
    penalised = _tiny_model(user_tower="id", embedding_l2=0.5)
    penalised.set_weights(plain.get_weights())
    batch = _batch()
    # the negatives compute_loss samples: seed (model seed, step 0) of an uncompiled model
    negatives = sampling.uniform_negatives(10, 3, tf.constant([1, 0], tf.int64))
    candidates = tf.concat([batch["item_id"], tf.cast(negatives, tf.int32) + 2], 0)
    penalty = float(plain.embedding_penalty(batch, candidates))
    expected = float(plain.compute_loss(batch)) + 0.5 * penalty / 2
    assert float(penalised.compute_loss(batch)) == pytest.approx(expected, rel=1e-5)


def test_the_penalty_gradient_is_twice_each_used_row():
    model = _tiny_model(user_tower="id")
    table = model.item_embedding.embedding.embeddings
    with tf.GradientTape() as tape:
        penalty = model.embedding_penalty(_batch(), tf.constant([5, 6, 5], tf.int32))
    gradient = tf.convert_to_tensor(tape.gradient(penalty, table)).numpy()
    expected = np.zeros_like(gradient)
    expected[5] = 2 * 2 * table.numpy()[5]  # used twice
    expected[6] = 2 * table.numpy()[6]
    np.testing.assert_allclose(gradient, expected, rtol=1e-6)


def test_a_negative_embedding_l2_is_a_clear_error():
    with pytest.raises(ValueError, match=r"`embedding_l2` should be .*Received: embedding_l2=-1"):
        TwoTowerConfig(embedding_l2=-1)


# ----------------------------------------------------------------------------- schedules


def test_linear_warmup_rises_then_holds():
    schedule = schedules.LinearWarmup(0.1, warmup_steps=5)
    rates = [float(schedule(step)) for step in range(8)]
    np.testing.assert_allclose(rates, [0.02, 0.04, 0.06, 0.08, 0.1, 0.1, 0.1, 0.1], rtol=1e-6)
    again = schedules.LinearWarmup.from_config(schedule.get_config())
    assert float(again(2)) == pytest.approx(0.06)


def test_learning_rate_schedules_in_epochs():
    assert schedules.learning_rate(0.01, "constant", steps_per_epoch=10) == 0.01
    cosine = schedules.learning_rate(
        0.01, "cosine", steps_per_epoch=10, warmup_epochs=0.5, schedule_epochs=4
    )
    rates = np.array([float(cosine(step)) for step in range(41)])
    assert rates[0] < 0.002 and rates[5] == pytest.approx(0.01, rel=1e-5)
    assert np.all(np.diff(rates[5:]) <= 1e-9) and rates[40] == pytest.approx(0.0, abs=1e-6)
    plain = schedules.learning_rate(0.01, "cosine", steps_per_epoch=10, schedule_epochs=2)
    assert float(plain(0)) == pytest.approx(0.01) and float(plain(10)) == pytest.approx(0.005)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("lr_schedule", "step", r"`lr_schedule` should be one of"),
        ("weight_decay", -0.1, r"`weight_decay` should be"),
        ("warmup_epochs", -1.0, r"`warmup_epochs` should be"),
        ("schedule_epochs", 0, r"`schedule_epochs` should be"),
        ("valid_fraction", 1.0, r"`valid_fraction` should be"),
        ("refit", "yes", r"`refit` should be True or False"),
    ],
)
def test_bad_recipe_settings_are_clear_errors(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**{field: value})


def test_refit_needs_a_validation_split():
    with pytest.raises(ValueError, match="`refit=True`.*valid_fraction"):
        TrainingConfig(protocol="collaborative", refit=True, valid_fraction=0.0)
    with pytest.raises(ValueError, match="`refit=True`.*collaborative.*protocol='sequential'"):
        TrainingConfig(refit=True)


def test_sequential_validation_share_leaves_training_users():
    with pytest.raises(ValueError, match="below 0.9"):
        TrainingConfig(protocol="sequential", valid_fraction=0.9)


@pytest.mark.slow
def test_weight_decay_and_schedule_reach_the_optimizer(tmp_path, pairs_dir):
    config = _config(
        pairs_dir, epochs=1, weight_decay=0.05, lr_schedule="cosine", warmup_epochs=0.5
    )
    result = train(config, str(tmp_path / "run"), verbose=0)
    optimizer = result.model.optimizer
    assert optimizer.weight_decay == pytest.approx(0.05)
    steps = -(-len(result.data.train) // config.batch_size)
    schedule = optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert float(schedule(steps // 2)) == pytest.approx(0.02, rel=0.05)
    assert float(schedule(steps)) == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------------------- selection


@pytest.mark.slow
def test_without_validation_the_run_trains_every_epoch_and_keeps_the_last(tmp_path, pairs_dir):
    config = _config(pairs_dir, valid_fraction=0.0, epochs=2, patience=1)
    result = train(config, str(tmp_path / "run"), verbose=0)
    assert result.epochs_run == 2 and result.best_epoch == 1
    assert len(result.data.valid) == 0
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert not [c for c in history.columns if c.startswith("val_")]
    # the split trains on every training interaction
    with_valid = train(_config(pairs_dir, epochs=1), str(tmp_path / "other"), verbose=0)
    assert len(result.data.train) > len(with_valid.data.train)
    assert len(result.data.test) == len(with_valid.data.test)


@pytest.mark.slow
def test_refit_retrains_on_everything_for_the_selected_epochs(tmp_path, pairs_dir):
    run_dir = tmp_path / "run"
    config = _config(pairs_dir, epochs=3, refit=True)
    result = train(config, str(run_dir), verbose=0)
    assert result.refit is not None and result.final is result.refit
    assert result.refit.epochs_run == result.epochs_selected
    assert result.refit.output_dir == str(run_dir / "refit")
    saved = json.loads((run_dir / "refit" / "config.json").read_text())["training"]
    assert (saved["valid_fraction"], saved["refit"], saved["schedule_epochs"]) == (0.0, False, None)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["refit"]["epochs"] == result.epochs_selected
    assert metrics["refit"]["recall@10"] == pytest.approx(result.refit.metrics["recall@10"])
    assert len(result.refit.data.train) > len(result.data.train)
    # rerunning a finished run re-evaluates both models without training
    again = train(config, str(run_dir), verbose=0)
    assert again.refit.metrics["recall@10"] == pytest.approx(result.refit.metrics["recall@10"])


def test_refit_config_keeps_the_selection_schedule():
    config = TrainingConfig(protocol="collaborative", epochs=20, refit=True, lr_schedule="cosine")
    refit = refit_config(config, 7)
    assert (refit.epochs, refit.schedule_epochs, refit.valid_fraction) == (7, 20, 0.0)
    assert refit.patience is None and not refit.refit
    constant = refit_config(TrainingConfig(protocol="collaborative", epochs=20, refit=True), 7)
    assert constant.schedule_epochs is None  # a rerun with more epochs stays the same run


def test_a_cosine_horizon_is_fixed_when_the_config_is_made(tmp_path):
    assert TrainingConfig(epochs=12, lr_schedule="cosine").schedule_epochs == 12
    assert TrainingConfig(epochs=12).schedule_epochs is None
    started = TrainingConfig(epochs=12, lr_schedule="cosine")
    os.makedirs(tmp_path / "checkpoints")
    (tmp_path / "config.json").write_text(json.dumps({"training": started.to_dict()}))
    (tmp_path / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n')
    (tmp_path / "checkpoints" / "ckpt-1.index").write_bytes(b"")
    more = TrainingConfig(epochs=20, lr_schedule="cosine")  # would stretch the cosine
    with pytest.raises(ValueError, match="schedule_epochs"):
        check_same_run(str(tmp_path), more)
    same_horizon = TrainingConfig(epochs=20, lr_schedule="cosine", schedule_epochs=12)
    assert check_same_run(str(tmp_path), same_horizon) is not None


def test_a_run_saved_before_the_recipe_settings_still_resumes(tmp_path):
    config = TrainingConfig()
    old = config.to_dict()
    for key in ("valid_fraction", "refit", "weight_decay", "lr_schedule", "warmup_epochs"):
        del old[key]
    del old["model"]["user_tower"]
    os.makedirs(tmp_path / "checkpoints")
    (tmp_path / "config.json").write_text(json.dumps({"training": old}))
    (tmp_path / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n')
    (tmp_path / "checkpoints" / "ckpt-1.index").write_bytes(b"")  # a started run
    assert check_same_run(str(tmp_path), config) is not None
    with pytest.raises(ValueError, match="other settings.*valid_fraction"):
        check_same_run(str(tmp_path), TrainingConfig(valid_fraction=0.2))


# ----------------------------------------------------------------------------- command line


def test_cli_maps_the_recipe_flags(tmp_path):
    parser = train_cli.build_parser()
    args = parser.parse_args(
        cli.flags(
            dataset="pairs",
            data_dir=tmp_path,
            protocol="collaborative",
            user_tower="id",
            embedding_l2=1e-4,
            weight_decay=0.01,
            lr_schedule="cosine",
            warmup_epochs=0.5,
            schedule_epochs=15,
            valid_fraction=0.2,
            refit=True,
            num_row_negatives=64,
        )
    )

    config = train_cli.config_from_args(args)
    assert config.model["num_row_negatives"] == 64
    assert config.model["user_tower"] == "id" and config.model["embedding_l2"] == 1e-4
    assert (config.weight_decay, config.lr_schedule, config.warmup_epochs) == (0.01, "cosine", 0.5)
    assert (config.valid_fraction, config.refit, config.schedule_epochs) == (0.2, True, 15)
    old = train_cli.config_from_args(parser.parse_args(["--use-user-id"]))
    assert old.model["user_tower"] == "id+history"


def test_cli_refuses_contradicting_tower_flags(tmp_path):
    parser = train_cli.build_parser()
    args = parser.parse_args(["--use-user-id", "--user-tower", "id"])
    with pytest.raises(ValueError, match="--use-user-id.*--user-tower id"):
        train_cli.config_from_args(args)


@pytest.mark.slow
def test_the_readme_cf_preset_command_trains_refits_and_exports(tmp_path, pairs_dir):
    """README's "Collaborative filtering on a given train/test split" command as a
    newcomer runs it (2 epochs instead of the preset's 60)."""
    run_dir = tmp_path / "ml1m"
    proc = cli.run_module(
        "pipelines.train",
        *("--preset", "cf", "--dataset", "pairs", "--data-dir", pairs_dir, "--refit"),
        *("--epochs", "2", "--run-dir", str(run_dir)),
        *("--export-dir", str(tmp_path / "saved")),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((run_dir / "config.json").read_text())["training"]
    assert config["model"]["logq_correction"] and config["model"]["num_negatives"] == 512
    assert not config["model"]["in_batch_negatives"] and config["optimizer"] == "adam"
    assert (
        config["model"]["user_tower"] == "id" and config["learning_rate"] == 0.0026348894169180258
    )
    refit = json.loads((run_dir / "metrics.json").read_text())["refit"]
    assert 1 <= refit["epochs"] <= 2 and 0.0 <= refit["recall@20"] <= 1.0
    assert os.path.isdir(tmp_path / "saved")
