"""Reproducing the paper's experiments: grids as data, runs over seeds, tables and plots.

The CIKM 2022 paper's Tables 2-4 and Figures 4-5 are named *grids* of loss
settings (:func:`make_grid`). A grid is a tuple of :class:`Cell` s: one table
cell (a row label, optionally a column such as ``alpha=1.2``) and the loss it
trains, with one or more candidate learning rates. :func:`preset_config` gives
a dataset's base :class:`~tfcro.training.TrainingConfig` (the paper's model
settings) and :func:`cell_config` puts a cell's loss on it. :func:`run_grids`
trains every cell over seeds with :func:`tfcro.training.train`, sharing one
split per dataset and seed, and resumes: a run folder that already holds
``metrics.json`` is read back, never retrained. Where a cell has several
learning rates, the one with the best mean *validation* monitor (the base
config's ``monitor``, Recall@100 in the presets) over the tuning seeds is
chosen, and only it runs on the remaining seeds (test metrics never take part
in a choice). :func:`results_frame` aggregates test metrics over seeds (mean
and sample standard deviation), :func:`paired_deltas` the per-seed differences
to a reference row; :func:`write_tables` writes CSV and Markdown,
:func:`plot_grid` writes a PNG (matplotlib, Agg backend).

Modules:

- :mod:`.grids`: :class:`Cell`, :class:`Grid`, :func:`make_grid` and the paper's
  constants (no TensorFlow).
- :mod:`.presets`: :data:`PRESETS`, :func:`preset_config`, :func:`cell_config`.
- :mod:`.runner`: :func:`run_grids` (resumable runs, learning-rate choice on
  validation), :class:`RunRecord`, :class:`GridResult`. It and :mod:`.presets` load
  TensorFlow, on first use.
- :mod:`.space`: the tuning search space (no framework); :mod:`.tuning`: the Optuna
  studies over it.
- :mod:`.results`: :func:`aggregate`, :func:`results_frame`,
  :func:`paired_deltas` (a grid's cells), :func:`paired_differences` (any table of
  runs with ``loss`` and ``seed`` columns; pandas, imported when called), built on
  :func:`paired_difference` (two seed-indexed series).
- :mod:`.tables`: Markdown and CSV tables (also :func:`alpha_choice_table`, which alpha
  for which N, and :func:`chosen_per_cutoff`, a sweep's model per N); :mod:`.plots`: PNG plots, also
  :func:`plot_seed_recalls` for a comparison of losses over seeds and
  :func:`plot_alpha_sweep` for Recall@N against alpha (matplotlib,
  imported when called; the runner never needs it).

Example:
    from tfcro import experiments as ex
    base = ex.preset_config("ml-100k", data_dir="../shared/data/ml-100k", epochs=3)
    grids = [ex.make_grid("table2", learning_rates=(0.001, 0.005))]
    results = ex.run_grids(grids, base, seeds=(0, 1), output_dir="runs/reproduce/ml-100k")
    for grid in grids:
        frame = ex.results_frame(grid, results[grid.name], ks=base.ks)
        ex.write_tables(frame, grid, "runs/reproduce/ml-100k", ks=base.ks)
        ex.plot_grid(frame, grid, "runs/reproduce/ml-100k/" + grid.name + ".png", ks=base.ks)
"""

from tfcro._lazy import lazy_getattr
from tfcro.experiments.grids import (
    ALPHAS,
    DEFAULT_LEARNING_RATES,
    EXPERIMENTS,
    GRADIENT_KERNELS,
    LABELS,
    PAPER_MARGIN,
    TABLE2_METHODS,
    TABLE3_KERNELS,
    WEIGHT_KERNELS,
    Cell,
    Grid,
    cell,
    make_grid,
)
from tfcro.experiments.plots import plot_alpha_sweep, plot_grid, plot_seed_recalls
from tfcro.experiments.results import (
    aggregate,
    metric_names,
    paired_deltas,
    paired_difference,
    paired_differences,
    results_frame,
    validation_score,
)
from tfcro.experiments.tables import (
    alpha_choice_table,
    chosen_per_cutoff,
    chosen_settings,
    markdown_deltas,
    markdown_table,
    seed_tables,
    write_tables,
)

# The modules that train (TensorFlow) load on first use: the search space
# (:mod:`.space`) and the tables serve Keras 3 benchmarks on machines without TensorFlow.
_LAZY = {
    "PRESETS": "presets",
    "cell_config": "presets",
    "preset_config": "presets",
    "GridResult": "runner",
    "RunRecord": "runner",
    "choose_learning_rate": "runner",
    "read_metrics": "runner",
    "run_dir": "runner",
    "run_grids": "runner",
}


__getattr__ = lazy_getattr("tfcro.experiments", _LAZY)


__all__ = [
    "ALPHAS",
    "DEFAULT_LEARNING_RATES",
    "EXPERIMENTS",
    "GRADIENT_KERNELS",
    "LABELS",
    "PAPER_MARGIN",
    "PRESETS",
    "TABLE2_METHODS",
    "TABLE3_KERNELS",
    "WEIGHT_KERNELS",
    "Cell",
    "Grid",
    "GridResult",
    "RunRecord",
    "aggregate",
    "alpha_choice_table",
    "cell",
    "cell_config",
    "choose_learning_rate",
    "chosen_per_cutoff",
    "chosen_settings",
    "make_grid",
    "markdown_deltas",
    "markdown_table",
    "metric_names",
    "paired_deltas",
    "paired_difference",
    "paired_differences",
    "plot_alpha_sweep",
    "plot_grid",
    "plot_seed_recalls",
    "preset_config",
    "read_metrics",
    "results_frame",
    "run_dir",
    "run_grids",
    "seed_tables",
    "validation_score",
    "write_tables",
]
