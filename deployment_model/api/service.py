"""The HTTP layer both functions share: operations, routing, and the Lambda entry point.

A handler declares its operation with `@app.operation(path)` (or any route with Powertools' own app.get /
app.post / app.delete, path parameters as <name>) and gets its `lambda_handler` from `entry_point()`.
An API Gateway event gets a proxy response; a direct invocation (the Lambda console, `sam local invoke`, the
seed's JSON) is the request body of the function's own operation, answered with statusCode plus the response
fields at the top level, as the seed did. Either way: the same pydantic validation, the same errors
(api/errors.py).

Every route is matched the same way: a trailing slash names the same route (as API Gateway's REST APIs and
Powertools' REST resolver already treat it), a method in any case (`post` is POST); a body is read as JSON
whatever Content-Type says, and a malformed event is a 400 naming its field, never a 500 (api/events.py).

Routes are declared on Powertools' REST resolver, which generates the OpenAPI document and answers every
other route (validation errors become our 400s) and everything that matches no route (404, 405, CORS
preflight). Operations, and routes declared with `@app.short_path(method, path)` (v2 infer), take one short
path instead: Powertools' per-request middleware chain costs about 200 microseconds a call (see
docs/performance.md), more than our whole budget for a warm prediction. The route is matched as Powertools
would match it (remembered per path), its path values are validated with their annotations, an operation's
body with its pydantic model, then the function runs; errors are answered as on any route, in the error shape
of the path's protocol. A short-path route reads only the method, path and body, and the headers it uses
(events.header_values names a malformed header field in a 400): a malformed event field it does not read is no
reason to refuse the request.
"""

from __future__ import annotations

import gc
import logging
import os
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from http import HTTPStatus
from types import MappingProxyType
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import numpy as np
import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, TypeAdapter, ValidationError

from deployment_model.api import errors
from deployment_model.api.deadlines import storage_seconds
from deployment_model.api.errors import (  # re-exported: the handlers import the API layer from here
    Answer,
    ApiError,
    Headers,
    error_answer,
    method_not_allowed_answer,
    register_error,
    route_not_found_answer,
    validation_answer,
)
from deployment_model.api.events import (
    NOT_UTF8,
    checked_event,
    is_api_gateway_event,
    is_sqs_event,
    method_and_path,
    plain_body,
    powertools_event,
    requested_method,
)
from deployment_model.api.schemas import ErrorResponse
from deployment_model.storage.deadline import storage_deadline

__all__ = ["ApiError", "ServiceApp", "check_bucket", "entry_point", "register_error", "route_responses"]

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME", "ml-service")
API_KEY_HEADER = "x-api-key"  # what the deployed API enforces (template.yaml: Auth.ApiKeyRequired)
MAX_REMEMBERED_MATCHES = 256  # request paths whose short path (with path values) is remembered
_API_KEY_SCHEME = {"type": "apiKey", "name": API_KEY_HEADER, "in": "header"}  # OpenAPI's security scheme object

logger = Logger(service=SERVICE_NAME)
# Powertools' routing logs each route's arguments (path and query values) at DEBUG: not a client's values.
logging.getLogger("aws_lambda_powertools.event_handler").setLevel(logging.INFO)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MlService"), service=SERVICE_NAME)

# The API Gateway event being answered, as sent ({} for a direct invocation): for a short-path route that reads
# its headers or body.
current_event: ContextVar[Mapping[str, Any]] = ContextVar("current_event", default=MappingProxyType({}))
# An answer whose body may already be JSON text (a route's Response), serialized once on the way out.
RouteAnswer = tuple[int, dict[str, Any] | str, Headers]


@dataclass(frozen=True)
class Answered:
    """An operation's answer other than a plain 200: e.g. 202 Accepted with a Location header."""

    status: HTTPStatus
    body: BaseModel
    headers: Headers


def answer_for(exc: Exception, request_id: str) -> Answer:
    """The answer to an exception raised while serving a request."""
    return errors.answer_for(exc, request_id, logger)


_ERROR_DESCRIPTIONS = {
    400: "Malformed request: the message names the field, what was wrong and what is accepted.",
    403: "name_bucket names another bucket than this service's own.",
    404: "Unknown model, version or data key.",
    409: "A conflict: the stored version cannot be served (failed integrity check, other library versions, or no "
    "ONNX artifact yet: the message says how to convert it), or a publish or delete conflicts with what is "
    "published now.",
    413: "Too large: rows in one request, the body, the answer it would need, or the training CSV.",
    422: "Nothing was published: the training cannot finish within a synchronous call's time (use an async job), "
    "or its ONNX graph does not reproduce scikit-learn's answers (the message names the estimator).",
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
class ShortPath:
    """A route answered without Powertools' per-request middleware (see the module doc): its function, the
    validators of its path parameters, and for an operation the pydantic model its JSON body is validated with."""

    function: Callable[..., Any]
    parameters: Mapping[str, TypeAdapter[Any]]
    request_model: type[BaseModel] | None = None


class ServiceApp(APIGatewayRestResolver):
    """Powertools' REST resolver for declaring routes and answering what matches none; see the module doc."""

    def __init__(self) -> None:
        origin = os.environ.get("ALLOWED_ORIGIN")  # CORS stays off unless the stack names a browser origin
        super().__init__(
            cors=CORSConfig(allow_origin=origin, allow_headers=["X-Api-Key"], max_age=600) if origin else None,
            enable_validation=True,
            serializer=_serialize,
            json_body_deserializer=orjson.loads,  # bounded nesting; its JSONDecodeError is json's, a 400
        )
        # (METHOD, declared path): how the route is answered on the short path (operations included).
        self.short_paths: dict[tuple[str, str], ShortPath] = {}
        # (METHOD, path): (declared path, path values) of a short path matched before; see matched_short_path.
        self._remembered: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}
        self._remembered_for = 0  # how many routes were declared when they were matched
        # Paths under these prefixes speak another protocol, whose error bodies have their own shape (v2).
        self.error_shapes: dict[str, Callable[[Answer], Answer]] = {}
        self.exception_handler(Exception)(self._answer_exception)
        self.exception_handler(RequestValidationError)(self._answer_invalid_parameters)
        self.not_found(self._answer_not_found)
        self.configure_openapi(
            # As plain JSON, validated when the document is generated: importing Powertools' OpenAPI models
            # (about 80 ms of pydantic class building) is left to the one that needs them, not every cold start.
            security_schemes={"ApiKey": _API_KEY_SCHEME},  # type: ignore[dict-item]
            security=[{"ApiKey": []}],
        )

    def operation(
        self, path: str, operation_id: str | None = None, **openapi: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare `POST path`; the function takes one argument annotated Annotated[<pydantic model>, Body()].

        Its OpenAPI operationId is the path in words (`/predict` -> `predict`) unless given. It is answered on
        the short path: the body validated with the model, then the function.
        """

        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            (hint,) = (h for name, h in get_type_hints(function, include_extras=True).items() if name != "return")
            model = get_args(hint)[0] if get_origin(hint) is Annotated else hint
            self.short_paths[("POST", path)] = ShortPath(function, {}, model)
            name = operation_id or re.sub(r"\W+", "_", path.strip("/")) or "root"
            return self.post(path, operation_id=name, **openapi)(function)

        return register

    def short_path(self, method: str, path: str, **openapi: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare `method path` as Powertools' app.route does (docs, 404/405, CORS preflight), and answer its
        requests on the short path: each path parameter validated with its annotation, then the function.

        The function takes path parameters only (declared <name> in the path). Like an operation it reads the
        rest of the request from the event as sent (`current_event`): the body with plain_body(), a header with
        header_values() (a malformed field it does not read is no reason to refuse the request). It returns a
        Response (or a JSON-able body).
        """

        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            declared = self.route(path, method, **openapi)(function)
            hints = {k: h for k, h in get_type_hints(function, include_extras=True).items() if k != "return"}
            if set(hints) != set(re.findall(r"<(\w+)>", path)):
                raise TypeError(f"{function.__name__}: a short-path route takes exactly its path's parameters")
            parameters = {k: TypeAdapter(h) for k, h in hints.items()}
            self.short_paths[(method.upper(), path)] = ShortPath(function, parameters)
            return declared

        return register

    def matched_short_path(self, method: str, path: str) -> tuple[ShortPath, dict[str, str]] | None:
        """The short path of the route Powertools would match (the first declared that matches), with its path
        values; None when that route has no short path, or no route matches.

        A match with path values is remembered (up to MAX_REMEMBERED_MATCHES, forgotten when routes are declared):
        trying the patterns one after another costs microseconds a call, and clients ask for few distinct paths.
        """
        short = self.short_paths.get((method, path))
        if short is not None and not short.parameters:  # a static route: Powertools matches those first
            return short, {}
        declared = len(self._static_routes) + len(self._dynamic_routes)
        if declared != self._remembered_for or len(self._remembered) >= MAX_REMEMBERED_MATCHES:
            self._remembered.clear()
            self._remembered_for = declared
        remembered = self._remembered.get((method, path))
        if remembered is None:
            for route in self._static_routes + self._dynamic_routes:
                if route.method == method and (match := route.rule.match(path)):
                    remembered = route.path, match.groupdict()
                    break
            else:
                return None
        short = self.short_paths.get((method, remembered[0]))
        if short is None:
            return None
        self._remembered[(method, path)] = remembered
        return short, remembered[1]

    def call_short_path(
        self, short: ShortPath, values: Mapping[str, str], path: str, event: Mapping[str, Any], request_id: str
    ) -> RouteAnswer:
        """Validate the path values (and an operation's body), run the route's function: its answer, where the
        body may be JSON text already; errors in the shape of the path's protocol. Never raises."""
        arguments, issues = {}, []
        for name, validator in short.parameters.items():
            try:
                arguments[name] = validator.validate_python(values[name])
            except ValidationError as exc:  # located as Powertools locates a path parameter
                errors_found = exc.errors(include_url=False, include_input=False)
                issues += [{**issue, "loc": ("path", name, *issue["loc"])} for issue in errors_found]
        if issues:
            return self.shaped_error(path, validation_answer(issues))
        if short.request_model is None:
            try:
                return _answer_of(short.function(**arguments))
            except ValidationError as exc:  # a model the route validates with itself, as call() answers its own
                issues = exc.errors(include_url=False, include_input=False)
                return self.shaped_error(path, validation_answer(issues))
            except Exception as exc:
                return self.shaped_error(path, answer_for(exc, request_id))
        try:
            payload = orjson.loads(plain_body(event))
        except ApiError as exc:
            return self.shaped_error(path, error_answer(exc.status, exc.code, exc.message))
        except orjson.JSONDecodeError as exc:
            return self.shaped_error(
                path, validation_answer([{"type": "json_invalid", "loc": ("body",), "ctx": {"error": exc.msg}}])
            )
        answer = self.call(short, payload, request_id)
        return self.shaped_error(path, answer) if answer[0] >= HTTPStatus.BAD_REQUEST else answer

    def call(self, operation: ShortPath, payload: Any, request_id: str) -> RouteAnswer:
        """Validate the payload with the operation's model and run it; every outcome becomes an answer."""
        model = operation.request_model
        if model is None:
            raise TypeError(f"{operation.function.__name__} is not an operation: it declares no request model")
        if not isinstance(payload, dict):
            return error_answer(HTTPStatus.BAD_REQUEST, "invalid_request", "request body must be a JSON object")
        try:
            result = operation.function(model.model_validate(payload))
        except ValidationError as exc:
            issues = exc.errors(include_url=False, include_input=False)
            return validation_answer(issues, [field.alias or name for name, field in model.model_fields.items()])
        except Exception as exc:
            return answer_for(exc, request_id)
        return _answer_of(result)

    def shaped_error(self, path: str, answer: Answer) -> Answer:
        """An error answer in the shape of the protocol the path speaks (ours unless registered otherwise)."""
        for prefix, shape in self.error_shapes.items():
            if path == prefix or path.startswith(prefix + "/"):
                return shape(answer)
        return answer

    @property
    def routes(self) -> list[tuple[str, str, re.Pattern[str]]]:
        """(method, OpenAPI path, pattern) of every route declared on this app, operations included."""
        return [(r.method, r.openapi_path, r.rule) for r in self._static_routes + self._dynamic_routes]

    def cors_headers(self, event: Mapping[str, Any]) -> Headers:
        if self._cors is None:
            return {}
        headers = event.get("headers")
        headers = headers if isinstance(headers, dict) else {}
        origin = next((v for k, v in headers.items() if str(k).lower() == "origin" and isinstance(v, str)), None)
        allowed = self._cors.allowed_origin(origin)
        return self._cors.to_dict(allowed) if allowed else {}

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        """The OpenAPI document, with routes declared without an operationId named after their function.

        A value of a route's openapi_extensions may be a function returning it: called here, when the document
        is generated, so that docs costly to build (a JSON schema) cost no cold start.
        """
        for route in self._static_routes + self._dynamic_routes:
            if route.operation_id == route._generate_operation_id():
                route.operation_id = route.func.__name__
            extensions = route.openapi_extensions or {}
            if any(callable(value) for value in extensions.values()):
                route.openapi_extensions = {k: v() if callable(v) else v for k, v in extensions.items()}
        return super().get_openapi_schema(**kwargs)

    def _answer_not_found(self, _: NotFoundError) -> Response:
        path, method = self.current_event.path, requested_method(current_event.get(), self.current_event.http_method)
        allowed = [m for m, _, pattern in self.routes if pattern.match(path)]
        if allowed:
            return _response(*self.shaped_error(path, method_not_allowed_answer(method, path, allowed)))
        # Only a direct invocation gets here: API Gateway answers undeclared routes itself (403) before any function.
        routes = (f"{m} {p}" for m, p, _ in self.routes)
        return _response(*self.shaped_error(path, route_not_found_answer(method, path, routes, server="this function")))

    def _answer_invalid_parameters(self, exc: RequestValidationError) -> Response:
        """A path or query parameter that fails its declared type or bounds: 400 naming it, as for bodies."""
        return _response(*self.shaped_error(self.current_event.path, validation_answer(list(exc.errors()))))

    def _answer_exception(self, exc: Exception) -> Response:
        if isinstance(exc, RequestValidationError):  # on a route declared with Powertools' decorators
            answer = validation_answer(exc.errors())
        elif isinstance(exc, ValidationError):  # a model the route validates with itself, as on the short path
            answer = validation_answer(exc.errors(include_url=False, include_input=False))
        elif isinstance(exc, UnicodeDecodeError) and self.current_event.is_base64_encoded:  # Powertools' decoding
            answer = error_answer(HTTPStatus.BAD_REQUEST, "invalid_request", NOT_UTF8.format(exc.start))
        else:
            answer = answer_for(exc, self.lambda_context.aws_request_id)
        return _response(*self.shaped_error(self.current_event.path, answer))


def _response(status: int, body: dict[str, Any], headers: Headers) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def _answer_of(result: Any) -> RouteAnswer:
    """What a route's function returned, as an answer: a Response (its body may be JSON text already), an
    Answered, a pydantic model or a JSON-able dict (numpy values allowed)."""
    if isinstance(result, Response):
        return result.status_code, result.body, {"Content-Type": result.content_type, **(result.headers or {})}
    if isinstance(result, Answered):
        return int(result.status), result.body.model_dump(mode="json"), result.headers
    return 200, result.model_dump(mode="json") if isinstance(result, BaseModel) else result, {}


def check_bucket(name_bucket: str | None) -> None:
    """The seed let a request name any bucket; here only the stack's own bucket may be named."""
    if name_bucket is None or name_bucket == os.environ.get("MODEL_BUCKET"):
        return
    raise ApiError(
        HTTPStatus.FORBIDDEN,
        "bucket_forbidden",
        f"name_bucket {errors.quoted(repr(name_bucket))} is not this service's bucket; "
        "omit name_bucket: the service reads and writes only this service's bucket",
    )


YOUNG_COLLECTION_THRESHOLD = 100_000  # container allocations between young collections (CPython's default: 700)


def entry_point(
    app: ServiceApp,
    direct_path: str,
    sqs_handler: Callable[[dict[str, Any], LambdaContext], dict[str, Any]] | None = None,
) -> Callable[[Any, LambdaContext], dict[str, Any]]:
    """A function's `lambda_handler`: logs carry the request id, metrics are flushed, every event is answered.

    sqs_handler answers the events of an SQS event source mapping (Records from aws:sqs), if the function has one.

    Call it last in the handler module: it also freezes what init loaded, so that the garbage collector
    afterwards only scans what requests allocate, and runs it less often (YOUNG_COLLECTION_THRESHOLD).
    """

    @logger.inject_lambda_context(
        log_event=False,  # events carry feature values; POWERTOOLS_LOGGER_LOG_EVENT must not turn this on
        clear_state=True,
    )
    @metrics.log_metrics(capture_cold_start_metric=True)
    def handle_and_publish(event: Any, context: LambdaContext) -> dict[str, Any]:
        logger.set_correlation_id(api_request_id(event))
        if sqs_handler is not None and is_sqs_event(event):
            return sqs_handler(event, context)
        return handle_event(app, event, context, direct_path)

    def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
        try:
            return handle_and_publish(event, context)
        finally:
            # Powertools keeps unpublished metrics while POWERTOOLS_METRICS_DISABLED is set (the local server):
            # without this they would pile up in a long-lived process and leak into later invocations.
            metrics.clear_metrics()

    gc.freeze()
    # A young-generation collection walks every container still alive when it runs, and the first one after a
    # large request runs while its answer is alive (10,000 rows: 10,000 lists of probabilities, ~0.6 ms). A
    # higher threshold runs it every few large requests instead of after each; nothing here makes cycles.
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
    return lambda_handler


def api_request_id(event: Any) -> str | None:
    """API Gateway's request id (requestContext.requestId): the logs' correlation id; None for a direct
    invocation. Read directly: Powertools' correlation_id_path runs a JMESPath search, ~15 us a request."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    request_id = context.get("requestId") if isinstance(context, dict) else None
    return request_id if isinstance(request_id, str) else None


def handle_event(app: ServiceApp, event: Any, context: LambdaContext, direct_path: str) -> dict[str, Any]:
    """Answer an API Gateway event or a direct invocation; never lets an exception escape."""
    # A request allocates many small objects (a list per row) and makes no reference cycles worth chasing
    # mid-call: the garbage collector waits until the answer is ready (about 3% of a 10,000-row predict).
    gc.disable()
    try:
        with storage_deadline(storage_seconds(event, context)):
            if is_api_gateway_event(event):
                current_event.set(event)
                return _answer_proxy_event(app, event, context)
            current_event.set({})
            status, body, _ = app.call(app.short_paths[("POST", direct_path)], event, context.aws_request_id)
            return {"statusCode": status, **_plain_json(body)}
    except Exception as exc:  # last resort: Lambda would turn an escaped exception into a bare 502
        logger.error("unhandled error outside the operation", extra=errors.bug_report(exc))
        return {"statusCode": 500, "error": "internal_error", "message": "internal error"}
    finally:
        gc.enable()


def _answer_proxy_event(app: ServiceApp, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    path = "/"
    try:
        method, path = method_and_path(event)
        matched = app.matched_short_path(method, path)
        if matched is None:  # other routes, 404, 405 or a CORS preflight
            return app.resolve(powertools_event(checked_event(event, method, path)), context)
    except ApiError as exc:
        answer = app.shaped_error(path, error_answer(exc.status, exc.code, exc.message))
    else:
        answer = app.call_short_path(*matched, path, event, context.aws_request_id)
    return _proxy_text(app, event, *_text_answer(answer))


def _text_answer(answer: RouteAnswer) -> tuple[int, str, Headers]:
    status, body, headers = answer
    return status, body if isinstance(body, str) else _serialize(body), headers


def _proxy_text(
    app: ServiceApp, event: Mapping[str, Any], status: int, body: str, headers: Mapping[str, Any]
) -> dict[str, Any]:
    """The proxy response: a JSON body already serialized, headers as lists (a header may already be one)."""
    all_headers = {"Content-Type": content_types.APPLICATION_JSON, **app.cors_headers(event), **headers}
    return {
        "statusCode": status,
        "multiValueHeaders": {k: v if isinstance(v, list) else [v] for k, v in all_headers.items()},
        "body": body,
        "isBase64Encoded": False,
    }


def _plain_json(body: dict[str, Any]) -> dict[str, Any]:
    """numpy values as plain Python, for a direct invocation's answer (the Lambda runtime serializes it)."""
    return {k: v.tolist() if isinstance(v, np.ndarray | np.generic) else v for k, v in body.items()}
