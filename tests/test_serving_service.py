"""The retrieval service: request parsing, version swaps, and the real server over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import numpy as np
import pytest

from tests import cli
from tests.test_serving_support import make_towers
from tfcro.serving import Retriever, export_model, versioning

service = pytest.importorskip("tfcro.serving.service")
httpx = pytest.importorskip("httpx")

CONFIG = service.ServiceConfig(export_dir="unused", max_n=50, max_instances=4, max_history=5)


def _export(out, seed=0, num_items=300):
    user_tower, item_tower, items = make_towers(num_items=num_items, dim=8, seed=seed)
    return export_model(
        user_tower,
        item_tower,
        items,
        str(out),
        config={},
        scale=10.0,
        num_neighbors=50,
    )


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("service") / "export"
    _export(out)
    return str(out)


# ----------------------------------------------------------------------------- parsing


def _parse(payload, names=("history",), config=CONFIG):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return service.parse_request(body, config, names)


def test_a_request_becomes_padded_tower_inputs_exclusions_and_n():
    inputs, exclusions, n = _parse(
        {"instances": [{"history": ["a", 7]}, {"history": [], "exclude": ["z"]}], "n": 3}
    )
    assert inputs["history"].tolist() == [["a", "7"], ["", ""]]
    assert exclusions == [["a", "7"], ["z"]] and n == 3
    inputs, exclusions, n = _parse(
        {"instances": [{"user_id": 4, "history": ["x"]}]}, names=("user_id",)
    )
    assert inputs == {"user_id": np.asarray(["4"], object)} or inputs["user_id"].tolist() == ["4"]
    assert exclusions == [["x"]] and n == CONFIG.default_n  # history excludes, not embedded


@pytest.mark.parametrize(
    "payload, field",
    [
        (b"not json", "body"),
        (b"\xff\xfe", "body"),
        ([1, 2], "body"),
        ({"n": 3}, "instances"),
        ({"instances": []}, "instances"),
        ({"instances": {"history": []}}, "instances"),
        ({"instances": [{}] * 5}, "instances"),
        ({"instances": [{}], "n": 0}, "n"),
        ({"instances": [{}], "n": 51}, "n"),
        ({"instances": [{}], "n": "3"}, "n"),
        ({"instances": [{}], "n": True}, "n"),
        ({"instances": [{}], "k": 3}, "k"),
        ({"instances": ["a"]}, "instances[0]"),
        ({"instances": [{"history": "a b"}]}, "instances[0].history"),
        ({"instances": [{"history": [1.5]}]}, "instances[0].history"),
        ({"instances": [{"history": list("abcdef")}]}, "instances[0].history"),
        ({"instances": [{"exclude": [None]}]}, "instances[0].exclude"),
        ({"instances": [{"histroy": []}]}, "instances[0].histroy"),
    ],
)
def test_each_bad_request_names_its_field(payload, field):
    with pytest.raises(service.RequestError) as err:
        _parse(payload)
    assert err.value.field == field and err.value.message


def test_required_tower_inputs_and_their_types():
    with pytest.raises(service.RequestError, match="required") as err:
        _parse({"instances": [{"history": []}]}, names=("history", "user_id"))
    assert err.value.field == "instances[0].user_id"
    with pytest.raises(service.RequestError, match="string or an integer"):
        _parse({"instances": [{"user_id": [1]}]}, names=("user_id",))


def test_an_oversized_body_is_refused_before_parsing():
    small = service.ServiceConfig(export_dir="x", max_body_bytes=20)
    with pytest.raises(service.RequestError, match="at most 20 bytes") as err:
        _parse({"instances": [{"history": ["a" * 30]}]}, config=small)
    assert err.value.field == "body"


def test_bad_service_settings_are_clear_errors():
    with pytest.raises(ValueError, match="`max_n` should be"):
        service.ServiceConfig(export_dir="x", max_n=0)
    with pytest.raises(ValueError, match="`default_n` should be <= max_n"):
        service.ServiceConfig(export_dir="x", default_n=20, max_n=10)


# ----------------------------------------------------------------------------- versions


def test_the_holder_loads_probes_and_swaps_versions(tmp_path):
    out = tmp_path / "export"
    _export(out, seed=0)
    seen = []
    holder = service.ModelHolder(str(out), on_change=lambda v: seen.append(v.version))
    assert holder.refresh() and holder.current.version == 1
    assert not holder.refresh()  # nothing new
    _export(out, seed=1)
    assert holder.refresh() and holder.current.version == 2 and seen == [1, 2]


def test_a_broken_version_is_refused_and_the_old_one_keeps_serving(tmp_path, caplog):
    out = tmp_path / "export"
    _export(out)
    refused = []
    holder = service.ModelHolder(str(out), on_refused=lambda v, e: refused.append(v))
    holder.refresh()
    manifest = json.loads((out / "export.json").read_text())
    manifest["version"] = 9
    manifest["user_tower"]["path"] = "user_tower/9"  # a version that is not there
    (out / "export.json").write_text(json.dumps(manifest))
    assert not holder.refresh()
    assert holder.current.version == 1 and refused == [9]
    assert "refusing export version 9" in caplog.text
    assert not holder.refresh() and refused == [9]  # not retried until export.json changes


def test_a_version_that_answers_wrongly_is_refused(tmp_path):
    out = tmp_path / "export"
    _export(out)
    manifest = json.loads((out / "export.json").read_text())
    manifest["embedding_dim"] = 16  # the tower gives 8
    (out / "export.json").write_text(json.dumps(manifest))
    holder = service.ModelHolder(str(out))
    assert not holder.refresh() and holder.current is None


# ----------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    def __init__(self, export_dir, log_path, *flags):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "w")  # noqa: SIM115  (closed in stop)
        self.proc = cli.start_python(
            "-m",
            "pipelines.serve",
            "--export-dir",
            export_dir,
            "--port",
            str(self.port),
            "--poll-seconds",
            "0.5",
            *flags,
            env=cli.environ(),
            log=self.log,
        )

    def wait_healthy(self, timeout=120.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, open(self.log_path).read()[-3000:]
            try:
                if httpx.get(self.url + "/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("the service did not become healthy: " + open(self.log_path).read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.log.close()


@pytest.fixture
def server(tmp_path, export_dir):
    import shutil

    local = tmp_path / "export"
    shutil.copytree(export_dir, local)
    running = _Server(str(local), str(tmp_path / "serve.log"), "--max-n", "300")
    try:
        running.wait_healthy()
        yield running
    finally:
        running.stop()


@pytest.mark.slow
def test_the_server_retrieves_excludes_and_refuses_bad_input(server, tmp_path):
    histories = [["i1", "i2"], [], ["unknown", "i9"]]
    reply = httpx.post(
        server.url + "/v1/retrieve",
        json={"instances": [{"history": h} for h in histories], "n": 10},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model_version"] == 1 and len(body["predictions"]) == 3
    retriever = Retriever(str(tmp_path / "export"))
    expected = retriever.retrieve(histories, 10, exclude=histories)
    for prediction, ids, scores in zip(
        body["predictions"], expected.ids, expected.scores, strict=True
    ):
        assert prediction["ids"] == [str(i) for i in ids]
        np.testing.assert_allclose(prediction["scores"], scores, rtol=1e-4)
        assert not set(prediction["ids"]) & {"i1", "i2", "i9"}
    # exclusions off: the history may come back
    kept = httpx.post(
        server.url + "/v1/retrieve",
        json={"instances": [{"history": ["i1"], "exclude": []}], "n": 300},
    ).json()
    assert "i1" in kept["predictions"][0]["ids"] and len(kept["predictions"][0]["ids"]) == 300
    # a client's mistakes are 400s with a JSON error naming the field
    for content, field in [
        (b"{nope", "body"),
        (json.dumps({"instances": [{"history": ["a"]}], "n": 301}).encode(), "n"),
        (json.dumps({"instances": [{"history": 3}]}).encode(), "instances[0].history"),
        (json.dumps({"n": 1}).encode(), "instances"),
        (b"x" * 1_000_001, "body"),
    ]:
        bad = httpx.post(server.url + "/v1/retrieve", content=content)
        assert bad.status_code == 400, (field, bad.text)
        assert bad.json()["error"]["field"] == field
    assert httpx.get(server.url + "/v1/retrieve").status_code == 405
    assert httpx.get(server.url + "/nothing").status_code == 404


@pytest.mark.slow
def test_health_and_metrics(server):
    health = httpx.get(server.url + "/v1/health").json()
    assert health == {
        "status": "ok",
        "model_version": 1,
        "catalog_size": 300,
        "embedding_dim": 8,
        "inputs": ["history"],
    }
    httpx.post(server.url + "/v1/retrieve", json={"instances": [{"history": ["i1"]}]})
    httpx.post(server.url + "/v1/retrieve", content=b"[")
    from prometheus_client.parser import text_string_to_metric_families

    families = {
        f.name: f for f in text_string_to_metric_families(httpx.get(server.url + "/metrics").text)
    }
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    ok = ("tfcro_requests_total", (("endpoint", "/v1/retrieve"), ("status", "200")))
    bad = ("tfcro_requests_total", (("endpoint", "/v1/retrieve"), ("status", "400")))
    assert samples[ok] == 1 and samples[bad] == 1
    assert samples[("tfcro_model_version", ())] == 1
    assert samples[("tfcro_catalog_size", ())] == 300
    assert "tfcro_request_seconds" in families


@pytest.mark.slow
def test_health_is_503_until_a_version_loads(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    running = _Server(str(empty), str(tmp_path / "serve.log"))
    try:
        deadline = time.time() + 120
        while True:
            try:
                reply = httpx.get(running.url + "/v1/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.time() < deadline and running.proc.poll() is None
                time.sleep(0.2)
        assert reply.status_code == 503 and reply.json()["error"]["field"] == "model"
        retrieve = httpx.post(running.url + "/v1/retrieve", json={"instances": [{}]})
        assert retrieve.status_code == 503
        _export(empty)  # the service picks the first export up
        running.wait_healthy()
    finally:
        running.stop()


@pytest.mark.slow
def test_a_swap_under_concurrent_requests_fails_none(server, tmp_path):
    failures, versions, stop = [], set(), threading.Event()

    def client():
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                reply = http.post(
                    server.url + "/v1/retrieve",
                    json={"instances": [{"history": ["i1", "i3"]}], "n": 20},
                )
                if reply.status_code != 200:
                    failures.append(reply.text)
                else:
                    versions.add(reply.json()["model_version"])

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    _export(tmp_path / "export", seed=5)  # version 2, written while requests run
    deadline = time.time() + 120
    while 2 not in versions and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    assert versions == {1, 2}
    # a broken next version is refused; version 2 keeps serving
    manifest = json.loads((tmp_path / "export" / "export.json").read_text())
    manifest.update(version=3, catalog_size=999)
    (tmp_path / "export" / "export.json").write_text(json.dumps(manifest))
    time.sleep(3.0)
    assert httpx.get(server.url + "/v1/health").json()["model_version"] == 2
    assert "refusing export version 3" in open(server.log_path).read()


@pytest.mark.slow
def test_sigterm_lets_the_server_finish_and_exit_cleanly(server):
    assert httpx.get(server.url + "/v1/health").status_code == 200
    server.proc.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal: the status says SIGTERM
    assert server.proc.wait(timeout=60) in (0, -signal.SIGTERM)
    log = open(server.log_path).read()
    assert "Shutting down" in log and "Finished server process" in log and "Traceback" not in log


# ----------------------------------------------------------------------------- pruning


def test_pruning_keeps_the_newest_and_the_version_a_service_holds(tmp_path):
    out = tmp_path / "export"
    _export(out)
    holder = service.ModelHolder(str(out))
    holder.refresh()  # serves version 1 and holds a lease on it
    _export(out, seed=1)
    result = export_model(
        *make_towers(num_items=300, dim=8, seed=2),
        str(out),
        config={},
        scale=10.0,
        num_neighbors=50,
        keep_versions=1,
    )
    assert result.version == 3
    assert versioning.list_versions(str(out / "user_tower")) == [1, 3]  # 2 pruned, 1 held
    assert versioning.list_versions(str(out / "scann")) == [1, 3]
    holder.stop()  # drops the lease
    assert versioning.held_versions(str(out)) == set()
    # after a swap, the version before stays leased too (requests in flight may use it)
    swapping = service.ModelHolder(str(out))
    swapping.refresh()  # version 3
    export_model(
        *make_towers(num_items=300, dim=8, seed=4), str(out), config={}, scale=10.0,
        num_neighbors=50,
    )  # fmt: skip
    swapping.refresh()
    assert versioning.held_versions(str(out)) == {3, 4}
    swapping.stop()
    assert versioning.prune_versions(str(out), 1, ["user_tower", "item_tower", "scann"]) == [1, 3]


def test_leases_of_dead_processes_and_stale_foreign_leases_do_not_hold(tmp_path):
    folder = tmp_path / versioning.LEASE_DIR
    folder.mkdir()
    here = versioning._host()
    dead = folder / f"{here}-999999999.json"
    dead.write_text(json.dumps({"version": 4, "host": here, "pid": 999999999}))
    fresh = folder / "other-host-12.json"
    fresh.write_text(json.dumps({"version": 5, "host": "other-host", "pid": 12}))
    stale = folder / "far-host-13.json"
    stale.write_text(json.dumps({"version": 6, "host": "far-host", "pid": 13}))
    old = time.time() - 2 * versioning.LEASE_TTL_SECONDS
    os.utime(stale, (old, old))
    (folder / "garbage.json").write_text("{")
    assert versioning.held_versions(str(tmp_path)) == {5}
    assert not dead.exists()  # a dead local process's lease is cleaned up
    versioning.write_lease(str(tmp_path), 7)
    versioning.write_lease(str(tmp_path), [8, 9], token="second")  # another holder
    assert versioning.held_versions(str(tmp_path)) == {5, 7, 8, 9}
    versioning.remove_lease(str(tmp_path))
    assert versioning.held_versions(str(tmp_path)) == {5, 8, 9}


def test_keep_versions_is_checked(tmp_path):
    with pytest.raises(ValueError, match="`keep_versions` should be"):
        export_model(
            *make_towers(num_items=20, dim=4), str(tmp_path), config={}, scale=1.0, keep_versions=0
        )


def test_items_of_another_version_with_the_same_ids_are_detected(tmp_path):
    out = tmp_path / "export"
    _export(out, seed=0)
    first_manifest = (out / "export.json").read_text()
    _export(out, seed=1)  # same catalog ids, other embeddings
    (out / "export.json").write_text(first_manifest)  # v1's manifest, v2's items.parquet
    with pytest.raises(RuntimeError, match="do not match its export.json"):
        Retriever(str(out), use_scann=False)
    holder = service.ModelHolder(str(out))
    assert not holder.refresh() and holder.current is None  # refused, not served wrongly


# ----------------------------------------------------------------------------- batching


def test_concurrent_requests_are_batched_with_the_same_answers(export_dir):
    import asyncio

    holder = service.ModelHolder(export_dir)
    holder.refresh()
    loaded = holder.current
    requests = [
        _parse({"instances": [{"history": ["i1", "i2"]}], "n": 5}),
        _parse({"instances": [{"history": ["i3"]}, {"history": []}], "n": 3}),
        _parse({"instances": [{"history": ["i4", "i5", "i6", "i7"], "exclude": []}], "n": 4}),
        _parse({"instances": [{"history": ["i9"]}], "n": 5}),
    ]
    sizes = []
    batcher = service.Batcher(max_users=3, on_batch=lambda r, u: sizes.append(u))

    async def run():
        answers = await asyncio.gather(*(batcher.submit(loaded, r) for r in requests))
        await batcher.close()
        return answers

    answers = asyncio.run(run())
    for request, answer in zip(requests, answers, strict=True):
        alone = service.retrieve(loaded, *request)  # the same items, scores up to rounding
        assert answer["model_version"] == alone["model_version"]
        for got, want in zip(answer["predictions"], alone["predictions"], strict=True):
            assert got["ids"] == want["ids"]
            np.testing.assert_allclose(got["scores"], want["scores"], rtol=1e-5)
    assert batcher.batches < len(requests) and max(sizes) <= 3 and sum(sizes) == 5


def test_a_failing_batch_fails_its_requests_only():
    import asyncio

    class Broken:
        version = 1

        class retriever:  # noqa: N801  (a stand-in attribute)
            @staticmethod
            def retrieve(*args, **kwargs):
                raise RuntimeError("search failed")

    batcher = service.Batcher()

    async def run():
        try:
            with pytest.raises(RuntimeError, match="search failed"):
                await batcher.submit(Broken, _parse({"instances": [{"history": ["a"]}]}))
        finally:
            await batcher.close()

    asyncio.run(run())


def test_the_batcher_works_on_a_new_event_loop(export_dir):
    import asyncio

    holder = service.ModelHolder(export_dir)
    holder.refresh()
    batcher = service.Batcher()
    request = _parse({"instances": [{"history": ["i1"]}], "n": 3})
    for _ in range(2):  # e.g. an app restarted in the same process

        async def once():
            return await asyncio.wait_for(batcher.submit(holder.current, request), 30)

        assert asyncio.run(once())["predictions"][0]["ids"]
