"""Training runs, rebuilding their models, their lock, and the pipelines end to end on tiny
generated data."""

import dataclasses
import json
import os
import shutil
import time

import numpy as np
import pandas as pd
import pytest

from pipelines import train as train_cli
from tests import cli
from tests.test_runfolder import holding_lock
from tfcro import data as data_lib
from tfcro import runfolder
from tfcro._compat import tf
from tfcro.evaluation import PopularityBaseline, evaluate
from tfcro.training import (
    OPTIMIZERS,
    RunFolderInUse,
    TrainingConfig,
    build_model,
    load_data,
    load_model,
    load_run,
    train,
)
from tfcro.training import run as run_module
from tfcro.training.build import build_variables


def _config(**overrides):
    values = dict(
        dataset="synthetic",
        dataset_options=dict(cli.SIZES),
        epochs=2,
        batch_size=64,
        learning_rate=0.01,
        patience=None,
        ks=(5, 10, 20),
        model={"num_negatives": 32, "loss": "cro-lambda"},
    )
    values.update(overrides)
    return TrainingConfig(**values)


def _files(run_dir):
    return sorted(os.listdir(run_dir))


def test_train_writes_the_run_folder(tmp_path):
    config = _config()
    result = train(config, str(tmp_path), verbose=0)
    for name in (
        "config.json",
        "history.csv",
        "metrics.json",
        "state.json",
        "items.txt",
        "best.weights.h5",
        "checkpoints",
    ):
        assert name in _files(tmp_path), name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for k in (5, 10, 20):
        for metric in ("recall", "pair_recall", "hitrate", "ndcg"):
            assert 0.0 <= metrics[f"{metric}@{k}"] <= 1.0
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert {"loss", "val_recall@100"} <= set(history.columns)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert TrainingConfig.from_dict(saved["training"]) == config
    assert len((tmp_path / "items.txt").read_text().split()) == len(result.data.items)
    assert "run.lock" not in _files(tmp_path)  # released


def test_resume_continues_from_the_last_checkpoint(tmp_path, capsys):
    first = train(_config(epochs=1), str(tmp_path), verbose=0)
    assert first.epochs_run == 1
    resumed = train(_config(epochs=3), str(tmp_path), verbose=1)
    assert "resuming" in capsys.readouterr().out
    assert resumed.epochs_run == 3
    assert list(pd.read_csv(tmp_path / "history.csv")["epoch"]) == [1, 2, 3]
    # a finished run only re-evaluates: same metrics, no new epochs
    again = train(_config(epochs=3), str(tmp_path), verbose=0)
    assert again.epochs_run == 3
    assert again.metrics == pytest.approx(resumed.metrics)


def test_valid_every_evaluates_every_few_epochs_across_a_resume(tmp_path):
    first = train(_config(epochs=3, valid_every=2), str(tmp_path), verbose=0)
    assert first.epochs_run == 3 and first.best_epoch == 1  # the only evaluation: epoch 2
    resumed = train(_config(epochs=4, valid_every=2), str(tmp_path), verbose=0)
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3, 4]
    evaluated = history.loc[history["val_recall@100"].notna(), "epoch"]
    assert list(evaluated) == [2, 4]
    assert resumed.best_epoch in (1, 3)


def test_valid_every_flag_reaches_the_config():
    args = train_cli.build_parser().parse_args(["--valid-every", "2", "--epochs", "4"])
    assert train_cli.config_from_args(args).valid_every == 2


def test_valid_every_beyond_the_epochs_is_a_clear_error():
    with pytest.raises(ValueError, match=r"`valid_every`.*Received: valid_every=3, epochs=2"):
        _config(valid_every=3)
    with pytest.raises(ValueError, match=r"`valid_every`.*Received: valid_every=0"):
        _config(valid_every=0)
    assert _config(valid_every=3, valid_fraction=0.0).valid_every == 3  # nothing to validate


def test_rerun_with_other_settings_is_refused(tmp_path):
    train(_config(epochs=1), str(tmp_path), verbose=0)
    with pytest.raises(ValueError, match="other settings.*learning_rate"):
        train(_config(epochs=1, learning_rate=0.5), str(tmp_path), verbose=0)
    assert "run.lock" not in _files(tmp_path)  # released after the error too
    with runfolder.RunFolderLock(str(tmp_path)) as lock:
        assert lock.locked and lock.stale_holder is None


def test_load_run_restores_the_best_model(tmp_path):
    result = train(_config(), str(tmp_path), verbose=0)
    config, data, model = load_run(str(tmp_path))
    again = evaluate(model, data.test, data.items, ks=config.ks)
    assert again == pytest.approx(result.metrics)


def _embeddings(model, users):
    """Catalog embeddings, the users' embeddings and their scores (scale x cosine)."""
    items = model.embed_items()
    queries = model.embed_users({"history": users.history, "user_id": users.user_id})
    return items, queries, model.config.scale * queries @ items.T


def test_load_model_from_the_run_files_equals_the_model_from_the_data(tmp_path):
    """Every input the files must carry: user ids, item and user features, logQ frequencies."""
    config = _config(
        epochs=1,
        model={
            "num_negatives": 32,
            "use_user_id": True,
            "item_features": ["category"],
            "user_features": ["group"],
            "logq_correction": True,
        },
    )
    data = load_data(config)
    users = sorted(set(data.train.user_id))
    groups = {user: f"g{k % 3}" for k, user in enumerate(users[::2])}  # others: no value
    data = dataclasses.replace(data, user_features={"group": groups})
    result = train(config, str(tmp_path), data=data, verbose=0)

    from_files, run_config = load_model(str(tmp_path))  # no dataset needed
    assert run_config["training"] == config.to_dict()
    from_data = build_model(config, data)  # the model as training built it, best weights
    from_data.compile(optimizer=OPTIMIZERS[config.optimizer]())
    build_variables(from_data, data)
    from_data.load_weights(str(tmp_path / "best.weights.h5"))
    assert from_files.config == from_data.config
    assert list(from_files.items) == list(from_data.items) == list(data.items)

    expected = _embeddings(from_data, data.test)
    for model in (from_files, result.model):
        for got, want in zip(_embeddings(model, data.test), expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # the user features really reach the tower: a user's group changes the embedding
    user = {
        "history": tf.constant(data.test.history[:1]),
        "user_id": tf.constant(data.test.user_id[:1]),
    }
    g0, g1 = (
        from_files.user_tower({**user, "group": tf.constant([g])}).numpy() for g in ("g0", "g1")
    )
    assert not np.allclose(g0, g1)

    config_back, data_back, model_back = load_run(str(tmp_path), data=data)
    assert config_back == config
    assert evaluate(model_back, data.test, data.items, ks=config.ks) == pytest.approx(
        result.metrics
    )
    other = dataclasses.replace(data, items=data.items[::-1])
    with pytest.raises(ValueError, match="catalog"):
        load_run(str(tmp_path), data=other)


def test_load_model_of_a_run_without_a_finished_epoch_says_what_is_missing(tmp_path):
    train(_config(epochs=1), str(tmp_path), verbose=0)
    (tmp_path / "best.weights.h5").unlink()
    model, _ = load_model(str(tmp_path))  # falls back to the last epoch's checkpoint
    assert model.embed_items().shape == (80, 32)
    shutil.rmtree(tmp_path / "checkpoints")
    with pytest.raises(FileNotFoundError) as info:
        load_model(str(tmp_path))
    message = str(info.value)
    assert "best.weights.h5" in message and "checkpoint" in message
    assert "not finished an epoch" in message
    with pytest.raises(FileNotFoundError, match="not a training run folder"):
        load_model(str(tmp_path / "missing"))


def test_a_run_folder_in_use_is_refused_before_the_data_loads(tmp_path, capsys, monkeypatch):
    def no_loading(config):
        raise AssertionError("the data was loaded")

    monkeypatch.setattr(run_module, "load_data", no_loading)
    out = tmp_path / "run"
    with holding_lock(out) as holder:
        started = time.time()
        with pytest.raises(RunFolderInUse) as info:
            train(_config(), str(out), verbose=0)
        assert time.time() - started < 10
        assert f"pid {holder.pid} on host" in str(info.value) and "since" in str(info.value)
        # the command line: one clean error line, exit code 2
        with pytest.raises(SystemExit) as stop:
            train_cli.main(["--output-dir", str(out), *TINY_FLAGS])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        (line,) = [x for x in err.splitlines() if "error:" in x]
        assert "in use" in line and f"pid {holder.pid}" in line
        assert os.listdir(out) == ["run.lock"]  # the holder's, untouched


def test_trained_model_beats_popularity_on_planted_structure(tmp_path):
    options = {"num_users": 400, "num_items": 200, "num_interests": 10, "noise": 0.05}
    config = _config(
        dataset_options=options,
        epochs=4,
        ks=(10, 20),
        model={"num_negatives": 64, "loss": "cro-lambda"},
    )
    result = train(config, str(tmp_path), verbose=0)
    popularity = PopularityBaseline(result.data.train.target, result.data.items)
    baseline = evaluate(popularity, result.data.test, result.data.items, ks=(10, 20))
    assert result.metrics["recall@20"] > 1.5 * baseline["recall@20"], (result.metrics, baseline)
    assert result.metrics["recall@20"] > 0.3


@pytest.mark.parametrize("loss", ["softmax", "bpr", "triplet", "cro"])
def test_every_loss_trains(tmp_path, loss):
    result = train(
        _config(epochs=1, model={"num_negatives": 16, "loss": loss, "loss_options": {}}),
        str(tmp_path),
        verbose=0,
    )
    assert np.isfinite(list(result.metrics.values())).all()


# ------------------------------------------------------------------- command line


def _run(module, *args):
    env = cli.environ(TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    return cli.run_module(module, *args, env=env)


TINY_OPTIONS = {**cli.TWO_EPOCHS, "verbose": 0}
TINY_FLAGS = cli.flags(TINY_OPTIONS)


def _write_movielens(folder):
    interactions = data_lib.synthetic.generate(**cli.SIZES, seed=1).frame
    frame = pd.DataFrame(
        {
            "user": interactions["user"].str[1:].astype(int) + 1,
            "item": interactions["item"].str[1:].astype(int) + 1,
            "rating": 4,
            "time": interactions["time"].astype(int),
        }
    )
    frame.to_csv(folder / "u.data", sep="\t", header=False, index=False)
    return frame


def test_cli_train_then_evaluate_on_movielens_format(tmp_path):
    data_dir = tmp_path / "ml"
    data_dir.mkdir()
    _write_movielens(data_dir)
    run_dir = tmp_path / "run"
    movielens = cli.flags(dataset="movielens", data_dir=data_dir, run_dir=run_dir)
    proc = _run("pipelines.train", *movielens, *TINY_FLAGS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "recall" in proc.stdout and "run folder" in proc.stdout
    config = json.loads((run_dir / "config.json").read_text())["training"]
    assert config["dataset"] == "movielens" and config["model"]["loss"] == "cro-lambda"
    proc = _run(
        "pipelines.evaluate", "--run-dir", str(run_dir), "--output", str(tmp_path / "eval.json")
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    again = json.loads((tmp_path / "eval.json").read_text())
    assert again["recall@20"] == pytest.approx(metrics["recall@20"])


def test_cli_features_reach_both_towers_and_the_export(tmp_path):
    data_dir = tmp_path / "ml"
    data_dir.mkdir()
    frame = _write_movielens(data_dir)
    items, users = sorted(frame["item"].unique()), sorted(frame["user"].unique())
    genres = ["Action", "Comedy", "Drama"]
    pd.DataFrame(
        {
            "item_id": items,
            "title": [f"t{i}" for i in items],
            "release_year": [1990 + i % 5 for i in items],
            "genres": [f"{genres[i % 3]} Other" for i in items],
        }
    ).to_csv(data_dir / "items.tsv", sep="\t", index=False)
    pd.DataFrame(
        {
            "user_id": users,
            "age": [18 + u % 40 for u in users],
            "gender": ["MF"[u % 2] for u in users],
            "occupation": "other",
            "zip_code": "0",
        }
    ).to_csv(data_dir / "users.tsv", sep="\t", index=False)
    run_dir, export_dir = tmp_path / "run", tmp_path / "export"
    features = cli.flags(
        dataset="movielens",
        data_dir=data_dir,
        item_features="genre",
        user_features="gender,age",
        run_dir=run_dir,
        export_dir=export_dir,
    )
    proc = _run("pipelines.train", *features, *cli.flags(TINY_OPTIONS, no_export=False))
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = json.loads((run_dir / "config.json").read_text())["model"]
    assert model["item_features"] == ["genre"] and model["user_features"] == ["gender", "age"]
    manifest = json.loads((export_dir / "export.json").read_text())
    inputs = manifest["user_tower"]["signatures"]["serving_default"]["inputs"]
    assert {"history", "gender", "age"} <= set(inputs)

    # a feature the dataset does not have: a clean error naming what it has, nothing written
    unknown = cli.flags(
        dataset="movielens", data_dir=data_dir, item_features="color", run_dir=tmp_path / "bad"
    )
    proc = _run("pipelines.train", *unknown, *TINY_FLAGS)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "item_features=['color']" in proc.stderr and "'genre'" in proc.stderr
    assert not (tmp_path / "bad").exists()


def test_cli_collaborative_protocol_on_pairs_format(tmp_path):
    frame = _write_movielens(tmp_path)
    rng = np.random.default_rng(0)
    is_test = rng.random(len(frame)) < 0.2
    data_dir = tmp_path / "pairs"
    data_dir.mkdir()
    for name, part in (("train.tsv", frame[~is_test]), ("test.tsv", frame[is_test])):
        part[["user", "item"]].rename(
            columns={"user": "user_procid", "item": "item_procid"}
        ).to_csv(data_dir / name, sep="\t", index=False)
    run_dir = tmp_path / "run"
    pairs = cli.flags(
        dataset="pairs",
        data_dir=data_dir,
        protocol="collaborative",
        use_user_id=True,
        loss="softmax",
        run_dir=run_dir,
    )
    proc = _run("pipelines.train", *pairs, *TINY_FLAGS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_users"] > 0 and 0 <= metrics["recall@20"] <= 1


def test_cli_rejects_bad_options_cleanly(tmp_path):
    proc = _run("pipelines.train", "--alpha", "-1", "--run-dir", str(tmp_path / "x"))
    assert proc.returncode == 2
    assert "alpha" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x" / "config.json").exists()


def test_main_job_runs_on_tiny_settings(tmp_path):
    tiny = cli.flags(cli.SIZES, epochs=1, output_dir=tmp_path / "main", no_export=True, verbose=0)
    proc = _run("pipelines.main", *tiny)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cro-lambda" in proc.stdout and "softmax" in proc.stdout
    assert proc.stdout.count("\n   100 ") >= 1  # the Recall@100 row of the table
    for name in ("cro-lambda", "softmax"):
        assert (tmp_path / "main" / name / "metrics.json").is_file()
