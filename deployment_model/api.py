"""The HTTP layer both functions share: routing, validation, errors, and direct vs API Gateway events.

A handler registers its routes on `create_app()` and answers every event with `handle_event()`. An event
from API Gateway gets a proxy response; a direct invocation (the Lambda console, `sam local invoke`, the
seed's JSON) is routed as a POST to the function's own path and answered with statusCode plus the
response fields at the top level, as the seed did. Either way, the same validation and the same errors.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from deployment_model.prediction import InvalidRowsError
from deployment_model.schemas import ErrorResponse, TooManyRowsError
from deployment_model.store import (
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


def error_response(
    status: HTTPStatus, code: str, message: str, details: list[dict[str, str]] | None = None, **headers: str
) -> Response:
    body: dict[str, Any] = {"error": code, "message": message}
    if details:
        body["details"] = details
    if status == HTTPStatus.SERVICE_UNAVAILABLE:
        headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


_ERROR_DESCRIPTIONS = {
    400: "Malformed request: the message names the field and what was expected.",
    403: "name_bucket names another bucket than the stack's own.",
    404: "Unknown model, version or data key.",
    409: "The stored version cannot be served (failed integrity check or other library versions).",
    413: "Too many rows in one request.",
    503: "Storage unreachable; retry after Retry-After seconds.",
}


def route_responses(success: type[BaseModel], description: str, *errors: int) -> dict[int, dict[str, Any]]:
    """A route's OpenAPI responses: its success model, and the errors it answers, all shaped as ErrorResponse."""
    responses: dict[int, dict[str, Any]] = {
        200: {"description": description, "content": {"application/json": {"model": success}}}
    }
    for status in errors:
        error_content = {"application/json": {"model": ErrorResponse}}
        responses[status] = {"description": _ERROR_DESCRIPTIONS[status], "content": error_content}
    return responses


def _serialize(obj: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()


class ServiceApp(APIGatewayRestResolver):
    """Powertools' REST resolver with validation on, orjson both ways, and 405 for a known path."""

    def __init__(self) -> None:
        origin = os.environ.get("ALLOWED_ORIGIN")  # CORS stays off unless the stack names a browser origin
        super().__init__(
            cors=CORSConfig(allow_origin=origin, allow_headers=["X-Api-Key"], max_age=600) if origin else None,
            enable_validation=True,
            serializer=_serialize,
            json_body_deserializer=orjson.loads,
        )
        self.methods_by_path: dict[str, set[str]] = {}
        self.exception_handler(Exception)(self._answer_exception)
        self.not_found(self._answer_not_found)

    def route(self, rule: str, method: str | list[str] | tuple[str], *args: Any, **kwargs: Any) -> Any:
        methods = [method] if isinstance(method, str) else list(method)
        self.methods_by_path.setdefault(rule, set()).update(m.upper() for m in methods)
        return super().route(rule, method, *args, **kwargs)

    def _answer_not_found(self, _: NotFoundError) -> Response:
        path, method = self.current_event.path, self.current_event.http_method
        allowed = self.methods_by_path.get(path)
        if allowed:
            return error_response(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                f"{method} is not allowed on {path}; use {', '.join(sorted(allowed))}",
                Allow=", ".join(sorted(allowed)),
            )
        known = ", ".join(f"POST {p}" for p in sorted(self.methods_by_path))
        return error_response(HTTPStatus.NOT_FOUND, "route_not_found", f"no route {method} {path}; routes: {known}")

    def _answer_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ApiError):
            return error_response(exc.status, exc.code, exc.message, **exc.headers)
        if isinstance(exc, RequestValidationError):
            return _validation_error_response(exc)
        for exc_class in type(exc).__mro__:
            if exc_class in _ERROR_STATUS:
                status, code = _ERROR_STATUS[exc_class]
                if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                    logger.warning("request failed on a dependency", extra={"error": code, "reason": str(exc)})
                return error_response(status, code, str(exc))
        logger.exception("unhandled error")
        return error_response(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            "internal_error",
            f"internal error; quote request id {self.lambda_context.aws_request_id} when reporting it",
        )


def _validation_error_response(exc: RequestValidationError) -> Response:
    details = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error", "")
            details.append({"field": "body", "message": f"request body is not valid JSON: {reason}"})
            continue
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            message = "is not a known field"
        if error.get("type") == "model_attributes_type":
            location, message = ["body"], "request body must be a JSON object"
        details.append({"field": ".".join(location) or "body", "message": message})
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return error_response(HTTPStatus.BAD_REQUEST, "invalid_request", f"invalid request: {summary}", details)


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


def is_api_gateway_event(event: Any) -> bool:
    return isinstance(event, dict) and ("httpMethod" in event or "requestContext" in event)


def handle_event(app: ServiceApp, event: Any, context: LambdaContext, direct_path: str) -> dict[str, Any]:
    """Answer an API Gateway event or a direct invocation; never lets an exception escape."""
    try:
        if is_api_gateway_event(event):
            return _answer_proxy_event(app, event, context)
        return _answer_direct_invocation(app, event, context, direct_path)
    except Exception:  # last resort: Lambda would turn an escaped exception into a bare 502
        logger.exception("unhandled error outside the resolver")
        return {"statusCode": 500, "error": "internal_error", "message": "internal error"}


def _answer_proxy_event(app: ServiceApp, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if str(event.get("httpMethod", "")).upper() not in app.methods_by_path.get(event.get("path", ""), ()):
        return _resolve(app, event, context)  # the resolver's 404 or 405; the body does not matter
    try:
        plain = _with_plain_body(event)
    except ApiError as exc:
        return _proxy(error_response(exc.status, exc.code, exc.message))
    return _resolve(app, plain, context)


def _answer_direct_invocation(app: ServiceApp, event: Any, context: LambdaContext, path: str) -> dict[str, Any]:
    """Route the event as a POST to the function's own path; answer with statusCode and the fields on top."""
    if not isinstance(event, dict):
        return {"statusCode": 400, "error": "invalid_request", "message": "the event must be a JSON object"}
    try:
        body = orjson.dumps(event).decode()
    except orjson.JSONEncodeError as exc:  # e.g. integers beyond 64 bits, or nesting deeper than JSON allows
        return {"statusCode": 400, "error": "invalid_request", "message": f"the event is not usable JSON: {exc}"}
    proxy = {
        "httpMethod": "POST",
        "path": path,
        "resource": path,
        "headers": {"content-type": content_types.APPLICATION_JSON},
        "requestContext": {"requestId": getattr(context, "aws_request_id", "direct")},
        "body": body,
        "isBase64Encoded": False,
    }
    answer = _resolve(app, proxy, context)
    return {"statusCode": int(answer["statusCode"]), **orjson.loads(answer["body"])}


def _resolve(app: ServiceApp, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        return app.resolve(event, context)
    except Exception:  # the resolver's own handlers failed: still answer with JSON, never a bare 502
        logger.exception("resolver failed")
        body = {"error": "internal_error", "message": "internal error"}
        return _proxy(Response(500, content_types.APPLICATION_JSON, _serialize(body)))


def _with_plain_body(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its body checked, base64-decoded and declared JSON, before any parsing."""
    body = event.get("body")
    if body is None or body == "":
        raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_request", "request body is missing: send a JSON object")
    if not isinstance(body, str):
        raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_request", "request body must be a string of JSON")
    if len(body) > MAX_BODY_BYTES * 4 // 3 + 4:
        raise ApiError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body_too_large", f"request body is over {MAX_BODY_BYTES} bytes"
        )
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 once decoded
            raise ApiError(
                HTTPStatus.BAD_REQUEST, "invalid_request", "request body is flagged isBase64Encoded but is not base64"
            ) from None
    # The API speaks JSON only: parse the body as JSON whatever Content-Type says (curl -d sends a form type).
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    headers["content-type"] = content_types.APPLICATION_JSON
    return {**event, "headers": headers, "body": body, "isBase64Encoded": False}


def _proxy(response: Response) -> dict[str, Any]:
    body = response.body if isinstance(response.body, str) else _serialize(response.body)
    headers = {"Content-Type": content_types.APPLICATION_JSON, **(response.headers or {})}
    multi_value = {name: value if isinstance(value, list) else [value] for name, value in headers.items()}
    return {"statusCode": int(response.status_code), "multiValueHeaders": multi_value, "body": body}
