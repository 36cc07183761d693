"""Which validation hold-out resembles the test split? Popularity's Recall@N on each.

    python -m benchmarks.valid_split_check --dataset lightgcn --data-dir ../shared/data/yelp2018
    python -m benchmarks.valid_split_check --dataset pairs --data-dir ../shared/data/ml-1m

A validation split carved from the training file should be as hard as the test
split, or model selection on it is biased. For a pre-split collaborative dataset
this prints the Recall@N and NDCG@N of the popularity ranking (no training:
deterministic and fast) on the validation users of ``valid_split="random"`` (a
seeded random share of each user's training interactions) and ``"last"`` (each
user's last training interactions in file order), and on the test users. Data
whose training file is in time order and whose test split holds later
interactions show the random hold-out as the easier one.
"""

from __future__ import annotations

import argparse

import tfcro  # noqa: F401  (first: Keras 2 for TFRS)
from tfcro import data as data_lib
from tfcro.evaluation import PopularityBaseline, evaluate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.valid_split_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", default="lightgcn", choices=["lightgcn", "pairs"])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--valid-fraction", type=float, default=0.1)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    interactions = data_lib.load_dataset(args.dataset, args.data_dir)
    train, test = interactions.train_test()
    rows = []
    for split in data_lib.VALID_SPLITS:
        data = data_lib.collaborative_split(
            train,
            test,
            max_history=1,
            valid_fraction=args.valid_fraction,
            seed=args.seed,
            valid_split=split,
        )
        popularity = PopularityBaseline(data.train.target, data.items)
        metrics = evaluate(popularity, data.valid, data.items, ks=(args.k,))
        rows.append((f"validation, {split}", len(data.valid), metrics))
    metrics = evaluate(popularity, data.test, data.items, ks=(args.k,))
    rows.append(("test", len(data.test), metrics))

    k = args.k
    print(f"# {args.data_dir}: popularity ranking, {args.valid_fraction:.0%} validation hold-out")
    print(f"\n| users | count | Recall@{k} | NDCG@{k} |\n|---|---|---|---|")
    for name, count, metrics in rows:
        print(f"| {name} | {count} | {metrics[f'recall@{k}']:.4f} | {metrics[f'ndcg@{k}']:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
