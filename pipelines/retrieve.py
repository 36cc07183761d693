r"""Print the top-N items for user histories from an export folder.

    python -m pipelines.retrieve --export-dir saved_models/ml100k-cro \
        --history "50,172,133" --history "1,2" -n 10 [--exclude-history]

Users are embedded by the exported ``user_tower`` SavedModel in this process,
or by TF Serving with ``--rest-url http://localhost:8501`` or ``--grpc
localhost:8500``; candidates come from the ScaNN index (large catalogs) or an
exact search of ``items.parquet``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import tfcro  # noqa: F401  (first: Keras 2 for TFRS)
from pipelines._cli import new_parser
from tfcro.serving import GrpcUserEncoder, RestUserEncoder, Retriever


def _history(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser("retrieve", __doc__, verbose=1, keras=False)
    parser.add_argument("--export-dir", required=True, help="folder written by pipelines.export")
    parser.add_argument(
        "--history",
        type=_history,
        action="append",
        required=True,
        help='one user\'s comma-separated item ids, e.g. "12,7,3" (repeatable; '
        '"" for an empty history)',
    )
    parser.add_argument("-n", "--top-n", dest="n", type=int, default=10)
    parser.add_argument(
        "--exclude-history",
        action="store_true",
        help="drop each user's history items from the results",
    )
    parser.add_argument("--search", choices=["auto", "scann", "exact"], default="auto")
    parser.add_argument("--rest-url", default=None, help="TF Serving REST base URL")
    parser.add_argument("--grpc", default=None, help="TF Serving gRPC host:port")
    parser.add_argument("--model-name", default="user_tower", help="TF Serving model name")
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    encoder = None
    if args.rest_url:
        encoder = RestUserEncoder(args.rest_url, args.model_name)
    elif args.grpc:
        encoder = GrpcUserEncoder(args.grpc, args.model_name)
    use_scann = {"auto": None, "scann": True, "exact": False}[args.search]
    try:
        retriever = Retriever(args.export_dir, encoder=encoder, use_scann=use_scann)
        exclude = args.history if args.exclude_history else None
        result = retriever.retrieve(args.history, n=args.n, exclude=exclude)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    search = "scann" if retriever.uses_scann else "exact"
    for history, row in zip(args.history, result.rows(), strict=True):
        if args.json:
            print(
                json.dumps(
                    {
                        "history": history,
                        "items": [i for i, _ in row],
                        "scores": [round(s, 6) for _, s in row],
                    }
                )
            )
            continue
        print(f"history [{', '.join(history)}] -> top {args.n} ({search}):")
        for rank, (item, score) in enumerate(row, 1):
            print(f"  {rank:>3}. {item:<24} {score:9.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
