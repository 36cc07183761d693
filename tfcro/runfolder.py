"""The files of a training run folder, and the atomic JSON I/O that writes them.

One place for the layout that :mod:`tfcro.training` writes and
:mod:`tfcro.serving` exports from (it must not import the training stack).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
ITEMS_FILE = "items.txt"
USERS_FILE = "users.txt"
ITEM_FEATURES_FILE = "item_features.json"
USER_FEATURES_FILE = "user_features.json"
BEST_WEIGHTS_FILE = "best.weights.h5"
CHECKPOINT_DIR = "checkpoints"


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

    ``suffix`` is kept at the end (Keras insists on ``.weights.h5``)."""
    stem = path[: -len(suffix)] if suffix and path.endswith(suffix) else path
    return f"{stem}.tmp-{os.getpid()}{suffix}"


def remove_stale_temporaries(folder: str) -> list[str]:
    """Deletes the temporary files that killed writers left in ``folder``; returns their names.

    A process killed between writing a temporary file and renaming it (SIGKILL,
    power loss) leaves it behind; the target file is intact (the rename never
    happened), so the leftover is garbage. Files of the calling process are kept.
    A run folder has one writer at a time, so any other pid is a dead writer.
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


def write_json(path: str, value: Any) -> None:
    """Atomically writes ``value`` as indented, key-sorted JSON."""
    write_atomic(path, json.dumps(value, indent=2, sort_keys=True, default=json_default) + "\n")


def read_json(path: str) -> Any:
    """Reads a run-folder JSON file; a damaged one raises ValueError saying what to delete."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); the run folder is damaged: "
                         f"delete {os.path.dirname(path) or '.'!r} and rerun") from err
