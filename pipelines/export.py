"""Export a training run for production: TF Serving SavedModels, items.parquet, ScaNN index.

    python -m pipelines.export --run-dir runs/ml100k-cro --export-dir saved_models/ml100k-cro

Reads the run folder written by ``pipelines.train`` (config.json, items.txt,
best.weights.h5 or checkpoints/) and writes the next version of
``user_tower/<v>/``, ``item_tower/<v>/``, ``scann/<v>/``, ``items.parquet``
and ``export.json`` (docs/serving.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import tfcro  # noqa: F401  (first: Keras 2 for TFRS)
from pipelines._cli import new_parser
from tfcro.serving import export_from_run


def _params(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"expected a JSON object. Received: {text!r}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object. Received: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser("export", __doc__, verbose=1, keras=False)
    parser.add_argument("--run-dir", required=True, help="a pipelines.train --run-dir")
    parser.add_argument(
        "--export-dir",
        "--output-dir",
        dest="export_dir",
        required=True,
        help="export folder, saved_models/<run> (--output-dir: the former spelling)",
    )
    parser.add_argument("--num-neighbors", type=int, default=100, help="the index's default N")
    parser.add_argument(
        "--scann-params",
        type=_params,
        default=None,
        help="ScaNN overrides as JSON, e.g. '{\"num_leaves\": 2000}'",
    )
    parser.add_argument("--version", type=int, default=None, help="default: the next one")
    parser.add_argument(
        "--keep-versions",
        type=int,
        default=None,
        help="then remove all but the newest K versions (never one a running "
        "pipelines.serve holds); default: keep every version",
    )
    parser.add_argument(
        "--include-scann-model",
        action="store_true",
        help="also save user inputs -> top-N ids with ScaNN ops in the graph "
        "(not loadable by stock TF Serving)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = export_from_run(
            args.run_dir,
            args.export_dir,
            num_neighbors=args.num_neighbors,
            scann_params=args.scann_params,
            version=args.version,
            include_scann_model=args.include_scann_model,
            keep_versions=args.keep_versions,
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    manifest = result.manifest
    scann = manifest["scann"] or {}
    print(f"exported version {result.version} to {result.output_dir}")
    print(f"  user tower : {result.user_tower_dir}")
    print(f"  item tower : {result.item_tower_dir}")
    print(
        f"  items      : {result.items_path} ({manifest['catalog_size']} items, "
        f"dim {manifest['embedding_dim']})"
    )
    if scann:
        recall = scann.get("recall") or {}
        print(
            f"  scann      : {result.scann_dir} ({scann['params']['algorithm']}, "
            f"recall@{recall.get('k')} vs exact {recall.get('recall', float('nan')):.4f})"
        )
    if result.scann_model_dir:
        print(f"  scann model: {result.scann_model_dir} (needs ScaNN's TF ops)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
