"""The Open Inference Protocol v2 (KServe, Triton, Seldon, OpenVINO): requests in, answers out.

Pure functions, no web framework: :func:`parse_infer` turns a request body into a batch of model
input (or a :class:`ProtocolError`), :func:`infer_response` turns probabilities into the answer.
Tensors travel as JSON (``data``: the values flattened in row-major order) or, with the binary
tensor extension that Triton's client uses by default, as raw bytes after a JSON header whose
length the ``Inference-Header-Content-Length`` header gives.

The model is ``fmnist``: input ``pixels``, UINT8 ``[N, 28, 28, 1]`` of already-preprocessed
pixels (what :func:`edge_runtime.preprocess.model_input` makes); output ``probabilities``, FP32
``[N, 10]``. Its version is the first 12 hex digits of the serving model's SHA-256, so a swap
(the model-repository extension's ``load``, as Triton spells it) shows as a new version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_runtime import CLASS_NAMES, IMAGE_SIZE
from edge_runtime.json_input import JsonInputError, parse_json
from edge_runtime.serve.security import whole_number

MODEL = "fmnist"
HEALTH_PATHS = frozenset(
    {
        "/v2/health/live",
        "/v2/health/ready",
        # The protocol counts model readiness among the health calls, which probes make tokenless.
        f"/v2/models/{MODEL}/ready",
        f"/v2/models/{MODEL}/versions/{{version}}/ready",
    }
)
INPUT = "pixels"
OUTPUT = "probabilities"
HEADER_LENGTH = "inference-header-content-length"
MAX_IMAGES = 1024
"""Images per request; more would hold the event loop for too long."""
IMAGE_VALUES = IMAGE_SIZE * IMAGE_SIZE


class ProtocolError(ValueError):
    """A request the protocol (or this model) does not accept. ``str()`` is one line."""


@dataclass(frozen=True)
class InferRequest:
    """A parsed infer request.

    Attributes:
        id: The request's ``id``, echoed in the answer.
        images: uint8 (N, 28, 28, 1) model input.
        binary_output: Answer with the binary tensor extension.
    """

    id: str | None
    images: np.ndarray
    binary_output: bool


def server_metadata(version: str) -> dict[str, Any]:
    """``GET /v2``."""
    return {
        "name": "fmnist-edge",
        "version": version,
        "extensions": ["binary_tensor_data", "model_repository"],
    }


def model_metadata(platform: str, version: str) -> dict[str, Any]:
    """``GET /v2/models/fmnist``: ``version`` is the serving model's."""
    return {
        "name": MODEL,
        "versions": [version],
        "platform": platform,
        "inputs": [{"name": INPUT, "datatype": "UINT8", "shape": [-1, IMAGE_SIZE, IMAGE_SIZE, 1]}],
        "outputs": [{"name": OUTPUT, "datatype": "FP32", "shape": [-1, len(CLASS_NAMES)]}],
    }


def _split(body: bytes, header_length: str | None) -> tuple[dict[str, Any], bytes]:
    """The JSON header and the binary section of a request body."""
    if header_length is None:
        header, binary = body, b""
    else:
        length = whole_number(header_length)
        if length is None or length > len(body):
            raise ProtocolError(f"invalid Inference-Header-Content-Length {header_length!r}")
        header, binary = body[:length], body[length:]
    try:
        request = parse_json(header)
    except JsonInputError as e:
        raise ProtocolError(f"the request is not JSON this server reads ({e})") from None
    if not isinstance(request, dict):
        raise ProtocolError("the request must be a JSON object")
    return request, binary


def _shape(spec: dict[str, Any]) -> tuple[int, ...]:
    shape = spec.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 4
        or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
        or tuple(shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE, 1)
        or not 1 <= shape[0] <= MAX_IMAGES
    ):
        raise ProtocolError(
            f"input {INPUT!r} must have shape [N, {IMAGE_SIZE}, {IMAGE_SIZE}, 1] with "
            f"1 ≤ N ≤ {MAX_IMAGES}, got {shape!r}"
        )
    return tuple(shape)


def _values(spec: dict[str, Any], binary: bytes, size: int) -> np.ndarray:
    """The input's values, from JSON ``data`` or from the binary section."""
    parameters = spec.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ProtocolError("input parameters must be a JSON object")
    if "binary_data_size" in parameters:
        declared = parameters["binary_data_size"]
        if declared != size or len(binary) != size:
            raise ProtocolError(
                f"binary data of {INPUT!r} must be {size:,} bytes (N×784 uint8), "
                f"got {declared!r} declared and {len(binary):,} sent"
            )
        return np.frombuffer(binary, np.uint8)
    data = spec.get("data")
    if not isinstance(data, list):
        raise ProtocolError(f"input {INPUT!r} needs a 'data' list (or binary data)")
    try:
        values = np.asarray(data)
    except (ValueError, OverflowError) as e:
        raise ProtocolError(f"'data' is not a regular array of numbers ({e})") from None
    if values.dtype.kind not in "iu" or values.size != size:
        raise ProtocolError(
            f"'data' must hold {size:,} integers (N×784, row-major), got {values.size:,} "
            f"values of type {values.dtype.name}"
        )
    if values.min() < 0 or values.max() > 255:
        raise ProtocolError("UINT8 values must lie in 0..255")
    return values.reshape(-1).astype(np.uint8)


def _wants_binary(request: dict[str, Any]) -> bool:
    outputs = request.get("outputs")
    if outputs is None:
        parameters = request.get("parameters") or {}
        return isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise ProtocolError("'outputs' must be a list of objects")
    names = [o.get("name") for o in outputs]
    if names and names != [OUTPUT]:
        raise ProtocolError(f"this model has one output, {OUTPUT!r}; asked for {names!r}")
    parameters = [o.get("parameters") or {} for o in outputs]
    if not all(isinstance(p, dict) for p in parameters):
        raise ProtocolError("output parameters must be JSON objects")
    return any(p.get("binary_data") is True for p in parameters)


def parse_infer(body: bytes, header_length: str | None) -> InferRequest:
    """Parse ``POST /v2/models/fmnist/infer``.

    Args:
        body: The request body.
        header_length: The ``Inference-Header-Content-Length`` header, when the client used the
            binary tensor extension.

    Raises:
        ProtocolError: Anything the protocol or the model does not accept, as one line.
    """
    request, binary = _split(body, header_length)
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ProtocolError(f"'inputs' must be a list holding one tensor, {INPUT!r}")
    spec = inputs[0]
    if spec.get("name") != INPUT:
        raise ProtocolError(f"the input is named {INPUT!r}, not {spec.get('name')!r}")
    if spec.get("datatype") != "UINT8":
        raise ProtocolError(f"input {INPUT!r} must be UINT8, got {spec.get('datatype')!r}")
    shape = _shape(spec)
    values = _values(spec, binary, shape[0] * IMAGE_VALUES)
    request_id = request.get("id")
    return InferRequest(
        id=request_id if isinstance(request_id, str) else None,
        images=values.reshape(shape),
        binary_output=_wants_binary(request),
    )


def repository_index(version: str) -> list[dict[str, str]]:
    """``POST /v2/repository/index``: the one model, ready."""
    return [{"name": MODEL, "version": version, "state": "READY", "reason": ""}]


def infer_response(
    request: InferRequest, probs: np.ndarray, *, version: str
) -> tuple[bytes, dict[str, str]]:
    """The answer to ``request`` by model ``version``: ``(body, headers)``, JSON or binary as
    the client asked."""
    output: dict[str, Any] = {"name": OUTPUT, "datatype": "FP32", "shape": list(probs.shape)}
    answer: dict[str, Any] = {"model_name": MODEL, "model_version": version, "outputs": [output]}
    if request.id is not None:
        answer["id"] = request.id
    if not request.binary_output:
        output["data"] = [round(float(p), 6) for p in probs.reshape(-1)]
        return json.dumps(answer).encode(), {"content-type": "application/json"}
    data = np.ascontiguousarray(probs, dtype="<f4").tobytes()
    output["parameters"] = {"binary_data_size": len(data)}
    header = json.dumps(answer).encode()
    return header + data, {
        "content-type": "application/octet-stream",
        HEADER_LENGTH: str(len(header)),
    }
