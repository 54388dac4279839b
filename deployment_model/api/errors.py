"""What a client is told when a request fails: one JSON shape, messages in words, sizes that never follow the
request's (API Gateway answers a bare 502 past Lambda's 6 MB), and nothing the client sent in the logs.

Every answer here is `(status, body, headers)`; service.py turns it into a proxy response or a direct one.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger

from deployment_model.api.schemas import TooManyRowsError
from deployment_model.ml.artifacts import BrokenVersionError, IncompatibleVersionError
from deployment_model.ml.prediction import InvalidRowsError
from deployment_model.storage.objects import (
    ArtifactIntegrityError,
    IncompatibleModelError,
    ModelNotFoundError,
    ObjectNotFoundError,
    StoreAccessError,
    StoreUnavailableError,
)
from deployment_model.storage.registry import (
    InvalidRegistryRequestError,
    ModelNameConflictError,
    PublishConflictError,
    VersionPublishedError,
)

RETRY_AFTER_SECONDS = 5
MAX_ERROR_DETAILS = 10  # field errors listed in one answer; the message gives the total
# A domain error's message may quote what the client sent (a name, a version, a job id): bounded as a whole.
MAX_DOMAIN_MESSAGE_CHARS = 1_000
MAX_QUOTED_CHARS = 80  # of anything the client sent (a field name, a path, a method) quoted in a message
MAX_DETAIL_CHARS = 300  # of one field's message

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
    IncompatibleVersionError: (HTTPStatus.CONFLICT, "model_incompatible"),
    BrokenVersionError: (HTTPStatus.CONFLICT, "model_integrity_error"),
    InvalidRegistryRequestError: (HTTPStatus.BAD_REQUEST, "invalid_request"),
    PublishConflictError: (HTTPStatus.CONFLICT, "publish_conflict"),
    VersionPublishedError: (HTTPStatus.CONFLICT, "version_published"),
    ModelNameConflictError: (HTTPStatus.CONFLICT, "model_name_conflict"),
    StoreUnavailableError: (HTTPStatus.SERVICE_UNAVAILABLE, "storage_unavailable"),
    StoreAccessError: (HTTPStatus.BAD_GATEWAY, "storage_access_denied"),
}


def register_error(exc_class: type[Exception], status: HTTPStatus, code: str) -> None:
    """Let a function map its own domain error (e.g. training's) without the shared layer importing it."""
    _ERROR_STATUS[exc_class] = (status, code)


def quoted(text: object, limit: int = MAX_QUOTED_CHARS) -> str:
    """Client text for a message: cut to `limit` characters, so that no answer grows with the request."""
    value = str(text)
    return value if len(value) <= limit else f"{value[:limit]}... ({len(value)} characters)"


def error_answer(
    status: HTTPStatus, code: str, message: str, details: list[dict[str, str]] | None = None, **headers: str
) -> Answer:
    body: dict[str, Any] = {"error": code, "message": message}
    if details:
        body["details"] = details
    if status == HTTPStatus.SERVICE_UNAVAILABLE:
        headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return int(status), body, headers


def answer_for(exc: Exception, request_id: str, logger: Logger) -> Answer:
    """The answer to an exception raised while serving a request."""
    if isinstance(exc, ApiError):
        return error_answer(exc.status, exc.code, exc.message, **exc.headers)
    for exc_class in type(exc).__mro__:
        if exc_class in _ERROR_STATUS:
            status, code = _ERROR_STATUS[exc_class]
            if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                logger.warning("request failed on a dependency", extra={"error": code, "reason": str(exc)})
            return error_answer(status, code, quoted(exc, MAX_DOMAIN_MESSAGE_CHARS))
    logger.error("unhandled error", extra=bug_report(exc))
    message = f"internal error; quote request id {request_id} when reporting it"
    return error_answer(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", message)


def bug_report(exc: BaseException) -> dict[str, str]:
    """What a log says of a bug: its type and where it was raised, not its text (which may quote a request)."""
    return {"exception_type": type(exc).__name__, "traceback": "".join(traceback.format_tb(exc.__traceback__))}


def _field(location: Sequence[Any]) -> str:
    # Powertools prefixes its locations with where the value came from ("body", "query", "path").
    parts = [str(part) for part in location]
    if len(parts) > 1 and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return quoted(".".join(parts)) if parts else "body"


def _in_words(error: Mapping[str, Any], accepted_fields: Sequence[str]) -> str:
    """One pydantic error as what was wrong and what is accepted, never as a regex or a type name."""
    kind = error.get("type")
    context = error.get("ctx") or {}
    if kind == "extra_forbidden":
        accepted = f"; accepted fields: {', '.join(accepted_fields)}" if accepted_fields else ""
        return f"is not a known field{accepted}"
    if kind == "missing":
        return "is required"
    if kind == "json_invalid":
        return f"is not valid JSON ({quoted(context.get('error', 'malformed'))}): send a JSON object"
    message = str(error.get("msg") or "is invalid").removeprefix("Value error, ")
    return quoted(message, MAX_DETAIL_CHARS)


def validation_answer(errors: Iterable[Mapping[str, Any]], accepted_fields: Sequence[str] = ()) -> Answer:
    """A 400 naming the first few fields that failed validation and why, and how many failed in all.

    `errors` are pydantic's (or Powertools'); their `input` is never read, so it reaches neither the answer nor
    the logs.
    """
    details: list[dict[str, str]] = []
    total = 0
    for error in errors:
        total += 1
        if len(details) < MAX_ERROR_DETAILS:
            field = "body" if error.get("type") == "json_invalid" else _field(error.get("loc", ()))
            details.append({"field": field, "message": _in_words(error, accepted_fields)})
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    if total > len(details):
        summary = f"{total} problems; the first {len(details)}: {summary}"
    return error_answer(HTTPStatus.BAD_REQUEST, "invalid_request", f"invalid request: {summary}", details)


def route_not_found_answer(method: str, path: str, routes: Iterable[str], server: str = "this API") -> Answer:
    """A 404 that lists what `server` serves, e.g. `POST /train`, `GET /models/{name}`."""
    served = ", ".join(sorted(set(routes), key=lambda route: route.split(" ", 1)[::-1]))
    message = f"no route {quoted(method)} {quoted(path)}; {server} serves {served}"
    return error_answer(HTTPStatus.NOT_FOUND, "route_not_found", message)


def method_not_allowed_answer(method: str, path: str, allowed: Iterable[str]) -> Answer:
    """A 405 naming the method refused and the methods the path accepts (also in `Allow`)."""
    methods = ", ".join(sorted(set(allowed)))
    message = f"{quoted(method)} is not allowed on {quoted(path)}; use {methods}"
    return error_answer(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", message, Allow=methods)
