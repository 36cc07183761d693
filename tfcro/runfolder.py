"""The training run folder: its layout, its lock, and the atomic JSON I/O that writes it.

The one description of the folder that :func:`tfcro.training.train` writes
(``python -m pipelines.train --run-dir``), :func:`tfcro.training.load_model`
rebuilds a model from and :mod:`tfcro.serving` exports from. This module must
not import the training stack (the serving layer uses it).

====================== =========================================================
``config.json``        every setting: key ``"training"`` is the
                       :class:`~tfcro.training.TrainingConfig`, key ``"model"`` the
                       :class:`~tfcro.models.TwoTowerConfig` (seed filled in)
``items.txt``          the catalog, one raw id per line, in the model's order
``users.txt``          the user-id vocabulary (models with ``use_user_id``)
``item_features.json`` ``{name: [N] values}`` aligned with ``items.txt`` (models with
                       item features)
``user_features.json`` ``{name: {user_id: value}}`` (models with user features)
``checkpoints/``       model + optimizer + run state after every epoch
                       (``tf.train.CheckpointManager``, the last two kept)
``state.json``         epochs done, early-stopping state, per-epoch history rows
                       (a readable mirror of the checkpoint's run state)
``history.csv``        per-epoch loss and validation metrics
``best.weights.h5``    the weights with the best validation metric (the last
                       epoch's without validation)
``metrics.json``       test metrics ``recall@N``, ``pair_recall@N``, ``hitrate@N``, ``ndcg@N``
``refit/``             the refit on all the training data (a run folder of its own;
                       ``TrainingConfig.refit``); ``metrics.json`` then has its
                       test metrics under ``"refit"``
``run.lock``           present while a process trains in the folder: the holder's
                       pid, host and start time (:class:`RunFolderLock`)
====================== =========================================================

Rerunning with the same folder resumes from the last checkpoint; a finished
run only re-evaluates. Every file is written to a temporary name
(``<name>.tmp-<pid>``) and renamed, so a crash never leaves a half-written file
in place of a good one (:func:`remove_stale_temporaries` deletes the leftovers).

One process trains in a folder at a time: :func:`tfcro.training.train` holds
:class:`RunFolderLock` (an ``fcntl.flock`` on ``run.lock``) from before it loads
the data until it returns, and a second run on the folder fails at once with
:class:`RunFolderInUse` naming the holder. The kernel drops the lock when its
holder dies (SIGKILL included), so a lock file left by a killed run is stale and
the next run takes it over.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import logging
import os
import re
import socket
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

logger = logging.getLogger("tfcro.runfolder")

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
REFIT_DIR = "refit"
ITEMS_FILE = "items.txt"
USERS_FILE = "users.txt"
ITEM_FEATURES_FILE = "item_features.json"
USER_FEATURES_FILE = "user_features.json"
BEST_WEIGHTS_FILE = "best.weights.h5"
CHECKPOINT_DIR = "checkpoints"
LOCK_FILE = "run.lock"


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for NumPy scalars and arrays."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ``name.tmp-<pid>`` (write_atomic) and ``name.tmp-<pid>.weights.h5`` (best weights)
_TEMPORARY = re.compile(r"\.tmp-(\d+)(\.|$)")


def temporary_path(path: str, suffix: str = "") -> str:
    """The temporary file that a write of ``path`` goes through before its rename.

    ``suffix`` is kept at the end (Keras insists on ``.weights.h5``).
    """
    stem = path[: -len(suffix)] if suffix and path.endswith(suffix) else path
    return f"{stem}.tmp-{os.getpid()}{suffix}"


def remove_stale_temporaries(folder: str) -> list[str]:
    """Deletes the temporary files that killed writers left in ``folder``; returns their names.

    A process killed between writing a temporary file and renaming it (SIGKILL,
    power loss) leaves it behind; the target file is intact (the rename never
    happened), so the leftover is garbage. Files of the calling process are kept.
    A run folder has one writer at a time (call this while holding its
    :class:`RunFolderLock`), so any other pid is a dead writer.
    """
    removed = []
    if not os.path.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        match = _TEMPORARY.search(name)
        path = os.path.join(folder, name)
        if match and int(match.group(1)) != os.getpid() and os.path.isfile(path):
            os.remove(path)
            removed.append(name)
    return removed


def write_atomic(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file and a rename."""
    tmp = temporary_path(path)
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def save_weights_atomic(model: Any, path: str) -> None:
    """``model.save_weights(path)`` through a temporary file and a rename (``.weights.h5``)."""
    tmp = temporary_path(path, ".weights.h5")
    model.save_weights(tmp)
    os.replace(tmp, path)


def write_json(path: str, value: Any) -> None:
    """Atomically writes ``value`` as indented, key-sorted JSON."""
    write_atomic(path, json.dumps(value, indent=2, sort_keys=True, default=json_default) + "\n")


def read_json(path: str) -> Any:
    """Reads a run-folder JSON file; a damaged one raises ValueError saying what to delete."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}); the run folder is damaged: "
            f"delete {os.path.dirname(path) or '.'!r} and rerun"
        ) from err


# ----------------------------------------------------------------------------- errors


class RunFolderError(ValueError):
    """A run folder that cannot be used: a damaged checkpoint or state, or another run in it.

    The message says what is wrong and what to do.
    """


class RunFolderInUse(RunFolderError):
    """Another live process trains in the run folder (it holds the folder's :class:`RunFolderLock`).

    Attributes:
      folder: the run folder.
      holder: what the holder wrote in the lock file (``pid``, ``host``, ``since``);
        empty when it could not be read.
    """

    def __init__(self, folder: str, holder: Mapping[str, Any] | None = None):
        self.folder = folder
        self.holder = dict(holder or {})
        super().__init__(
            f"the run folder {folder!r} is in use by another training process "
            f"({describe_holder(self.holder)}; lock file {LOCK_FILE}). Wait for it to finish or "
            "stop it, or use another --run-dir."
        )


def describe_holder(holder: Mapping[str, Any]) -> str:
    """``"pid 123 on host h, since 2024-05-01T10:00:00+00:00"`` (what a lock file tells)."""
    if not holder:
        return "pid, host and start time unknown"
    return (
        f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, "
        f"since {holder.get('since', '?')}"
    )


# ----------------------------------------------------------------------------- lock

# Errors of a filesystem that does not support flock (some network filesystems).
_NO_LOCKING = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


class RunFolderLock:
    """Exclusive use of a run folder by one process: ``with RunFolderLock(folder): ...``.

    ``acquire`` creates the folder if needed, opens ``run.lock`` in it and takes
    a non-blocking ``fcntl.flock``; when another process holds it,
    :class:`RunFolderInUse` is raised at once, naming the holder (pid, host, start
    time, which the holder writes into the file). The kernel releases a flock
    when its holder dies, so the lock file a killed process left (SIGKILL) is
    taken over, with a warning naming the dead holder (``stale_holder``).

    ``release`` deletes the lock file (while still holding it: a process that
    opened the old file meanwhile notices and retries) and, when ``acquire``
    created the folder and nothing else was written into it, removes the folder
    again: a run that fails before writing anything leaves no folder behind.

    On a filesystem without flock support the lock is skipped with a warning
    (``locked`` is False).
    """

    def __init__(self, folder: str):
        self.folder = folder
        self.path = os.path.join(folder, LOCK_FILE)
        self.locked = False
        self.stale_holder: dict[str, Any] | None = None
        self._fd: int | None = None
        self._unlocked_file = False  # the lock file made where flock is not supported
        self._created_folder = False

    def __enter__(self) -> RunFolderLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> RunFolderLock:
        """Takes the lock or raises :class:`RunFolderInUse`; returns ``self``."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path!r} is already locked by this object")
        # a folder that only holds a killed run's lock file was not written to either
        self._created_folder = not os.path.isdir(self.folder) or os.listdir(self.folder) == [
            LOCK_FILE
        ]
        for _ in range(100):  # retried only while another process removes the file or folder
            os.makedirs(self.folder, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:  # the folder was removed meanwhile
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd, wait=1.0)
                os.close(fd)
                raise RunFolderInUse(self.folder, holder) from None
            except OSError as err:
                os.close(fd)
                if err.errno not in _NO_LOCKING:
                    raise
                logger.warning(
                    "cannot lock %s (%s): the filesystem does not support flock; "
                    "nothing stops a second run from using the folder meanwhile",
                    self.path,
                    err,
                )
                self._unlocked_file = True
                return self
            if not _is_file_of(fd, self.path):  # its holder deleted it as we opened it
                os.close(fd)
                continue
            previous = _read_holder(fd)
            if previous:
                self.stale_holder = previous
                logger.warning(
                    "%s: taking over the lock left by a process that is gone (%s)",
                    self.folder,
                    describe_holder(previous),
                )
            _write_holder(fd)
            self._fd = fd
            self.locked = True
            return self
        raise RunFolderError(
            f"could not lock {self.path!r}: it keeps being removed by another process"
        )

    def release(self) -> None:
        """Deletes the lock file and drops the lock (no-op when not held)."""
        if self._fd is not None:
            if _is_file_of(self._fd, self.path):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path)
            os.close(self._fd)  # drops the flock
            self._fd = None
            self.locked = False
        elif self._unlocked_file:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
            self._unlocked_file = False
        if self._created_folder:
            with contextlib.suppress(OSError):  # only succeeds when the folder is empty
                os.rmdir(self.folder)
            self._created_folder = False


def _is_file_of(fd: int, path: str) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (found.st_dev, found.st_ino) == (mine.st_dev, mine.st_ino)


def _read_holder(fd: int, wait: float = 0.0) -> dict[str, Any]:
    """The holder's JSON in the lock file; waits up to ``wait`` s for a holder that is
    about to write it (it locks first, then writes).
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            holder = json.loads(os.pread(fd, 65536, 0).decode("utf-8"))
            if isinstance(holder, dict):
                return holder
        except (ValueError, UnicodeDecodeError, OSError):
            pass
        if time.monotonic() >= deadline:
            return {}
        time.sleep(0.05)


def _write_holder(fd: int) -> None:
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    data = (json.dumps(holder, sort_keys=True) + "\n").encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)
