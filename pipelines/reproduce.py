r"""Reproduce the CROLoss paper's Tables 2-4 and Figures 4-5 on a dataset, over seeds.

Examples::

    python -m pipelines.reproduce --experiment table2 --dataset-preset ml-100k \
        --data-dir ../shared/data/ml-100k --seeds 0,1,2 --epochs 2 \
        --learning-rates 0.005,0.02 --tune-seeds 1 --output-dir runs/reproduce/ml-100k
    python -m pipelines.reproduce --experiment all --dataset-preset synthetic --epochs 1

Every run goes to ``<output-dir>/runs/<setting>/seed<k>`` (a normal
``pipelines.train`` run folder); a rerun skips runs that have ``metrics.json``
and resumes the others, so a killed job loses at most one epoch. Outputs per
experiment, in ``--output-dir``: ``<experiment>.csv`` (one row per cell: chosen
learning rate, mean and std over seeds of Recall@N and NDCG@N),
``<experiment>.md`` (the Markdown table, percent) and ``<experiment>.png``.

Model selection: Table 2's losses (``--losses``) each try every
``--learning-rates`` value on the first ``--tune-seeds`` seeds and keep the one
with the best mean *validation* Recall@100 (early stopping picks the epoch, also
on validation); the other experiments train at ``--learning-rate``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import tfcro  # noqa: F401  (first: Keras 2 for TFRS)
from pipelines._cli import float_list, int_list, name_list, new_parser
from tfcro import experiments as ex


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser("reproduce", __doc__, verbose=0, keras=True)
    parser.add_argument(
        "--experiment",
        default="table2",
        help=f"one of {list(ex.EXPERIMENTS) + ['all']}, or a comma list",
    )
    parser.add_argument("--dataset-preset", default="synthetic", help=f"one of {list(ex.PRESETS)}")
    parser.add_argument(
        "--data-dir", default=None, help="the dataset folder (default: <--data-root>/<preset>)"
    )
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--output-dir", default=None, help="default runs/reproduce/<preset>")
    parser.add_argument("--seeds", type=int_list, default=[0], help="e.g. 0,1,2")
    parser.add_argument(
        "--tune-seeds",
        type=int,
        default=None,
        help="seeds on which every learning rate is tried (default: all)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="max epochs per run")
    parser.add_argument(
        "--patience", type=int, default=None, help="early stopping patience (validation rounds)"
    )
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--num-negatives",
        type=int,
        default=None,
        help="uniform negatives per batch (default: 10 x batch size)",
    )
    parser.add_argument("--embedding-dim", type=int, default=None, help="default 32")
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="the learning rate of table3/table4/figure4/figure5 (default 0.005)",
    )
    parser.add_argument(
        "--learning-rates",
        type=float_list,
        default=list(ex.DEFAULT_LEARNING_RATES),
        help="table2's learning-rate candidates, the same for every method",
    )
    parser.add_argument("--alphas", type=float_list, default=list(ex.ALPHAS))
    parser.add_argument(
        "--alpha", type=float, default=1.0, help="alpha of table2's CROLoss rows and of table4"
    )
    parser.add_argument(
        "--losses",
        "--methods",
        dest="losses",
        type=name_list,
        default=list(ex.TABLE2_METHODS),
        help="table2 rows: --loss values of pipelines.train (--methods: the former spelling)",
    )
    parser.add_argument(
        "--kernels", type=name_list, default=list(ex.TABLE3_KERNELS), help="table3 rows"
    )
    parser.add_argument("--margin", type=float, default=ex.PAPER_MARGIN)
    parser.add_argument("--ks", type=int_list, default=None, help="cut-offs N reported")
    parser.add_argument("--num-users", type=int, default=None, help="synthetic: users")
    parser.add_argument("--num-items", type=int, default=None, help="synthetic: items")
    parser.add_argument(
        "--max-runs",
        type=int,
        default=None,
        help="train at most this many new runs, then write the tables",
    )
    parser.add_argument("--no-plots", dest="plots", action="store_false")
    return parser


def experiments_from_arg(text: str) -> list[str]:
    """``all``, one name or a comma list of :data:`tfcro.experiments.EXPERIMENTS`."""
    names = list(ex.EXPERIMENTS) if text == "all" else name_list(text)
    bad = [n for n in names if n not in ex.EXPERIMENTS]
    if bad or not names:
        raise ValueError(
            f"`experiment` should be one of {list(ex.EXPERIMENTS) + ['all']} "
            f"(or a comma list). Received: experiment={text!r}"
        )
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        names = experiments_from_arg(args.experiment)
        base = ex.preset_config(
            args.dataset_preset,
            data_dir=args.data_dir,
            data_root=args.data_root,
            epochs=args.epochs,
            patience=args.patience,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            ks=None if args.ks is None else tuple(args.ks),
            num_negatives=args.num_negatives,
            embedding_dim=args.embedding_dim,
            num_users=args.num_users,
            num_items=args.num_items,
        )
        grids = [
            ex.make_grid(
                n,
                alphas=args.alphas,
                learning_rates=args.learning_rates,
                methods=args.losses,
                kernels=args.kernels,
                alpha=args.alpha,
                margin=args.margin,
            )
            for n in names
        ]
        output_dir = args.output_dir or os.path.join("runs", "reproduce", args.dataset_preset)
        started = time.time()
        print(
            f"[reproduce] {args.dataset_preset}: {', '.join(names)}; seeds {args.seeds}; "
            f"epochs {base.epochs}; batch {base.batch_size}; negatives "
            f"{base.model['num_negatives']}; output {os.path.abspath(output_dir)}",
            flush=True,
        )
        results = ex.run_grids(
            grids,
            base,
            args.seeds,
            output_dir,
            tune_seeds=args.tune_seeds,
            max_runs=args.max_runs,
            verbose=args.verbose,
            log=lambda m: print(m, flush=True),
        )
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    for grid in grids:
        frame = ex.results_frame(grid, results[grid.name], ks=base.ks, monitor=base.monitor)
        csv_path, md_path = ex.write_tables(frame, grid, output_dir, ks=base.ks)
        print(f"\n{ex.markdown_table(frame, grid, base.ks)}")
        print(f"[reproduce] wrote {csv_path}, {md_path}")
        if args.plots:
            png = ex.plot_grid(
                frame,
                grid,
                os.path.join(output_dir, f"{grid.name}.png"),
                ks=base.ks,
                title=f"{grid.title} - {args.dataset_preset}",
            )
            print(f"[reproduce] wrote {png}")
        if grid.name == "table2":
            print(f"[reproduce] chosen learning rates: {ex.chosen_settings(frame)}")
            if "softmax" in frame["row"].tolist() and len(frame) > 1:
                deltas = ex.paired_deltas(grid, results[grid.name], ks=base.ks)
                deltas.to_csv(os.path.join(output_dir, "table2_delta.csv"), index=False)
                text = ex.markdown_deltas(deltas, base.ks)
                with open(
                    os.path.join(output_dir, "table2_delta.md"), "w", encoding="utf-8"
                ) as handle:
                    handle.write(text)
                print(f"\n{text}")
    print(f"[reproduce] done in {time.time() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
