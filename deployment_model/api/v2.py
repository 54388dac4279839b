"""The Open Inference Protocol (KServe v2) over REST, as an adapter in front of the /predict operation.

Clients written for KServe, Triton, MLServer or Seldon (e.g. `tritonclient.http`) call this service unchanged.
An inference request is translated into a PredictRequest and answered by the very function that answers
POST /predict: the same validation, row limit, warm model cache and metrics. Its answer is translated back into
output tensors. Errors are the protocol's `{"error": "<message>"}` with the status /predict would give, worded
in the protocol's terms (`inputs[0].data` rather than `x_test`).

Tensors are JSON only: the binary tensor extension is not implemented (a request that carries binary input is
refused with a 400 that says so; a request for binary outputs is answered in JSON, which clients accept).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from http import HTTPStatus
from typing import Annotated, Any, Literal, NotRequired

import orjson
from aws_lambda_powertools.event_handler import Response, content_types
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, with_config
from typing_extensions import TypedDict

from deployment_model.api.events import plain_body
from deployment_model.api.schemas import (
    MAX_FEATURES_PER_ROW,
    MAX_ROWS_PER_REQUEST,
    PredictRequest,
    ResponseModel,
    TooManyRowsError,
)
from deployment_model.api.service import (
    SERVICE_NAME,
    Answer,
    ApiError,
)
from deployment_model.ml.onnx_model import OnnxModel

SERVER_VERSION = "1.0.0"  # the package's version (pyproject.toml); a test keeps them equal
PLATFORM = "onnxruntime_onnx"  # what Triton calls a model served by onnxruntime (exported from scikit-learn)
INPUT_NAME = "input-0"  # what metadata calls the one input; a request may name it as it likes
LABEL, CLASS_INDEX, PROBABILITIES = "label", "class_index", "probabilities"
BINARY_HEADER = "inference-header-content-length"  # the binary tensor extension's marker
# Header names, one a line, are searched for it in one pass (a name holds no line break; any case matches).
_BINARY_LINE = f"\n{BINARY_HEADER}\n"

PredictFunction = Callable[[PredictRequest], dict[str, Any]]
LoadFunction = Callable[[str, str | None], OnnxModel]

# /predict's vocabulary in messages, and the protocol's words for the same things.
_TERMS = (("x_test", "inputs[0].data"), ("filename_model", "model name"), ("model_version", "model version"))

Parameters = dict[Annotated[str, Field(max_length=256)], str | int | float | bool | None]


# The request is read into plain dicts, not model instances: it is validated as strictly, in half the time.
# Its validator is built at the first infer, not at every cold start (most of which answer /predict).
_STRICT = ConfigDict(extra="forbid", defer_build=True)


@with_config(_STRICT)
class RequestInput(TypedDict):
    name: Annotated[str, Field(max_length=256, description=f"Any name (metadata calls it {INPUT_NAME}).")]
    shape: Annotated[
        list[Annotated[int, Field(ge=0, strict=True)]],
        Field(min_length=2, max_length=2, description="[rows, features]."),
    ]
    datatype: Annotated[Literal["FP64", "FP32"], Field(description="FP64; FP32 is accepted (JSON numbers either way).")]
    parameters: NotRequired[Parameters | None]
    data: Annotated[list[Any], Field(description="Row-major numbers: flat [f1, f2, ...] or nested [[f1, f2], ...].")]


@with_config(_STRICT)
class RequestOutput(TypedDict):
    name: Literal["label", "class_index", "probabilities"]
    parameters: NotRequired[Parameters | None]


@with_config(_STRICT)
class InferRequest(TypedDict):
    id: NotRequired[Annotated[str | None, Field(max_length=256, description="Echoed in the response.")]]
    parameters: NotRequired[Parameters | None]
    inputs: Annotated[list[RequestInput], Field(min_length=1, max_length=1, description="Exactly one input tensor.")]
    outputs: NotRequired[
        Annotated[list[RequestOutput] | None, Field(description="A subset of the outputs; omitted: all.")]
    ]


_INFER_REQUEST = TypeAdapter(InferRequest)


class Tensor(ResponseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any]


class InferResponse(ResponseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[Tensor]


class TensorMetadata(ResponseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(ResponseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ServerMetadata(ResponseModel):
    name: str
    version: str
    extensions: list[str]


class ServerLive(ResponseModel):
    live: bool


class ServerReady(ResponseModel):
    ready: bool


class ModelReady(ResponseModel):
    name: str
    ready: bool


class V2Error(ResponseModel):
    error: str = Field(description="What is wrong, naming the field or resource.")


_ERROR_DESCRIPTIONS = {
    400: "Malformed request: the message names the field and what was expected.",
    404: "Unknown model or version.",
    409: "The stored version cannot be served (failed integrity check or other library versions).",
    413: "Too many rows in one request.",
    503: "Storage unreachable; retry after Retry-After seconds.",
}


def route_docs(summary: str, success: type[BaseModel], *errors: int) -> dict[str, Any]:
    """The OpenAPI description of a v2 route: its success model and its errors, all shaped as V2Error. Every
    route may answer 400: a request the server cannot read (a malformed header, say) is refused on any route."""
    responses: dict[int, dict[str, Any]] = {
        200: {"description": summary, "content": {"application/json": {"model": success}}}
    }
    for status in sorted({400, *errors}):
        responses[status] = {
            "description": _ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"model": V2Error}},
        }
    return {"summary": summary, "responses": responses, "tags": ["Open Inference Protocol (v2)"]}


def infer_docs(summary: str) -> dict[str, Any]:
    """An infer route's docs: the request body is read by the adapter, so it is declared here for the document
    (as a function: its JSON schema is built when the document is generated, not at every cold start)."""
    docs = route_docs(summary, InferResponse, 400, 404, 409, 413, 503)
    return {**docs, "openapi_extensions": {"requestBody": infer_request_body}}


@cache
def infer_request_body() -> dict[str, Any]:
    """The OpenAPI request body of the infer routes: the inference request's schema, and an example."""
    example = {
        "id": "42",
        "inputs": [{"name": INPUT_NAME, "shape": [2, 2], "datatype": "FP64", "data": [0.7, 1, 2, 5.5]}],
    }
    content = {"application/json": {"schema": inline_schema(_INFER_REQUEST.json_schema()), "example": example}}
    return {"required": True, "content": content}


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its $defs substituted, so it stands alone inside the OpenAPI document."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return resolve(schema)


class OpenInferenceProtocol:
    """The v2 operations. Each returns a Response; a failure raises, and the app answers it with the status
    /predict would give, in the protocol's shape (ServiceApp.error_shapes["/v2"], protocol_error)."""

    def __init__(self, predict: PredictFunction, load: LoadFunction) -> None:
        self._predict = predict
        self._load = load

    def server_live(self) -> Response[str]:
        return _json(200, {"live": True})

    def server_ready(self) -> Response[str]:
        """Ready once initialised: a model's own readiness (it loads) is asked at /v2/models/<name>/ready."""
        return _json(200, {"ready": True})

    def server_metadata(self) -> Response[str]:
        return _json(200, {"name": SERVICE_NAME, "version": SERVER_VERSION, "extensions": []})

    def model_metadata(self, name: str, version: str | None = None) -> Response[str]:
        return _json(200, self._metadata(name, version))

    def model_ready(self, name: str, version: str | None = None) -> Response[str]:
        self._load(name, version)
        return _json(200, {"name": name, "ready": True})

    def infer(self, event: Mapping[str, Any], name: str, version: str | None = None) -> Response[str]:
        """Answer an inference request: `event` is the API Gateway event as sent (its headers and body are read)."""
        return _json(200, self._infer(event, name, version))

    def _metadata(self, name: str, version: str | None) -> dict[str, Any]:
        loaded = self._load(name, version)
        outputs = [
            {"name": LABEL, "datatype": "BYTES", "shape": [-1]},
            {"name": CLASS_INDEX, "datatype": "INT64", "shape": [-1]},
        ]
        if loaded.has_probabilities:
            outputs.append({"name": PROBABILITIES, "datatype": "FP64", "shape": [-1, len(loaded.labels)]})
        return {
            "name": loaded.name,
            "versions": [loaded.version],
            "platform": PLATFORM,
            "inputs": [{"name": INPUT_NAME, "datatype": "FP64", "shape": [-1, len(loaded.feature_names)]}],
            "outputs": outputs,
        }

    def _infer(self, event: Mapping[str, Any], name: str, version: str | None) -> dict[str, Any]:
        request = _parse_request(event)
        tensor = request["inputs"][0]
        predict_request = PredictRequest.model_validate(
            {"x_test": _rows(tensor), "filename_model": name, "model_version": version}
        )
        answer = self._predict(predict_request)
        response = {
            "model_name": answer["model_name"],
            "model_version": answer["model_version"],
            "outputs": _outputs(answer, request.get("outputs")),
        }
        if request.get("id") is not None:
            response["id"] = request["id"]
        return response


def _parse_request(event: Mapping[str, Any]) -> InferRequest:
    """The inference request object, read with /predict's body checks (missing, base64, 6 MB) and validated."""
    headers = event.get("headers")
    names = "\n".join(map(str, headers)).lower() if isinstance(headers, dict) else ""
    if _BINARY_LINE in f"\n{names}\n":
        raise _bad_request(
            "binary tensor data is not supported: send tensors as JSON "
            "(tritonclient: set_data_from_numpy(..., binary_data=False))"
        )
    try:
        body = orjson.loads(plain_body(event))
    except orjson.JSONDecodeError as exc:
        raise _bad_request(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _bad_request("request body must be a JSON object: an inference request with inputs")
    request = _INFER_REQUEST.validate_python(body)
    if "binary_data_size" in (request["inputs"][0].get("parameters") or {}):
        raise _bad_request("inputs[0]: binary tensor data is not supported; send its values in data")
    return request


def _rows(tensor: RequestInput) -> list[Any]:
    """The input tensor as a list of rows for x_test, after checking that data matches the declared shape."""
    rows, width = shape = tensor["shape"]
    if rows > MAX_ROWS_PER_REQUEST:
        raise TooManyRowsError(rows)
    if width > MAX_FEATURES_PER_ROW:
        raise _bad_request(f"inputs[0].shape: rows may have at most {MAX_FEATURES_PER_ROW} features; got {width}")
    data = tensor["data"]
    if data and isinstance(data[0], list):  # the natural (nested) representation
        if len(data) != rows or any(len(row) != width for row in data if isinstance(row, list)):
            raise _bad_request(f"inputs[0].data does not have the shape {shape} it declares")
        return data
    if len(data) != rows * width:
        raise _bad_request(
            f"inputs[0].data has {len(data)} values; shape {shape} declares {rows * width} (rows x features)"
        )
    if rows == 1:
        return [data]
    return [data[start : start + width] for start in range(0, len(data), width)] if width else [[]] * rows


def _outputs(answer: dict[str, Any], requested: list[RequestOutput] | None) -> list[dict[str, Any]]:
    """/predict's answer as output tensors: the requested ones in their order (each once), or all it has.

    Its values (numpy arrays, a list of labels) are passed on as they are: orjson serializes them in one pass."""
    rows = answer["rows"]
    available = {
        LABEL: ("BYTES", [rows], answer["result"]),
        CLASS_INDEX: ("INT64", [rows], answer["prediction"]),
    }
    probabilities = answer["probabilities"]
    if probabilities is not None:
        available[PROBABILITIES] = ("FP64", list(probabilities.shape), probabilities.ravel())
    names = list(dict.fromkeys(output["name"] for output in requested)) if requested else available
    outputs = []
    for output in names:
        if output not in available:
            raise _bad_request(
                f"output {output!r}: model {answer['model_name']!r} has no probabilities (its estimator gives "
                f"labels only); request {', '.join(available)}"
            )
        datatype, shape, data = available[output]
        outputs.append({"name": output, "datatype": datatype, "shape": shape, "data": data})
    return outputs


def _bad_request(message: str) -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, "invalid_request", message)


def protocol_error(answer: Answer) -> Answer:
    """One of the service's error answers in the protocol's shape, `{"error": "<message>"}`, in its terms."""
    status, body, headers = answer
    message = body["message"]
    for ours, theirs in _TERMS:
        message = message.replace(ours, theirs)
    return status, {"error": message}, headers


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[str]:
    """A JSON response serialized here in one orjson pass (numpy arrays included), so Powertools passes it on."""
    text = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=text, headers=headers)
