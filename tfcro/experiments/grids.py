"""The paper's experiments as data: :class:`Cell`, :class:`Grid`, :func:`make_grid`.

No TensorFlow here: a grid only names loss settings; :mod:`.presets` turns a
cell into a :class:`tfcro.training.TrainingConfig` and :mod:`.runner` trains it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

from tfcro.validation import check_choice, check_subset, invalid

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
#: Display names of Table 2's rows in tables and plots (other rows show as they are).
LABELS = {
    "softmax": "softmax cross-entropy",
    "triplet": "triplet",
    "bpr": "BPR",
    "cro": "CROLoss",
    "cro-lambda": "CROLoss-lambda",
}


def _option_text(name: str, value: Any) -> str:
    return f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"


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
        parts = [self.loss] + [_option_text(k, v) for k, v in self.options]
        return "-".join(parts + [f"lr{learning_rate:g}"])

    def settings(self) -> str:
        """The loss options as ``k=v`` text for tables."""
        return ", ".join(_option_text(k, v) for k, v in self.options) or "-"


def cell(
    row: str,
    loss: str,
    *,
    x: float | None = None,
    learning_rates: Iterable[float] = (),
    **options: Any,
) -> Cell:
    """Builds a :class:`Cell` (options as keywords; floats kept as floats)."""
    opts = tuple(
        sorted(
            (k, float(v) if isinstance(v, int) and not isinstance(v, bool) else v)
            for k, v in options.items()
        )
    )
    return Cell(
        row=row,
        loss=loss,
        options=opts,
        x=None if x is None else float(x),
        learning_rates=tuple(float(lr) for lr in learning_rates),
    )


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
        check_choice("layout", self.layout, ("rows", "alpha"))


def _kernel_cell(row: str, kernel: str, alpha: float, margin: float) -> Cell:
    if kernel == "lambda":
        return cell(
            row, "cro-lambda", x=alpha, weight_kernel="sigmoid", kernel="softplus", alpha=alpha
        )
    extra = {"margin": margin} if kernel == "hinge" else {}
    return cell(row, "cro", x=alpha, kernel=kernel, alpha=alpha, **extra)


def _positive_floats(name: str, values: Iterable[float]) -> tuple[float, ...]:
    """``values`` as a non-empty tuple of finite floats > 0."""
    values = tuple(float(v) for v in values)
    if not values or any(not (math.isfinite(v) and v > 0) for v in values):
        raise invalid(name, "floats > 0", list(values))
    return values


def make_grid(
    name: str,
    *,
    alphas: Sequence[float] = ALPHAS,
    learning_rates: Sequence[float] = DEFAULT_LEARNING_RATES,
    methods: Sequence[str] = TABLE2_METHODS,
    kernels: Sequence[str] = TABLE3_KERNELS,
    alpha: float = 1.0,
    margin: float = PAPER_MARGIN,
) -> Grid:
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
    check_choice("experiment", name, EXPERIMENTS)
    alphas = _positive_floats("alphas", alphas)
    lrs = _positive_floats("learning_rates", learning_rates)
    if name == "table2":
        rows = {
            "softmax": cell("softmax", "softmax", learning_rates=lrs),
            "triplet": cell("triplet", "triplet", learning_rates=lrs, margin=margin),
            "bpr": cell("bpr", "bpr", learning_rates=lrs),
            "cro": cell("cro", "cro", learning_rates=lrs, kernel="softplus", alpha=alpha),
            "cro-lambda": cell(
                "cro-lambda",
                "cro-lambda",
                learning_rates=lrs,
                weight_kernel="sigmoid",
                kernel="softplus",
                alpha=alpha,
            ),
        }
        chosen = check_subset("methods", methods, TABLE2_METHODS)
        return Grid(
            "table2",
            "Table 2: loss comparison (learning rate chosen on validation)",
            tuple(rows[m] for m in chosen),
        )
    if name == "table3":
        chosen = check_subset("kernels", kernels, TABLE3_KERNELS)
        cells = tuple(_kernel_cell(k, k, a, margin) for k in chosen for a in alphas)
        return Grid("table3", "Table 3: comparison kernel x alpha", cells, layout="alpha")
    if name == "table4":
        cells = tuple(
            cell(
                f"{w}/{g}",
                "cro-lambda",
                weight_kernel=w,
                kernel=g,
                alpha=alpha,
                **({"margin": margin} if g == "hinge" else {}),
            )
            for w in WEIGHT_KERNELS
            for g in GRADIENT_KERNELS
        )
        return Grid(
            "table4",
            f"Table 4: lambda method, weight kernel x gradient kernel (alpha={alpha:g})",
            cells,
        )
    if name == "figure4":
        cells = tuple(_kernel_cell(k, k, a, margin) for k in ("sigmoid", "lambda") for a in alphas)
        return Grid(
            "figure4",
            "Figure 4: Recall@N against alpha (sigmoid kernel; lambda method sigmoid/softplus)",
            cells,
            layout="alpha",
        )
    # figure5: the baselines (alpha = 0) against CROLoss with their kernel and alpha > 0
    cells: list[Cell] = []
    for row, kernel, baseline in (
        ("hinge (triplet)", "hinge", "triplet"),
        ("softplus (BPR)", "softplus", "bpr"),
    ):
        extra = {"margin": margin} if baseline == "triplet" else {}
        cells.append(cell(row, baseline, x=0.0, **extra))
        cells.extend(_kernel_cell(row, kernel, a, margin) for a in alphas)
    return Grid(
        "figure5",
        "Figure 5: triplet and BPR (alpha=0) against CROLoss with the same kernel and alpha > 0",
        tuple(cells),
        layout="alpha",
    )
