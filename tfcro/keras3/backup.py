"""A Keras 3 training run's state on disk, so that a killed ``model.fit`` resumes: the
model and optimizer variables (``model.save_weights``) and the validation selection's
state (:meth:`tfcro.evaluation.selection.ValidationSelection.get_selection_state`),
committed together after an evaluation.

Layout of ``directory``: one folder ``epoch-<N>`` (``N`` epochs done) holding
``model.weights.h5``, ``selection.json`` and ``selection.npz`` (the kept weights). A
backup is written into a temporary folder and renamed into place, then the older
ones are deleted, so a killed process leaves the last complete backup readable (only
``selection.json`` is synced to disk: a power loss may not). Nothing but these folders
is ever deleted from ``directory``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from typing import Any

import numpy as np

WEIGHTS_FILE = "model.weights.h5"
STATE_FILE = "selection.json"
KEPT_FILE = "selection.npz"
_COMPLETE = re.compile(r"^epoch-(\d+)$")
_OURS = re.compile(r"^epoch-\d+(\.(tmp|old)-\d+)?$")  # what write() may delete


def write(
    directory: str,
    epochs_done: int,
    model: Any,
    state: dict[str, Any],
    kept: dict[str, list[np.ndarray]],
) -> str:
    """Commits a backup of ``model`` after ``epochs_done`` epochs with the selection's
    ``state`` and ``kept`` weights (by metric); returns its folder. Older backups and
    leftovers of killed writes are deleted afterwards.
    """
    os.makedirs(directory, exist_ok=True)
    final = os.path.join(directory, f"epoch-{epochs_done:05d}")
    tmp = f"{final}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    model.save_weights(os.path.join(tmp, WEIGHTS_FILE))
    names = sorted(kept)
    arrays = {
        f"w{i}_{j}": array for i, name in enumerate(names) for j, array in enumerate(kept[name])
    }
    np.savez(os.path.join(tmp, KEPT_FILE), **arrays)
    record = {"epochs_done": epochs_done, "state": state, "kept": {n: len(kept[n]) for n in names}}
    with open(os.path.join(tmp, STATE_FILE), "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    if os.path.exists(final):  # moved aside, not deleted: a backup stays at every moment
        os.replace(final, f"{final}.old-{os.getpid()}")
    os.replace(tmp, final)
    _delete_backups(directory, keep=os.path.basename(final))
    return final


def read_latest(
    directory: str,
) -> tuple[int, str, dict[str, Any], dict[str, list[np.ndarray]]] | None:
    """The latest complete backup in ``directory``: ``(epochs_done, path of the model
    weights, selection state, kept weights)``; None when there is none.
    """
    if not os.path.isdir(directory):
        return None
    complete = [m for m in map(_COMPLETE.match, os.listdir(directory)) if m]
    if not complete:
        return None
    folder = os.path.join(directory, max(complete, key=lambda m: int(m.group(1))).group(0))
    try:
        with open(os.path.join(folder, STATE_FILE), encoding="utf-8") as handle:
            record = json.load(handle)
        with np.load(os.path.join(folder, KEPT_FILE), allow_pickle=False) as arrays:
            kept = {
                name: [arrays[f"w{i}_{j}"] for j in range(count)]
                for i, (name, count) in enumerate(sorted(record["kept"].items()))
            }
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"the training backup {folder!r} is damaged ({err}); delete {directory!r} to "
            "train from the start"
        ) from err
    return int(record["epochs_done"]), os.path.join(folder, WEIGHTS_FILE), record["state"], kept


def remove(directory: str) -> None:
    """Deletes the backups in ``directory``, then the folder if nothing else is in it."""
    if not os.path.isdir(directory):
        return
    _delete_backups(directory)
    if not os.listdir(directory):
        os.rmdir(directory)


def _delete_backups(directory: str, keep: str = "") -> None:
    """Deletes this module's folders in ``directory`` (backups, leftovers of killed
    writes) except ``keep``; nothing else.
    """
    for name in os.listdir(directory):
        if name != keep and _OURS.match(name):
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
