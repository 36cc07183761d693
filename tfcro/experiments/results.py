"""Run metrics over seeds: mean and sample standard deviation per cell, paired deltas.

:func:`results_frame`, :func:`paired_deltas` (a grid's cells) and
:func:`paired_differences` (a table of runs) return pandas DataFrames
(pandas is imported when they are called); :mod:`.tables` and :mod:`.plots`
render them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tfcro.experiments.grids import Grid
    from tfcro.experiments.runner import GridResult


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


def validation_score(metrics: Mapping[str, Any] | None, monitor: str) -> float:
    """The best validation monitor a run reached (``val_<monitor>`` in metrics.json)."""
    if metrics is None:
        return float("nan")
    value = metrics.get(f"val_{monitor}")
    return float("nan") if value is None else float(value)


def metric_names(ks: Sequence[int]) -> list[str]:
    """The reported test metrics: ``recall@N`` then ``ndcg@N`` for every N."""
    return [f"recall@{k}" for k in ks] + [f"ndcg@{k}" for k in ks]


def results_frame(grid: Grid, result: GridResult, ks: Sequence[int], monitor: str = "recall@100"):
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
            "experiment": grid.name,
            "row": c.row,
            "column": c.column,
            "alpha": c.x,
            "loss": c.loss,
            "settings": c.settings(),
            "learning_rate": result.chosen_lr.get(c),
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


def paired_deltas(grid: Grid, result: GridResult, ks: Sequence[int], reference: str = "softmax"):
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
        raise ValueError(
            f"`reference` should be a row of grid {grid.name!r}: "
            f"{sorted({c.row for c in grid.cells})}. Received: {reference!r}"
        )
    ref_runs = {r.seed: r.metrics for r in result.runs.get(refs[0], []) if r.metrics}
    rows = []
    for c in grid.cells:
        if c is refs[0]:
            continue
        runs = {r.seed: r.metrics for r in result.runs.get(c, []) if r.metrics}
        seeds = sorted(set(runs) & set(ref_runs))
        row: dict[str, Any] = {"row": c.row, "column": c.column, "seeds": len(seeds)}
        for name in metric_names(ks):
            mean, std, _ = aggregate(
                runs[s].get(name, math.nan) - ref_runs[s].get(name, math.nan) for s in seeds
            )
            row[f"{name}_delta_mean"], row[f"{name}_delta_std"] = mean, std
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences(frame, metrics: Sequence[str], reference: str = "softmax"):
    """Per loss and metric of a runs table: mean and sample std over seeds of
    ``metric(loss, seed) - metric(reference, seed)`` (the same seeds only), and the
    relative difference of the means.

    ``frame`` has a ``loss`` and a ``seed`` column and one column per metric, one row
    per run (ValueError otherwise). Returns a DataFrame with ``loss, metric, delta, std,
    seeds, relative`` (empty when ``reference`` has no run).
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    twice = frame[frame.duplicated(["loss", "seed"], keep=False)] if not frame.empty else frame
    if len(twice):
        pairs = sorted(set(zip(twice["loss"], twice["seed"], strict=True)))
        raise ValueError(
            f"frame should hold one run per (loss, seed) to pair them. Received several of {pairs}"
        )
    if frame.empty or reference not in set(frame["loss"]):
        return pd.DataFrame(rows)
    ref = frame[frame["loss"] == reference].set_index("seed")
    for loss, group in frame.groupby("loss", sort=False):
        if loss == reference:
            continue
        group = group.set_index("seed")
        for metric in metrics:
            pair = paired_difference(group[metric], ref[metric])
            rows.append({"loss": loss, "metric": metric, **pair})
    return pd.DataFrame(rows)


def paired_difference(values, reference) -> dict[str, float]:
    """``values - reference`` over the seeds both have (two Series indexed by seed): the
    mean ``delta``, its sample ``std``, the number of ``seeds`` and ``relative``, the
    mean difference over the reference's mean on those seeds (NaN when that is 0).

    >>> import pandas as pd
    >>> paired_difference(pd.Series([0.75, 0.5], [1, 2]), pd.Series([0.5, 0.25, 9.0], [1, 2, 3]))
    {'delta': 0.25, 'std': 0.0, 'seeds': 2, 'relative': 0.6666666666666666}
    """
    for name, series in (("values", values), ("reference", reference)):
        if not series.index.is_unique:
            raise ValueError(
                f"`{name}` should hold one value per seed. Received seeds {list(series.index)}"
            )
    seeds = sorted(set(values.index) & set(reference.index))
    mean, std, n = aggregate(values[s] - reference[s] for s in seeds)
    base = aggregate(reference[s] for s in seeds)[0]
    return {
        "delta": mean,
        "std": std,
        "seeds": n,
        "relative": mean / base if base else float("nan"),
    }
