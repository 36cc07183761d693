"""The grids' tables: Markdown (percent, mean ± std over seeds as the paper) and CSV; the
alpha-for-N table of an alpha sweep.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence

from tfcro.experiments.grids import LABELS, Grid
from tfcro.experiments.results import metric_names


def _pm(mean: float, std: float) -> str:
    """``mean ± std`` in percent, 2 decimals; ``n/a`` without a mean."""
    if mean is None or not math.isfinite(mean):
        return "n/a"
    if std is None or not math.isfinite(std):
        return f"{100.0 * mean:.2f}"
    return f"{100.0 * mean:.2f} ± {100.0 * std:.2f}"


def _mean_std(mean: float, std: float, sign: str = "") -> str:
    """``mean ± std`` with 4 decimals (``sign="+"``: signed); the mean alone when the
    std is not finite (one seed).
    """
    text = f"{mean:{sign}.4f}"
    return text if not math.isfinite(std) else f"{text} ± {std:.4f}"


def markdown_table(frame, grid: Grid, ks: Sequence[int]) -> str:
    """The grid as Markdown (percentages, mean ± std over seeds, as the paper).

    ``frame``: :func:`~tfcro.experiments.results.results_frame` of the grid.
    """
    lines = [f"**{grid.title}** (percent; mean ± sample std over seeds)", ""]
    if grid.layout == "rows":
        metrics = metric_names(ks)
        head = ["method", "settings", "lr", "best epoch", "seeds"] + [
            m.replace("recall@", "R@").replace("ndcg@", "NDCG@") for m in metrics
        ]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for _, r in frame.iterrows():
            label = LABELS.get(r["row"], r["row"])
            lr = (
                "n/a"
                if r["learning_rate"] is None or r["learning_rate"] != r["learning_rate"]
                else f"{r['learning_rate']:g}"
            )
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
                values.append(
                    ""
                    if hit.empty
                    else _pm(hit.iloc[0][f"{metric}_mean"], hit.iloc[0][f"{metric}_std"])
                )
            lines.append(f"| {label} | " + " | ".join(values) + " |")
        lines.append("")
    return "\n".join(lines)


def markdown_deltas(frame, ks: Sequence[int], reference: str = "softmax") -> str:
    """:func:`~tfcro.experiments.results.paired_deltas` as Markdown (percentage points,
    mean ± std over seeds).
    """
    metrics = metric_names(ks)
    head = ["method", "seeds"] + [
        m.replace("recall@", "ΔR@").replace("ndcg@", "ΔNDCG@") for m in metrics
    ]
    lines = [
        f"**Paired difference to {LABELS.get(reference, reference)}, same split per seed** "
        "(percentage points; mean ± sample std over seeds)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for _, r in frame.iterrows():
        label = LABELS.get(r["row"], r["row"]) + (f" {r['column']}" if r["column"] else "")
        cells = [label, str(int(r["seeds"]))]
        for m in metrics:
            text = _pm(r[f"{m}_delta_mean"], r[f"{m}_delta_std"])
            cells.append(text if text == "n/a" or text.startswith("-") else "+" + text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(frame, grid: Grid, output_dir: str, ks: Sequence[int]) -> tuple[str, str]:
    """Writes ``<output_dir>/<grid>.csv`` and ``<grid>.md``; returns both paths."""
    os.makedirs(output_dir, exist_ok=True)
    csv_path = os.path.join(output_dir, f"{grid.name}.csv")
    md_path = os.path.join(output_dir, f"{grid.name}.md")
    frame.to_csv(csv_path, index=False)
    with open(md_path, "w", encoding="utf-8") as handle:
        handle.write(markdown_table(frame, grid, ks))
    return csv_path, md_path


def chosen_settings(frame) -> str:
    """A one-line JSON of each row's chosen learning rate (for logs)."""
    return json.dumps(
        {
            f"{r['row']}{' ' + r['column'] if r['column'] else ''}": r["learning_rate"]
            for _, r in frame.iterrows()
        }
    )


def alpha_choice_table(
    frame,
    ks: Sequence[int],
    reference=None,
    reference_name: str = "softmax",
    param: str = "alpha",
) -> list[str]:
    """Markdown lines: for each N, the alpha with the best mean validation Recall@N, its
    test Recall@N, the alpha with the best mean test Recall@N, and every alpha's test
    Recall@N (mean ± sample std over seeds); with ``reference``, also the reference
    loss's test Recall@N and the paired difference of the chosen alpha to it.

    ``frame``: one row per (alpha, seed) run of an alpha sweep, with ``alpha``, ``seed``,
    and ``val_recall@N`` and ``recall@N`` columns for each N of ``ks``. Only the seeds
    that every alpha has (and, with ``reference``, that it has too: one row per seed with
    ``recall@N`` columns, trained under the same protocol) are compared, so a sweep in
    progress compares like with like; an alpha without a finite validation mean is never
    the chosen one. The paired difference is the mean ± sample std over those seeds of
    ``chosen alpha's Recall@N - reference's Recall@N``, and its relative size. ``param``
    names the swept setting in the header (the values are in ``frame.alpha``).
    """
    from tfcro.experiments.results import aggregate

    paired = reference is not None and len(reference) > 0
    header = (
        f"| N | {param} chosen on validation | its test Recall@N | best test {param} | "
        f"test Recall@N by {param} (mean ± std over seeds) |"
    )
    if paired:
        header += f" {reference_name} test Recall@N | chosen - {reference_name} (paired) |"
    lines = [header, "|---" * (7 if paired else 5) + "|"]
    groups = dict(list(frame.groupby("alpha")))
    shared = _shared_seeds(groups)
    if paired:
        reference = reference.drop_duplicates("seed", keep="last").set_index("seed")
        shared &= set(reference.index)
    groups = {alpha: group[group.seed.isin(shared)] for alpha, group in groups.items()}
    if not shared:
        return lines
    for k in ks:
        stats = {alpha: aggregate(group[f"recall@{k}"]) for alpha, group in groups.items()}
        chosen = _picked_on_validation(groups, k)
        best = max(stats, key=lambda alpha: stats[alpha][0])
        cells = ", ".join(
            f"{alpha:g}: {_mean_std(mean, std)}" for alpha, (mean, std, _) in stats.items()
        )
        picked = "n/a | n/a" if chosen is None else f"{chosen:g} | {stats[chosen][0]:.4f}"
        line = f"| {k} | {picked} | {best:g} | {cells} |"
        if paired:
            seeds = sorted(shared)
            base = aggregate(reference.at[s, f"recall@{k}"] for s in seeds)
            line += f" {_mean_std(*base[:2])} |"
            if chosen is None:
                line += " n/a |"
            else:
                d = _paired_to_reference(groups[chosen], reference, k)
                line += f" {_mean_std(d['delta'], d['std'], sign='+')} ({d['relative']:+.1%}) |"
        lines.append(line)
    return lines


def _paired_to_reference(runs, reference, k: int) -> dict[str, float]:
    """:func:`~tfcro.experiments.results.paired_difference` of ``runs`` (one swept value's
    runs) to ``reference`` (indexed by seed) at test Recall@k.
    """
    from tfcro.experiments.results import paired_difference

    metric = f"recall@{k}"
    mine = runs.drop_duplicates("seed", keep="last").set_index("seed")[metric]
    return paired_difference(mine, reference[metric])


def _picked_on_validation(groups, k: int):
    """The key of ``groups`` (value -> its runs) with the best mean ``val_recall@k``;
    None when no group has a finite one.
    """
    from tfcro.experiments.results import aggregate

    valid = {value: aggregate(group[f"val_recall@{k}"])[0] for value, group in groups.items()}
    valid = {value: score for value, score in valid.items() if math.isfinite(score)}
    return max(valid, key=valid.get) if valid else None


def _shared_seeds(groups) -> set:
    """The seeds that every group (a frame with a ``seed`` column) has."""
    return set.intersection(*(set(group.seed) for group in groups.values())) if groups else set()


def chosen_per_cutoff(frame, ks: Sequence[int]):
    """For each N of ``ks``, the test Recall@N of the value of a sweep that validation
    Recall@N picks (best mean over the seeds every value has): one row per such seed with
    ``seed`` and ``recall@N`` columns, ready to pair with another sweep
    (:func:`alpha_choice_table`'s ``reference``).

    ``frame``: as for :func:`alpha_choice_table` (the swept value in ``alpha``).

    >>> import pandas as pd
    >>> runs = pd.DataFrame({"alpha": [1, 1, 2, 2], "seed": [0, 1, 0, 1],
    ...                      "val_recall@20": [.1, .1, .2, .2], "recall@20": [.3, .4, .5, .6]})
    >>> chosen_per_cutoff(runs, [20]).to_dict("list")
    {'seed': [0, 1], 'recall@20': [0.5, 0.6]}
    """
    import pandas as pd

    groups = dict(list(frame.groupby("alpha")))
    seeds = sorted(_shared_seeds(groups))
    groups = {value: group[group.seed.isin(seeds)] for value, group in groups.items()}
    chosen = pd.DataFrame({"seed": seeds})
    for k in ks:
        value = _picked_on_validation(groups, k) if seeds else None
        if value is None:
            chosen[f"recall@{k}"] = math.nan
            continue
        runs = groups[value].drop_duplicates("seed", keep="last")
        chosen[f"recall@{k}"] = runs.set_index("seed").loc[seeds, f"recall@{k}"].to_numpy()
    return chosen


def seed_tables(test, ks: Sequence[int], title: str, reference: str = "softmax") -> list[str]:
    """Markdown lines: each loss's test metrics over its seeds (mean ± sample std), then
    the paired differences to ``reference`` on the same seeds
    (:func:`~tfcro.experiments.results.paired_differences`).

    ``test``: one row per run with ``loss``, ``seed`` and ``recall@N`` / ``ndcg@N``
    columns; an N of ``ks`` without a value (no column, or only empty cells: runs of
    another phase measured it) is left out.
    """
    from tfcro.experiments.results import aggregate, paired_differences

    metrics = [
        f"{m}@{k}"
        for k in ks
        for m in ("recall", "ndcg")
        if f"{m}@{k}" in test and test[f"{m}@{k}"].notna().any()
    ]
    header = [f"| loss | seeds | {' | '.join(metrics)} |", "|---" * (2 + len(metrics)) + "|"]
    lines = ["", title, "", *header]
    for loss, group in test.groupby("loss", sort=False):
        cells = [_mean_std(*aggregate(group[metric])[:2]) for metric in metrics]
        lines.append(f"| {loss} | {len(group)} | " + " | ".join(cells) + " |")
    deltas = paired_differences(test, metrics, reference)
    if not deltas.empty:
        deltas = deltas[deltas.seeds > 0]  # a loss without a seed in common: no row
    if not deltas.empty:
        lines += [
            "",
            f"Paired differences to {reference} (same seeds; mean ± sample std of the "
            f"difference, then relative to {reference}'s mean):",
            "",
            *header,
        ]
        for loss, group in deltas.groupby("loss", sort=False):
            cells = [
                "n/a"
                if not math.isfinite(r.delta)
                else f"{_mean_std(r.delta, r.std, sign='+')} ({100 * r.relative:+.1f}%)"
                for r in group.set_index("metric").reindex(metrics).itertuples()
            ]
            lines.append(f"| {loss} | {group.seeds.min()} | " + " | ".join(cells) + " |")
    return lines
