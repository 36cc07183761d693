"""The loss leaderboard on Keras 3 (any backend, e.g. JAX on a GPU): every loss tuned with
the same budget on validation, then the chosen settings over seeds, on a collaborative split.

    KERAS_BACKEND=jax python -m benchmarks.keras3_leaderboard --dataset lightgcn \\
        --data-dir ../shared/data/yelp2018 --out runs/k3-yelp2018 \\
        [--losses softmax,bpr,bsl,psl,sl-at-k,cro,cro-lambda] [--trials 4] [--seeds 1,2,3] \\
        [--top 4] [--epochs 100] [--patience 3] [--frequency 2] [--time-budget 0] [--refit]

The model is :class:`tfcro.keras3.TwoTowerRetrieval` (matrix factorisation: user and item
id embeddings, cosine scores times ``scale``, in-batch and uniform negatives, logQ, the
LightGCN-style L2), trained with ``model.fit`` and Adam; the validation split is carved
from the training file (``--valid-split``, ``--valid-fraction``) and is never trained on;
:class:`tfcro.keras3.RankingEvaluation` evaluates it every ``--frequency`` epochs, stops
after ``--patience`` evaluations without a better Recall@N (``--monitor``) and puts the
best weights back; the test metrics are those of that model (``--refit``: also those of
a retrain on the whole training file, below).

Budget, the same for every loss: trial 0 gives every loss the same setting
(``--base``, by default the best softmax trial of the Keras 2 Yelp2018 study; it may
add ``"num_row_negatives"``, the per-row uniform negatives of
:class:`~tfcro.keras3.TwoTowerRetrieval`, 0 when left out, and its ``"user_dropout"``
(0) and ``"embeddings_initializer"`` ("uniform"), which later trials leave at those
values, and ``"sparse_updates"`` (false; true: lazy Adam row updates, JAX only), which
every trial takes from ``--base``: the optimizer is the grid's, not a tuned setting), trials
1 .. ``trials - 1`` draw settings at random from the search space of the Keras 2 tuner
(:mod:`tfcro.experiments.space`; ``--search-space`` picks its version, a grid keeps the
one it started with): the settings every loss has (learning rate, L2,
scale, negatives) are one draw per trial, the same for every loss, so that each trial
compares the losses under identical settings (a paired design: with a few trials, no
loss wins by a luckier draw); the loss's own options (alpha, kernel, temperatures)
are a draw of its own. Trials run round-robin over the losses, so
an interrupted grid leaves every loss with the same number of trials give or take one;
the report counts only complete rounds. Selection is on validation only: each loss's
best trial (``--monitor``) is retrained with ``--seeds`` for the ``--top`` losses (plus
softmax, the reference) and reported as mean and sample std of the test metrics with
paired differences to softmax. Seed 0 is the tuning run itself (tuning runs use seed
0): unbiased with one trial; with more, leave 0 out of ``--seeds`` to avoid counting
the run that won the selection.

``--refit`` then retrains every seed run (seed 0: the tuning run) with the same seed on
the whole training file, the validation targets included, for the number of epochs that
run selected, and reports those models' test metrics as a second table (the published
numbers of LightGCN-style splits train on the whole file).

``--alphas`` then runs the customisability check: each CROLoss loss's best trial (cro,
cro-lambda, whichever ``--losses`` has) again with each alpha and each of ``--seeds``.
These runs select a model per cut-off: the weights of the best validation Recall@N of
each N of ``--ks`` are kept, training stops after ``--patience`` evaluations in which
none of them improved, and each N's model is tested on Recall@N (the ``sel_*`` columns;
the ``val_*``/``test_*`` columns are ``--monitor``'s model, as in every run). The
report says, for each N, which alpha the validation Recall@N picks and every alpha's
test Recall@N of its model for that N. When ``--losses`` has softmax, its best trial is
trained under the same per-cut-off protocol with each of ``--seeds`` (phase
``alpha-reference``, before the alphas), and the report pairs the chosen alpha's test
Recall@N with softmax's on the same seeds. ``--reference-scales`` gives softmax a tuning
budget of its own in that comparison: its best trial again with each of these score
scales (softmax's temperature, its one option), and for each N the scale that
validation Recall@N picks is the one paired (give it as many values as ``--alphas``
has, minus one for the trial's own scale, for equal budgets).

Resumable: every finished run is a row of ``<out>/runs.csv``; a rerun skips the rows it
finds (``<out>/grid.json`` records the settings that decide what a run measures, and a
rerun that changes one is refused; the report reads only the rows of the current
``--losses``, ``--trials``, ``--seeds`` and chosen trials). A run killed mid-way resumes
from its last evaluation (``<out>/backup/<run>/``: model, optimizer and selection state,
the ``backup_dir`` of :class:`tfcro.keras3.RankingEvaluation`; a refit from its last
epoch, ``keras.callbacks.BackupAndRestore``); its row's ``resumed_epoch`` says where, and
its ``train_s`` adds the earlier processes' seconds up to that epoch (``seconds.json`` in
the backup folder), so it counts every epoch of the run once. ``--time-budget`` (seconds,
0: none) starts no run that the mean run time so far says would not finish in it.
``<out>/leaderboard.md`` (the tables) and ``<out>/leaderboard.png`` (test Recall@N per
loss over the seeds) are rewritten after every run; ``--report NAME`` writes
``<out>/NAME.md`` and ``<out>/NAME.png`` instead (and ``NAME-alpha_sweep.png``), e.g. a
second report of a subset of ``--losses`` beside the full one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import time
from typing import Any

import numpy as np
import pandas as pd

from pipelines._cli import float_list, int_list, name_list
from tfcro.experiments.plots import plot_alpha_sweep, plot_seed_recalls
from tfcro.experiments.tables import alpha_choice_table, chosen_per_cutoff, seed_tables
from tfcro.runfolder import read_json, write_atomic, write_json

RUNS_FILE = "runs.csv"
BACKUP_DIR = "backup"  # a backup per unfinished run, deleted once its row is written
SECONDS_FILE = "seconds.json"  # in a run's backup: its training seconds by epochs done
REPORT = "leaderboard"  # --report's default
REPORT_FILE = f"{REPORT}.md"
PLOT_FILE = f"{REPORT}.png"
ALPHA_PLOT_FILE = "alpha_sweep.png"
LOSSES = ("softmax", "bpr", "bsl", "psl", "sl-at-k", "cro", "cro-lambda")
CRO_LOSSES = ("cro", "cro-lambda")
REFERENCE = "softmax"
SWEEP_REFERENCE = "alpha-reference"  # the phase of softmax's runs under the sweep's protocol
#: Trial 0 of every loss: the best softmax trial of the Keras 2 Yelp2018 study
#: (docs/benchmarks.md, "Recipe"; validation Recall@20 0.0783), the losses' own defaults.
BASE = {
    "learning_rate": 0.0118,
    "embedding_l2": 0.0035,
    "scale": 8.0,
    "logq_correction": True,
    "in_batch_negatives": True,
    "num_negatives": 2048,
}
KS = (20, 50, 100)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.keras3_leaderboard",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", default="lightgcn", help="a tfcro.data.load_dataset name")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", required=True, help="results folder (resumed)")
    parser.add_argument("--losses", type=name_list, default=list(LOSSES))
    parser.add_argument("--trials", type=int, default=4, help="per loss, trial 0 = --base")
    parser.add_argument("--seeds", type=int_list, default=[1, 2, 3], help="0: the tuning run")
    parser.add_argument("--top", type=int, default=4, help="losses retrained over seeds")
    parser.add_argument(
        "--base", type=json.loads, default=BASE, help="trial 0's settings (JSON; default BASE)"
    )
    parser.add_argument("--epochs", type=int, default=100, help="at most")
    parser.add_argument(
        "--refit",
        action="store_true",
        help="then retrain every seed run on the whole training file for its selected epochs",
    )
    parser.add_argument("--patience", type=int, default=3, help="evaluations")
    parser.add_argument("--frequency", type=int, default=2, help="epochs per evaluation")
    parser.add_argument("--monitor", default="recall@20")
    parser.add_argument("--ks", type=int_list, default=list(KS), help="N of the metrics @N")
    parser.add_argument(
        "--alphas",
        type=float_list,
        default=[],
        help="then each CROLoss loss's best trial with each alpha, over --seeds",
    )
    parser.add_argument(
        "--reference-scales",
        type=float_list,
        default=[],
        help="with --alphas: softmax's best trial also with each of these scales",
    )
    parser.add_argument(
        "--search-space",
        type=int,
        default=None,
        help="the version of tfcro.experiments.space.SEARCH_SPACES that trials 1.. draw "
        "from; default: the grid's own (1 for grids started before versions), the latest "
        "for a new --out",
    )
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--valid-fraction", type=float, default=0.1)
    parser.add_argument("--valid-split", default="last", choices=["random", "last"])
    parser.add_argument("--test-fraction", type=float, default=0.2, help="unsplit data only")
    parser.add_argument("--time-budget", type=float, default=0.0, help="seconds; 0: none")
    parser.add_argument("--eval-batch-size", type=int, default=4096)
    parser.add_argument(
        "--steps-per-execution", type=int, default=1, help="Keras's: fewer syncs, e.g. on a GPU"
    )
    parser.add_argument(
        "--report",
        default=REPORT,
        help="the report's file name in --out, without .md/.png (default: leaderboard)",
    )
    parser.add_argument("--verbose", type=int, default=0)
    return parser


def report_files(report: str) -> tuple[str, str, str]:
    """The file names of ``--report``: its tables (.md), its seed plot and its alpha
    sweep's plot (:data:`REPORT_FILE`, :data:`PLOT_FILE`, :data:`ALPHA_PLOT_FILE` for
    the default).
    """
    alpha_plot = ALPHA_PLOT_FILE if report == REPORT else f"{report}-{ALPHA_PLOT_FILE}"
    return f"{report}.md", f"{report}.png", alpha_plot


def load_split(args):
    """The dataset as integer ids (:func:`tfcro.data.index_split`)."""
    from tfcro import data as data_lib

    if args.dataset == "synthetic":
        interactions = data_lib.load_dataset("synthetic", num_users=300, num_items=200, seed=0)
    else:
        interactions = data_lib.load_dataset(args.dataset, args.data_dir)
    if not interactions.has_split:
        interactions = data_lib.random_holdout(interactions, args.test_fraction, seed=0)
    split = data_lib.collaborative_split(
        interactions,
        max_history=1,
        valid_fraction=args.valid_fraction,
        seed=0,
        valid_split=args.valid_split,
    )
    return data_lib.index_split(split)


def trial_params(loss: str, trial: int, base: dict[str, Any], space_version: int) -> dict[str, Any]:
    """Trial 0: ``base`` (settings it leaves out: :data:`BASE`'s); later trials: a draw of
    the search space of ``space_version`` (the grid's, :func:`check_grid`): of the settings
    every loss has, one per trial (the same for every loss); of the loss's own options,
    one per trial and loss.
    """
    from tfcro.experiments.space import sample, search_space

    if trial == 0:
        return {**BASE, **base}
    space = search_space(space_version, "--search-space")
    shared = {k: v for k, v in space.items() if "losses" not in v}
    own = {k: v for k, v in space.items() if "losses" in v}
    params = sample(loss, np.random.default_rng([trial]), shared)
    params.update(sample(loss, np.random.default_rng([trial, sum(map(ord, loss))]), own))
    if "sparse_updates" in base:  # the grid's optimizer, in every trial
        params["sparse_updates"] = base["sparse_updates"]
    return params


def train_once(
    ids,
    loss_name: str,
    params: dict[str, Any],
    seed: int,
    args,
    refit_epochs: int | None = None,
    per_cutoff: bool = False,
    backup_dir: str | None = None,
) -> dict[str, Any]:
    """One run: train with validation early stopping, test the best weights; or, with
    ``refit_epochs``, train that many epochs on the whole training file (validation
    targets included, :meth:`~tfcro.data.IndexedSplit.refit_split`) and test the result.
    ``per_cutoff`` (the alpha sweep): also select a model per N of ``--ks`` on validation
    Recall@N and test it on Recall@N (``sel_val_recall@N``, ``sel_test_recall@N``,
    ``sel_epoch@N``; early stopping waits for every N). ``backup_dir``: back the run up
    there and resume from it (kept; the caller deletes it once the row is written).
    """
    import keras

    import tfcro.keras3 as cro
    from tfcro.experiments.space import LOSS_SETTINGS

    keras.utils.set_random_seed(seed)  # the same initial weights in any run order
    if refit_epochs is not None:
        ids = ids.refit_split()
    options = {k: v for k, v in params.items() if k in LOSS_SETTINGS}
    model = cro.TwoTowerRetrieval(
        ids.num_users,
        ids.num_items,
        args.embedding_dim,
        loss=cro.get(loss_name, **options),
        scale=float(params["scale"]),
        item_probabilities=ids.item_probabilities() if params["logq_correction"] else None,
        num_negatives=int(params["num_negatives"]),
        num_row_negatives=int(params.get("num_row_negatives", 0)),
        in_batch_negatives=bool(params["in_batch_negatives"]),
        embedding_l2=float(params["embedding_l2"]),
        user_dropout=float(params.get("user_dropout", 0.0)),
        embeddings_initializer=params.get("embeddings_initializer", "uniform"),
        sparse_updates=params.get("sparse_updates", False),
        seed=seed,
        top_n=max(args.ks),
    )
    model.compile(
        optimizer=keras.optimizers.Adam(float(params["learning_rate"])),
        steps_per_execution=args.steps_per_execution,
    )
    callbacks, selection = [], None
    if refit_epochs is None:
        selection = cro.RankingEvaluation(
            ids.valid,
            ks=args.ks,
            monitor=args.monitor,
            patience=args.patience,
            frequency=args.frequency,
            batch_size=args.eval_batch_size,
            also_monitor=[f"recall@{k}" for k in args.ks] if per_cutoff else (),
            backup_dir=backup_dir,
            delete_backup=False,
        )
        callbacks.append(selection)
    elif backup_dir is not None:
        model.build()  # BackupAndRestore loads into a built model
        callbacks.append(  # two checkpoints: a kill while writing one leaves the other
            keras.callbacks.BackupAndRestore(
                backup_dir, double_checkpoint=True, delete_checkpoint=False
            )
        )
    started = time.perf_counter()
    clock = None
    if backup_dir is not None:  # after the backup's callback: its evaluation is counted
        clock = _training_clock(keras, os.path.join(backup_dir, SECONDS_FILE), started)
        callbacks.append(clock)
    history = model.fit(
        ids.train_users,
        ids.train_items,
        batch_size=args.batch_size,
        epochs=args.epochs if refit_epochs is None else refit_epochs,
        shuffle=True,
        callbacks=callbacks,
        verbose=args.verbose,
    )
    seconds = time.perf_counter() - started + (clock.before if clock is not None else 0.0)
    test = cro.evaluate(model, ids.test, args.ks, batch_size=args.eval_batch_size)
    row = {
        "loss": loss_name,
        "seed": seed,
        "params": json.dumps(params, sort_keys=True),
        "best_epoch": refit_epochs,
        "epochs_run": refit_epochs,
        "train_s": round(seconds, 1),
        "backend": keras.backend.backend(),
    }
    if selection is None:  # the first epoch this process trained (all done: none)
        resumed = history.epoch[0] if history.epoch else refit_epochs
    else:
        resumed = selection.resumed_epoch
        best = selection.history[selection.evaluated_epochs.index(selection.best_epoch)]
        row["best_epoch"] = selection.best_epoch + 1
        row["epochs_run"] = selection.evaluated_epochs[-1] + 1
        row.update(
            {f"val_{k}": v for k, v in best.items() if k.split("@")[0] in ("recall", "ndcg")}
        )
    if resumed:
        row["resumed_epoch"] = resumed
    row.update({f"test_{k}": v for k, v in test.items() if k.split("@")[0] in ("recall", "ndcg")})
    if per_cutoff:
        row.update(_per_cutoff_tests(model, selection, ids, args))
    return row


def _per_cutoff_tests(model, callback, ids, args) -> dict[str, Any]:
    """For each N of ``--ks``: the best validation Recall@N, its epoch (1-based) and the
    test Recall@N of those weights.
    """
    import tfcro.keras3 as cro

    row: dict[str, Any] = {}
    for k in args.ks:
        name = f"recall@{k}"
        value, epoch = callback.best_of.get(name, (callback.best, callback.best_epoch))
        model.set_weights(callback.best_weights_of(name))
        test = cro.evaluate(model, ids.test, [k], batch_size=args.eval_batch_size)
        row.update(
            {
                f"sel_val_{name}": value,
                f"sel_test_{name}": test[name],
                f"sel_epoch@{k}": epoch + 1,
            }
        )
    return row


def read_runs(out: str) -> pd.DataFrame:
    path = os.path.join(out, RUNS_FILE)
    return pd.read_csv(path) if os.path.exists(path) else pd.DataFrame()


def append_run(out: str, row: dict[str, Any]) -> None:
    path = os.path.join(out, RUNS_FILE)
    frame = pd.concat([read_runs(out), pd.DataFrame([row])], ignore_index=True)
    write_atomic(path, frame.to_csv(index=False))  # a kill never leaves half a file


def _training_clock(keras, path: str, started: float):
    """A callback that keeps a run's training seconds across processes: after every epoch
    it records in ``path`` (JSON, epochs done -> seconds) this process's seconds since
    ``started`` plus ``before``, the seconds recorded for the epochs done when it resumed
    (a resumed ``fit`` starts after the last backup: epochs trained after it by a killed
    process are trained again and counted once)."""

    class TrainingClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.before, self.record, self.first = 0.0, {}, True

        def on_epoch_begin(self, epoch, logs=None):
            if self.first:  # the epochs done when this process starts training
                self.first = False
                self.record = {k: v for k, v in self.record.items() if int(k) <= epoch}
                self.before = float(self.record.get(str(epoch), 0.0))

        def on_epoch_end(self, epoch, logs=None):
            self.record[str(epoch + 1)] = self.before + time.perf_counter() - started
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_json(path, self.record)

    clock = TrainingClock()
    if os.path.exists(path):  # read once; a fit with no epoch left (killed before its
        clock.record = read_json(path)  # row) keeps the last record's seconds
        clock.before = float(clock.record[max(clock.record, key=int)]) if clock.record else 0.0
    return clock


def run_backup_dir(out: str, run: tuple) -> str:
    """The backup folder of a run of :func:`plan` (``(phase, loss, trial, seed, params,
    refit_epochs)``): named by phase, loss, trial and seed, and a digest of all of it.
    """
    phase, loss, trial, seed, params, refit_epochs = run
    digest = hashlib.sha1(
        json.dumps([phase, loss, trial, seed, params, refit_epochs], sort_keys=True).encode()
    ).hexdigest()[:12]
    return os.path.join(out, BACKUP_DIR, f"{phase}-{loss}-t{trial}-s{seed}-{digest}")


def run_key(phase: str, loss: str, trial: int, seed: int, alpha: float = math.nan) -> tuple:
    """What identifies a run in ``runs.csv`` (``alpha``: the swept value, the alpha sweep's
    alpha or the reference's ``ref_scale``, NaN elsewhere; 12 significant digits, so that a
    value read back from the CSV finds its run).
    """
    return (phase, loss, int(trial), int(seed), None if math.isnan(alpha) else _alpha_key(alpha))


def _alpha_key(alpha: float) -> float:
    return float(f"{float(alpha):.12g}")


#: The options that decide what a run of ``<out>`` measures: a rerun with other values
#: would mix two grids in one ``runs.csv`` (``grid.json`` records them).
GRID_OPTIONS = (
    "dataset",
    "base",
    "epochs",
    "patience",
    "frequency",
    "monitor",
    "batch_size",
    "embedding_dim",
    "valid_fraction",
    "valid_split",
    "test_fraction",
)
GRID_FILE = "grid.json"


def check_grid(args) -> None:
    """Records the options of :data:`GRID_OPTIONS` (and the data folder's name) in
    ``<out>/grid.json`` on the first run; ValueError naming each option that a rerun
    changed (start another ``--out`` for other settings). Sets ``args.search_space``: a
    new grid's (``--search-space``, by default the latest), or the one the grid recorded
    (1 for grids started before the space had versions); another is a ValueError.
    """
    from tfcro.experiments.space import resolve_version

    grid = {name: getattr(args, name) for name in GRID_OPTIONS}
    grid["data"] = os.path.basename(os.path.normpath(args.data_dir)) if args.data_dir else None
    path = os.path.join(args.out, GRID_FILE)
    where, flag = f"--out {args.out}", "--search-space"
    if not os.path.exists(path):
        # runs without a grid.json: a grid from before grid.json, drawn from version 1
        recorded = None if read_runs(args.out).empty else 1
        args.search_space = resolve_version(recorded, args.search_space, where, flag)
        grid["search_space"] = args.search_space
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(grid, handle, indent=1, sort_keys=True)
        return
    with open(path, encoding="utf-8") as handle:
        recorded = json.load(handle)
    args.search_space = resolve_version(
        recorded.pop("search_space", 1), args.search_space, where, flag
    )
    changed = {k: (recorded.get(k), v) for k, v in grid.items() if recorded.get(k) != v}
    if changed:
        listed = "; ".join(f"{k}: {old!r} there, {new!r} now" for k, (old, new) in changed.items())
        raise ValueError(
            f"--out {args.out} holds a grid run with other settings ({listed}). Rerun with "
            f"its settings or start another --out."
        )


def plan(args, runs: pd.DataFrame) -> list[tuple[str, str, int, int, dict, int | None]]:
    """The runs still to do, in order: ``(phase, loss, trial, seed, params, refit_epochs)``.
    Seeds come after every tuning trial is done (they need each loss's best trial); with
    ``--refit``, the refits after every seed (each takes its run's selected epochs); with
    ``--alphas``, the alpha sweep last. ``args.search_space`` is the grid's
    (:func:`check_grid` sets it).
    """
    if args.search_space is None:
        raise ValueError("plan: args.search_space is None; call check_grid(args) first")
    done = set()
    if not runs.empty:
        alphas = runs["alpha"] if "alpha" in runs else pd.Series(math.nan, index=runs.index)
        if "ref_scale" in runs:  # the reference's swept scale (NaN: its trial's own)
            alphas = alphas.where(runs.phase != SWEEP_REFERENCE, runs["ref_scale"])
        done = {
            run_key(r.phase, r.loss, r.trial, r.seed, float(alpha))
            for r, alpha in zip(runs.itertuples(), alphas, strict=True)
        }
    todo = [
        ("tune", loss, trial, 0, trial_params(loss, trial, args.base, args.search_space), None)
        for trial in range(args.trials)
        for loss in args.losses
        if run_key("tune", loss, trial, 0) not in done
    ]
    if todo:
        return todo
    chosen = chosen_trials(args, runs)
    for _, row in chosen.iterrows():
        for seed in args.seeds:
            if seed != 0 and run_key("seed", row.loss, row.trial, seed) not in done:
                todo.append(("seed", row.loss, int(row.trial), seed, json.loads(row.params), None))
    if todo:
        return todo
    if args.refit:
        for _, row in seed_runs(args, runs).iterrows():
            if run_key("refit", row.loss, row.trial, row.seed) not in done:
                params, epochs = json.loads(row.params), int(row.best_epoch)
                todo.append(("refit", row.loss, int(row.trial), int(row.seed), params, epochs))
    if todo:
        return todo
    best = best_trials(args, runs)
    if args.alphas and best.loss.isin(list(CRO_LOSSES)).any():
        for _, row in best[best.loss == REFERENCE].iterrows():
            params = json.loads(row.params)
            scales = [math.nan, *reference_scales(args, params)]
            for seed in args.seeds:
                for scale in scales:
                    if run_key(SWEEP_REFERENCE, row.loss, row.trial, seed, scale) in done:
                        continue
                    swept = params if math.isnan(scale) else {**params, "scale": scale}
                    todo.append((SWEEP_REFERENCE, row.loss, int(row.trial), seed, swept, None))
    for _, row in best.iterrows():
        if row.loss not in CRO_LOSSES:
            continue
        for alpha in args.alphas:
            for seed in args.seeds:
                if run_key("alpha", row.loss, row.trial, seed, alpha) not in done:
                    params = {**json.loads(row.params), "alpha": float(alpha)}
                    todo.append(("alpha", row.loss, int(row.trial), seed, params, None))
    return todo


def reference_scales(args, params: dict[str, Any]) -> list[float]:
    """``--reference-scales`` without the trial's own scale (that run is the plain one)."""
    if not args.reference_scales:
        return []
    own = _alpha_key(params["scale"])
    return [scale for scale in args.reference_scales if _alpha_key(scale) != own]


def tuning_runs(args, runs: pd.DataFrame) -> pd.DataFrame:
    """The tuning runs of this grid: ``--losses``, trials below ``--trials`` (a rerun with
    fewer trials selects from the same budget for every loss).
    """
    if runs.empty:
        return runs
    return runs[(runs.phase == "tune") & runs.loss.isin(args.losses) & (runs.trial < args.trials)]


def best_trials(args, runs: pd.DataFrame) -> pd.DataFrame:
    """Each loss's best tuning run on validation (``--monitor``), best first (ties: by
    loss name); runs without a finite validation score (diverged) are never chosen.
    """
    column = f"val_{args.monitor}"
    best = _best_per_loss(tuning_runs(args, runs), column)
    return best.sort_values([column, "loss"], ascending=[False, True], kind="stable")


def _best_per_loss(tuned: pd.DataFrame, column: str) -> pd.DataFrame:
    """Each loss's row of ``tuned`` with the highest finite ``column``, by loss name."""
    if tuned.empty or column not in tuned:
        return tuned.iloc[0:0]
    tuned = tuned[np.isfinite(tuned[column].astype(float))]
    return tuned.loc[tuned.groupby("loss")[column].idxmax()]


def chosen_trials(args, runs: pd.DataFrame) -> pd.DataFrame:
    """The best tuning run (validation) of the ``--top`` losses and of softmax."""
    ranked = best_trials(args, runs)
    keep = list(ranked.loss[: args.top])
    if REFERENCE in args.losses and REFERENCE not in keep:
        keep.append(REFERENCE)
    return ranked[ranked.loss.isin(keep)]


def _of_runs(rows: pd.DataFrame, runs: pd.DataFrame, by=("loss", "trial")) -> pd.DataFrame:
    """The rows of ``rows`` whose values of the columns ``by`` are those of a run of
    ``runs`` (``("loss", "trial")``: of the same trials).
    """
    keys = set(runs[list(by)].itertuples(index=False, name=None))
    found = [key in keys for key in rows[list(by)].itertuples(index=False, name=None)]
    return rows.loc[np.array(found, dtype=bool)]


def seed_runs(args, runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of ``--seeds`` of the chosen trials (runs of a trial that is no longer a
    chosen one, after the grid grew, are left out); seed 0 (when asked for) is the
    tuning run.
    """
    if runs.empty:
        return runs
    chosen = chosen_trials(args, runs)
    seeds = _of_runs(runs[(runs.phase == "seed") & runs.seed.isin(args.seeds)], chosen)
    if 0 in args.seeds:
        seeds = pd.concat([chosen, seeds], ignore_index=True)
    return seeds


def refit_runs(args, runs: pd.DataFrame) -> pd.DataFrame:
    """The refits of the runs of :func:`seed_runs`."""
    if runs.empty:
        return runs
    by = ("loss", "trial", "seed")
    return _of_runs(runs[runs.phase == "refit"], seed_runs(args, runs), by)


def alpha_runs(args, runs: pd.DataFrame, phase: str = "alpha") -> pd.DataFrame:
    """The alpha sweep's runs of each CROLoss loss's best trial and ``--seeds`` (and
    ``--alphas``, when given): ``loss``, ``seed``, ``alpha``, ``val_recall@N`` and the
    test metrics without their ``test_`` prefix; Recall@N from each N's own model (the
    ``sel_*`` columns) where the run has one. ``phase=SWEEP_REFERENCE``: softmax's runs
    under the same protocol instead (``alpha`` NaN), with its trial's own scale and those
    of ``--reference-scales`` (``scale``: the scale of each run).
    """
    sweep = runs[runs.phase == phase] if not runs.empty else runs
    if not sweep.empty:
        sweep = _of_runs(sweep[sweep.seed.isin(args.seeds)], best_trials(args, runs))
    if not sweep.empty and args.alphas and phase == "alpha":
        wanted = {_alpha_key(alpha) for alpha in args.alphas}
        sweep = sweep.loc[np.array([_alpha_key(a) in wanted for a in sweep.alpha], dtype=bool)]
    if sweep.empty:
        return pd.DataFrame(columns=["loss", "seed", "alpha"])
    sweep = sweep.copy()
    if "alpha" not in sweep:
        sweep["alpha"] = np.nan
    if phase == SWEEP_REFERENCE:
        swept = sweep["ref_scale"] if "ref_scale" in sweep else pd.Series(np.nan, sweep.index)
        wanted = {_alpha_key(scale) for scale in args.reference_scales}
        keep = [math.isnan(s) or _alpha_key(s) in wanted for s in swept]
        sweep = sweep.loc[np.array(keep, dtype=bool)]
        sweep["scale"] = [json.loads(params).get("scale", np.nan) for params in sweep.params]
    for column in [c for c in sweep.columns if c.startswith(("sel_val_", "sel_test_"))]:
        target = column[len("sel_") :]  # each N's own model, where the run has one
        sweep[target] = sweep[column].fillna(sweep[target] if target in sweep else np.nan)
    valid = [c for c in sweep.columns if c.startswith("val_recall@")]
    swept = ["alpha", "scale"] if phase == SWEEP_REFERENCE else ["alpha"]
    return pd.concat([test_metrics(sweep), sweep[[*swept, *valid]]], axis=1)


def sweep_reference(args, runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the alpha sweep pairs with: softmax's runs under its protocol, one row per
    seed, and the scale sweep's runs (empty without ``--reference-scales`` runs). With
    several scales, each N's Recall@N comes from the scale that validation Recall@N picks
    (:func:`~tfcro.experiments.tables.chosen_per_cutoff`).
    """
    runs = alpha_runs(args, runs, SWEEP_REFERENCE)
    if runs.empty or runs.scale.nunique() < 2:
        return runs, runs.iloc[:0]
    ks = [k for k in args.ks if f"val_recall@{k}" in runs]
    return chosen_per_cutoff(runs.assign(alpha=runs.scale), ks), runs


def test_metrics(seeds: pd.DataFrame) -> pd.DataFrame:
    """``loss``, ``seed`` and the test metrics of ``seeds`` without their ``test_`` prefix."""
    renamed = seeds.rename(columns=lambda c: c[len("test_") :] if c.startswith("test_") else c)
    keep = ["loss", "seed"] + [c for c in renamed.columns if c.split("@")[0] in ("recall", "ndcg")]
    return renamed[keep]


def params_taken(loss: str, params: str) -> str:
    """A run's ``params`` (JSON) without the loss options ``loss`` does not take (a
    ``--base`` shared by several losses may carry one loss's alpha and kernel; the others
    drop them when they build the loss, and so does the report).
    """
    from tfcro.core.definitions import OPTIONS
    from tfcro.experiments.space import LOSS_SETTINGS

    taken = OPTIONS.get(loss, ())
    values = json.loads(params)
    shown = {k: v for k, v in values.items() if k not in LOSS_SETTINGS or k in taken}
    return json.dumps(shown, sort_keys=True)


def report(args, runs: pd.DataFrame) -> str:
    """Markdown: the tuning (complete rounds only) and the seeds with paired differences."""
    if runs.empty:
        return "no run yet\n"
    monitor = f"val_{args.monitor}"
    tuned = tuning_runs(args, runs)
    counts = tuned.groupby("loss").trial.count().reindex(args.losses, fill_value=0)
    rounds = int(counts.min())
    lines = [f"# Keras 3 leaderboard ({runs.backend.iloc[0]}): {args.dataset}", ""]
    space = args.search_space  # check_grid's, from grid.json (None: not checked)
    drawn = ""
    if space is not None and rounds > 1:  # trial 0 is --base: drawn from no space
        drawn = f" (trials 1.. drawn from search space version {space})"
    lines.append(f"Tuning: {rounds} complete trial(s) per loss{drawn}, selected on {monitor}.")
    lines += [
        "",
        f"| loss | trials | best {monitor} | its test recall@20 | ndcg@20 | best epoch | params |",
        "|---|---|---|---|---|---|---|",
    ]
    counted = tuned[tuned.trial < rounds]
    trials = counted.groupby("loss").trial.count()
    for _, best in _best_per_loss(counted, monitor).iterrows():
        lines.append(
            f"| {best.loss} | {trials[best.loss]} | {best[monitor]:.4f} "
            f"| {best['test_recall@20']:.4f} | {best['test_ndcg@20']:.4f} | {best.best_epoch} "
            f"| `{params_taken(best.loss, best.params)}` |"
        )
    seeds = seed_runs(args, runs)
    if len(seeds):
        title = "Seeds of each loss's best trial (test, mean ± sample std):"
        lines += seed_tables(test_metrics(seeds), args.ks, title, REFERENCE)
    refits = refit_runs(args, runs)
    if len(refits):
        title = (
            "Refits: the same seeds retrained on the whole training file (validation "
            "included) for the epochs each selected (test, mean ± sample std):"
        )
        lines += seed_tables(test_metrics(refits), args.ks, title, REFERENCE)
    sweep = alpha_runs(args, runs)
    reference, scales = sweep_reference(args, runs)
    if len(sweep) and len(scales):
        ks = [k for k in args.ks if f"val_recall@{k}" in scales]
        lines += [
            "",
            f"Scale sweep, {REFERENCE} (its best trial with each scale, the alpha sweep's "
            f"protocol; seeds {sorted(set(scales.seed))}):",
            "",
            *alpha_choice_table(scales.assign(alpha=scales.scale), ks, param="scale"),
        ]
    name = f"{REFERENCE} (scale picked per N)" if len(scales) else REFERENCE
    for loss, group in sweep.groupby("loss", sort=False):
        ks = [k for k in args.ks if f"val_recall@{k}" in group]
        with_reference = f" and {REFERENCE}'s best trial, paired" if len(reference) else ""
        lines += [
            "",
            f"Alpha sweep, {loss} (its best trial with each alpha{with_reference}; "
            f"seeds {sorted(set(group.seed))}; each N's model selected on validation "
            "Recall@N):",
            "",
            *alpha_choice_table(group, ks, reference, name),
        ]
    return "\n".join(lines) + "\n"


def write_report(args) -> str:
    """Writes ``leaderboard.md`` and, once seed runs exist, ``leaderboard.png`` (test
    Recall@N per loss over the seeds; other names with ``--report``); returns the
    Markdown.
    """
    runs = read_runs(args.out)
    text = report(args, runs)
    table_file, plot_file, alpha_plot_file = report_files(args.report)
    write_atomic(os.path.join(args.out, table_file), text)
    if not runs.empty:
        seeds = seed_runs(args, runs)
        if len(seeds):
            plot_seed_recalls(test_metrics(seeds), os.path.join(args.out, plot_file))
        sweep = alpha_runs(args, runs)
        if len(sweep):
            reference = sweep_reference(args, runs)[0]
            path = os.path.join(args.out, alpha_plot_file)
            plot_alpha_sweep(sweep, path, args.ks, reference if len(reference) else None)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = sorted(set(args.losses) - set(LOSSES))
    if unknown or not args.losses:
        parser.error(f"--losses: unknown {unknown or args.losses}; allowed: {list(LOSSES)}")
    for name, minimum in (("trials", 1), ("top", 1), ("epochs", 1), ("frequency", 1)):
        if getattr(args, name) < minimum:
            parser.error(f"--{name} should be >= {minimum}. Received: {getattr(args, name)}")
    if any(k < 1 for k in args.ks) or args.monitor.split("@")[-1] not in map(str, args.ks):
        parser.error(
            f"--ks should be N >= 1 and include --monitor's N. Received: --ks {args.ks}, "
            f"--monitor {args.monitor}"
        )
    for name in ("alphas", "reference_scales"):
        values = getattr(args, name)
        if any(not value > 0 for value in values):
            parser.error(f"--{name.replace('_', '-')} should be > 0. Received: {values}")
    if (
        not args.report
        or args.report != os.path.basename(args.report)
        or args.report.startswith(".")
    ):
        parser.error(
            "--report should be a file name without a folder or a leading dot. "
            f"Received: {args.report!r}"
        )
    if args.patience < 0 or any(seed < 0 for seed in args.seeds):
        parser.error(
            f"--patience and --seeds should be >= 0. Received: {args.patience}, {args.seeds}"
        )
    os.makedirs(args.out, exist_ok=True)
    try:
        check_grid(args)
    except ValueError as error:
        parser.error(str(error))
    started = time.perf_counter()
    ids = load_split(args)
    print(
        f"{args.dataset}: {ids.num_users} users, {ids.num_items} items, "
        f"{len(ids.train_users)} training pairs, {len(ids.valid)} validation users, "
        f"{len(ids.test)} test users ({time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    durations: list[float] = []
    while True:
        runs = read_runs(args.out)
        todo = plan(args, runs)
        if not todo:
            break
        phase, loss, trial, seed, params, refit_epochs = todo[0]
        elapsed = time.perf_counter() - started
        if args.time_budget and durations and elapsed + np.mean(durations) > args.time_budget:
            print(f"time budget: stopping with {len(todo)} run(s) left", flush=True)
            break
        began = time.perf_counter()
        per_cutoff = phase in ("alpha", SWEEP_REFERENCE)
        backup_dir = run_backup_dir(args.out, todo[0])
        row = train_once(ids, loss, params, seed, args, refit_epochs, per_cutoff, backup_dir)
        durations.append(time.perf_counter() - began)
        row.update({"phase": phase, "trial": trial, "seed": seed})
        if phase == "alpha":
            row["alpha"] = params["alpha"]
        own_scale = trial_params(loss, trial, args.base, args.search_space)["scale"]
        if phase == SWEEP_REFERENCE and _alpha_key(params["scale"]) != _alpha_key(own_scale):
            row["ref_scale"] = params["scale"]  # a --reference-scales run
        append_run(args.out, row)
        shutil.rmtree(backup_dir, ignore_errors=True)  # the run's own folder
        validation = f"val {row[f'val_{args.monitor}']:.4f} " if refit_epochs is None else ""
        print(
            f"{phase} {loss} trial {trial} seed {seed}: {validation}"
            f"test recall@20 {row['test_recall@20']:.4f} ndcg@20 {row['test_ndcg@20']:.4f} "
            f"(best epoch {row['best_epoch']}, {row['train_s']} s)",
            flush=True,
        )
        write_report(args)
    print(write_report(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
