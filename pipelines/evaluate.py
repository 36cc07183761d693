"""Re-evaluate a saved training run on its test (or validation) users.

    python -m pipelines.evaluate --run-dir runs/train [--search scann] [--ks 20,50,100]

Rebuilds the run's split from its config.json (deterministic in its seed),
loads best.weights.h5 and prints Recall@N, pair Recall@N, HitRate@N and NDCG@N;
``--output`` writes them as JSON.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import tfcro  # noqa: F401
from pipelines._cli import int_list, new_parser
from pipelines.train import format_metrics
from tfcro.evaluation import evaluate
from tfcro.runfolder import write_json
from tfcro.training import load_run


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser("evaluate", __doc__, verbose=1, keras=False)
    parser.add_argument("--run-dir", required=True, help="a pipelines.train --run-dir")
    parser.add_argument("--split", default="test", choices=["test", "valid"])
    parser.add_argument(
        "--search",
        "--method",
        dest="search",
        default="exact",
        choices=["exact", "scann"],
        help="exact matmul top-N or a ScaNN index (--method: the former spelling)",
    )
    parser.add_argument("--ks", type=int_list, default=None, help="cut-offs (default: the run's)")
    parser.add_argument(
        "--keep-seen", action="store_true", help="do not exclude the users' seen items"
    )
    parser.add_argument("--output", default=None, help="write the metrics to this JSON file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config, data, model = load_run(args.run_dir)
        ks = tuple(args.ks or config.ks)
        users = data.test if args.split == "test" else data.valid
        metrics = evaluate(
            model,
            users,
            data.items,
            ks=ks,
            batch_size=config.eval_batch_size,
            exclude_seen=not args.keep_seen,
            method=args.search,
        )
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    print(f"{os.path.abspath(args.run_dir)}: {args.split} users={len(users)} search={args.search}")
    print(format_metrics(metrics, ks))
    if args.output:
        write_json(args.output, metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
