"""Resumable training runs: :func:`train` writes a run folder, :func:`load_model` reads it back.

- :mod:`.config`: :class:`TrainingConfig` (every setting), :data:`OPTIMIZERS`,
  :class:`TrainingResult`.
- :mod:`.build`: a config's data split (:func:`load_data`) and untrained model
  (:func:`build_model`).
- :mod:`.run`: :func:`train`, the fit loop and its per-epoch checkpoint.
- :mod:`.faults`: SIGTERM (:class:`TrainingInterrupted`), resuming, damaged folders.
- :mod:`.loading`: the model's files in the run folder; :func:`load_model`
  rebuilds a trained model from them alone, :func:`load_run` adds its data split.

The run folder's layout and lock: :mod:`tfcro.runfolder`.
"""

from tfcro.runfolder import RunFolderError, RunFolderInUse
from tfcro.training.build import build_model, load_data, user_vocabulary
from tfcro.training.config import OPTIMIZERS, TrainingConfig, TrainingResult
from tfcro.training.faults import TrainingInterrupted
from tfcro.training.loading import find_weights, load_model, load_run
from tfcro.training.run import train

__all__ = [
    "OPTIMIZERS",
    "RunFolderError",
    "RunFolderInUse",
    "TrainingConfig",
    "TrainingInterrupted",
    "TrainingResult",
    "build_model",
    "find_weights",
    "load_data",
    "load_model",
    "load_run",
    "train",
    "user_vocabulary",
]
