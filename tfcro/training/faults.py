"""Faults of a training run: a scheduler's stop (SIGTERM) and resuming a run folder.

The run state (epochs done, early stopping, history) is saved *inside* each
checkpoint, so a job killed at any point (SIGKILL included) resumes
consistently; ``state.json``/``history.csv`` are readable mirrors of it. A
SIGTERM raises :class:`TrainingInterrupted` at the next point outside an
epoch's save (:class:`SigtermGuard`), so the files of the last finished epoch
are complete; ``python -m pipelines.train`` then exits with code 143. A run
folder that cannot be resumed raises :class:`~tfcro.runfolder.RunFolderError`
saying which file is damaged and what to delete.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from typing import Any

from tfcro._compat import tf
from tfcro.runfolder import CHECKPOINT_DIR, CONFIG_FILE, STATE_FILE, RunFolderError, read_json
from tfcro.training.config import TrainingConfig


class TrainingInterrupted(BaseException):
    """Raised by :func:`~tfcro.training.train` on SIGTERM; the last finished epoch's files
    are complete.

    A ``BaseException`` (like ``KeyboardInterrupt``): code that catches
    ``Exception`` to go on with its next run (sweeps) must not swallow a stop.

    Attributes:
      output_dir: the run folder (rerun with it to resume).
      epochs_done: epochs saved in it.
    """

    def __init__(self, output_dir: str, epochs_done: int):
        self.output_dir = output_dir
        self.epochs_done = epochs_done
        super().__init__(
            f"stopped by SIGTERM after {epochs_done} saved epoch(s); rerun with the "
            f"same output folder {output_dir!r} to resume"
        )


class SigtermGuard:
    """While active, SIGTERM raises :class:`TrainingInterrupted`, but never inside
    :meth:`saving` (an epoch's files): there it is deferred to the end of the save.

    Only installed in the main thread (Python delivers signals there).
    """

    def __init__(self, output_dir: str, epochs_done: int = 0):
        self.output_dir = output_dir
        self.epochs_done = epochs_done
        self._saving = False
        self._pending = False
        self._installed = False
        self._previous: Any = None

    def __enter__(self) -> SigtermGuard:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc_info) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False

    def _handle(self, signum, frame) -> None:
        if self._saving:
            self._pending = True
            return
        raise TrainingInterrupted(self.output_dir, self.epochs_done)

    @contextlib.contextmanager
    def saving(self):
        self._saving = True
        try:
            yield
        finally:
            self._saving = False
        if self._pending:
            self._pending = False
            raise TrainingInterrupted(self.output_dir, self.epochs_done)


#: Settings that change how a run executes, not what it computes: a rerun may change them
#: (the epoch budget may grow; XLA on or off; a refit may be added to a finished run).
EXECUTION_SETTINGS = ("epochs", "jit_compile", "refit")


def check_same_run(output_dir: str, config: TrainingConfig) -> dict[str, Any] | None:
    """The saved config of ``output_dir``; raises if it holds a *started* run of other settings.

    A ``config.json`` without any checkpoint (a run that stopped before its first
    epoch ended) is no experiment yet: it is replaced.
    """
    path = os.path.join(output_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        return None
    saved = read_json(path)
    previous = dict(saved.get("training", {})) if isinstance(saved, dict) else {}
    current = config.to_dict()
    try:  # settings added since the run started take their defaults
        previous = TrainingConfig.from_dict(previous).to_dict()
    except (TypeError, ValueError):
        pass  # compared as saved: any difference refuses the resume
    # The epoch budget may grow on a rerun; everything else must match.
    differing = sorted(
        k
        for k in set(previous) | set(current)
        if k not in EXECUTION_SETTINGS and previous.get(k) != current.get(k)
    )
    started = tf.train.latest_checkpoint(os.path.join(output_dir, CHECKPOINT_DIR)) is not None
    if differing and started:
        raise ValueError(
            f"--run-dir {output_dir!r} holds a run with other settings ({differing}); "
            "resuming it would mix two experiments. Use a new --run-dir, or delete it."
        )
    return saved if not differing else None


def restore_checkpoint(checkpoint: tf.train.Checkpoint, path: str, output_dir: str) -> None:
    """Restores ``path`` into ``checkpoint``; a damaged checkpoint raises RunFolderError."""
    try:
        checkpoint.restore(path).assert_existing_objects_matched()
    except Exception as err:  # OpError, IndexError (truncated data), AssertionError, ...
        folder = os.path.join(output_dir, CHECKPOINT_DIR)
        raise RunFolderError(
            f"the checkpoint {path!r} (files {os.path.basename(path)}.index and "
            f"{os.path.basename(path)}.data-*) cannot be restored: it is corrupted, truncated "
            f"or from another model ({type(err).__name__}: {str(err).strip()[:300]}). "
            f"To retrain from scratch, delete {folder!r} (or the whole run folder "
            f"{output_dir!r}) and rerun."
        ) from err


def resume_state(state_var: tf.Variable, output_dir: str, checkpoint_path: str) -> dict[str, Any]:
    """The run state saved with the checkpoint (older checkpoints: ``state.json``)."""
    path = os.path.join(output_dir, STATE_FILE)
    mirror = None
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as handle:
                mirror = json.load(handle)
            if not isinstance(mirror, dict) or not isinstance(mirror.get("history", []), list):
                raise ValueError(
                    f"expected a JSON object with a 'history' list, found {type(mirror).__name__}"
                )
        except (ValueError, UnicodeDecodeError) as err:
            raise RunFolderError(
                f"{path!r} is damaged ({err}). The checkpoint {checkpoint_path!r} holds the "
                f"same state: delete {path!r} and rerun to resume from it, or delete the run "
                f"folder {output_dir!r} to start over."
            ) from err
    saved = state_var.numpy().decode("utf-8")
    if saved:
        return json.loads(saved)
    if mirror is None:
        raise RunFolderError(
            f"{output_dir!r} has the checkpoint {checkpoint_path!r} but no {STATE_FILE}; "
            f"delete the run folder {output_dir!r} to start over."
        )
    return mirror


__all__ = [
    "RunFolderError",
    "SigtermGuard",
    "TrainingInterrupted",
    "check_same_run",
    "restore_checkpoint",
    "resume_state",
]
