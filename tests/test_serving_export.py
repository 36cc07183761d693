"""SavedModel export: round trip, plain-TensorFlow loading, saved_model_cli, atomic versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.test_serving_support import make_towers
from tfcro._compat import tf
from tfcro.serving import export as export_lib
from tfcro.serving import export_model, list_versions, read_items, versioning

VENV_BIN = os.path.dirname(sys.executable)
HISTORIES = np.asarray(
    [
        ["i1", "i2", "i3", ""],  # known ids
        ["zzz", "i4", "", ""],  # an unknown id (OOV) and a known one
        ["nope", "", "", ""],  # only unknown
        ["", "", "", ""],  # empty history
    ],
    dtype=object,
)


@pytest.fixture(scope="module")
def towers():
    return make_towers(num_items=60, dim=8, seed=1)


@pytest.fixture(scope="module")
def exported(towers, tmp_path_factory):
    user_tower, item_tower, items = towers
    out = tmp_path_factory.mktemp("export") / "run"
    result = export_model(
        user_tower,
        item_tower,
        items,
        str(out),
        config={"embedding_dim": 8},
        scale=10.0,
        num_neighbors=20,
    )
    return result


def test_layout_and_manifest(exported, towers):
    out = exported.output_dir
    assert exported.version == 1
    for sub in ("user_tower/1", "item_tower/1", "scann/1"):
        assert os.path.isdir(os.path.join(out, sub)), sub
    assert os.path.isfile(os.path.join(out, "user_tower/1/saved_model.pb"))
    assert not [n for n in os.listdir(out) if n.startswith(".staging")]
    manifest = json.load(open(exported.manifest_path))
    assert manifest["catalog_size"] == 60 and manifest["embedding_dim"] == 8
    assert manifest["scale"] == 10.0 and manifest["model"] == {"embedding_dim": 8}
    assert set(manifest["versions"]) >= {"tfcro", "tensorflow", "scann"}
    assert manifest["scann"]["params"]["algorithm"] == "brute_force"  # 60 items
    assert manifest["scann"]["recall"]["recall"] == pytest.approx(1.0)
    inputs = manifest["user_tower"]["signatures"]["serving_default"]["inputs"]
    assert inputs == {"history": {"dtype": "string", "shape": [None, None]}}
    ids, emb = read_items(exported.items_path)
    _, item_tower, items = towers
    assert ids.tolist() == items.tolist()
    np.testing.assert_allclose(
        emb, item_tower({"item_id": tf.constant(items.astype(str))}).numpy(), atol=1e-6
    )


def test_round_trip_known_unknown_and_empty_histories(exported, towers):
    user_tower, item_tower, items = towers
    loaded = tf.saved_model.load(exported.user_tower_dir)
    served = loaded.signatures["serving_default"](history=tf.constant(HISTORIES.astype(str)))
    expected = user_tower({"history": tf.constant(HISTORIES.astype(str))}).numpy()
    np.testing.assert_allclose(served["embedding"].numpy(), expected, atol=1e-6)
    # Unknown ids hit the OOV bucket: history ["nope"] differs from the empty one.
    assert not np.allclose(expected[2], expected[3])
    # A different padded length gives the same embeddings.
    wider = np.concatenate([HISTORIES, np.full((4, 3), "", dtype=object)], axis=1)
    served_wide = loaded.signatures["serving_default"](history=tf.constant(wider.astype(str)))
    np.testing.assert_allclose(served_wide["embedding"].numpy(), expected, atol=1e-6)
    # The ragged signature: values + row lengths.
    rows = [[i for i in row if i] for row in HISTORIES]
    ragged = loaded.signatures["serving_ragged"](
        history_values=tf.constant(sum(rows, []), tf.string),
        history_row_lengths=tf.constant([len(r) for r in rows], tf.int64),
    )
    np.testing.assert_allclose(ragged["embedding"].numpy(), expected, atol=1e-6)
    item_loaded = tf.saved_model.load(exported.item_tower_dir)
    got = item_loaded.signatures["serving_default"](item_id=tf.constant(["i3", "unknown"]))
    want = item_tower({"item_id": tf.constant(["i3", "unknown"])}).numpy()
    np.testing.assert_allclose(got["embedding"].numpy(), want, atol=1e-6)


def test_loads_with_plain_tensorflow_without_tfcro_or_scann(exported, towers):
    user_tower = towers[0]
    expected = user_tower({"history": tf.constant(HISTORIES.astype(str))}).numpy()
    script = textwrap.dedent(
        f"""
        import json, sys
        import tensorflow as tf
        model = tf.saved_model.load({exported.user_tower_dir!r})
        out = model.signatures["serving_default"](history=tf.constant({HISTORIES.tolist()!r}))
        bad = [m for m in sys.modules if m.split(".")[0] in ("tfcro", "scann", "tf_keras")]
        print(json.dumps({{"bad": bad, "embedding": out["embedding"].numpy().tolist()}}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "PYTHONPATH")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["bad"] == []
    np.testing.assert_allclose(np.asarray(result["embedding"]), expected, atol=1e-6)


def _saved_model_cli(*args):
    return subprocess.run(
        [os.path.join(VENV_BIN, "saved_model_cli"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=180,
    )


def test_saved_model_cli_show_and_run(exported):
    show = _saved_model_cli("show", "--all", "--dir", exported.user_tower_dir)
    assert show.returncode == 0, show.stderr[-3000:]
    assert "signature_def['serving_default']" in show.stdout
    assert "inputs['history'] tensor_info" in show.stdout
    assert "outputs['embedding'] tensor_info" in show.stdout
    assert "signature_def['serving_ragged']" in show.stdout
    run = _saved_model_cli(
        "run",
        "--dir",
        exported.user_tower_dir,
        "--tag_set",
        "serve",
        "--signature_def",
        "serving_default",
        "--input_exprs",
        'history=[["i1","i2"]]',
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Result for output key embedding" in run.stdout


def test_next_export_gets_the_next_version_and_failures_leave_nothing(
    towers, tmp_path, monkeypatch
):
    user_tower, item_tower, items = towers
    out = str(tmp_path / "run")
    kwargs = {"config": {}, "scale": 5.0, "num_neighbors": 5}
    first = export_model(user_tower, item_tower, items, out, **kwargs)
    assert first.version == 1

    def boom(*args, **kw):
        raise RuntimeError("injected failure while writing items.parquet")

    monkeypatch.setattr(export_lib, "_write_items", boom)
    with pytest.raises(RuntimeError, match="injected failure"):
        export_model(user_tower, item_tower, items, out, **kwargs)
    monkeypatch.undo()
    for sub in ("user_tower", "item_tower", "scann"):
        assert list_versions(os.path.join(out, sub)) == [1], sub
    assert sorted(os.listdir(out)) == [
        "export.json",
        "item_tower",
        "items.parquet",
        "scann",
        "user_tower",
    ]
    assert json.load(open(os.path.join(out, "export.json")))["version"] == 1

    # A failure during the final renames rolls back the folders already renamed.
    real_rename = os.rename
    calls = {"n": 0}

    def flaky_rename(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("injected failure during commit")
        return real_rename(src, dst)

    monkeypatch.setattr(export_lib.__dict__["os"], "rename", flaky_rename)
    with pytest.raises(OSError, match="injected failure during commit"):
        export_model(user_tower, item_tower, items, out, **kwargs)
    monkeypatch.undo()
    for sub in ("user_tower", "item_tower", "scann"):
        assert list_versions(os.path.join(out, sub)) == [1], sub

    # What a SIGKILLed export leaves: its staging folder. The next export removes it if
    # its process is gone, and keeps those of live processes and of other hosts.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    host = versioning._host()
    abandoned = f".staging-{host}-{int(dead.stdout)}-0123456789ab"
    running = f".staging-{host}-{os.getppid()}-0123456789ab"
    elsewhere = f".staging-otherhost-{int(dead.stdout)}-0123456789ab"
    for name in (abandoned, running, elsewhere):
        os.makedirs(os.path.join(out, name, "user_tower"))
    second = export_model(user_tower, item_tower, items, out, **kwargs)
    assert sorted(n for n in os.listdir(out) if n.startswith(".staging")) == sorted(
        [running, elsewhere]
    )
    assert second.version == 2
    assert list_versions(os.path.join(out, "user_tower")) == [1, 2]
    assert json.load(open(os.path.join(out, "export.json")))["version"] == 2
    with pytest.raises(ValueError, match="`version` 2 already exists"):
        export_model(user_tower, item_tower, items, out, version=2, **kwargs)
    assert export_model(user_tower, item_tower, items, out, version=7, **kwargs).version == 7


def test_invalid_arguments(towers, tmp_path):
    user_tower, item_tower, items = towers
    with pytest.raises(ValueError, match="`scale`"):
        export_model(user_tower, item_tower, items, str(tmp_path), config={}, scale=0.0)
    with pytest.raises(ValueError, match="unique"):
        export_model(user_tower, item_tower, ["a", "a"], str(tmp_path), config={}, scale=1.0)
    with pytest.raises(ValueError, match="`scann_params`: Unknown ScannParams keys"):
        export_model(
            user_tower,
            item_tower,
            items,
            str(tmp_path),
            config={},
            scale=1.0,
            scann_params={"leaves": 3},
        )
    assert not os.path.exists(os.path.join(tmp_path, "user_tower"))


def test_user_id_input_is_part_of_the_signature(tmp_path):
    user_tower, item_tower, items = make_towers(num_items=20, dim=4, use_user_id=True)
    result = export_model(
        user_tower, item_tower, items, str(tmp_path / "r"), config={}, scale=1.0, num_neighbors=5
    )
    loaded = tf.saved_model.load(result.user_tower_dir)
    signature = loaded.signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == {"history", "user_id"}
    feed = {"history": tf.constant([["i1", ""], ["", ""]]), "user_id": tf.constant(["u1", "x"])}
    np.testing.assert_allclose(
        signature(**feed)["embedding"].numpy(), user_tower(feed).numpy(), atol=1e-6
    )


def test_scann_model_opt_in_warns_and_returns_top_ids(tmp_path):
    user_tower, item_tower, items = make_towers(num_items=600, dim=8, seed=2)
    with pytest.warns(UserWarning, match="Stock TF Serving cannot load it"):
        result = export_model(
            user_tower,
            item_tower,
            items,
            str(tmp_path / "r"),
            config={},
            scale=2.0,
            num_neighbors=10,
            include_scann_model=True,
            scann_params={"algorithm": "tree_ah", "num_leaves": 10, "num_leaves_to_search": 10},
        )
    assert result.scann_model_dir.endswith("retrieval_scann/1")
    loaded = tf.saved_model.load(result.scann_model_dir)  # scann is imported: its ops load
    out = loaded.signatures["serving_default"](history=tf.constant([["i1", "i2"]]))
    assert out["item_ids"].shape == (1, 10)
    user = user_tower({"history": tf.constant([["i1", "i2"]])}).numpy()
    _, emb = read_items(result.items_path)
    exact = items[np.argsort(-(emb @ user[0]))[:10]]
    got = [i.decode() for i in out["item_ids"].numpy()[0]]
    assert len(set(got) & set(exact.tolist())) >= 8
