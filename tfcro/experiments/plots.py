"""The grids' and the loss comparisons' plots (PNG, matplotlib with the Agg backend;
matplotlib is imported when called).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from tfcro.experiments.grids import LABELS, Grid
from tfcro.experiments.results import aggregate


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
            stds = [0 if not math.isfinite(r[f"{m}_std"]) else 100 * r[f"{m}_std"] for m in recall]
            ax.bar(
                [j + i * width for j in range(len(ks))],
                means,
                width,
                yerr=stds,
                label=LABELS.get(r["row"], r["row"]),
                capsize=2,
            )
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(ks))])
        ax.set_xticklabels([f"R@{k}" for k in ks])
        ax.set_ylabel("Recall@N (%)")
        ax.legend(fontsize=7)
    elif grid.name == "table3":
        fig, axes = plt.subplots(1, len(ks), figsize=(2.6 * len(ks), 3), squeeze=False)
        for ax, m in zip(axes[0], recall, strict=True):
            for label in dict.fromkeys(frame["row"]):
                sub = frame[frame["row"] == label].sort_values("alpha")
                ax.errorbar(
                    sub["alpha"],
                    100 * sub[f"{m}_mean"],
                    yerr=100 * sub[f"{m}_std"].fillna(0),
                    label=label,
                    marker="o",
                    ms=3,
                    capsize=2,
                )
            ax.set_title(m.replace("recall@", "Recall@"), fontsize=9)
            ax.set_xlabel("alpha")
        axes[0][0].set_ylabel("%")
        axes[0][-1].legend(fontsize=7)
    else:
        labels = list(dict.fromkeys(frame["row"]))
        fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 3.2), squeeze=False)
        for ax, label in zip(axes[0], labels, strict=True):
            sub = frame[frame["row"] == label].sort_values("alpha")
            for m in recall:
                values = sub[f"{m}_mean"].to_numpy(dtype=float)
                if grid.name == "figure5":
                    ref = values[0]  # the alpha = 0 baseline
                    xs = sub["alpha"].to_numpy()[1:]
                    ys = 100 * (values[1:] / ref - 1) if ref else values[1:] * 0
                else:
                    ref = float(
                        sum(v for v in values if math.isfinite(v))
                        / max(1, sum(math.isfinite(v) for v in values))
                    )
                    xs = sub["alpha"].to_numpy()
                    ys = 100 * (values / ref - 1) if ref else values * 0
                ax.plot(xs, ys, marker="o", ms=3, label=m.replace("recall@", "R@"))
            ax.axhline(0, color="grey", lw=0.5)
            ax.set_title(label, fontsize=9)
            ax.set_xlabel("alpha")
            ax.set_ylabel(
                "vs alpha=0 baseline (%)" if grid.name == "figure5" else "vs mean over alphas (%)"
            )
        axes[0][-1].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _optional_pyplot(path: str):
    """Matplotlib's pyplot with ``path``'s folder made, or None without matplotlib (a
    report's plots are optional; the grids' are not).
    """
    try:
        plt = _pyplot()
    except ImportError:
        return None
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return plt


def plot_seed_recalls(seeds, path: str) -> str | None:
    """Writes one bar panel per N of each loss's test Recall@N, mean and sample std over
    the seeds, to ``path``; returns it, or None without matplotlib or data.

    ``seeds`` has a ``loss`` column and ``recall@<N>`` columns, one row per run (an N
    that no run measured is left out).
    """
    ks = sorted(
        int(c.split("@")[1])
        for c in seeds.columns
        if c.startswith("recall@") and seeds[c].notna().any()
    )
    if seeds.empty or not ks:
        return None
    plt = _optional_pyplot(path)
    if plt is None:
        return None
    losses = list(dict.fromkeys(seeds["loss"]))
    fig, axes = plt.subplots(1, len(ks), figsize=(3.2 * len(ks), 3.6), squeeze=False)
    for ax, k in zip(axes[0], ks, strict=True):
        stats = [aggregate(seeds.loc[seeds["loss"] == loss, f"recall@{k}"]) for loss in losses]
        spreads = [0.0 if not math.isfinite(s) else s for _, s, _ in stats]
        ax.bar(range(len(losses)), [m for m, _, _ in stats], yerr=spreads, capsize=2)
        ax.set_xticks(range(len(losses)), losses, rotation=45, ha="right")
        ax.set_title(f"test Recall@{k}")
        ax.set_ylim(bottom=0.9 * min(m for m, _, _ in stats if math.isfinite(m)))
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_alpha_sweep(
    sweep, path: str, ks: Sequence[int], reference=None, reference_name: str = "softmax"
) -> str | None:
    """Writes one panel per loss of test Recall@N against alpha, relative to its mean
    over the alphas (%), one line per N (the paper's Figure 4 view); returns ``path``, or
    None without matplotlib or data.

    ``sweep``: one row per run with ``loss``, ``alpha`` and ``recall@N`` columns (seeds
    are averaged). ``reference`` (optional): runs of another loss under the same
    protocol with ``recall@N`` columns, drawn as one dashed line per N on the same scale.
    """
    if sweep.empty:
        return None
    plt = _optional_pyplot(path)
    if plt is None:
        return None
    losses = list(dict.fromkeys(sweep["loss"]))
    fig, axes = plt.subplots(1, len(losses), figsize=(4.2 * len(losses), 3.4), squeeze=False)
    for ax, loss in zip(axes[0], losses, strict=True):
        means = sweep[sweep["loss"] == loss].groupby("alpha").mean(numeric_only=True)
        for k in ks:
            if f"recall@{k}" not in means or means[f"recall@{k}"].isna().all():
                continue
            values = means[f"recall@{k}"]
            (line,) = ax.plot(
                values.index, 100 * (values / values.mean() - 1), marker="o", label=f"R@{k}"
            )
            if reference is not None and f"recall@{k}" in reference:
                level = reference[f"recall@{k}"].mean()
                if math.isfinite(level):
                    ax.axhline(
                        100 * (level / values.mean() - 1), color=line.get_color(), ls="--", lw=1
                    )
        ax.axhline(0, color="grey", lw=0.5)
        title = loss if reference is None else f"{loss} (dashed: {reference_name})"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("alpha")
        ax.set_ylabel("test Recall@N vs its mean over alphas (%)", fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
