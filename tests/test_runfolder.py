"""The run folder's atomic writes, the clean-up of what killed writers leave, and its lock."""

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from tfcro import runfolder


def test_temporary_path_keeps_the_suffix_keras_requires():
    pid = os.getpid()
    assert (
        runfolder.temporary_path("/r/best.weights.h5", ".weights.h5")
        == f"/r/best.tmp-{pid}.weights.h5"
    )
    assert runfolder.temporary_path("/r/state.json") == f"/r/state.json.tmp-{pid}"


def test_write_json_leaves_no_temporary_file(tmp_path):
    runfolder.write_json(str(tmp_path / "state.json"), {"b": 1, "a": [1, 2]})
    assert os.listdir(tmp_path) == ["state.json"]
    assert json.loads((tmp_path / "state.json").read_text()) == {"a": [1, 2], "b": 1}


def test_remove_stale_temporaries_removes_only_dead_writers_files(tmp_path):
    own = os.path.basename(runfolder.temporary_path(str(tmp_path / "metrics.json")))
    names = [
        "best.tmp-12.weights.h5",
        "state.json.tmp-345",
        own,
        "state.json",
        "best.weights.h5",
        "notes.tmp-draft",
        "tmp-1",
    ]
    for name in names:
        (tmp_path / name).write_text("x")
    (tmp_path / "checkpoints.tmp-7").mkdir()  # a folder: not ours to delete
    removed = runfolder.remove_stale_temporaries(str(tmp_path))
    assert removed == ["best.tmp-12.weights.h5", "state.json.tmp-345"]
    assert sorted(os.listdir(tmp_path)) == sorted(
        [own, "state.json", "best.weights.h5", "notes.tmp-draft", "tmp-1", "checkpoints.tmp-7"]
    )
    assert runfolder.remove_stale_temporaries(str(tmp_path / "missing")) == []


# ----------------------------------------------------------------------------- the lock

# A process that holds a run folder's lock until its stdin closes. It loads
# tfcro/runfolder.py by path (no TensorFlow import: it starts in well under a second).
HOLDER = textwrap.dedent("""
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("runfolder", sys.argv[1])
    runfolder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runfolder)
    lock = runfolder.RunFolderLock(sys.argv[2]).acquire()
    print("locked", flush=True)
    sys.stdin.read()
    lock.release()
""")


@contextlib.contextmanager
def holding_lock(folder):
    """Runs a real second process that holds the lock of ``folder`` (releasing it when its
    stdin closes); yields it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, runfolder.__file__, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_second_process_is_refused_naming_the_holder(tmp_path):
    folder = tmp_path / "run"
    with holding_lock(folder) as holder:
        started = time.time()
        with pytest.raises(runfolder.RunFolderInUse) as info:
            runfolder.RunFolderLock(str(folder)).acquire()
        assert time.time() - started < 5
        message = str(info.value)
        assert "in use" in message and str(folder) in message
        assert f"pid {holder.pid} on host {socket.gethostname()}, since " in message
        assert info.value.holder["pid"] == holder.pid
        assert isinstance(info.value, runfolder.RunFolderError)  # a ValueError: CLI exit 2
        holder.stdin.close()  # the holder releases: no lock file, and no folder it made
        assert holder.wait(timeout=30) == 0
    assert not folder.exists()
    with runfolder.RunFolderLock(str(folder)) as lock:
        assert lock.locked and lock.stale_holder is None


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path, caplog):
    folder = tmp_path / "run"
    with holding_lock(folder) as holder:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert os.listdir(folder) == [runfolder.LOCK_FILE]  # the dead holder's file stays
    with caplog.at_level(logging.WARNING, logger="tfcro.runfolder"):
        with runfolder.RunFolderLock(str(folder)) as lock:
            assert lock.stale_holder["pid"] == holder.pid
            holder_now = json.loads((folder / runfolder.LOCK_FILE).read_text())
            assert holder_now["pid"] == os.getpid()
    assert f"pid {holder.pid}" in caplog.text and "taking over" in caplog.text
    # the folder held nothing but the stale lock: it is removed with it
    assert not folder.exists()


def test_the_lock_is_exclusive_within_a_process_and_released_on_errors(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(RuntimeError, match="boom"):
        with runfolder.RunFolderLock(str(folder)):
            with pytest.raises(runfolder.RunFolderInUse, match=f"pid {os.getpid()}"):
                runfolder.RunFolderLock(str(folder)).acquire()
            raise RuntimeError("boom")
    assert os.listdir(folder) == ["config.json"]  # lock file gone, the folder kept
    with runfolder.RunFolderLock(str(folder)) as lock:
        assert lock.locked


def test_a_folder_made_for_the_lock_alone_is_removed_on_release(tmp_path):
    folder = tmp_path / "new" / "run"
    with runfolder.RunFolderLock(str(folder)):
        assert os.listdir(folder) == [runfolder.LOCK_FILE]
    assert not folder.exists()
    with runfolder.RunFolderLock(str(folder)):  # written to: kept
        (folder / "config.json").write_text("{}")
    assert os.listdir(folder) == ["config.json"]
