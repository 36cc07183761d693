"""Export of the real TwoTowerModel from a training run folder, and the two pipelines."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from pipelines import export as export_pipeline
from pipelines import retrieve as retrieve_pipeline
from tfcro._compat import tf
from tfcro.models import TwoTowerConfig, TwoTowerModel
from tfcro.serving import Retriever, export_from_run
from tfcro.training import load_model

ITEMS = [f"m{k}" for k in range(40)]


def _make_run(run_dir, *, use_user_id=False, checkpoint_only=False):
    """A run folder as pipelines.train writes it, with random (untrained) weights."""
    config = TwoTowerConfig(embedding_dim=8, use_user_id=use_user_id, scale=12.0, seed=0)
    users = ["u1", "u2"] if use_user_id else None
    model = TwoTowerModel(ITEMS, config, users=users)
    features = {"history": tf.constant([["m1", ""]]), "item_id": tf.constant(["m2"])}
    if use_user_id:
        features["user_id"] = tf.constant(["u1"])
    model.compute_loss(features)  # builds the variables
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump({"model": config.to_dict(), "training": {"epochs": 1}}, f)
    with open(os.path.join(run_dir, "items.txt"), "w") as f:
        f.write("\n".join(ITEMS) + "\n")
    if use_user_id:
        with open(os.path.join(run_dir, "users.txt"), "w") as f:
            f.write("u1\nu2\n")
    if checkpoint_only:
        checkpoint = tf.train.Checkpoint(model=model, epoch=tf.Variable(1))
        tf.train.CheckpointManager(checkpoint, os.path.join(run_dir, "checkpoints"), 2).save()
    else:
        model.save_weights(os.path.join(run_dir, "best.weights.h5"))
    return model


@pytest.mark.parametrize("use_user_id, checkpoint_only", [(False, False), (True, True)])
def test_export_from_run_serves_the_trained_towers(tmp_path, use_user_id, checkpoint_only):
    run_dir = str(tmp_path / "run")
    model = _make_run(run_dir, use_user_id=use_user_id, checkpoint_only=checkpoint_only)
    rebuilt, _ = load_model(run_dir)
    np.testing.assert_allclose(rebuilt.embed_items(), model.embed_items(), atol=1e-6)
    result = export_from_run(run_dir, str(tmp_path / "saved"), num_neighbors=10)
    assert result.manifest["scale"] == 12.0
    assert result.manifest["model"]["embedding_dim"] == 8
    feed = {"history": tf.constant([["m1", "m3", ""], ["nope", "", ""], ["", "", ""]])}
    if use_user_id:
        feed["user_id"] = tf.constant(["u1", "u2", "unknown"])
    served = tf.saved_model.load(result.user_tower_dir).signatures["serving_default"](**feed)
    np.testing.assert_allclose(
        served["embedding"].numpy(), model.user_tower(feed).numpy(), atol=1e-6
    )
    users = {k: v.numpy().astype(str) for k, v in feed.items()}
    top = Retriever(result.output_dir).retrieve(users, n=5)
    scores = model.user_tower(feed).numpy() @ model.embed_items().T
    expected = np.asarray(ITEMS)[np.argsort(-scores, axis=1)[:, :5]]
    np.testing.assert_array_equal(top.ids, expected)
    np.testing.assert_allclose(
        top.scores, 12.0 * np.sort(scores, axis=1)[:, ::-1][:, :5], rtol=1e-5, atol=1e-5
    )


def test_export_and_retrieve_pipelines(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    _make_run(run_dir)
    out = str(tmp_path / "saved_models" / "run")
    assert (
        export_pipeline.main(["--run-dir", run_dir, "--output-dir", out, "--num-neighbors", "10"])
        == 0
    )
    assert "exported version 1" in capsys.readouterr().out
    assert export_pipeline.main(["--run-dir", run_dir, "--output-dir", out]) == 0
    assert "exported version 2" in capsys.readouterr().out
    code = retrieve_pipeline.main(
        [
            "--export-dir",
            out,
            "--history",
            "m1,m2",
            "--history",
            "",
            "-n",
            "3",
            "--exclude-history",
            "--json",
        ]
    )
    assert code == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [x["history"] for x in lines] == [["m1", "m2"], []]
    assert all(len(x["items"]) == 3 for x in lines)
    assert not {"m1", "m2"} & set(lines[0]["items"])
    assert export_pipeline.main(["--run-dir", str(tmp_path / "missing"), "--output-dir", out]) == 2
