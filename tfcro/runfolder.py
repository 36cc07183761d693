"""The files of a training run folder, and the atomic JSON I/O that writes them.

One place for the layout that :mod:`tfcro.training` writes and
:mod:`tfcro.serving` exports from (it must not import the training stack).
"""

from __future__ import annotations

import json
import os
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


def write_atomic(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file and a rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
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
