r"""Train a two-tower retrieval model with CROLoss or a baseline; evaluate; export.

Examples::

    python -m pipelines.train                                   # synthetic data, CROLoss-lambda
    python -m pipelines.train --dataset movielens --data-dir ../shared/data/ml-100k \
        --loss cro-lambda --weight-kernel sigmoid --kernel softplus --alpha 1.0 \
        --run-dir runs/ml100k-cro
    python -m pipelines.train --dataset pairs --data-dir ../shared/data/ml-1m \
        --protocol collaborative --use-user-id --loss softmax --run-dir runs/ml1m-softmax
    python -m pipelines.train --dataset table --data-dir my_log.csv \
        --user-col user_id --item-col item_id --time-col ts --run-dir runs/mine

Rerunning with the same ``--run-dir`` resumes from its last checkpoint (also
after a SIGKILL; on SIGTERM the job stops at once, keeping the finished epochs, and
exits with code 143). ``--distribute mirrored`` uses the devices of this machine,
``--distribute multi-worker`` the cluster of ``TF_CONFIG`` (docs/distributed.md).
Outputs (in ``--run-dir``, formerly spelled ``--output-dir``): config.json,
history.csv, metrics.json, best.weights.h5, checkpoints/; the export goes to
``--export-dir`` (default ``saved_models/<name of the run folder>``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import tfcro  # noqa: F401  (first: Keras 2 for TFRS)
from pipelines._cli import fit_verbosity, int_list, name_list, new_parser, parse_with_preset
from tfcro import data as data_lib
from tfcro import distributed
from tfcro import kernels as kernels_lib
from tfcro import losses as losses_lib
from tfcro.models.two_tower import USER_TOWERS
from tfcro.training import OPTIMIZERS, TrainingConfig, TrainingInterrupted, train
from tfcro.training.config import LR_SCHEDULES
from tfcro.training.presets import PRESETS


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of :class:`tfcro.training.TrainingConfig` as command-line flags."""
    parser.add_argument(
        "--preset",
        default=None,
        choices=sorted(PRESETS),
        help="start from a named recipe (README: what each sets); explicit flags override it",
    )
    d = parser.add_argument_group("data")
    d.add_argument("--dataset", default="synthetic", choices=list(data_lib.DATASETS))
    d.add_argument(
        "--data-dir",
        default=None,
        help="dataset folder (for --dataset table: the CSV/TSV/Parquet file)",
    )
    d.add_argument("--protocol", default="sequential", choices=["sequential", "collaborative"])
    d.add_argument("--max-history", type=int, default=20, help="history length L (paper: 20)")
    d.add_argument("--k-core", type=int, default=None, help="optional k-core filter")
    d.add_argument("--min-rating", type=float, default=None, help="movielens: keep ratings >= x")
    d.add_argument("--user-col", default=None, help="table: user column")
    d.add_argument("--item-col", default=None, help="table: item column")
    d.add_argument("--time-col", default=None, help="table: time column (optional)")
    d.add_argument("--sep", default=None, help="table: field separator (default: sniffed)")
    d.add_argument("--num-users", type=int, default=None, help="synthetic: users")
    d.add_argument("--num-items", type=int, default=None, help="synthetic: items")

    m = parser.add_argument_group("loss and model")
    m.add_argument(
        "--loss",
        default="cro-lambda",
        choices=list(losses_lib.LOSSES),
        help="cro, cro-lambda (CROLoss), the baselines softmax, bpr, triplet, or the peer "
        "softmax variants psl (NeurIPS 2024), sl-at-k (KDD 2025), bsl (ICDE 2024)",
    )
    m.add_argument(
        "--kernel",
        default="softplus",
        help=f"comparison kernel, one of {list(kernels_lib.GRADIENT_KERNELS)}",
    )
    m.add_argument(
        "--weight-kernel",
        default="sigmoid",
        help="lambda method weight kernel: unit_step or sigmoid (or any kernel)",
    )
    m.add_argument("--alpha", type=float, default=1.0, help="weighting exponent (paper 0.6-1.6)")
    m.add_argument("--margin", type=float, default=None, help="hinge/triplet margin")
    m.add_argument(
        "--top-k", type=int, default=None, help="sl-at-k: K of Recall@K it targets (default 20)"
    )
    m.add_argument(
        "--weight-tau",
        type=float,
        default=None,
        help="sl-at-k: temperature of its top-K weight, in raw-score (cosine) units (default 1)",
    )
    m.add_argument(
        "--surrogate",
        default=None,
        choices=["tanh", "atan", "relu"],
        help="psl: the surrogate of exp in each pair (default tanh)",
    )
    m.add_argument(
        "--surrogate-tau",
        type=float,
        default=None,
        help="psl: the surrogate's width in raw-score units (default 2, the authors')",
    )
    m.add_argument(
        "--temperature-ratio",
        type=float,
        default=None,
        help="bsl: negative-side over positive-side temperature (default 1)",
    )
    m.add_argument(
        "--num-items-in-loss",
        dest="loss_num_items",
        type=int,
        default=None,
        help="N of the rank estimate (default: the catalog size)",
    )
    m.add_argument(
        "--scale",
        type=float,
        default=10.0,
        help="score = scale * cosine (paper: 10; TFRS temperature = 1/scale)",
    )
    m.add_argument("--embedding-dim", type=int, default=32)
    m.add_argument(
        "--hidden-units",
        type=int_list,
        default=[],
        help="hidden Dense layers of the user tower, e.g. 64,32 (paper DNN: none)",
    )
    m.add_argument(
        "--user-tower",
        default=None,
        choices=list(USER_TOWERS),
        help="what the user tower embeds: history (the paper's DNN, the default), id "
        "(matrix factorisation, collaborative protocol) or id+history",
    )
    m.add_argument(
        "--use-user-id",
        action="store_true",
        help="the former spelling of --user-tower id+history",
    )
    m.add_argument(
        "--embedding-l2",
        type=float,
        default=0.0,
        help="L2 penalty lambda * sum ||e||^2 / B on the id-embedding rows of each batch "
        "(LightGCN-style; 0: none)",
    )
    m.add_argument(
        "--item-features",
        type=name_list,
        default=[],
        help="categorical item features of the dataset for the item tower, "
        "e.g. genre,release_year (MovieLens items.tsv) or category (ComiRec)",
    )
    m.add_argument(
        "--user-features",
        type=name_list,
        default=[],
        help="categorical user features for the user tower, e.g. "
        "gender,age,occupation (MovieLens users.tsv)",
    )
    m.add_argument(
        "--num-negatives",
        type=int,
        default=None,
        help="uniform negatives per batch (default: 10 x batch size, the paper)",
    )
    m.add_argument(
        "--num-row-negatives",
        type=int,
        default=0,
        help="uniform negatives drawn for each row on its own, after the shared ones "
        "(the published MF recipes: e.g. 800 with --no-in-batch-negatives --num-negatives 0)",
    )
    m.add_argument(
        "--in-batch-negatives",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the batch's other positives are negatives too (popularity-sampled)",
    )
    m.add_argument(
        "--logq",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="logQ correction of the in-batch (popularity-sampled) negatives",
    )
    m.add_argument(
        "--cross-replica-negatives",
        action="store_true",
        help="with --distribute: the other replicas' positives are negatives too",
    )

    o = parser.add_argument_group("optimisation and evaluation")
    o.add_argument(
        "--optimizer",
        default="adam",
        choices=sorted(OPTIMIZERS),
        help="lazy_adam: Adam that updates only the embedding rows of the batch (faster)",
    )
    o.add_argument("--learning-rate", type=float, default=1e-3)
    o.add_argument(
        "--weight-decay",
        type=float,
        default=0.0,
        help="decoupled weight decay (AdamW-style) of every weight; 0: none",
    )
    o.add_argument(
        "--lr-schedule",
        default="constant",
        choices=list(LR_SCHEDULES),
        help="constant, or cosine decay to 0 over the epochs (after the warm-up)",
    )
    o.add_argument(
        "--schedule-epochs",
        type=int,
        default=None,
        help="the cosine's horizon in epochs (default: --epochs; give it to resume a "
        "cosine run with more --epochs)",
    )
    o.add_argument(
        "--warmup-epochs",
        type=float,
        default=0.0,
        help="linear learning-rate warm-up, in epochs (may be fractional)",
    )
    o.add_argument(
        "--valid-fraction",
        type=float,
        default=0.1,
        help="validation share carved from the training data (collaborative: of each "
        "user's interactions; sequential: of the users); 0: no validation, train "
        "--epochs epochs",
    )
    o.add_argument(
        "--valid-split",
        default="random",
        choices=["random", "last"],
        help="collaborative: hold out a random share of each user's training interactions, "
        "or the last ones in the file's order (time-ordered files whose test split is later "
        "in time, e.g. LightGCN's Yelp2018)",
    )
    o.add_argument(
        "--refit",
        action="store_true",
        help="then retrain on all the training data for the epochs selected on "
        "validation and report that model's test metrics",
    )
    o.add_argument("--epochs", type=int, default=10)
    o.add_argument("--batch-size", type=int, default=256)
    o.add_argument(
        "--patience",
        type=int,
        default=3,
        help="validation rounds without improvement before stopping (-1: never)",
    )
    o.add_argument(
        "--valid-every",
        type=int,
        default=1,
        help="evaluate the validation users every this many epochs (--patience counts evaluations)",
    )
    o.add_argument("--monitor", default="recall@100", help="validation metric for selection")
    o.add_argument("--ks", type=int_list, default=[20, 50, 100, 200, 500])
    o.add_argument("--eval-batch-size", type=int, default=1024)
    o.add_argument("--seed", type=int, default=0)
    o.add_argument(
        "--xla",
        dest="jit_compile",
        action="store_true",
        help="compile the training step with XLA (off by default: slower on the CPUs measured, "
        "see docs/benchmarks.md; not with --optimizer lazy_adam)",
    )
    o.add_argument(
        "--distribute",
        default="none",
        choices=list(distributed.DISTRIBUTE),
        help="tf.distribute strategy: none, mirrored (this machine's devices) or "
        "multi-worker (the cluster of TF_CONFIG); --batch-size is the global "
        "batch",
    )


def config_from_args(args: argparse.Namespace) -> TrainingConfig:
    """Builds the TrainingConfig of parsed flags (raises ValueError on bad values)."""
    dataset_options = {}
    if args.dataset == "table":
        for flag in ("user_col", "item_col", "time_col", "sep"):
            if getattr(args, flag) is not None:
                dataset_options[flag] = getattr(args, flag)
    if args.dataset == "movielens" and args.min_rating is not None:
        dataset_options["min_rating"] = args.min_rating
    if args.dataset == "synthetic":
        for flag in ("num_users", "num_items"):
            if getattr(args, flag) is not None:
                dataset_options[flag] = getattr(args, flag)
    loss_options = {"kernel": args.kernel, "alpha": args.alpha}
    if args.loss == "cro-lambda":
        loss_options["weight_kernel"] = args.weight_kernel
    if args.margin is not None:
        loss_options["margin"] = args.margin
    if args.loss_num_items is not None:
        loss_options["num_items"] = args.loss_num_items
    for flag in ("top_k", "weight_tau", "surrogate", "surrogate_tau", "temperature_ratio"):
        if getattr(args, flag, None) is not None:
            loss_options[flag] = getattr(args, flag)
    # keep only the options this loss takes, validated by building it once
    loss_options = {
        k: v
        for k, v in loss_options.items()
        if k in losses_lib.get(args.loss, **loss_options).get_config()
    }
    num_negatives = 10 * args.batch_size if args.num_negatives is None else args.num_negatives
    user_tower = args.user_tower or ("id+history" if args.use_user_id else "history")
    if args.use_user_id and user_tower != "id+history":
        raise ValueError(
            f"--use-user-id is the former spelling of --user-tower id+history and "
            f"contradicts --user-tower {user_tower}; give --user-tower alone"
        )
    model = {
        "embedding_dim": args.embedding_dim,
        "hidden_units": list(args.hidden_units),
        "user_tower": user_tower,
        "embedding_l2": args.embedding_l2,
        "scale": args.scale,
        "num_negatives": num_negatives,
        "num_row_negatives": args.num_row_negatives,
        "in_batch_negatives": args.in_batch_negatives,
        "logq_correction": args.logq,
        "loss": args.loss,
        "loss_options": loss_options,
    }
    for side in ("item_features", "user_features"):
        if getattr(args, side, None):
            model[side] = list(getattr(args, side))
    if getattr(args, "cross_replica_negatives", False):
        model["cross_replica_negatives"] = True
    return TrainingConfig(
        dataset=args.dataset,
        data_dir=args.data_dir,
        dataset_options=dataset_options,
        k_core=args.k_core,
        protocol=args.protocol,
        max_history=args.max_history,
        seed=args.seed,
        model=model,
        valid_fraction=args.valid_fraction,
        valid_split=args.valid_split,
        refit=args.refit,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        lr_schedule=args.lr_schedule,
        warmup_epochs=args.warmup_epochs,
        schedule_epochs=args.schedule_epochs,
        epochs=args.epochs,
        batch_size=args.batch_size,
        monitor=args.monitor,
        patience=None if args.patience < 0 else args.patience,
        ks=tuple(args.ks),
        eval_batch_size=args.eval_batch_size,
        valid_every=args.valid_every,
        jit_compile=args.jit_compile,
    )


def default_export_dir(run_dir: str) -> str:
    return os.path.join("saved_models", os.path.basename(os.path.normpath(run_dir)))


def format_metrics(metrics: dict, ks: Sequence[int]) -> str:
    lines = [f"{'N':>6} {'recall':>8} {'pair_recall':>12} {'hitrate':>8} {'ndcg':>8}"]
    for k in ks:
        lines.append(
            f"{k:>6} {metrics[f'recall@{k}']:>8.4f} {metrics[f'pair_recall@{k}']:>12.4f}"
            f" {metrics[f'hitrate@{k}']:>8.4f} {metrics[f'ndcg@{k}']:>8.4f}"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser("train", __doc__, verbose=None, keras=True)
    add_training_arguments(parser)
    parser.add_argument(
        "--run-dir",
        "--output-dir",
        dest="run_dir",
        default="runs/train",
        help="the run folder (--output-dir: the former spelling)",
    )
    parser.add_argument(
        "--export-dir",
        default=None,
        help="SavedModel/ScaNN export target (default saved_models/<run name>)",
    )
    parser.add_argument(
        "--no-export", dest="export", action="store_false", help="skip the export at the end"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_with_preset(parser, argv)
    verbose = fit_verbosity(args.verbose)
    try:
        config = config_from_args(args)
        strategy = distributed.make_strategy(args.distribute)
        if args.distribute != "none" and verbose:
            print(
                f"[tfcro] --distribute {args.distribute}: "
                f"{strategy.num_replicas_in_sync} replica(s) in sync"
            )
        result = train(config, args.run_dir, verbose=verbose, strategy=strategy)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    except TrainingInterrupted as stop:
        print(f"\n[tfcro] {stop}", file=sys.stderr)
        return 143  # 128 + SIGTERM, as a shell reports a terminated job
    if not distributed.is_chief(strategy):
        return 0  # the chief writes the run folder and the export
    selected = "last epoch" if config.valid_fraction == 0 else "best epoch"
    print(
        f"\nTest metrics ({len(result.data.test)} users, {selected} "
        f"{None if result.best_epoch is None else result.best_epoch + 1}):"
    )
    print(format_metrics(result.metrics, config.ks))
    if result.refit is not None:
        print(
            f"\nTest metrics of the refit on all the training data "
            f"({result.refit.epochs_run} epochs):"
        )
        print(format_metrics(result.refit.metrics, config.ks))
    print(
        f"\nrun folder: {os.path.abspath(args.run_dir)} "
        "(config.json, history.csv, metrics.json, best.weights.h5, checkpoints/"
        + (", refit/" if result.refit is not None else "")
        + ")"
    )
    if args.export:
        from tfcro.serving import export_from_run

        export_dir = args.export_dir or default_export_dir(args.run_dir)
        exported = export_from_run(result.final.output_dir, export_dir)
        print(f"export: {os.path.abspath(export_dir)} ({_describe(exported)})")
    return 0


def _describe(exported) -> str:
    fields = getattr(exported, "__dict__", {})
    keep = {k: v for k, v in fields.items() if isinstance(v, int | str)}
    return json.dumps(keep) if keep else str(exported)


if __name__ == "__main__":
    sys.exit(main())
