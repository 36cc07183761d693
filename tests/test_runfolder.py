"""The run folder's atomic writes and the clean-up of what killed writers leave."""

import json
import os

from tfcro import runfolder


def test_temporary_path_keeps_the_suffix_keras_requires():
    pid = os.getpid()
    assert runfolder.temporary_path("/r/best.weights.h5", ".weights.h5") == \
        f"/r/best.tmp-{pid}.weights.h5"
    assert runfolder.temporary_path("/r/state.json") == f"/r/state.json.tmp-{pid}"


def test_write_json_leaves_no_temporary_file(tmp_path):
    runfolder.write_json(str(tmp_path / "state.json"), {"b": 1, "a": [1, 2]})
    assert os.listdir(tmp_path) == ["state.json"]
    assert json.loads((tmp_path / "state.json").read_text()) == {"a": [1, 2], "b": 1}


def test_remove_stale_temporaries_removes_only_dead_writers_files(tmp_path):
    own = os.path.basename(runfolder.temporary_path(str(tmp_path / "metrics.json")))
    names = ["best.tmp-12.weights.h5", "state.json.tmp-345", own, "state.json",
             "best.weights.h5", "notes.tmp-draft", "tmp-1"]
    for name in names:
        (tmp_path / name).write_text("x")
    (tmp_path / "checkpoints.tmp-7").mkdir()  # a folder: not ours to delete
    removed = runfolder.remove_stale_temporaries(str(tmp_path))
    assert removed == ["best.tmp-12.weights.h5", "state.json.tmp-345"]
    assert sorted(os.listdir(tmp_path)) == sorted(
        [own, "state.json", "best.weights.h5", "notes.tmp-draft", "tmp-1", "checkpoints.tmp-7"])
    assert runfolder.remove_stale_temporaries(str(tmp_path / "missing")) == []
