"""The HTTP layer both functions share: operations, validation, errors, and direct vs API Gateway events.

A handler declares its operation with `@app.operation(path)` and gets its `lambda_handler` from `entry_point()`.
An API Gateway event gets a proxy response; a direct invocation (the Lambda console, `sam local invoke`, the
seed's JSON) is the request body of the function's own operation, answered with statusCode plus the response
fields at the top level, as the seed did. Either way: the same pydantic validation, the same errors.

Operations are declared on Powertools' REST resolver, which generates the OpenAPI document and answers
everything that matches no operation (404, 405, CORS preflight). A request that does match one is validated
with the operation's pydantic model and handed straight to it: Powertools' per-request middleware chain costs
about 200 microseconds a call (see docs/performance.md), more than our whole budget for a warm prediction.
"""

from __future__ import annotations

import base64
import gc
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import numpy as np
import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from deployment_model.api.schemas import ErrorResponse, TooManyRowsError
from deployment_model.ml.prediction import InvalidRowsError
from deployment_model.storage.objects import (
    ArtifactIntegrityError,
    IncompatibleModelError,
    ModelNotFoundError,
    ObjectNotFoundError,
    StoreAccessError,
    StoreUnavailableError,
)

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME", "ml-service")
RETRY_AFTER_SECONDS = 5
MAX_BODY_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MlService"), service=SERVICE_NAME)

Headers = dict[str, str]
Answer = tuple[int, dict[str, Any], Headers]  # status, JSON body (numpy allowed), extra headers


class ApiError(Exception):
    """An error answered as-is: status, a stable code, and a message naming the problem."""

    def __init__(self, status: HTTPStatus, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


# Domain errors and what a client is told. Anything not listed here is a bug: 500, logged with the request id.
_ERROR_STATUS: dict[type[Exception], tuple[HTTPStatus, str]] = {
    TooManyRowsError: (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_many_rows"),
    InvalidRowsError: (HTTPStatus.BAD_REQUEST, "invalid_request"),
    ModelNotFoundError: (HTTPStatus.NOT_FOUND, "model_not_found"),
    ObjectNotFoundError: (HTTPStatus.NOT_FOUND, "data_not_found"),
    ArtifactIntegrityError: (HTTPStatus.CONFLICT, "model_integrity_error"),
    IncompatibleModelError: (HTTPStatus.CONFLICT, "model_incompatible"),
    StoreUnavailableError: (HTTPStatus.SERVICE_UNAVAILABLE, "storage_unavailable"),
    StoreAccessError: (HTTPStatus.BAD_GATEWAY, "storage_access_denied"),
}


def register_error(exc_class: type[Exception], status: HTTPStatus, code: str) -> None:
    """Let a function map its own domain error (e.g. training's) without the shared layer importing it."""
    _ERROR_STATUS[exc_class] = (status, code)


def error_answer(
    status: HTTPStatus, code: str, message: str, details: list[dict[str, str]] | None = None, **headers: str
) -> Answer:
    body: dict[str, Any] = {"error": code, "message": message}
    if details:
        body["details"] = details
    if status == HTTPStatus.SERVICE_UNAVAILABLE:
        headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return int(status), body, headers


def answer_for(exc: Exception, request_id: str) -> Answer:
    """The answer to an exception raised while serving a request."""
    if isinstance(exc, ApiError):
        return error_answer(exc.status, exc.code, exc.message, **exc.headers)
    for exc_class in type(exc).__mro__:
        if exc_class in _ERROR_STATUS:
            status, code = _ERROR_STATUS[exc_class]
            if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                logger.warning("request failed on a dependency", extra={"error": code, "reason": str(exc)})
            return error_answer(status, code, str(exc))
    logger.exception("unhandled error")
    message = f"internal error; quote request id {request_id} when reporting it"
    return error_answer(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", message)


def validation_answer(errors: list[Any]) -> Answer:
    """A 400 naming every field that failed validation and why."""
    details = []
    for error in errors:
        location = ".".join(str(part) for part in error.get("loc", ()))
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            message = "is not a known field"
        details.append({"field": location or "body", "message": message})
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return error_answer(HTTPStatus.BAD_REQUEST, "invalid_request", f"invalid request: {summary}", details)


_ERROR_DESCRIPTIONS = {
    400: "Malformed request: the message names the field and what was expected.",
    403: "name_bucket names another bucket than the stack's own.",
    404: "Unknown model, version or data key.",
    409: "The stored version cannot be served (failed integrity check or other library versions).",
    413: "Too large: rows in one request, the body, the answer it would need, or the training CSV.",
    422: "The training cannot finish within a synchronous call's time: nothing was published; use an async job.",
    503: "Storage unreachable; retry after Retry-After seconds.",
}


def route_responses(success: type[BaseModel], description: str, *errors: int) -> dict[int, dict[str, Any]]:
    """An operation's OpenAPI responses: its success model, and its errors, all shaped as ErrorResponse."""
    responses: dict[int, dict[str, Any]] = {
        200: {"description": description, "content": {"application/json": {"model": success}}}
    }
    for status in errors:
        error_content = {"application/json": {"model": ErrorResponse}}
        responses[status] = {"description": _ERROR_DESCRIPTIONS[status], "content": error_content}
    return responses


def _serialize(obj: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()


@dataclass(frozen=True)
class Operation:
    request_model: type[BaseModel]
    function: Callable[[Any], BaseModel | dict[str, Any]]


class ServiceApp(APIGatewayRestResolver):
    """Powertools' REST resolver for declaring operations and answering what matches none; see the module doc."""

    def __init__(self) -> None:
        origin = os.environ.get("ALLOWED_ORIGIN")  # CORS stays off unless the stack names a browser origin
        super().__init__(
            cors=CORSConfig(allow_origin=origin, allow_headers=["X-Api-Key"], max_age=600) if origin else None,
            enable_validation=True,
            serializer=_serialize,
        )
        self.operations: dict[str, Operation] = {}
        self.exception_handler(Exception)(self._answer_exception)
        self.not_found(self._answer_not_found)

    def operation(self, path: str, **openapi: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare `POST path`; the function takes one argument annotated Annotated[<pydantic model>, Body()]."""

        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            (hint,) = (h for name, h in get_type_hints(function, include_extras=True).items() if name != "return")
            model = get_args(hint)[0] if get_origin(hint) is Annotated else hint
            self.operations[path] = Operation(model, function)
            return self.post(path, **openapi)(function)

        return register

    def call(self, operation: Operation, payload: Any, request_id: str) -> Answer:
        """Validate the payload with the operation's model and run it; every outcome becomes an answer."""
        if not isinstance(payload, dict):
            return error_answer(HTTPStatus.BAD_REQUEST, "invalid_request", "request body must be a JSON object")
        try:
            request = operation.request_model.model_validate(payload)
            result = operation.function(request)
        except ValidationError as exc:
            return validation_answer(exc.errors(include_url=False, include_input=False))
        except Exception as exc:
            return answer_for(exc, request_id)
        return 200, result.model_dump(mode="json") if isinstance(result, BaseModel) else result, {}

    def cors_headers(self, event: Mapping[str, Any]) -> Headers:
        if self._cors is None:
            return {}
        headers = event.get("headers") or {}
        origin = next((value for name, value in headers.items() if name.lower() == "origin"), None)
        allowed = self._cors.allowed_origin(origin)
        return self._cors.to_dict(allowed) if allowed else {}

    def _answer_not_found(self, _: NotFoundError) -> Response:
        path, method = self.current_event.path, self.current_event.http_method
        if path in self.operations:
            message = f"{method} is not allowed on {path}; use POST"
            return _response(*error_answer(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", message, Allow="POST"))
        routes = ", ".join(f"POST {p}" for p in sorted(self.operations))
        return _response(*error_answer(HTTPStatus.NOT_FOUND, "route_not_found", f"no route {method} {path}; {routes}"))

    def _answer_exception(self, exc: Exception) -> Response:
        return _response(*answer_for(exc, self.lambda_context.aws_request_id))


def _response(status: int, body: dict[str, Any], headers: Headers) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def check_bucket(name_bucket: str | None) -> None:
    """The seed let a request name any bucket; here only the stack's own bucket may be named."""
    if name_bucket is None:
        return
    own = os.environ.get("MODEL_BUCKET")
    if name_bucket != own:
        where = f"its own bucket {own!r}" if own else "a local folder"
        raise ApiError(
            HTTPStatus.FORBIDDEN,
            "bucket_forbidden",
            f"name_bucket {name_bucket!r} is not this service's bucket: it stores models in {where}; omit name_bucket",
        )


def entry_point(app: ServiceApp, direct_path: str) -> Callable[[Any, LambdaContext], dict[str, Any]]:
    """A function's `lambda_handler`: logs carry the request id, metrics are flushed, every event is answered.

    Call it last in the handler module: it also freezes what init loaded, so that the garbage collector
    afterwards only scans what requests allocate.
    """

    @logger.inject_lambda_context(
        correlation_id_path=correlation_paths.API_GATEWAY_REST,
        log_event=False,  # events carry feature values; POWERTOOLS_LOGGER_LOG_EVENT must not turn this on
        clear_state=True,
    )
    @metrics.log_metrics(capture_cold_start_metric=True)
    def handle_and_publish(event: Any, context: LambdaContext) -> dict[str, Any]:
        return handle_event(app, event, context, direct_path)

    def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
        try:
            return handle_and_publish(event, context)
        finally:
            # Powertools keeps unpublished metrics while POWERTOOLS_METRICS_DISABLED is set (the local server):
            # without this they would pile up in a long-lived process and leak into later invocations.
            metrics.clear_metrics()

    gc.freeze()
    return lambda_handler


def is_api_gateway_event(event: Any) -> bool:
    return isinstance(event, dict) and ("httpMethod" in event or "requestContext" in event)


def handle_event(app: ServiceApp, event: Any, context: LambdaContext, direct_path: str) -> dict[str, Any]:
    """Answer an API Gateway event or a direct invocation; never lets an exception escape."""
    # A request allocates many small objects (a list per row) and makes no reference cycles worth chasing
    # mid-call: the garbage collector waits until the answer is ready (about 3% of a 10,000-row predict).
    gc.disable()
    try:
        if is_api_gateway_event(event):
            return _answer_proxy_event(app, event, context)
        status, body, _ = app.call(app.operations[direct_path], event, context.aws_request_id)
        return {"statusCode": status, **_plain_json(body)}
    except Exception:  # last resort: Lambda would turn an escaped exception into a bare 502
        logger.exception("unhandled error outside the operation")
        return {"statusCode": 500, "error": "internal_error", "message": "internal error"}
    finally:
        gc.enable()


def _answer_proxy_event(app: ServiceApp, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    operation = app.operations.get(event.get("path", "")) if event.get("httpMethod") == "POST" else None
    if operation is None:
        return app.resolve(event, context)  # 404, 405 or a CORS preflight; the body does not matter
    try:
        payload = orjson.loads(_plain_body(event))
    except ApiError as exc:
        answer = error_answer(exc.status, exc.code, exc.message)
    except orjson.JSONDecodeError as exc:
        answer = validation_answer([{"loc": ("body",), "msg": f"request body is not valid JSON: {exc}"}])
    else:
        answer = app.call(operation, payload, context.aws_request_id)
    status, body, headers = answer
    all_headers = {"Content-Type": content_types.APPLICATION_JSON, **app.cors_headers(event), **headers}
    return {
        "statusCode": status,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "body": _serialize(body),
        "isBase64Encoded": False,
    }


def _plain_body(event: dict[str, Any]) -> str:
    """The body, checked and base64-decoded, before JSON parsing. The API speaks JSON whatever Content-Type says."""
    body = event.get("body")
    if body is None or body == "":
        raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_request", "request body is missing: send a JSON object")
    if not isinstance(body, str):
        raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_request", "request body must be a string of JSON")
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 once decoded
            raise ApiError(
                HTTPStatus.BAD_REQUEST, "invalid_request", "request body is flagged isBase64Encoded but is not base64"
            ) from None
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body_too_large", f"request body is over {MAX_BODY_BYTES} bytes"
        )
    return body


def _plain_json(body: dict[str, Any]) -> dict[str, Any]:
    """numpy values as plain Python, for a direct invocation's answer (the Lambda runtime serializes it)."""
    return {k: v.tolist() if isinstance(v, np.ndarray | np.generic) else v for k, v in body.items()}
