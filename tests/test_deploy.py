"""The deployment files (deploy/): a lint, since there is no Docker engine to build them here.

The Dockerfile's instructions are known ones, its base image is pinned, what it copies
exists, and its command is one ``pipelines.serve`` accepts; the compose file parses,
runs that service next to TF Serving with the mounts and the model config they need.
"""

import json
import os
import re
import shlex

import pytest

from pipelines import serve
from tests import cli

yaml = pytest.importorskip("yaml")

DEPLOY = os.path.join(cli.ROOT, "deploy")
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip


def _instructions(path):
    text = open(path).read().replace("\\\n", " ")
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            rows.append((keyword, rest.strip()))
    return rows


def _serve_args(command):
    start = command.index("pipelines.serve") + 1
    return serve.build_parser().parse_args(command[start:])


def test_the_dockerfile_is_well_formed_and_runs_the_service():
    rows = _instructions(os.path.join(DEPLOY, "Dockerfile"))
    assert all(keyword in INSTRUCTIONS for keyword, _ in rows), rows
    assert rows[0][0] == "FROM" and re.fullmatch(r"python:3\.11[\w.-]*", rows[0][1])
    for keyword, rest in rows:
        if keyword == "COPY":
            for source in shlex.split(rest)[:-1]:
                assert os.path.exists(os.path.join(cli.ROOT, source)), source
    commands = [json.loads(rest) for keyword, rest in rows if keyword == "CMD"]
    assert len(commands) == 1
    args = _serve_args(commands[0])
    assert args.host == "0.0.0.0" and args.export_dir == "/models/export"
    exposed = [rest for keyword, rest in rows if keyword == "EXPOSE"]
    assert exposed == [str(args.port)]
    health = next(rest for keyword, rest in rows if keyword == "HEALTHCHECK")
    assert f":{args.port}/v1/health" in health
    install = next(rest for keyword, rest in rows if keyword == "RUN")
    assert '".[serving]"' in install  # the pinned stack and the service's extra
    assert ("USER", "tfcro") in rows


def test_the_compose_file_runs_the_service_next_to_tf_serving():
    compose = yaml.safe_load(open(os.path.join(DEPLOY, "compose.yaml")))
    services = compose["services"]
    assert set(services) == {"tf-serving", "tfcro"}
    tf_serving, tfcro = services["tf-serving"], services["tfcro"]
    assert re.fullmatch(r"tensorflow/serving:\d+\.\d+\.\d+", tf_serving["image"])
    args = _serve_args(tfcro["command"])
    host, port = args.tf_serving_grpc.split(":")
    assert host == "tf-serving" and port == "8500"
    assert any(v.endswith(f":{args.export_dir}") for v in tfcro["volumes"])  # writable: leases
    assert tfcro["ports"] == [f"{args.port}:{args.port}"]
    assert tfcro["build"]["dockerfile"] == "deploy/Dockerfile"
    config_mount = next(v for v in tf_serving["volumes"] if "models.config" in v)
    assert os.path.isfile(os.path.join(DEPLOY, config_mount.split(":")[0]))
    flags = dict(flag.split("=", 1) for flag in tf_serving["command"])
    assert flags["--model_config_file"] == config_mount.split(":")[1]
    config = open(os.path.join(DEPLOY, "models.config")).read()
    assert 'base_path: "/models/export/user_tower"' in config
    assert "num_versions: 2" in config  # the pinned version stays while the next arrives
    export_mount = next(v for v in tf_serving["volumes"] if "/models/export" in v)
    assert export_mount.endswith(":/models/export:ro")
