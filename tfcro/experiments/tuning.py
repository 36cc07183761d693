"""Hyper-parameter search for a training recipe: one Optuna study per loss, same budget,
validation only, resumable; then the chosen settings over several seeds.

:func:`tune` runs, for every loss, an Optuna study (TPE sampler, median pruning on the
per-epoch validation metric) of ``trials`` finished trials over a version of the search
space (:data:`~tfcro.experiments.space.SEARCH_SPACES`, a folder keeps its own: learning
rate, L2 penalty, score scale, negatives; ``alpha`` and kernel for the CROLoss family).
Everything lives in one folder:

=====================  ===========================================================
``study.db``           the Optuna studies (SQLite), one per loss (``tune-<loss>``)
``<loss>/trial-<h>/``  a trial's run folder; ``<h>`` hashes its parameters, so a
                       trial cut off by a crash or a ``kill`` is re-queued with the
                       same parameters and resumes from its last checkpoint
``<loss>/seed-<s>/``   the chosen settings trained with seed ``s`` (:func:`run_seeds`)
``trials.csv``         every trial: loss, number, state, parameters, validation value
``tuning.md``          the best trial of each loss and the seeds' test metrics
``tuning.png``         best validation value so far against the trial number
=====================  ===========================================================

Selection uses the validation split carved from the training data only (the test
metrics a trial's run also computes are stored, never used to choose).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tfcro._compat import keras
from tfcro.experiments.plots import plot_seed_recalls
from tfcro.experiments.space import (
    LOSS_SETTINGS,
    MODEL_SETTINGS,
    SEARCH_SPACE,
    resolve_version,
    space_for,
)
from tfcro.experiments.space import search_space as _space_of_version
from tfcro.experiments.tables import alpha_choice_table, seed_tables
from tfcro.runfolder import METRICS_FILE
from tfcro.training import TrainingConfig, train
from tfcro.validation import check_int, check_subset

logger = logging.getLogger("tfcro.experiments")

STUDY_FILE = "study.db"
TRIALS_FILE = "trials.csv"
REPORT_FILE = "tuning.md"
PLOT_FILE = "tuning.png"
SEEDS_FILE = "seeds.csv"
SEEDS_PLOT_FILE = "seeds.png"


def suggest(trial: Any, loss: str, space: Mapping[str, Mapping[str, Any]] = SEARCH_SPACE):
    """Draws a trial's settings of ``space`` for ``loss`` (an ``optuna.Trial``)."""
    params = {}
    for name, spec in space_for(loss, space).items():
        if "choices" in spec:
            params[name] = trial.suggest_categorical(name, list(spec["choices"]))
        else:
            low, high = spec["range"]
            params[name] = trial.suggest_float(name, low, high, log=spec.get("log", False))
    return params


def trial_config(base: TrainingConfig, loss: str, params: Mapping[str, Any]) -> TrainingConfig:
    """``base`` with ``loss`` and a trial's settings (``params``) applied: each goes to the
    model (:data:`MODEL_SETTINGS`), the loss (an option it takes) or the training config
    (one of its fields); anything else is a ValueError naming it.
    """
    from tfcro import losses as losses_lib

    values = base.to_dict()
    model = dict(values["model"])
    options = dict(model["loss_options"]) if model["loss"] == loss else {}
    model["loss"] = loss
    training_fields = {f.name for f in dataclasses.fields(TrainingConfig)} - {"model"}
    for name, value in params.items():
        if name in MODEL_SETTINGS:
            model[name] = value if isinstance(value, bool | int) else float(value)
        elif name in LOSS_SETTINGS or name in losses_lib.OPTIONS.get(loss, ()):
            options[name] = value
        elif name in training_fields:
            values[name] = value
        else:
            raise ValueError(
                f"search setting {name!r} is neither a model setting {list(MODEL_SETTINGS)}, "
                f"an option of loss {loss!r} nor a TrainingConfig field"
            )
    model["loss_options"] = _loss_options(loss, options)
    values["model"] = model
    return TrainingConfig.from_dict(values)


def _loss_options(loss: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options ``loss`` takes (CROLoss-lambda keeps its weight kernel; others drop)."""
    from tfcro import losses as losses_lib

    defaults = {"cro-lambda": {"weight_kernel": "sigmoid", "kernel": "softplus", "alpha": 1.0}}
    merged = {**defaults.get(loss, {}), **options}
    accepted = losses_lib.get(loss, **merged).get_config()
    return {k: v for k, v in merged.items() if k in accepted}


def base_for_trials(config: TrainingConfig) -> TrainingConfig:
    """``config`` for the trials: no refit (a trial is a selection run)."""
    return TrainingConfig.from_dict({**config.to_dict(), "refit": False})


def params_key(params: Mapping[str, Any]) -> str:
    """A short stable hash of a trial's parameters: its run folder's name."""
    text = json.dumps({k: params[k] for k in sorted(params)}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


class PruningCallback(keras.callbacks.Callback):
    """Reports the epoch's validation value to an Optuna trial; stops a hopeless run.

    Listed after the validation callback (``train(..., callbacks=[...])``): reads
    ``val_<monitor>`` from the epoch's logs. When the pruner says so, it stops the
    training (the run folder records it as stopped) and sets :attr:`pruned`.
    """

    def __init__(self, trial: Any, monitor: str):
        super().__init__()
        self.trial = trial
        self.key = f"val_{monitor}"
        self.pruned = False

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.key)
        if value is None:
            return
        self.trial.report(float(value), epoch)
        if self.trial.should_prune():
            self.pruned = True
            self.model.stop_training = True


def _optuna():
    try:
        import optuna
    except ImportError as err:  # pragma: no cover - the tune extra is installed in CI
        raise ImportError("tuning needs Optuna: pip install 'tfcro[tune]' (optuna==5.0.0)") from err
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _storage(output_dir: str) -> str:
    """The Optuna storage URL of the folder's ``study.db``."""
    return f"sqlite:///{os.path.abspath(os.path.join(output_dir, STUDY_FILE))}"


def _study(optuna, output_dir: str, loss: str, seed: int):
    storage = _storage(output_dir)
    return optuna.create_study(
        study_name=f"tune-{loss}",
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=4),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
    )


#: How often a parameter set may fail with an error before a rerun stops retrying it.
MAX_ERRORS = 2


def _params_key(params: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def _requeue_interrupted(optuna, study) -> int:
    """Queues again the parameters of trials a rerun should resume (same parameters, same
    run folder: the rerun resumes from its checkpoint); returns how many.

    - Trials left RUNNING by a killed process: marked failed (user attribute
      ``interrupted``) and queued again.
    - Trials that failed with an error (the process died on an exception): queued again
      while their parameter set has failed fewer than :data:`MAX_ERRORS` times, so a
      transient crash costs one retry and a deterministic one stops.
    A parameter set that is finished, queued or running is never queued twice.
    """
    states = optuna.trial.TrialState
    running = study.get_trials(deepcopy=False, states=(states.RUNNING,))
    for trial in running:
        study._storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
        study._storage.set_trial_state_values(trial._trial_id, states.FAIL)
    trials = study.get_trials(deepcopy=False)
    live = {
        _params_key(t.params or t.system_attrs.get("fixed_params", {}))
        for t in trials
        if t.state in (states.COMPLETE, states.PRUNED, states.WAITING, states.RUNNING)
    }
    errors: dict[tuple, int] = {}
    for trial in trials:
        if trial.state == states.FAIL and not trial.user_attrs.get("interrupted"):
            key = _params_key(trial.params)
            errors[key] = errors.get(key, 0) + 1
    queued = 0
    for trial in trials:
        if trial.state != states.FAIL or not trial.params:
            continue
        key = _params_key(trial.params)
        if key in live:
            continue
        if trial.user_attrs.get("interrupted") or errors.get(key, 0) < MAX_ERRORS:
            study.enqueue_trial(trial.params)
            live.add(key)
            queued += 1
        else:
            logger.warning("parameters %s failed %d times: not retried", trial.params, errors[key])
    return queued


def _counted(optuna, study) -> int:
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=done))


def tune(
    base: TrainingConfig,
    losses: Sequence[str],
    output_dir: str,
    *,
    trials: int = 8,
    space: Mapping[str, Mapping[str, Any]] | None = None,
    search_space: int | None = None,
    verbose: int = 0,
    train_fn: Callable[..., Any] = train,
) -> pd.DataFrame:
    """Tunes every loss of ``losses`` with ``trials`` finished (complete or pruned) trials.

    Args:
      base: the fixed settings (data, protocol, model, epochs, batch, ...); each trial
        replaces the loss and the searched settings. ``base.monitor`` on the validation
        split is the objective, ``base.epochs`` a trial's epoch budget (with early
        stopping by ``base.patience``), ``base.seed`` the sampler's seed.
      losses: names of :func:`tfcro.losses.get`.
      output_dir: the tuning folder (module docstring); rerunning continues it.
      trials: the budget per loss, the same for every loss.
      space: a search space of one's own; ``None``: the version ``search_space`` of
        :data:`~tfcro.experiments.space.SEARCH_SPACES`.
      search_space: the version of the space. ``None``: the folder's (its studies' user
        attribute ``search_space``; 1 for studies started before versions), the latest
        for a new folder. A version that contradicts the folder's is a ValueError; every
        study of a folder draws from one version, recorded on each.
      verbose: Keras verbosity of each trial's training.
      train_fn: :func:`~tfcro.training.train` (tests may pass a stand-in).

    Returns:
      :func:`trials_frame` of the folder.
    """
    from tfcro import losses as losses_lib

    check_subset("losses", losses, losses_lib.LOSSES)
    trials = check_int("trials", trials, 1)
    if base.valid_fraction == 0:
        raise ValueError(
            "tuning selects on validation: `valid_fraction` should be > 0. "
            "Received: valid_fraction=0"
        )
    if space is not None and search_space is not None:
        raise ValueError(
            "give `space` (a space of one's own) or `search_space` (a version), not both. "
            f"Received: search_space={search_space!r} with a space of {sorted(space)}"
        )
    base = base_for_trials(base)
    optuna = _optuna()
    os.makedirs(output_dir, exist_ok=True)
    version = None if space is not None else _folder_version(optuna, output_dir, search_space)
    loss_space = space if space is not None else _space_of_version(version)
    for loss in losses:
        study = _study(optuna, output_dir, loss, base.seed)
        if version is not None:
            study.set_user_attr("search_space", version)
        # a resumed study's sampler must not replay the draws it started with
        study.sampler = optuna.samplers.TPESampler(
            seed=base.seed + len(study.trials), n_startup_trials=4
        )
        requeued = _requeue_interrupted(optuna, study)
        if requeued:
            logger.warning(
                "%s: %d interrupted or crashed trial(s) queued again to resume", loss, requeued
            )
        while _counted(optuna, study) < trials:
            study.optimize(
                _objective(base, loss, output_dir, loss_space, verbose, train_fn, optuna),
                n_trials=1,
                catch=(),
            )
        write_report(output_dir)
    return write_report(output_dir)


def _folder_version(optuna, output_dir: str, requested: int | None) -> int:
    """The search space version of the tuning folder's studies (:func:`tune`)."""
    path = os.path.join(output_dir, STUDY_FILE)
    recorded = set()
    if os.path.isfile(path):
        storage = _storage(output_dir)
        for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
            if "search_space" in summary.user_attrs:
                recorded.add(summary.user_attrs["search_space"])
            elif summary.n_trials:  # a study from before versions
                recorded.add(1)
    where = f"the tuning folder {output_dir!r}"
    if len(recorded) > 1:
        raise ValueError(
            f"{where} holds studies of search space versions {sorted(recorded)}; tune its "
            "losses in folders of their own"
        )
    return resolve_version(next(iter(recorded), None), requested, where)


def _objective(base, loss, output_dir, space, verbose, train_fn, optuna):
    def objective(trial) -> float:
        params = suggest(trial, loss, space)
        config = trial_config(base, loss, params)
        run_dir = os.path.join(output_dir, loss, f"trial-{params_key(params)}")
        trial.set_user_attr("run_dir", os.path.relpath(run_dir, output_dir))
        pruning = PruningCallback(trial, config.monitor)
        result = train_fn(config, run_dir, verbose=verbose, callbacks=[pruning])
        value = _validation_value(run_dir, config.monitor)
        if not math.isfinite(value):  # Optuna would record a failure and try forever
            # TrainingConfig already refuses valid_every > epochs: a train_fn wrote no value
            raise ValueError(
                f"the trial in {run_dir!r} has no validation {config.monitor}: its "
                f"metrics.json should hold a finite 'val_{config.monitor}' (the train_fn "
                f"writes it; tfcro.training.train does). Received: {value}"
            )
        trial.set_user_attr("best_epoch", result.epochs_selected)
        trial.set_user_attr("epochs_run", result.epochs_run)
        if pruning.pruned:
            raise optuna.TrialPruned()
        return value

    return objective


def _read_json(path: str) -> Any:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _validation_value(run_dir: str, monitor: str) -> float:
    metrics = _read_json(os.path.join(run_dir, METRICS_FILE)) or {}
    value = metrics.get(f"val_{monitor}")
    return float("nan") if value is None else float(value)


# ----------------------------------------------------------------------------- results


def trials_frame(output_dir: str) -> pd.DataFrame:
    """Every trial of the folder's studies: ``loss, number, state, value, <params>, ...``."""
    path = os.path.join(output_dir, STUDY_FILE)
    if not os.path.isfile(path):
        return pd.DataFrame(columns=["loss", "number", "state", "value"])
    optuna = _optuna()
    storage = _storage(output_dir)
    rows = []
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        loss = summary.study_name.removeprefix("tune-")
        for trial in study.get_trials(deepcopy=False):
            rows.append(
                {
                    "loss": loss,
                    "number": trial.number,
                    "state": trial.state.name,
                    "value": trial.value,
                    **trial.params,
                    **{k: v for k, v in trial.user_attrs.items()},
                    "seconds": (
                        (trial.datetime_complete - trial.datetime_start).total_seconds()
                        if trial.datetime_complete and trial.datetime_start
                        else None
                    ),
                }
            )
    return pd.DataFrame(rows)


def best_params(output_dir: str) -> dict[str, dict[str, Any]]:
    """``{loss: {"params": ..., "value": ..., "best_epoch": ...}}`` of each study's best
    complete trial (ties: the earlier trial).
    """
    path = os.path.join(output_dir, STUDY_FILE)
    out: dict[str, dict[str, Any]] = {}
    if not os.path.isfile(path):
        return out
    optuna = _optuna()
    storage = _storage(output_dir)
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        done = [
            t
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.value is not None and math.isfinite(t.value)
        ]
        if not done:
            continue
        best = min(done, key=lambda t: (-t.value, t.number))
        out[summary.study_name.removeprefix("tune-")] = {
            "params": {k: _plain(v) for k, v in best.params.items()},  # the space it used
            "value": float(best.value),
            "best_epoch": int(best.user_attrs.get("best_epoch", 0)),
            "trial": best.number,
        }
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def run_seeds(
    base: TrainingConfig,
    output_dir: str,
    seeds: Sequence[int],
    *,
    losses: Sequence[str] | None = None,
    verbose: int = 0,
    train_fn: Callable[..., Any] = train,
) -> pd.DataFrame:
    """Trains each tuned loss's best settings with every seed of ``seeds``; test metrics.

    Each run uses ``base`` (its epochs and patience: trained to early stopping on
    validation) with the loss's best parameters and the seed (split, initialisation,
    sampling); with ``base.refit`` the refit's test metrics are the ones reported.
    Run folders ``<loss>/seed-<s>/`` resume. ``losses`` (default: every tuned one)
    selects the losses. Returns one row per (loss, seed), also written to
    ``seeds.csv`` (with the rows of losses run before).
    """
    rows = []
    for loss, best in best_params(output_dir).items():
        if losses is not None and loss not in losses:
            continue
        for seed in seeds:
            config = trial_config(
                TrainingConfig.from_dict({**base.to_dict(), "seed": int(seed)}),
                loss,
                best["params"],
            )
            run_dir = os.path.join(output_dir, loss, f"seed-{seed}")
            result = train_fn(config, run_dir, verbose=verbose)
            final = result.final
            rows.append(
                {
                    "loss": loss,
                    "seed": int(seed),
                    "best_epoch": result.epochs_selected,
                    f"val_{base.monitor}": _validation_value(run_dir, base.monitor),
                    **{k: float(v) for k, v in final.metrics.items()},
                }
            )
    frame = pd.DataFrame(rows)
    path = os.path.join(output_dir, SEEDS_FILE)
    if not frame.empty:
        if os.path.isfile(path):  # keep the other losses' and seeds' rows
            old = pd.read_csv(path)
            done = set(zip(frame["loss"], frame["seed"], strict=True))
            keep = [(a, b) not in done for a, b in zip(old["loss"], old["seed"], strict=True)]
            frame = pd.concat([old[keep], frame], ignore_index=True)
        frame.to_csv(path, index=False)
    write_report(output_dir)
    return frame


def alpha_sweep(
    base: TrainingConfig,
    output_dir: str,
    alphas: Sequence[float],
    *,
    loss: str = "cro-lambda",
    seeds: Sequence[int] = (0,),
    verbose: int = 0,
    train_fn: Callable[..., Any] = train,
) -> pd.DataFrame:
    """The customisability check: ``loss``'s tuned settings with each ``alpha``; which
    alpha gives the best Recall@N for each N of ``base.ks``?

    Each run (``<loss>/alpha-<a>-seed-<s>/``, resumable) trains like
    :func:`run_seeds`; its final model is evaluated at every N on the validation
    users (the choice) and the test users (the outcome). Writes ``alpha.csv`` (one
    row per alpha and seed) and ``alpha.md`` (per N: the alpha that validation
    picks and the test Recall@N of every alpha, mean over seeds).
    """
    from tfcro.evaluation import evaluate

    best = best_params(output_dir)
    if loss not in best:
        raise ValueError(
            f"no finished tuning of {loss!r} in {output_dir!r}: tune it first "
            f"(tuned: {sorted(best) or 'none'})"
        )
    rows = []
    for alpha in alphas:
        for seed in seeds:
            params = {**best[loss]["params"], "alpha": float(alpha)}
            config = trial_config(
                TrainingConfig.from_dict({**base.to_dict(), "seed": int(seed)}), loss, params
            )
            run_dir = os.path.join(output_dir, loss, f"alpha-{float(alpha):g}-seed-{seed}")
            result = train_fn(config, run_dir, verbose=verbose)
            final = result.final
            valid = evaluate(
                result.model, result.data.valid, result.data.items, ks=config.ks
            )  # the selection run's model: the refit has no validation users
            rows.append(
                {
                    "alpha": float(alpha),
                    "seed": int(seed),
                    **{f"val_{k}": float(v) for k, v in valid.items()},
                    **{k: float(v) for k, v in final.metrics.items()},
                }
            )
    frame = pd.DataFrame(rows)
    frame.to_csv(os.path.join(output_dir, "alpha.csv"), index=False)
    lines = [
        f"# {loss}: which alpha for which N",
        "",
        "Chosen on validation Recall@N; test beside.",
        "",
        *alpha_choice_table(frame, base.ks),
    ]
    with open(os.path.join(output_dir, "alpha.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return frame


def write_report(output_dir: str) -> pd.DataFrame:
    """Writes ``trials.csv``, ``tuning.md`` and (with matplotlib) ``tuning.png``."""
    frame = trials_frame(output_dir)
    frame.to_csv(os.path.join(output_dir, TRIALS_FILE), index=False)
    lines = ["# Tuning", "", f"Folder: `{output_dir}`. Selection on validation only.", ""]
    best = best_params(output_dir)
    if best:
        lines += [
            "| loss | trials (complete/pruned) | best validation | best epoch | settings |",
            "|---|---|---|---|---|",
        ]
        for loss, entry in best.items():
            group = frame[frame["loss"] == loss]
            counts = (
                f"{int((group['state'] == 'COMPLETE').sum())}"
                f"/{int((group['state'] == 'PRUNED').sum())}"
            )
            settings = ", ".join(f"{k}={_fmt(v)}" for k, v in entry["params"].items())
            lines.append(
                f"| {loss} | {counts} | {entry['value']:.4f} | {entry['best_epoch']} | {settings} |"
            )
    seeds_path = os.path.join(output_dir, SEEDS_FILE)
    if os.path.isfile(seeds_path):
        seeds = pd.read_csv(seeds_path)
        ks = sorted({int(c.split("@")[1]) for c in seeds.columns if c.startswith("recall@")})
        lines += seed_tables(
            seeds, ks, "Test metrics of the chosen settings (mean ± std over seeds):"
        )
    with open(os.path.join(output_dir, REPORT_FILE), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    _plot(frame, os.path.join(output_dir, PLOT_FILE))
    if os.path.isfile(seeds_path):
        plot_seed_recalls(pd.read_csv(seeds_path), os.path.join(output_dir, SEEDS_PLOT_FILE))
    return frame


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _pyplot(path: str):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("matplotlib is not installed: no %s", path)
        return None
    return plt


def _plot(frame: pd.DataFrame, path: str) -> str | None:
    if frame.empty:
        return None
    plt = _pyplot(path)
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for loss, group in frame.groupby("loss", sort=False):
        group = group.sort_values("number")
        values = group["value"].where(group["state"] == "COMPLETE")
        ax.plot(group["number"] + 1, values.cummax(), marker="o", label=loss)
    ax.set_xlabel("trial")
    ax.set_ylabel("best validation value so far")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = [
    "SEARCH_SPACE",
    "PruningCallback",
    "alpha_sweep",
    "base_for_trials",
    "best_params",
    "params_key",
    "run_seeds",
    "space_for",
    "suggest",
    "trial_config",
    "trials_frame",
    "tune",
    "write_report",
]
