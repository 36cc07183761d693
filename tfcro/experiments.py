"""Reproducing the paper's experiments: grids as data, runs over seeds, tables and plots.

The CIKM 2022 paper's Tables 2-4 and Figures 4-5 are named *grids* of loss
settings (:func:`make_grid`). A grid is a tuple of :class:`Cell` s: one table
cell (a row label, optionally a column such as ``alpha=1.2``) and the loss it
trains, with one or more candidate learning rates. :func:`run_grids` trains
every cell over seeds with :func:`tfcro.training.train`, sharing one split per
dataset and seed, and resumes: a run folder that already holds ``metrics.json``
is read back, never retrained. Where a cell has several learning rates, the
one with the best mean *validation* monitor (Recall@100) over the tuning seeds
is chosen, and only it runs on the remaining seeds (test metrics never take
part in a choice). :func:`results_frame` aggregates test metrics over seeds
(mean and sample standard deviation), :func:`write_tables` writes CSV and
Markdown, :func:`plot_grid` writes a PNG (matplotlib, Agg backend).

Example::

    from tfcro import experiments as ex
    base = ex.preset_config("ml-100k", data_dir="../shared/data/ml-100k", epochs=3)
    grids = [ex.make_grid("table2", learning_rates=(0.001, 0.005))]
    results = ex.run_grids(grids, base, seeds=(0, 1), output_dir="runs/reproduce/ml-100k")
    for grid in grids:
        frame = ex.results_frame(grid, results[grid.name], ks=base.ks)
        ex.write_tables(frame, grid, "runs/reproduce/ml-100k", ks=base.ks)
        ex.plot_grid(frame, grid, "runs/reproduce/ml-100k/" + grid.name + ".png", ks=base.ks)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tfcro.training import METRICS_FILE, TrainingConfig, load_data, read_json, train

#: The experiments :func:`make_grid` knows, in the paper's order.
EXPERIMENTS = ("table2", "table3", "table4", "figure4", "figure5")
#: The paper's alpha grid (Table 3: 0.6-1.2 on Amazon, 1.0-1.6 on Taobao).
ALPHAS = (0.6, 0.8, 1.0, 1.2, 1.4, 1.6)
#: Table 2's methods, in the paper's order.
TABLE2_METHODS = ("softmax", "triplet", "bpr", "cro", "cro-lambda")
#: Table 3's kernel rows (``lambda``: the lambda method, sigmoid weight / softplus gradient).
TABLE3_KERNELS = ("hinge", "sigmoid", "exponential", "softplus", "lambda")
#: Table 4's lambda-method kernels.
WEIGHT_KERNELS = ("unit_step", "sigmoid")
GRADIENT_KERNELS = ("hinge", "exponential", "softplus")
#: The hinge margin of the paper (5 at scale 10; our scores are already ``10 * cos``).
PAPER_MARGIN = 5.0
DEFAULT_LEARNING_RATES = (0.001, 0.005)

#: Named dataset set-ups of ``pipelines.reproduce --dataset-preset``: TrainingConfig fields
#: (``data_subdir``: the folder under ``--data-root``; ``use_user_id``: the MF-style tower).
PRESETS: dict[str, dict[str, Any]] = {
    "ml-100k": {"dataset": "movielens", "data_subdir": "ml-100k", "protocol": "sequential",
                "batch_size": 256, "ks": (20, 50, 100, 200, 500)},
    "amazon-book": {"dataset": "lightgcn", "data_subdir": "amazon-book",
                    "protocol": "sequential", "batch_size": 1024,
                    "ks": (20, 50, 100, 200, 500)},
    "ml-1m": {"dataset": "pairs", "data_subdir": "ml-1m", "protocol": "collaborative",
              "use_user_id": True, "batch_size": 1024, "ks": (20, 50, 100)},
    "synthetic": {"dataset": "synthetic", "data_subdir": None, "protocol": "sequential",
                  "batch_size": 256, "ks": (20, 50, 100, 200, 500)},
}

LABELS = {"softmax": "softmax cross-entropy", "triplet": "triplet", "bpr": "BPR",
          "cro": "CROLoss", "cro-lambda": "CROLoss-lambda"}


# ----------------------------------------------------------------------------- grids


@dataclasses.dataclass(frozen=True)
class Cell:
    """One table cell: a loss setting trained over seeds (and candidate learning rates).

    Attributes:
      row: the row label (``"softmax"``, ``"sigmoid"``, ``"unit_step/softplus"``...).
      loss: a name of :data:`tfcro.losses.LOSSES`.
      options: the loss options as sorted ``(name, value)`` pairs (hashable).
      x: the column value (alpha) for grids laid out as rows x alphas; None otherwise.
      learning_rates: candidate learning rates, chosen on validation; empty: the
        base config's learning rate.
    """

    row: str
    loss: str
    options: tuple[tuple[str, Any], ...] = ()
    x: float | None = None
    learning_rates: tuple[float, ...] = ()

    @property
    def column(self) -> str:
        return "" if self.x is None else f"alpha={self.x:g}"

    def loss_options(self) -> dict[str, Any]:
        return dict(self.options)

    def candidates(self, default_lr: float) -> tuple[float, ...]:
        return self.learning_rates or (float(default_lr),)

    def slug(self, learning_rate: float) -> str:
        """The run folder name of this setting (shared by every grid that uses it)."""
        parts = [self.loss] + [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in self.options]
        return "-".join(parts + [f"lr{learning_rate:g}"])

    def settings(self) -> str:
        """The loss options as ``k=v`` text for tables."""
        return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in self.options) or "-"


def cell(row: str, loss: str, *, x: float | None = None,
         learning_rates: Iterable[float] = (), **options: Any) -> Cell:
    """Builds a :class:`Cell` (options as keywords; floats kept as floats)."""
    opts = tuple(sorted((k, float(v) if isinstance(v, int) and not isinstance(v, bool) else v)
                        for k, v in options.items()))
    return Cell(row=row, loss=loss, options=opts, x=None if x is None else float(x),
                learning_rates=tuple(float(lr) for lr in learning_rates))


@dataclasses.dataclass(frozen=True)
class Grid:
    """A named experiment: cells plus how to lay them out.

    ``layout="rows"``: one table row per cell, metrics as columns (Tables 2, 4).
    ``layout="alpha"``: rows x alpha columns, one sub-table per metric (Table 3,
    Figures 4-5).
    """

    name: str
    title: str
    cells: tuple[Cell, ...]
    layout: str = "rows"

    def __post_init__(self) -> None:
        if self.layout not in ("rows", "alpha"):
            raise ValueError(f"`layout` should be one of ['rows', 'alpha']. "
                             f"Received: layout={self.layout!r}")


def _kernel_cell(row: str, kernel: str, alpha: float, margin: float) -> Cell:
    if kernel == "lambda":
        return cell(row, "cro-lambda", x=alpha, weight_kernel="sigmoid", kernel="softplus",
                    alpha=alpha)
    extra = {"margin": margin} if kernel == "hinge" else {}
    return cell(row, "cro", x=alpha, kernel=kernel, alpha=alpha, **extra)


def _check_choice(name: str, values: Iterable[str], allowed: Sequence[str]) -> tuple[str, ...]:
    values = tuple(values)
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ValueError(f"`{name}` should be a non-empty subset of {list(allowed)}. "
                         f"Received: {name}={list(values)!r}")
    return values


def make_grid(name: str, *, alphas: Sequence[float] = ALPHAS,
              learning_rates: Sequence[float] = DEFAULT_LEARNING_RATES,
              methods: Sequence[str] = TABLE2_METHODS, kernels: Sequence[str] = TABLE3_KERNELS,
              alpha: float = 1.0, margin: float = PAPER_MARGIN) -> Grid:
    """The grid of one of the paper's experiments.

    Args:
      name: one of :data:`EXPERIMENTS`.
      alphas: the alpha columns of ``table3``/``figure4``/``figure5``.
      learning_rates: ``table2`` only: every method's candidate learning rates
        (the same tuning budget for baselines and CROLoss). The other grids
        train at the base config's learning rate.
      methods: ``table2`` rows, a subset of :data:`TABLE2_METHODS`.
      kernels: ``table3`` rows, a subset of :data:`TABLE3_KERNELS`.
      alpha: the alpha of ``table2``'s CROLoss rows and of ``table4``.
      margin: the hinge/triplet margin (paper: 5 at scale 10).
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"`experiment` should be one of {list(EXPERIMENTS)}. "
                         f"Received: experiment={name!r}")
    alphas = tuple(float(a) for a in alphas)
    if not alphas or any(not (math.isfinite(a) and a > 0) for a in alphas):
        raise ValueError(f"`alphas` should be floats > 0. Received: alphas={list(alphas)!r}")
    lrs = tuple(float(lr) for lr in learning_rates)
    if not lrs or any(not (math.isfinite(lr) and lr > 0) for lr in lrs):
        raise ValueError(f"`learning_rates` should be floats > 0. Received: "
                         f"learning_rates={list(lrs)!r}")
    if name == "table2":
        rows = {
            "softmax": cell("softmax", "softmax", learning_rates=lrs),
            "triplet": cell("triplet", "triplet", learning_rates=lrs, margin=margin),
            "bpr": cell("bpr", "bpr", learning_rates=lrs),
            "cro": cell("cro", "cro", learning_rates=lrs, kernel="softplus", alpha=alpha),
            "cro-lambda": cell("cro-lambda", "cro-lambda", learning_rates=lrs,
                               weight_kernel="sigmoid", kernel="softplus", alpha=alpha),
        }
        chosen = _check_choice("methods", methods, TABLE2_METHODS)
        return Grid("table2", "Table 2: loss comparison (learning rate chosen on validation)",
                    tuple(rows[m] for m in chosen))
    if name == "table3":
        chosen = _check_choice("kernels", kernels, TABLE3_KERNELS)
        cells = tuple(_kernel_cell(k, k, a, margin) for k in chosen for a in alphas)
        return Grid("table3", "Table 3: comparison kernel x alpha", cells, layout="alpha")
    if name == "table4":
        cells = tuple(cell(f"{w}/{g}", "cro-lambda", weight_kernel=w, kernel=g, alpha=alpha,
                           **({"margin": margin} if g == "hinge" else {}))
                      for w in WEIGHT_KERNELS for g in GRADIENT_KERNELS)
        return Grid("table4", f"Table 4: lambda method, weight kernel x gradient kernel "
                    f"(alpha={alpha:g})", cells)
    if name == "figure4":
        cells = tuple(_kernel_cell(k, k, a, margin) for k in ("sigmoid", "lambda")
                      for a in alphas)
        return Grid("figure4", "Figure 4: Recall@N against alpha (sigmoid kernel; lambda "
                    "method sigmoid/softplus)", cells, layout="alpha")
    # figure5: the baselines (alpha = 0) against CROLoss with their kernel and alpha > 0
    cells: list[Cell] = []
    for row, kernel, baseline in (("hinge (triplet)", "hinge", "triplet"),
                                  ("softplus (BPR)", "softplus", "bpr")):
        extra = {"margin": margin} if baseline == "triplet" else {}
        cells.append(cell(row, baseline, x=0.0, **extra))
        cells.extend(_kernel_cell(row, kernel, a, margin) for a in alphas)
    return Grid("figure5", "Figure 5: triplet and BPR (alpha=0) against CROLoss with the "
                "same kernel and alpha > 0", tuple(cells), layout="alpha")


# ----------------------------------------------------------------------------- configs


def preset_config(preset: str, *, data_dir: str | None = None,
                  data_root: str = "../shared/data", **overrides: Any) -> TrainingConfig:
    """The base :class:`TrainingConfig` of a dataset preset (paper model settings).

    The paper's model: embedding 32, scale 10, ``10 x batch`` uniform negatives,
    ``max_history`` 20, Adam. ``overrides`` are TrainingConfig fields, plus
    ``embedding_dim``, ``num_negatives``, ``scale``, ``use_user_id`` for the model
    and ``num_users``/``num_items`` for the synthetic generator.
    """
    if preset not in PRESETS:
        raise ValueError(f"`dataset_preset` should be one of {list(PRESETS)}. "
                         f"Received: dataset_preset={preset!r}")
    spec = dict(PRESETS[preset])
    subdir = spec.pop("data_subdir")
    use_user_id = bool(overrides.pop("use_user_id", spec.pop("use_user_id", False)))
    model_keys = ("embedding_dim", "num_negatives", "scale")
    model_over = {k: overrides.pop(k) for k in model_keys if overrides.get(k) is not None}
    for k in model_keys:
        overrides.pop(k, None)
    options = {k: overrides.pop(k) for k in ("num_users", "num_items")
               if overrides.get(k) is not None}
    overrides.pop("num_users", None)
    overrides.pop("num_items", None)
    if data_dir is None and subdir is not None:
        data_dir = os.path.join(data_root, subdir)
    values: dict[str, Any] = {"max_history": 20, "learning_rate": 0.005, "epochs": 3,
                              "patience": 2, "monitor": "recall@100", **spec}
    values.update({k: v for k, v in overrides.items() if v is not None})
    batch = int(values["batch_size"])
    model = {"embedding_dim": 32, "scale": 10.0, "num_negatives": 10 * batch,
             "use_user_id": use_user_id, "loss": "softmax", "loss_options": {}}
    model.update(model_over)
    return TrainingConfig(data_dir=data_dir if values["dataset"] != "synthetic" else None,
                          dataset_options=options, model=model, **values)


def cell_config(base: TrainingConfig, cell_: Cell, learning_rate: float,
                seed: int) -> TrainingConfig:
    """``base`` with the cell's loss, the learning rate and the seed."""
    model = dict(base.model)
    model["loss"] = cell_.loss
    model["loss_options"] = cell_.loss_options()
    return dataclasses.replace(base, model=model, learning_rate=float(learning_rate),
                               seed=int(seed))


# ----------------------------------------------------------------------------- running


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
    return os.path.join(output_dir, "runs", cell_.slug(learning_rate), f"seed{seed}")


def read_metrics(path: str) -> dict[str, Any] | None:
    """The ``metrics.json`` of a finished run folder, else None."""
    file = os.path.join(path, METRICS_FILE)
    return read_json(file) if os.path.isfile(file) else None


class _Runner:
    def __init__(self, base: TrainingConfig, output_dir: str, max_runs: int | None,
                 data_loader: Callable[[TrainingConfig], Any], verbose: int,
                 log: Callable[[str], None]):
        self.base, self.output_dir, self.max_runs = base, output_dir, max_runs
        self.data_loader, self.verbose, self.log = data_loader, verbose, log
        self.trained = 0
        self.failed: list[str] = []
        self._data: tuple[int, Any] | None = None

    def data(self, seed: int) -> Any:
        if self._data is None or self._data[0] != seed:
            self._data = None  # free the previous split first
            started = time.time()
            self._data = (seed, self.data_loader(dataclasses.replace(self.base, seed=seed)))
            self.log(f"[reproduce] split seed={seed}: {self._data[1]} "
                     f"({time.time() - started:.0f} s)")
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
            self.log(f"[reproduce]   FAILED {cell_.slug(lr)} seed={seed}: "
                     f"{type(err).__name__}: {err}")
            self.failed.append(path)
            return record
        record.metrics = read_metrics(path)
        if record.metrics is None:
            return record
        score = record.metrics.get(self.base.monitor, float("nan"))
        self.log(f"[reproduce]   done in {time.time() - started:.0f} s: "
                 f"test {self.base.monitor}={score:.4f}")
        return record


def validation_score(metrics: Mapping[str, Any] | None, monitor: str) -> float:
    """The best validation monitor a run reached (``val_<monitor>`` in metrics.json)."""
    if metrics is None:
        return float("nan")
    value = metrics.get(f"val_{monitor}")
    return float("nan") if value is None else float(value)


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


def run_grids(grids: Sequence[Grid], base: TrainingConfig, seeds: Sequence[int],
              output_dir: str, *, tune_seeds: int | None = None, max_runs: int | None = None,
              data_loader: Callable[[TrainingConfig], Any] = load_data, verbose: int = 0,
              log: Callable[[str], None] = print) -> dict[str, GridResult]:
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
    """
    seeds = tuple(int(s) for s in seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"`seeds` should be distinct integers. Received: seeds={list(seeds)!r}")
    if max_runs is not None and max_runs < 0:
        raise ValueError(f"`max_runs` should be >= 0. Received: max_runs={max_runs!r}")
    n_tune = len(seeds) if tune_seeds is None else int(tune_seeds)
    if not 1 <= n_tune <= len(seeds):
        raise ValueError(f"`tune_seeds` should be in [1, {len(seeds)}]. "
                         f"Received: tune_seeds={tune_seeds!r}")
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
        scores = {lr: [validation_score(records[c, lr, s].metrics, base.monitor)
                       for s in seeds[:n_tune]] for lr in c.candidates(base.learning_rate)}
        chosen[c] = choose_learning_rate(scores)
        tuning[c] = {lr: aggregate(v)[0] for lr, v in scores.items()}
    # phase 2: the chosen learning rate on the other seeds
    for seed in seeds[n_tune:]:
        for c in cells:
            if chosen[c] is not None:
                records[c, chosen[c], seed] = runner.run(c, chosen[c], seed)
    results = {}
    for g in grids:
        runs = {c: [records[c, chosen[c], s] for s in seeds if (c, chosen[c], s) in records]
                for c in g.cells}
        results[g.name] = GridResult(g, {c: chosen[c] for c in g.cells}, runs,
                                     {c: tuning[c] for c in g.cells})
    return results


# ----------------------------------------------------------------------------- aggregation


def aggregate(values: Iterable[float]) -> tuple[float, float, int]:
    """``(mean, sample standard deviation (n - 1), n)`` of the finite values.

    The standard deviation of fewer than two values is NaN (undefined), and so is
    the mean of none.

    >>> aggregate([0.1, 0.2, 0.3])
    (0.2, 0.1, 3)
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(finite)
    if n == 0:
        return float("nan"), float("nan"), 0
    mean = math.fsum(finite) / n
    if n < 2:
        return mean, float("nan"), n
    var = math.fsum((v - mean) ** 2 for v in finite) / (n - 1)
    return round(mean, 12), round(math.sqrt(var), 12), n


def metric_names(ks: Sequence[int]) -> list[str]:
    """The reported test metrics: ``recall@N`` then ``ndcg@N`` for every N."""
    return [f"recall@{k}" for k in ks] + [f"ndcg@{k}" for k in ks]


def results_frame(grid: Grid, result: GridResult, ks: Sequence[int],
                  monitor: str = "recall@100"):
    """One row per cell: settings, chosen learning rate, and mean/std/n of every metric.

    Columns: ``experiment, row, column, alpha, loss, settings, learning_rate,
    lr_candidates, val_<monitor>, best_epoch, seeds``, then ``<metric>_mean`` and
    ``<metric>_std`` for each of :func:`metric_names`.
    """
    import pandas as pd

    rows = []
    for c in grid.cells:
        runs = [r for r in result.runs.get(c, []) if r.metrics is not None]
        row: dict[str, Any] = {
            "experiment": grid.name, "row": c.row, "column": c.column, "alpha": c.x,
            "loss": c.loss, "settings": c.settings(), "learning_rate": result.chosen_lr.get(c),
            "lr_candidates": " ".join(f"{lr:g}" for lr in sorted(result.tuning.get(c, {}))),
            f"val_{monitor}": aggregate(validation_score(r.metrics, monitor) for r in runs)[0],
            "best_epoch": aggregate(r.metrics.get("best_epoch") for r in runs)[0],
            "seeds": len(runs),
        }
        for name in metric_names(ks):
            mean, std, _ = aggregate(r.metrics.get(name) for r in runs)
            row[f"{name}_mean"], row[f"{name}_std"] = mean, std
        rows.append(row)
    return pd.DataFrame(rows)


def paired_deltas(grid: Grid, result: GridResult, ks: Sequence[int],
                  reference: str = "softmax"):
    """Per-seed differences to the ``reference`` row, aggregated over seeds.

    Each seed is one split, so the spread of :func:`results_frame` mixes the
    losses' differences with the test users' luck; the paired difference
    ``metric(row, seed) - metric(reference, seed)`` on the same split removes the
    latter. One row per non-reference cell: ``row``, ``column``, ``seeds`` (paired),
    and ``<metric>_delta_mean`` / ``<metric>_delta_std`` (absolute, not percent).
    """
    import pandas as pd

    refs = [c for c in grid.cells if c.row == reference and c.x is None]
    if not refs:
        raise ValueError(f"`reference` should be a row of grid {grid.name!r}: "
                         f"{sorted({c.row for c in grid.cells})}. Received: {reference!r}")
    ref_runs = {r.seed: r.metrics for r in result.runs.get(refs[0], []) if r.metrics}
    rows = []
    for c in grid.cells:
        if c is refs[0]:
            continue
        runs = {r.seed: r.metrics for r in result.runs.get(c, []) if r.metrics}
        seeds = sorted(set(runs) & set(ref_runs))
        row: dict[str, Any] = {"row": c.row, "column": c.column, "seeds": len(seeds)}
        for name in metric_names(ks):
            mean, std, _ = aggregate(runs[s].get(name, math.nan) - ref_runs[s].get(name, math.nan)
                                     for s in seeds)
            row[f"{name}_delta_mean"], row[f"{name}_delta_std"] = mean, std
        rows.append(row)
    return pd.DataFrame(rows)


def markdown_deltas(frame, ks: Sequence[int], reference: str = "softmax") -> str:
    """:func:`paired_deltas` as Markdown (percentage points, mean ± std over seeds)."""
    metrics = metric_names(ks)
    head = ["method", "seeds"] + [m.replace("recall@", "ΔR@").replace("ndcg@", "ΔNDCG@")
                                  for m in metrics]
    lines = [f"**Paired difference to {LABELS.get(reference, reference)}, same split per seed** "
             "(percentage points; mean ± sample std over seeds)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in frame.iterrows():
        label = LABELS.get(r["row"], r["row"]) + (f" {r['column']}" if r["column"] else "")
        cells = [label, str(int(r["seeds"]))]
        for m in metrics:
            mean, std = r[f"{m}_delta_mean"], r[f"{m}_delta_std"]
            text = _pm(mean, std)
            cells.append(text if text == "n/a" or text.startswith("-") else "+" + text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _pm(mean: float, std: float, percent: bool = True) -> str:
    if mean is None or not math.isfinite(mean):
        return "n/a"
    f = 100.0 if percent else 1.0
    if std is None or not math.isfinite(std):
        return f"{f * mean:.2f}"
    return f"{f * mean:.2f} ± {f * std:.2f}"


def markdown_table(frame, grid: Grid, ks: Sequence[int]) -> str:
    """The grid as Markdown (percentages, mean ± std over seeds, as the paper)."""
    lines = [f"**{grid.title}** (percent; mean ± sample std over seeds)", ""]
    if grid.layout == "rows":
        metrics = metric_names(ks)
        head = ["method", "settings", "lr", "best epoch", "seeds"] + [
            m.replace("recall@", "R@").replace("ndcg@", "NDCG@") for m in metrics]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for _, r in frame.iterrows():
            label = LABELS.get(r["row"], r["row"])
            lr = "n/a" if r["learning_rate"] is None or r["learning_rate"] != r["learning_rate"] \
                else f"{r['learning_rate']:g}"
            epoch = "n/a" if not math.isfinite(r["best_epoch"]) else f"{r['best_epoch']:.1f}"
            cells = [label, r["settings"], lr, epoch, str(int(r["seeds"]))]
            cells += [_pm(r[f"{m}_mean"], r[f"{m}_std"]) for m in metrics]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"
    columns = list(dict.fromkeys(frame["column"]))
    row_labels = list(dict.fromkeys(frame["row"]))
    for metric in metric_names(ks):
        lines += [f"{metric.replace('recall@', 'Recall@').replace('ndcg@', 'NDCG@')}:", ""]
        lines += ["| row | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        for label in row_labels:
            sub = frame[frame["row"] == label]
            values = []
            for col in columns:
                hit = sub[sub["column"] == col]
                values.append("" if hit.empty else _pm(hit.iloc[0][f"{metric}_mean"],
                                                        hit.iloc[0][f"{metric}_std"]))
            lines.append(f"| {label} | " + " | ".join(values) + " |")
        lines.append("")
    return "\n".join(lines)


def write_tables(frame, grid: Grid, output_dir: str, ks: Sequence[int]) -> tuple[str, str]:
    """Writes ``<output_dir>/<grid>.csv`` and ``<grid>.md``; returns both paths."""
    os.makedirs(output_dir, exist_ok=True)
    csv_path = os.path.join(output_dir, f"{grid.name}.csv")
    md_path = os.path.join(output_dir, f"{grid.name}.md")
    frame.to_csv(csv_path, index=False)
    with open(md_path, "w", encoding="utf-8") as handle:
        handle.write(markdown_table(frame, grid, ks))
    return csv_path, md_path


# ----------------------------------------------------------------------------- plots


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install matplotlib") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_grid(frame, grid: Grid, path: str, ks: Sequence[int], title: str | None = None) -> str:
    """Writes the grid's PNG plot to ``path``.

    - ``rows`` grids: grouped bars of Recall@N per row, error bars = std.
    - ``table3``: Recall@N against alpha, one panel per N, one line per kernel.
    - ``figure4``: one panel per row, Recall@N against alpha relative to its mean
      over the alphas (%), one line per N (the paper's customisation view).
    - ``figure5``: one panel per kernel, Recall@N relative to the alpha=0 baseline
      (triplet / BPR) in %, one line per N.
    """
    plt = _pyplot()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    title = title or grid.title
    recall = [f"recall@{k}" for k in ks]
    if grid.layout == "rows":
        fig, ax = plt.subplots(figsize=(7, 3.6))
        n_rows = len(frame)
        width = 0.8 / max(n_rows, 1)
        for i, (_, r) in enumerate(frame.iterrows()):
            means = [100 * r[f"{m}_mean"] for m in recall]
            stds = [0 if not math.isfinite(r[f"{m}_std"]) else 100 * r[f"{m}_std"]
                    for m in recall]
            ax.bar([j + i * width for j in range(len(ks))], means, width, yerr=stds,
                   label=LABELS.get(r["row"], r["row"]), capsize=2)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(ks))])
        ax.set_xticklabels([f"R@{k}" for k in ks])
        ax.set_ylabel("Recall@N (%)")
        ax.legend(fontsize=7)
    elif grid.name == "table3":
        fig, axes = plt.subplots(1, len(ks), figsize=(2.6 * len(ks), 3), squeeze=False)
        for ax, m in zip(axes[0], recall, strict=True):
            for label in dict.fromkeys(frame["row"]):
                sub = frame[frame["row"] == label].sort_values("alpha")
                ax.errorbar(sub["alpha"], 100 * sub[f"{m}_mean"],
                            yerr=100 * sub[f"{m}_std"].fillna(0), label=label, marker="o",
                            ms=3, capsize=2)
            ax.set_title(m.replace("recall@", "Recall@"), fontsize=9)
            ax.set_xlabel("alpha")
        axes[0][0].set_ylabel("%")
        axes[0][-1].legend(fontsize=7)
    else:
        labels = list(dict.fromkeys(frame["row"]))
        fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 3.2),
                                 squeeze=False)
        for ax, label in zip(axes[0], labels, strict=True):
            sub = frame[frame["row"] == label].sort_values("alpha")
            for m in recall:
                values = sub[f"{m}_mean"].to_numpy(dtype=float)
                if grid.name == "figure5":
                    ref = values[0]  # the alpha = 0 baseline
                    xs = sub["alpha"].to_numpy()[1:]
                    ys = 100 * (values[1:] / ref - 1) if ref else values[1:] * 0
                else:
                    ref = float(sum(v for v in values if math.isfinite(v))
                                / max(1, sum(math.isfinite(v) for v in values)))
                    xs = sub["alpha"].to_numpy()
                    ys = 100 * (values / ref - 1) if ref else values * 0
                ax.plot(xs, ys, marker="o", ms=3, label=m.replace("recall@", "R@"))
            ax.axhline(0, color="grey", lw=0.5)
            ax.set_title(label, fontsize=9)
            ax.set_xlabel("alpha")
            ax.set_ylabel("vs alpha=0 baseline (%)" if grid.name == "figure5"
                          else "vs mean over alphas (%)")
        axes[0][-1].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def chosen_settings(frame) -> str:
    """A one-line JSON of each row's chosen learning rate (for logs)."""
    return json.dumps({f"{r['row']}{' ' + r['column'] if r['column'] else ''}":
                       r["learning_rate"] for _, r in frame.iterrows()})
