r"""Serve top-N retrieval over HTTP from an export folder, swapping in new versions live.

Examples::

    python -m pipelines.serve --export-dir saved_models/ml100k
    python -m pipelines.serve --export-dir saved_models/ml100k --host 0.0.0.0 --port 8000 \
        --tf-serving-url http://localhost:8501          # users embedded by TF Serving

    curl -s localhost:8000/v1/retrieve -d '{"instances": [{"history": ["50", "181"]}], "n": 5}'
    curl -s localhost:8000/v1/health
    curl -s localhost:8000/metrics

The API, the errors and the metrics: docs/serving.md ("The retrieval service"). A
new export into ``--export-dir`` (``pipelines.export`` / ``pipelines.train``) is picked
up within ``--poll-seconds``, checked, and swapped in without dropping requests; a
broken one is refused and logged. SIGTERM stops accepting connections and lets the
requests in flight finish.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Sequence

from pipelines._cli import new_parser


def build_parser():
    parser = new_parser("serve", __doc__, verbose=1, keras=False)
    parser.add_argument("--export-dir", required=True, help="the export folder to serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    encoder = parser.add_mutually_exclusive_group()
    encoder.add_argument(
        "--tf-serving-url",
        default=None,
        help="embed users with TF Serving's REST API at this URL (default: in-process)",
    )
    encoder.add_argument(
        "--tf-serving-grpc", default=None, help="embed users with TF Serving's gRPC API (host:port)"
    )
    parser.add_argument("--tf-serving-model", default="user_tower", help="TF Serving model name")
    parser.add_argument("--default-n", type=int, default=10, help="n when a request gives none")
    parser.add_argument("--max-n", type=int, default=1000, help="largest n a request may ask")
    parser.add_argument("--max-instances", type=int, default=256, help="most users per request")
    parser.add_argument("--max-history", type=int, default=1000, help="longest history/exclude")
    parser.add_argument(
        "--max-body-bytes", type=int, default=1_000_000, help="largest request body"
    )
    parser.add_argument(
        "--poll-seconds", type=float, default=2.0, help="how often to look for a new version"
    )
    parser.add_argument(
        "--no-batching",
        dest="batching",
        action="store_false",
        help="answer each request with its own call (default: concurrent requests are "
        "answered together, one embedding + search call per batch)",
    )
    parser.add_argument("--max-batch-users", type=int, default=256, help="users per batch")
    parser.add_argument(
        "--batch-wait-ms",
        type=float,
        default=0.0,
        help="how long a batch waits for more requests (0: requests gather only while "
        "the previous batch runs)",
    )
    parser.add_argument(
        "--graceful-seconds",
        type=float,
        default=10.0,
        help="on SIGTERM, how long requests in flight may take to finish",
    )
    return parser


def _tf_serving_retriever(export_dir: str, *, url: str | None, grpc: str | None, model: str):
    """A Retriever whose users TF Serving embeds with the user-tower version of the export
    (pinned: while TF Serving also has the next version, the two never mix).
    """
    from tfcro.serving import GrpcUserEncoder, RestUserEncoder, Retriever, read_manifest

    version = int(read_manifest(export_dir)["version"])
    if url:
        encoder = RestUserEncoder(url, model, version=version)
    else:
        encoder = GrpcUserEncoder(grpc, model, version=version)
    return Retriever(export_dir, encoder=encoder)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import uvicorn

    import tfcro  # noqa: F401  (first: Keras 2 for the SavedModels)
    from tfcro.serving import Retriever
    from tfcro.serving.service import ModelHolder, ServiceConfig, create_app

    try:
        config = ServiceConfig(
            export_dir=args.export_dir,
            default_n=args.default_n,
            max_n=args.max_n,
            max_instances=args.max_instances,
            max_history=args.max_history,
            max_body_bytes=args.max_body_bytes,
            poll_seconds=args.poll_seconds,
            batching=args.batching,
            max_batch_users=args.max_batch_users,
            batch_wait_ms=args.batch_wait_ms,
        )
        if not 0 < args.port < 65536:
            raise ValueError(f"--port should be in [1, 65535]. Received: {args.port}")
    except ValueError as err:
        parser.error(str(err))
    factory = Retriever
    if args.tf_serving_url or args.tf_serving_grpc:
        factory = functools.partial(
            _tf_serving_retriever,
            url=args.tf_serving_url,
            grpc=args.tf_serving_grpc,
            model=args.tf_serving_model,
        )
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = create_app(config, ModelHolder(args.export_dir, factory))
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="info" if args.verbose else "warning",
        timeout_graceful_shutdown=args.graceful_seconds,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
