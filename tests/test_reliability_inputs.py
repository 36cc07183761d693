"""Bad input everywhere a user can give it: options, CLI flags, data files, unknown ids.

Every bad input must end in a clear error (``ValueError``/``DataFormatError``
naming the parameter or the file and line; on the command line ``error: ...``,
exit code 2, no traceback) or a documented cleaning step, and must never leave
a run folder behind that blocks a corrected rerun.
"""

import dataclasses
import json
import logging
import os
import pickle

import numpy as np
import pandas as pd
import pytest

from pipelines import train as train_cli
from tests import cli
from tfcro import data as data_lib
from tfcro import losses
from tfcro._compat import tf
from tfcro.data.readers import DataFormatError
from tfcro.models import TwoTowerConfig, TwoTowerModel
from tfcro.training import TrainingConfig, train

DATA = os.path.join(cli.ROOT, "tests", "data")
TINY = cli.flags(cli.ONE_EPOCH, verbose=0, no_export=True)


# ----------------------------------------------------------------------------- options

BAD_OPTIONS = [
    (lambda: losses.get("cro-lambda", alpha=-1.0), "alpha"),
    (lambda: losses.get("cro-lambda", alpha=float("nan")), "alpha"),
    (lambda: losses.get("cro-lambda", kernel="nope"), "kernel"),
    (lambda: losses.get("cro-lambda", weight_kernel="nope"), "weight_kernel"),
    (lambda: losses.get("nope"), "loss"),
    (lambda: losses.get("cro", num_items=0), "num_items"),
    (lambda: TwoTowerConfig(embedding_dim=0), "embedding_dim"),
    (lambda: TwoTowerConfig(scale=0), "scale"),
    (lambda: TwoTowerConfig(num_negatives=-1), "num_negatives"),
    (lambda: TwoTowerConfig(pooling="max2"), "pooling"),
    (lambda: TwoTowerConfig(loss="nope"), "loss"),
    (lambda: TwoTowerConfig(in_batch_negatives=False, num_negatives=0), "num_negatives"),
    (
        lambda: TwoTowerConfig(
            cross_replica_negatives=True, in_batch_negatives=False, num_negatives=8
        ),
        "in_batch_negatives",
    ),
    (lambda: TwoTowerConfig.from_dict({"embedding_dimension": 8}), "embedding_dimension"),
    (lambda: TrainingConfig(epochs=0), "epochs"),
    (lambda: TrainingConfig(batch_size=-1), "batch_size"),
    (lambda: TrainingConfig(learning_rate=float("nan")), "learning_rate"),
    (lambda: TrainingConfig(optimizer="rmsprop"), "optimizer"),
    (lambda: TrainingConfig(protocol="random"), "protocol"),
    (lambda: TrainingConfig(dataset="imagenet"), "dataset"),
    (lambda: TrainingConfig(ks=(0,)), "ks"),
    (lambda: TrainingConfig(monitor="recall@abc"), "monitor"),
    (lambda: TrainingConfig(monitor="accuracy@10"), "monitor"),
    (lambda: TrainingConfig(patience=-3), "patience"),
    (lambda: TrainingConfig(k_core=-1), "k_core"),
    (lambda: TrainingConfig(seed="x"), "seed"),
    (lambda: TrainingConfig(model={"embedding_dim": -1}), "embedding_dim"),
    # loss options inside the model settings are checked before any data loads
    (lambda: TrainingConfig(model={"loss": "cro", "loss_options": {"alpha": -2.0}}), "alpha"),
    (lambda: TrainingConfig.from_dict({"epoch": 3}), "epoch"),
]


@pytest.mark.parametrize("make, name", BAD_OPTIONS)
def test_bad_options_raise_value_error_naming_the_parameter(make, name):
    with pytest.raises(ValueError, match=name):
        make()


# ----------------------------------------------------------------------------- CLI


def _cli_error(argv, capsys):
    """Runs ``pipelines.train.main`` in-process; returns (exit code, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(argv)
    return exit_info.value.code, capsys.readouterr().err


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def not_a_dataset(tmp_path):
    folder = tmp_path / "holiday_photos"
    folder.mkdir()
    (folder / "beach.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a dataset")
    return str(folder)


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--alpha", "-1"], "alpha"),
        (["--alpha", "abc"], "--alpha: invalid float value"),
        (["--kernel", "nope"], "kernel"),
        (["--weight-kernel", "nope"], "weight_kernel"),
        (["--epochs", "0"], "epochs"),
        (["--batch-size", "0"], "batch_size"),
        (["--learning-rate", "-0.1"], "learning_rate"),
        (["--ks", "10,x"], "comma-separated integers"),
        (["--monitor", "recall"], "monitor"),
        (["--embedding-dim", "0"], "embedding_dim"),
        (["--dataset", "imagenet"], "invalid choice"),
        (["--dataset", "table"], "data_dir"),  # a table needs --data-dir
        (["--dataset", "movielens", "--data-dir", "/nonexistent/ml-100k"], "not a directory"),
        (["--dataset", "pairs", "--data-dir", "{not_a_dataset}"], "not a pairs dataset"),
        (["--dataset", "movielens", "--data-dir", "{not_a_dataset}"], "beach.jpg"),
        (["--dataset", "lightgcn", "--data-dir", "{not_a_dataset}"], "train.txt"),
        (["--dataset", "table", "--data-dir", "{not_a_dataset}"], "directory, not a file"),
        (["--distribute", "multi-worker"], "TF_CONFIG"),
        (["--distribute", "spark"], "invalid choice"),
    ],
)
def test_cli_bad_arguments_exit_2_with_a_clean_message(
    extra, expected, tmp_path, capsys, monkeypatch, not_a_dataset
):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    out = tmp_path / "run"
    extra = [a.replace("{not_a_dataset}", not_a_dataset) for a in extra]
    code, err = _cli_error(TINY + ["--output-dir", str(out)] + extra, capsys)
    assert code == 2
    assert "error:" in err and expected in err
    assert "Traceback" not in err
    assert not out.exists()  # nothing written


def test_cli_table_without_the_columns(tmp_path, capsys):
    table = _write(tmp_path / "log.csv", "visitor,product\n1,2\n3,4\n")
    code, err = _cli_error(
        TINY + ["--dataset", "table", "--data-dir", table, "--output-dir", str(tmp_path / "run")],
        capsys,
    )
    assert code == 2
    assert "log.csv" in err and "'user'" in err and "visitor" in err
    code, err = _cli_error(
        TINY
        + [
            "--dataset",
            "table",
            "--data-dir",
            table,
            "--user-col",
            "visitor",
            "--item-col",
            "item_id",
            "--output-dir",
            str(tmp_path / "run"),
        ],
        capsys,
    )
    assert code == 2 and "item_id" in err
    assert not (tmp_path / "run").exists()


def test_cli_subprocess_bad_input_exit_code_and_no_traceback(tmp_path):
    extra = ["--dataset", "movielens", "--data-dir", "/nonexistent/ml-100k"]
    expected = "not a directory"
    out = tmp_path / "run"
    proc = cli.run_module(
        "pipelines.train",
        *TINY,
        "--output-dir",
        str(out),
        *extra,
        env=cli.environ(TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "error:" in proc.stderr and expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


# ----------------------------------------------------------------------------- data files


@pytest.mark.parametrize(
    "name, files, match",
    [
        ("movielens", {}, "is not a MovieLens dataset"),
        ("movielens", {"u.data": ""}, r"u\.data: file is empty"),
        ("movielens", {"u.data": "\n\n"}, r"u\.data: file has no data"),
        ("movielens", {"u.data": '{"user": 1, "item": 2}\n'}, r"u\.data, line 1"),  # wrong format
        (
            "movielens",
            {"u.data": "1\t10\t5\t100\nalice\t11\t3\t90\n"},
            r"u\.data, line 2: .*'user'",
        ),
        ("movielens", {"u.data": "1\t10\t5\t100\n2\t-11\t3\t90\n"}, r"u\.data, line 2: .*'item'"),
        (
            "movielens",
            {"u.data": "1\t10\t5\t100\n2\t11\tNaN\t90\n"},
            r"u\.data, line 2: .*'rating'",
        ),
        ("movielens", {"u.data": "1\t10\t5\t100\n2\t11\t3\tnan\n"}, r"u\.data, line 2: .*'time'"),
        ("movielens", {"u.data": "1\t10\t5\n"}, r"u\.data, line 1: field .time. is missing"),
        ("movielens", {"ratings.csv": "userId,rating\n1,5\n"}, r"ratings\.csv, line 1: .*movieId"),
        ("pairs", {"train.tsv": "0\t1\n0\tx\n", "test.tsv": "0\t2\n"}, r"train\.tsv, line 2"),
        ("lightgcn", {"train.txt": "0 1 2\n1 2 -3\n"}, r"train\.txt, line 2"),
        ("comirec", {"book.txt": "1,10,5\n2,11,yesterday\n"}, r"book\.txt, line 2"),
    ],
)
def test_bad_data_files_name_the_file_and_line(tmp_path, name, files, match):
    for file, text in files.items():
        _write(tmp_path / file, text)
    with pytest.raises(ValueError, match=match):
        data_lib.load_dataset(name, str(tmp_path))


@pytest.mark.parametrize(
    "text, match",
    [
        ("user,item,time\n1,2,2020-01-01\n3,,2020-01-02\n", r"line 3: field 'item'"),
        ("user,item,time\n1,2,10\n3,4,NaN\n", r"line 3: field 'time' must be a finite number"),
        ("user,item\n", r"no data rows"),
    ],
)
def test_bad_tables(tmp_path, text, match):
    path = _write(tmp_path / "log.csv", text)
    with pytest.raises(DataFormatError, match=match) as info:
        data_lib.load_dataset("table", path, time_col="time")
    assert info.value.path == path


def test_parquet_with_nan_id(tmp_path):
    path = tmp_path / "log.parquet"
    pd.DataFrame({"user": ["1", None], "item": ["a", "b"]}).to_parquet(path)
    with pytest.raises(DataFormatError, match=r"line 2: null value in column 'user'"):
        data_lib.load_dataset("table", str(path))


def test_duplicate_rows_are_dropped_and_counted(tmp_path, caplog):
    _write(tmp_path / "train.tsv", "0\t1\n0\t1\n0\t2\n1\t1\n1\t1\n1\t1\n")
    _write(tmp_path / "test.tsv", "0\t3\n")
    with caplog.at_level(logging.INFO, logger="tfcro.data"):
        data = data_lib.load_dataset("pairs", str(tmp_path))
    assert len(data) == 4
    assert "dropped 3 duplicate" in caplog.text


# ----------------------------------------------------------------------------- untrusted files


def test_no_unpickling_in_the_package():
    """No pickle/joblib/marshal in the package; np.load only with allow_pickle=False."""
    offenders = []
    for folder in ("tfcro", "pipelines"):
        for base, _, names in os.walk(os.path.join(cli.ROOT, folder)):
            for name in names:
                if not name.endswith(".py"):
                    continue
                text = open(os.path.join(base, name), encoding="utf-8").read()
                for word in (
                    "import pickle",
                    "cPickle",
                    "joblib",
                    "marshal.load",
                    "read_pickle",
                    "dill",
                ):
                    if word in text:
                        offenders.append(f"{name}: {word}")
                for line in text.splitlines():
                    if "np.load(" in line and "allow_pickle=False" not in line:
                        offenders.append(f"{name}: {line.strip()}")
    assert not offenders


def test_pickled_files_are_rejected_not_unpickled(tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("an input file was unpickled")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pd, "read_pickle", forbidden)
    frame = pd.DataFrame({"user": ["1"], "item": ["2"]})
    for suffix in (".parquet", ".csv", ".pkl"):
        path = tmp_path / f"log{suffix}"
        path.write_bytes(pickle.dumps(frame))
        with pytest.raises(DataFormatError):
            data_lib.load_dataset("table", str(path))
    (tmp_path / "u.data").write_bytes(pickle.dumps(frame))
    with pytest.raises(DataFormatError, match=r"u\.data"):
        data_lib.load_dataset("movielens", str(tmp_path))


# ----------------------------------------------------------------------------- run folder


def _tiny_config(**overrides):
    values = dict(
        dataset="synthetic",
        dataset_options=dict(cli.SIZES),
        epochs=1,
        batch_size=64,
        patience=None,
        ks=(10,),
        monitor="recall@10",
        model={"num_negatives": 32},
    )
    values.update(overrides)
    return TrainingConfig(**values)


def test_bad_data_leaves_no_run_folder_and_a_corrected_rerun_works(tmp_path):
    table = tmp_path / "log.csv"
    table.write_text(
        "user,item\n" + "".join(f"u{i % 40},i{(i * 7) % 30}\n" for i in range(600)) + "u1,\n"
    )
    out = tmp_path / "run"
    bad = _tiny_config(dataset="table", data_dir=str(table), dataset_options={})
    with pytest.raises(DataFormatError, match="line 602"):
        train(bad, str(out), verbose=0)
    assert not out.exists()

    # A folder left by a failed attempt with other settings (config.json, no checkpoint)
    # does not block a corrected run: it holds no trained epoch.
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"training": {**bad.to_dict(), "seed": 7}}))
    with pytest.raises(DataFormatError):
        train(bad, str(out), verbose=0)
    assert sorted(os.listdir(out)) == ["config.json"]  # untouched
    table.write_text(table.read_text().replace("u1,\n", "u1,i3\n"))
    result = train(bad, str(out), verbose=0)
    assert result.epochs_run == 1
    saved = json.loads((out / "config.json").read_text())["training"]
    assert saved["seed"] == 0 and os.path.isfile(out / "metrics.json")


# ----------------------------------------------------------------------------- OOV


def test_unknown_ids_and_empty_histories_train_and_embed_through_oov():
    items = np.array([f"i{j}" for j in range(20)])
    model = TwoTowerModel(items, TwoTowerConfig(embedding_dim=8, num_negatives=4, seed=0))
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    history = np.array([["i1", "i2", ""], ["ghost", "", ""], ["", "", ""], ["i3", "zzz", ""]])
    batch = {
        "history": history,
        "user_id": np.array(["a", "b", "c", "d"]),
        "item_id": np.array(["i4", "i5", "unknown-item", "i6"]),
    }
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(4).repeat(3)
    logs = model.fit(dataset, epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"]).all()
    users = model.embed_users({"history": history})
    candidates = model.embed_items(["i1", "never-seen", ""])
    assert np.isfinite(users).all() and np.isfinite(candidates).all()
    np.testing.assert_allclose(np.linalg.norm(users, axis=1), 1.0, rtol=1e-4)
    # a serving-time query of unknown ids only is a valid (OOV) user, not the empty one
    assert not np.allclose(users[1], users[2])


def test_training_data_with_unknown_history_ids_and_empty_histories(tmp_path):
    data = data_lib.sequential_split(
        data_lib.synthetic.generate(num_users=150, num_items=80), max_history=5, seed=0
    )
    history = data.train.history.copy()
    history[::3, 0] = "not-in-catalog"
    history[1::3, :] = data_lib.PAD
    data = dataclasses.replace(data, train=dataclasses.replace(data.train, history=history))
    result = train(_tiny_config(max_history=5), str(tmp_path), data=data, verbose=0)
    assert all(np.isfinite(v) for v in result.metrics.values())
