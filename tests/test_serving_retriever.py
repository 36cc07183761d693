"""Retriever (in-process, REST and gRPC encoders), exclusions, TF Serving request formats."""

from __future__ import annotations

import http.server
import json
import threading

import numpy as np
import pytest

from tests.test_serving_support import make_towers
from tfcro._compat import tf
from tfcro.serving import (
    RestUserEncoder,
    Retriever,
    exact_top_k,
    export_model,
    grpc_predict_request,
    pad_histories,
    read_items,
    rest_predict_body,
    rest_predict_url,
)
from tfcro.serving.tf_serving import parse_rest_outputs

HISTORIES = [["i1", "i2", "i3"], ["i5"], [], ["unknown", "i7"]]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    user_tower, item_tower, items = make_towers(num_items=800, dim=8, seed=3)
    out = tmp_path_factory.mktemp("retriever") / "run"
    export_model(
        user_tower,
        item_tower,
        items,
        str(out),
        config={},
        scale=10.0,
        num_neighbors=50,
        scann_params={"algorithm": "tree_ah", "num_leaves": 16, "num_leaves_to_search": 16},
    )
    return str(out), user_tower


def _exact(export_dir, user_tower, histories, n, exclude=None):
    ids, emb = read_items(f"{export_dir}/items.parquet")
    users = user_tower({"history": tf.constant(pad_histories(histories).astype(str))}).numpy()
    rows, scores = exact_top_k(users, emb, len(ids))
    out = []
    for b in range(len(histories)):
        banned = set(exclude[b]) if exclude else set()
        out.append(
            [
                (ids[r], 10.0 * s)
                for r, s in zip(rows[b], scores[b], strict=True)
                if ids[r] not in banned
            ][:n]
        )
    return out


def test_pad_histories():
    padded = pad_histories([["a", "b"], [], [3]])
    assert padded.tolist() == [["a", "b"], ["", ""], ["3", ""]]
    assert pad_histories([["a", "b", "c"]], length=2).tolist() == [["b", "c"]]
    assert pad_histories([[]]).shape == (1, 1)


@pytest.mark.parametrize("use_scann", [False, True])
def test_top_n_matches_exact_search_and_honours_exclusions(export, use_scann):
    export_dir, user_tower = export
    retriever = Retriever(export_dir, use_scann=use_scann)
    assert retriever.uses_scann is use_scann
    exclude = [["i1", "i2", "i3"], [], ["i0"], ["not-in-catalog"]]
    # Exclude each user's exact top-5 as well: the filter must over-fetch.
    exact_all = _exact(export_dir, user_tower, HISTORIES, 5)
    exclude = [e + [i for i, _ in top] for e, top in zip(exclude, exact_all, strict=True)]
    result = retriever.retrieve(HISTORIES, n=10, exclude=exclude)
    assert result.ids.shape == (4, 10) and result.scores.shape == (4, 10)
    expected = _exact(export_dir, user_tower, HISTORIES, 10, exclude)
    for b, row in enumerate(result.rows()):
        assert len(row) == 10
        assert not set(i for i, _ in row) & set(exclude[b])
        got, want = [i for i, _ in row], [i for i, _ in expected[b]]
        assert len(set(got) & set(want)) >= (10 if not use_scann else 9)
        assert np.all(np.diff([s for _, s in row]) <= 1e-5)  # sorted by score
    if not use_scann:
        np.testing.assert_allclose(
            result.scores, [[s for _, s in r] for r in expected], rtol=1e-4, atol=1e-4
        )


def test_excluding_almost_everything_returns_what_is_left(export):
    export_dir, _ = export
    retriever = Retriever(export_dir, use_scann=True)
    everything_but_three = [f"i{k}" for k in range(3, 800)]
    result = retriever.retrieve([["i1"]], n=5, exclude=[everything_but_three])
    assert sorted(result.ids[0][:3]) == ["i0", "i1", "i2"]
    assert result.ids[0][3:].tolist() == ["", ""] and np.isnan(result.scores[0][3:]).all()


def test_retriever_validates_arguments(export):
    export_dir, _ = export
    retriever = Retriever(export_dir)
    assert not retriever.uses_scann  # 800 items: brute force by default
    with pytest.raises(ValueError, match="`n` should be an integer >= 1"):
        retriever.retrieve(HISTORIES, n=0)
    with pytest.raises(ValueError, match="`exclude` should have one collection per user"):
        retriever.retrieve(HISTORIES, n=3, exclude=[[]])
    with pytest.raises(FileNotFoundError, match="export.json"):
        Retriever("/nonexistent")


# -------------------------------------------------------------------------------- REST


class _FakeTFServing(http.server.BaseHTTPRequestHandler):
    """Checks a TF Serving REST predict request and answers with the in-memory tower."""

    tower = None
    seen: list = []

    def do_POST(self):  # noqa: N802  (http.server API)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.path, self.headers["Content-Type"], body))
        history = tf.constant(body["inputs"]["history"], tf.string)
        embedding = self.tower({"history": history}).numpy().tolist()
        payload = json.dumps({"outputs": {"embedding": embedding}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_rest_request_body_and_url_follow_the_tf_serving_format():
    body = rest_predict_body({"history": np.asarray([["a", ""], [b"c", "d"]], dtype=object)})
    assert body == {
        "signature_name": "serving_default",
        "inputs": {"history": [["a", ""], ["c", "d"]]},
    }
    assert (
        rest_predict_url("http://h:8501/", "user_tower")
        == "http://h:8501/v1/models/user_tower:predict"
    )
    assert (
        rest_predict_url("http://h:8501", "m", version=3)
        == "http://h:8501/v1/models/m/versions/3:predict"
    )
    np.testing.assert_array_equal(parse_rest_outputs({"outputs": [[1.0, 2.0]]}), [[1.0, 2.0]])
    with pytest.raises(RuntimeError, match="boom"):
        parse_rest_outputs({"error": "boom"})
    with pytest.raises(ValueError, match="base_url"):
        RestUserEncoder("localhost:8501")


def test_retriever_through_a_rest_endpoint(export):
    export_dir, user_tower = export
    _FakeTFServing.tower = user_tower
    _FakeTFServing.seen = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _FakeTFServing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        retriever = Retriever(export_dir, encoder=RestUserEncoder(url, "user_tower"))
        via_rest = retriever.retrieve(HISTORIES, n=5)
    finally:
        server.shutdown()
        server.server_close()
    in_process = Retriever(export_dir).retrieve(HISTORIES, n=5)
    np.testing.assert_array_equal(via_rest.ids, in_process.ids)
    path, content_type, body = _FakeTFServing.seen[0]
    assert path == "/v1/models/user_tower:predict" and content_type == "application/json"
    assert body == {
        "signature_name": "serving_default",
        "inputs": {"history": pad_histories(HISTORIES).tolist()},
    }


# -------------------------------------------------------------------------------- gRPC


def test_grpc_predict_request_follows_the_tf_serving_proto():
    pytest.importorskip(
        "tensorflow_serving.apis.predict_pb2", reason="tensorflow-serving-api is not installed"
    )
    request = grpc_predict_request(
        {"history": pad_histories([["a", "b"], ["c"]])}, "user_tower", version=2
    )
    assert request.DESCRIPTOR.full_name == "tensorflow.serving.PredictRequest"
    assert request.model_spec.name == "user_tower"
    assert request.model_spec.signature_name == "serving_default"
    assert request.model_spec.version.value == 2
    tensor = request.inputs["history"]
    assert tensor.dtype == tf.string.as_datatype_enum
    assert [d.size for d in tensor.tensor_shape.dim] == [2, 2]
    assert tf.make_ndarray(tensor).tolist() == [[b"a", b"b"], [b"c", b""]]


def test_retriever_through_a_grpc_endpoint(export):
    pytest.importorskip(
        "tensorflow_serving.apis.prediction_service_pb2_grpc",
        reason="tensorflow-serving-api is not installed",
    )
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tfcro.serving import GrpcUserEncoder

    export_dir, user_tower = export
    seen = []

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):  # noqa: N802  (gRPC API)
            seen.append(request)
            history = tf.make_ndarray(request.inputs["history"])
            response = predict_pb2.PredictResponse()
            response.model_spec.CopyFrom(request.model_spec)
            embedding = user_tower({"history": tf.constant(history)}).numpy()
            response.outputs["embedding"].CopyFrom(tf.make_tensor_proto(embedding))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        encoder = GrpcUserEncoder(f"127.0.0.1:{port}", "user_tower")
        via_grpc = Retriever(export_dir, encoder=encoder).retrieve(HISTORIES, n=5)
    finally:
        server.stop(None)
    np.testing.assert_array_equal(via_grpc.ids, Retriever(export_dir).retrieve(HISTORIES, n=5).ids)
    assert seen[0].model_spec.name == "user_tower"
    assert seen[0].model_spec.signature_name == "serving_default"
