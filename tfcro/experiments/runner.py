"""Training the cells of grids over seeds, resumably, with the learning rate chosen on validation.

Every run is a normal :func:`tfcro.training.train` run folder,
``<output_dir>/runs/<cell slug>/seed<k>`` (:func:`run_dir`). A folder that
already holds ``metrics.json`` is read back, never retrained; any other is
trained (resuming from its checkpoint, if any).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tfcro.experiments.grids import Cell, Grid
from tfcro.experiments.presets import cell_config
from tfcro.experiments.results import aggregate, validation_score
from tfcro.runfolder import METRICS_FILE, read_json
from tfcro.training import TrainingConfig, load_data, train
from tfcro.validation import check_int, invalid


@dataclasses.dataclass
class RunRecord:
    """One finished (or missing) run: a cell at a learning rate and a seed."""

    cell: Cell
    learning_rate: float
    seed: int
    output_dir: str
    metrics: dict[str, Any] | None = None


@dataclasses.dataclass
class GridResult:
    """The runs of a grid: per cell, the chosen learning rate and its runs over seeds."""

    grid: Grid
    chosen_lr: dict[Cell, float | None]
    runs: dict[Cell, list[RunRecord]]
    tuning: dict[Cell, dict[float, float]]  # candidate lr -> mean validation monitor


def run_dir(output_dir: str, cell_: Cell, learning_rate: float, seed: int) -> str:
    """The run folder of a cell at a learning rate and a seed."""
    return os.path.join(output_dir, "runs", cell_.slug(learning_rate), f"seed{seed}")


def read_metrics(path: str) -> dict[str, Any] | None:
    """The ``metrics.json`` of a finished run folder, else None."""
    file = os.path.join(path, METRICS_FILE)
    return read_json(file) if os.path.isfile(file) else None


class _Runner:
    """Runs one (cell, learning rate, seed) at a time, keeping the current seed's split."""

    def __init__(
        self,
        base: TrainingConfig,
        output_dir: str,
        max_runs: int | None,
        data_loader: Callable[[TrainingConfig], Any],
        verbose: int,
        log: Callable[[str], None],
    ):
        self.base, self.output_dir, self.max_runs = base, output_dir, max_runs
        self.data_loader, self.verbose, self.log = data_loader, verbose, log
        self.trained = 0
        self._data: tuple[int, Any] | None = None

    def data(self, seed: int) -> Any:
        if self._data is None or self._data[0] != seed:
            self._data = None  # free the previous split first
            started = time.time()
            self._data = (seed, self.data_loader(dataclasses.replace(self.base, seed=seed)))
            self.log(
                f"[reproduce] split seed={seed}: {self._data[1]} ({time.time() - started:.0f} s)"
            )
        return self._data[1]

    def run(self, cell_: Cell, lr: float, seed: int) -> RunRecord:
        path = run_dir(self.output_dir, cell_, lr, seed)
        record = RunRecord(cell_, lr, seed, path, read_metrics(path))
        if record.metrics is not None:
            return record
        if self.max_runs is not None and self.trained >= self.max_runs:
            return record
        config = cell_config(self.base, cell_, lr, seed)
        started = time.time()
        self.trained += 1
        self.log(f"[reproduce] train {cell_.slug(lr)} seed={seed} -> {path}")
        try:
            train(config, path, data=self.data(seed), verbose=self.verbose)
        except (ValueError, OSError, RuntimeError) as err:
            # one broken run (e.g. a damaged folder) must not lose the whole grid
            self.log(
                f"[reproduce]   FAILED {cell_.slug(lr)} seed={seed}: {type(err).__name__}: {err}"
            )
            return record
        record.metrics = read_metrics(path)
        if record.metrics is None:
            return record
        score = record.metrics.get(self.base.monitor, float("nan"))
        self.log(
            f"[reproduce]   done in {time.time() - started:.0f} s: "
            f"test {self.base.monitor}={score:.4f}"
        )
        return record


def choose_learning_rate(scores: Mapping[float, Sequence[float]]) -> float | None:
    """The candidate with the highest mean validation score (ties: the smaller rate).

    >>> choose_learning_rate({0.001: [0.30, 0.32], 0.005: [0.35, float("nan")]})
    0.005
    """
    best, best_value = None, -math.inf
    for lr in sorted(scores):
        values = [v for v in scores[lr] if not math.isnan(v)]
        if values and sum(values) / len(values) > best_value:
            best, best_value = lr, sum(values) / len(values)
    return best


def run_grids(
    grids: Sequence[Grid],
    base: TrainingConfig,
    seeds: Sequence[int],
    output_dir: str,
    *,
    tune_seeds: int | None = None,
    max_runs: int | None = None,
    data_loader: Callable[[TrainingConfig], Any] = load_data,
    verbose: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, GridResult]:
    """Trains every cell of ``grids`` over ``seeds`` (resuming), one split per seed.

    Args:
      grids: the experiments; cells shared between grids (same loss setting and
        learning rate) train once.
      base: the dataset/model/optimisation settings (:func:`preset_config`).
      seeds: the seeds; each seeds the split, the initialisation and the sampler.
      output_dir: runs go to ``<output_dir>/runs/<cell slug>/seed<k>``.
      tune_seeds: cells with several learning rates try all of them on the first
        ``tune_seeds`` seeds (default: all), choose on mean validation monitor,
        and run only the chosen one on the other seeds.
      max_runs: train at most this many new runs (finished runs don't count);
        cells left untrained are reported with fewer (or no) seeds.
      data_loader: ``config -> RetrievalData`` (default :func:`tfcro.training.load_data`).
      verbose: Keras verbosity of each run.
      log: progress messages.

    Returns:
      ``{grid name: GridResult}``.
    """
    seeds = tuple(int(s) for s in seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise invalid("seeds", "distinct integers", list(seeds))
    check_int("max_runs", max_runs, 0, allow_none=True)
    n_tune = len(seeds) if tune_seeds is None else int(tune_seeds)
    if not 1 <= n_tune <= len(seeds):
        raise invalid("tune_seeds", f"in [1, {len(seeds)}]", tune_seeds)
    runner = _Runner(base, output_dir, max_runs, data_loader, verbose, log)
    cells = list(dict.fromkeys(c for g in grids for c in g.cells))
    records: dict[tuple[Cell, float, int], RunRecord] = {}
    # phase 1: every candidate on the tuning seeds (seed outer: one split in memory)
    for seed in seeds[:n_tune]:
        for c in cells:
            for lr in c.candidates(base.learning_rate):
                records[c, lr, seed] = runner.run(c, lr, seed)
    chosen: dict[Cell, float | None] = {}
    tuning: dict[Cell, dict[float, float]] = {}
    for c in cells:
        scores = {
            lr: [validation_score(records[c, lr, s].metrics, base.monitor) for s in seeds[:n_tune]]
            for lr in c.candidates(base.learning_rate)
        }
        chosen[c] = choose_learning_rate(scores)
        tuning[c] = {lr: aggregate(v)[0] for lr, v in scores.items()}
    # phase 2: the chosen learning rate on the other seeds
    for seed in seeds[n_tune:]:
        for c in cells:
            if chosen[c] is not None:
                records[c, chosen[c], seed] = runner.run(c, chosen[c], seed)
    results = {}
    for g in grids:
        runs = {
            c: [records[c, chosen[c], s] for s in seeds if (c, chosen[c], s) in records]
            for c in g.cells
        }
        results[g.name] = GridResult(
            g, {c: chosen[c] for c in g.cells}, runs, {c: tuning[c] for c in g.cells}
        )
    return results
