"""API Gateway proxy events as every route reads them: recognised, checked, and their bodies decoded.

A malformed event is a 400 naming its field, never a 500; a body is JSON text whatever Content-Type says,
base64-decoded when flagged so, its size bounded, and named in words when it is gzip or not UTF-8.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from http import HTTPStatus
from itertools import chain, repeat
from typing import Any

from aws_lambda_powertools.event_handler import content_types

from deployment_model.api.errors import ApiError

MAX_BODY_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit


def is_api_gateway_event(event: Any) -> bool:
    return isinstance(event, dict) and ("httpMethod" in event or "requestContext" in event)


def is_sqs_event(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        bool(records)
        and isinstance(records, list)
        and all(isinstance(record, dict) and record.get("eventSource") == "aws:sqs" for record in records)
    )


def _invalid_event(field: str, expected: str) -> ApiError:
    message = f"not an API Gateway proxy event: {field} must be {expected}"
    return ApiError(HTTPStatus.BAD_REQUEST, "invalid_request", message)


def method_and_path(event: Mapping[str, Any]) -> tuple[str, str]:
    """The route an event asks for, as every route is matched: the method in upper case (`post` is POST),
    the path without a trailing slash (as API Gateway's REST APIs and Powertools' REST resolver treat it).

    HEAD is answered as GET (RFC 9110 9.3.2): template.yaml routes HEAD on every GET route, and API Gateway
    (or the local server) sends the status and headers without the body."""
    method, path = event.get("httpMethod"), event.get("path")
    if not isinstance(method, str) or not method:
        raise _invalid_event("httpMethod", "a method name such as POST")
    if not isinstance(path, str) or not path.startswith("/"):
        raise _invalid_event("path", "a string starting with /")
    method = method.upper()
    return "GET" if method == "HEAD" else method, path.rstrip("/") or "/"


def requested_method(event: Mapping[str, Any], routed: str) -> str:
    """The method as the client sent it, for an answer that names it: HEAD, where the route matched was GET's
    (method_and_path), so that a 405 or 404 never blames a GET nobody sent."""
    sent = event.get("httpMethod")
    return "HEAD" if routed == "GET" and isinstance(sent, str) and sent.upper() == "HEAD" else routed


_EVENT_MAPPINGS = {  # field: does each value have to be a string (else a list of strings)
    "headers": True,
    "queryStringParameters": True,
    "pathParameters": True,
    "stageVariables": True,
    "multiValueHeaders": False,
    "multiValueQueryStringParameters": False,
}
_BASE64_FLAGS = {True: True, False: False, None: False, "true": True, "false": False}


def _holds_only(values: Any, kind: type) -> bool:
    """Whether every value is a str (kind str), or a list of str (kind list): C-level passes, no Python loop."""
    if not all(map(isinstance, values, repeat(kind))):
        return False
    return kind is str or all(map(isinstance, chain.from_iterable(values), repeat(str)))


def _check_mapping(event: Mapping[str, Any], field: str) -> None:
    """A 400 naming the field unless it is absent or an object of strings (or of lists of strings)."""
    value, strings = event.get(field), _EVENT_MAPPINGS[field]
    if value is not None and (not isinstance(value, dict) or not _holds_only(value.values(), str if strings else list)):
        raise _invalid_event(field, "an object of strings" if strings else "an object of lists of strings")


def header_values(event: Mapping[str, Any], name: str) -> list[str]:
    """A header's values (name in lower case), read from an event whose other fields are left unchecked (the
    short path): a malformed header field is a 400 naming it, as checked_event would say."""
    for field in ("multiValueHeaders", "headers"):
        _check_mapping(event, field)
    multi = event.get("multiValueHeaders") or {}
    values = [v for key, vs in multi.items() if key.lower() == name for v in vs]
    return values or [v for key, v in (event.get("headers") or {}).items() if key.lower() == name]


def checked_event(event: Mapping[str, Any], method: str, path: str) -> dict[str, Any]:
    """The event a route is given: its shape checked (a malformed one is a 400 naming the field), its method and
    path as matched, and its body decoded as for an operation (or left as sent, see below)."""
    for field in _EVENT_MAPPINGS:
        _check_mapping(event, field)
    request_context = event.get("requestContext")
    if request_context is not None and not isinstance(request_context, dict):
        raise _invalid_event("requestContext", "an object")
    # No route reads a list from the query; API Gateway passes every value of a repeated name.
    for name, values in (event.get("multiValueQueryStringParameters") or {}).items():
        if len(values) > 1:
            message = f"query parameter {name!r} is given {len(values)} times; give it once"
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_request", message)
    try:
        body, base64_encoded = decoded_body(event), False
    except ApiError:
        if not isinstance(event.get("isBase64Encoded"), bool | None) or not isinstance(event.get("body"), str):
            raise
        # Left as sent: the route reads it with plain_body() and answers in its own terms (e.g. a v2 client's
        # binary tensors are named as such, not as "not UTF-8").
        body, base64_encoded = event.get("body"), bool(event.get("isBase64Encoded"))
    return {**event, "httpMethod": method, "path": path, "body": body, "isBase64Encoded": base64_encoded}


def powertools_event(event: dict[str, Any]) -> dict[str, Any]:
    """A checked event (checked_event) for Powertools' routing: with a JSON Content-Type (the API reads bodies
    as JSON whatever Content-Type says, on every route) and the request context Powertools reads."""
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"}
    path, request_context = event["path"], event.get("requestContext")
    return {
        **event,
        "headers": {**headers, "Content-Type": content_types.APPLICATION_JSON},
        "multiValueHeaders": {**multi, "Content-Type": [content_types.APPLICATION_JSON]},
        # Powertools reads the stage and path from here; a hand-written event may have none.
        "requestContext": {"stage": "", "path": path, **(request_context or {})},
    }


def decoded_body(event: Mapping[str, Any]) -> str | None:
    """The body as JSON text, or None: checked, its size bounded, base64-decoded when flagged so
    (isBase64Encoded true or false, or the strings "true" / "false")."""
    body, flag = event.get("body"), event.get("isBase64Encoded")
    key = flag.lower() if isinstance(flag, str) else flag
    if not isinstance(key, bool | str | None) or key not in _BASE64_FLAGS:
        raise _invalid_event("isBase64Encoded", "true or false")
    if body is not None and not isinstance(body, str):
        raise _invalid_event("body", "a string (of JSON) or null")
    if not body:
        return None
    base64_encoded = _BASE64_FLAGS[key]
    limit = (MAX_BODY_BYTES + 2) // 3 * 4 if base64_encoded else MAX_BODY_BYTES
    if len(body) > limit:
        raise ApiError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body_too_large", f"request body is over {MAX_BODY_BYTES} bytes"
        )
    if not base64_encoded:
        return body
    try:
        data = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):  # not base64, or not even ASCII
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            "invalid_request",
            "request body is flagged isBase64Encoded but is not valid base64: send the JSON base64-encoded, "
            "or send it as it is with isBase64Encoded false",
        ) from None
    return _json_text(data)


def plain_body(event: Mapping[str, Any]) -> str:
    """The JSON text of an operation's request body."""
    body = decoded_body(event)
    if body is None:
        raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_request", "request body is missing: send a JSON object")
    return body


NOT_UTF8 = "request body is not UTF-8 (byte {} is not valid UTF-8): send a JSON object in UTF-8"


def _json_text(data: bytes) -> str:
    """Bytes as JSON text, naming what they are when they are not: compressed, or not UTF-8."""
    if data[:2] == b"\x1f\x8b":
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            "invalid_request",
            "request body is gzip-compressed: Content-Encoding is not supported; send uncompressed JSON",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_request", NOT_UTF8.format(exc.start)) from None
