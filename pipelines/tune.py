r"""Tune a training recipe per loss on validation (Optuna), then train the chosen settings
with several seeds and compare the losses on the test split.

Examples::

    python -m pipelines.tune --preset cf --dataset lightgcn \
        --data-dir ../shared/data/yelp2018 --losses softmax,bpr,cro,cro-lambda \
        --trials 8 --epochs 12 --tune-dir runs/tune-yelp2018
    python -m pipelines.tune ... --trials 0 --seeds 1,2,3 --epochs 30 --refit  # then

Every loss gets the same budget: ``--trials`` finished (complete or pruned) trials of
at most ``--epochs`` epochs, selected on the validation split of the training data
(``--monitor``). The training flags are those of ``pipelines.train`` and fix everything
that is not searched. Rerunning with the same ``--tune-dir`` continues where it stopped
(an interrupted trial resumes from its checkpoint). Outputs in ``--tune-dir``:
study.db, trials.csv, tuning.md, tuning.png, seeds.csv (with ``--seeds``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import tfcro  # noqa: F401  (first: Keras 2 for TFRS)
from pipelines._cli import (
    fit_verbosity,
    float_list,
    int_list,
    name_list,
    new_parser,
    parse_with_preset,
)
from pipelines.train import add_training_arguments, config_from_args
from tfcro.experiments import space, tuning


def build_parser():
    parser = new_parser("tune", __doc__, verbose=0, keras=True)
    add_training_arguments(parser)
    t = parser.add_argument_group("tuning")
    t.add_argument("--tune-dir", default="runs/tune", help="the tuning folder (resumable)")
    t.add_argument(
        "--losses",
        type=name_list,
        default=["softmax", "bpr", "cro", "cro-lambda"],
        help="the losses to tune, comma-separated",
    )
    t.add_argument(
        "--trials",
        type=int,
        default=8,
        help="finished trials per loss (0: no tuning, only --seeds on the studies as they are)",
    )
    t.add_argument(
        "--seeds",
        type=int_list,
        default=[],
        help="after tuning, train each loss's best settings with these seeds (test metrics, "
        "paired differences to softmax); with --refit the refit's",
    )
    t.add_argument(
        "--alphas",
        type=float_list,
        default=[],
        help="then train --alpha-loss's best settings with each alpha (e.g. 0.6,0.8,...,1.6) "
        "and report which alpha gives the best Recall@N for each N of --ks (alpha.md)",
    )
    t.add_argument("--alpha-loss", default="cro-lambda", choices=["cro", "cro-lambda"])
    t.add_argument(
        "--search-space",
        type=int,
        default=None,
        help="the version of tfcro.experiments.space.SEARCH_SPACES to draw from; default: "
        "a study's own (1 for studies started before versions), the latest for a new one",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_with_preset(parser, argv)
    try:
        base = config_from_args(args)
        verbose = fit_verbosity(args.verbose)
        if args.trials < 0:
            raise ValueError(f"--trials should be >= 0. Received: {args.trials}")
        if args.search_space is not None:
            space.search_space(args.search_space, "--search-space")
        if args.trials:
            tuning.tune(
                base,
                args.losses,
                args.tune_dir,
                trials=args.trials,
                search_space=args.search_space,
                verbose=verbose,
            )
        if args.seeds:
            tuning.run_seeds(base, args.tune_dir, args.seeds, losses=args.losses, verbose=verbose)
        if args.alphas:
            tuning.alpha_sweep(
                base,
                args.tune_dir,
                args.alphas,
                loss=args.alpha_loss,
                seeds=args.seeds or [base.seed],
                verbose=verbose,
            )
            with open(f"{args.tune_dir}/alpha.md", encoding="utf-8") as f:
                print(f.read())
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    with open(f"{args.tune_dir}/{tuning.REPORT_FILE}", encoding="utf-8") as f:
        print(f.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
