"""Clients for a TF Serving model server: REST (plain ``urllib``) and gRPC.

Both call the ``Predict`` API of the exported ``user_tower`` and return the
``embedding`` output as a ``[B, D]`` float32 array.

- REST (columnar format of the TF Serving REST API)::

    POST http://HOST:8501/v1/models/<name>[/versions/<v>]:predict
    {"signature_name": "serving_default", "inputs": {"history": [["12", "7"], ["3", ""]]}}
    -> {"outputs": {"embedding": [[...], [...]]}}   (or {"outputs": [[...]]} for one output)

- gRPC: ``tensorflow.serving.PredictionService/Predict`` with a
  ``PredictRequest`` (``model_spec.name``, ``model_spec.signature_name``,
  ``inputs[name]`` = ``TensorProto``), port 8500 by default. Needs the
  ``tensorflow-serving-api`` package (``pip install tfcro[serving]``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

import numpy as np

from tfcro.serving.signatures import EMBEDDING

_GRPC_HINT = (
    "gRPC needs the tensorflow-serving-api package matching TensorFlow 2.20: "
    "pip install tensorflow-serving-api==2.20.0 (or pip install 'tfcro[serving]'). "
    "Without it, use the REST client (RestUserEncoder)."
)


def _to_list(value: Any) -> Any:
    array = np.asarray(value)
    if array.dtype.kind in ("S", "O", "U"):
        return (
            np.vectorize(
                lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v), otypes=[object]
            )(array).tolist()
            if array.size
            else array.tolist()
        )
    return array.tolist()


def rest_predict_body(
    inputs: Mapping[str, Any], signature_name: str = "serving_default"
) -> dict[str, Any]:
    """The JSON body of a TF Serving REST ``:predict`` request in the columnar ("inputs") format."""
    return {"signature_name": signature_name, "inputs": {k: _to_list(v) for k, v in inputs.items()}}


def rest_predict_url(base_url: str, model_name: str, version: int | None = None) -> str:
    """``<base_url>/v1/models/<model_name>[/versions/<version>]:predict``."""
    url = f"{base_url.rstrip('/')}/v1/models/{model_name}"
    if version is not None:
        url += f"/versions/{int(version)}"
    return url + ":predict"


def parse_rest_outputs(response: Mapping[str, Any], output_key: str = EMBEDDING) -> np.ndarray:
    """The ``output_key`` tensor of a columnar REST response as float32.

    TF Serving omits the output name when the signature has a single output
    (``{"outputs": [[...]]}``); both forms are accepted.
    """
    if "error" in response:
        raise RuntimeError(f"TF Serving returned an error: {response['error']}")
    if "outputs" not in response:
        raise ValueError(
            "TF Serving response should have an 'outputs' key (columnar format). "
            f"Received keys: {sorted(response)}"
        )
    outputs = response["outputs"]
    if isinstance(outputs, Mapping):
        if output_key not in outputs:
            raise ValueError(
                f"TF Serving response has no output {output_key!r}. Received: {sorted(outputs)}"
            )
        outputs = outputs[output_key]
    return np.asarray(outputs, dtype=np.float32)


class RestUserEncoder:
    """Embeds users through TF Serving's REST API (no dependency beyond the standard library).

    Example:
      >>> encoder = RestUserEncoder("http://localhost:8501", "user_tower")
      >>> encoder({"history": [["12", "7"], ["3", ""]]}).shape
      (2, 64)
    """

    def __init__(
        self,
        base_url: str,
        model_name: str = "user_tower",
        *,
        version: int | None = None,
        signature_name: str = "serving_default",
        timeout: float = 10.0,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"`base_url` should start with http:// or https://. Received: base_url={base_url!r}"
            )
        self.url = rest_predict_url(base_url, model_name, version)
        self.signature_name = signature_name
        self.timeout = timeout

    def __call__(self, inputs: Mapping[str, Any]) -> np.ndarray:
        body = json.dumps(rest_predict_body(inputs, self.signature_name)).encode("utf-8")
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")
            raise RuntimeError(f"TF Serving REST {self.url} failed ({err.code}): {detail}") from err
        return parse_rest_outputs(payload)


def import_serving_api():
    """Imports ``predict_pb2`` and ``prediction_service_pb2_grpc``, or says what to install."""
    try:
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError as err:
        raise ImportError(f"{_GRPC_HINT} ({err})") from err
    return predict_pb2, prediction_service_pb2_grpc


def grpc_predict_request(
    inputs: Mapping[str, Any],
    model_name: str = "user_tower",
    *,
    signature_name: str = "serving_default",
    version: int | None = None,
):
    """A ``tensorflow.serving.PredictRequest`` proto for the given raw inputs."""
    import tensorflow as tf

    predict_pb2, _ = import_serving_api()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, value in inputs.items():
        array = np.asarray(value)
        if array.dtype.kind in ("U", "O"):
            array = (
                np.vectorize(
                    lambda v: v if isinstance(v, bytes) else str(v).encode("utf-8"), otypes=[object]
                )(array)
                if array.size
                else array.astype(object)
            )
            tensor = tf.make_tensor_proto(array, dtype=tf.string, shape=array.shape)
        else:
            tensor = tf.make_tensor_proto(array)
        request.inputs[name].CopyFrom(tensor)
    return request


class GrpcUserEncoder:
    """Embeds users through TF Serving's gRPC ``PredictionService`` (port 8500 by default)."""

    def __init__(
        self,
        target: str,
        model_name: str = "user_tower",
        *,
        version: int | None = None,
        signature_name: str = "serving_default",
        timeout: float = 10.0,
        channel: Any = None,
    ):
        _, prediction_service_pb2_grpc = import_serving_api()
        import grpc

        self.model_name = model_name
        self.version = version
        self.signature_name = signature_name
        self.timeout = timeout
        self.channel = channel or grpc.insecure_channel(target)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def __call__(self, inputs: Mapping[str, Any]) -> np.ndarray:
        import tensorflow as tf

        request = grpc_predict_request(
            inputs, self.model_name, signature_name=self.signature_name, version=self.version
        )
        response = self.stub.Predict(request, timeout=self.timeout)
        if EMBEDDING not in response.outputs:
            raise ValueError(
                f"TF Serving response has no output {EMBEDDING!r}. "
                f"Received: {sorted(response.outputs)}"
            )
        return np.asarray(tf.make_ndarray(response.outputs[EMBEDDING]), np.float32)
