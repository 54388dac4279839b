"""Run the service on a laptop: no AWS, no Docker.

`serve` stands in for API Gateway and the Lambda runtime: each HTTP request becomes the REST proxy event
API Gateway would send, and goes to the function template.yaml routes it to (local/routes.py), through the
same `lambda_handler` the images run. `LocalGateway` does that part, without a socket: the server asks it for
each request it reads, and the command line's in-process target (local/client.py, InProcess) asks it directly,
so both answer alike.

It speaks HTTP/1.1 as clients do (keep-alive, chunked uploads), answers every refusal as the API's JSON error,
times out idle or half-sent connections, serves a bounded number of connections at once, and logs only
methods, route names, status codes and sizes: never a path, query or body a client sent.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from deployment_model.api.errors import (
    Answer,
    error_answer,
    method_not_allowed_answer,
    quoted,
    route_not_found_answer,
)
from deployment_model.local.routes import DEFAULT_TEMPLATE, load_route_table

if TYPE_CHECKING:
    from deployment_model.local.worker import LocalWorker
from deployment_model.local import docs_page

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000  # the port `sam local start-api` uses
DEFAULT_STORE_DIR = ".model-store"
OPENAPI_PATH = "/openapi.json"
MAX_BODY_BYTES = 6 * 1024 * 1024  # what Lambda accepts synchronously
MAX_DRAINED_BYTES = 64 * 1024 * 1024  # larger bodies are cut off unread
CONNECTION_TIMEOUT_SECONDS = 30.0  # an idle or half-sent connection is closed after this long without a byte
MAX_CONNECTIONS = 32  # connections served at once; more wait in the listen queue
MAX_CHUNK_LINE_BYTES = 1024  # a chunk-size line or a trailer line
MAX_TRAILER_LINES = 64
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
LOOPBACK = "127.0.0.1"  # the source IP of a request made in this process
NO_ROUTE = "(no route)"  # what a log line names for a request no route serves
_LOGGED_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}

Handler = Callable[[Any, Any], dict[str, Any]]


@dataclass
class LocalContext:
    """The attributes of Lambda's context object that the handlers and Powertools read."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = ""
    log_group_name: str = "local"
    log_stream_name: str = "local"
    deadline: float = field(default_factory=lambda: time.monotonic() + 900)

    def __post_init__(self) -> None:
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def configure_environment(store_dir: str | None) -> None:
    """Choose the store before the handlers are imported (they open it at init, as in Lambda)."""
    if store_dir:
        os.environ["MODEL_STORE_DIR"] = store_dir
    elif not os.environ.get("MODEL_BUCKET"):
        os.environ.setdefault("MODEL_STORE_DIR", DEFAULT_STORE_DIR)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # no CloudWatch here: keep stdout readable


def load_handler(function: str, template: Path = DEFAULT_TEMPLATE) -> Handler:
    """A function's `lambda_handler`, by logical ID or short name (`train`); importing it is its cold start."""
    table = load_route_table(template)
    module, _, attribute = table.handlers[table.function_named(function)].rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def openapi_document(template: Path = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """One OpenAPI document for every function's routes, generated from their Powertools apps."""
    document: dict[str, Any] = {}
    modules = dict.fromkeys(reference.rpartition(".")[0] for reference in load_route_table(template).handlers.values())
    for module in modules:
        app = importlib.import_module(module).app
        part = json.loads(app.get_openapi_json_schema(title="ML service", version="1.0.0"))
        if not document:
            document = part
            continue
        for path, operations in part["paths"].items():  # a path may have methods on both functions
            document["paths"].setdefault(path, {}).update(operations)
        document.setdefault("components", {}).setdefault("schemas", {}).update(
            part.get("components", {}).get("schemas", {})
        )
    # Powertools documents its default 422 for validation errors; this service answers them 400 (ErrorResponse).
    # A route's own 422 (declared with route_responses, e.g. training_too_long) stays.
    for operations in document["paths"].values():
        for operation in operations.values():
            if "HTTPValidationError" in json.dumps(operation["responses"].get("422", {})):
                del operation["responses"]["422"]
    schemas = document["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    return document


def proxy_event(
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    source_ip: str,
    resource: str | None = None,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The REST API proxy event API Gateway builds for this request (the shape `sam local` generates)."""
    url = urlsplit(target)
    multi_query: dict[str, list[str]] = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):  # a name may be repeated: keep every value
        multi_query.setdefault(name, []).append(value)
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode("ascii"), True
    return {
        "resource": resource or url.path,
        "path": url.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,  # the last
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource or url.path,
            "httpMethod": method,
            "path": url.path,  # as `sam local start-api` sends it: no stage in the local server's URLs
            "stage": "Prod",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip},
            "protocol": "HTTP/1.1",
        },
        "body": text if body else None,
        "isBase64Encoded": is_base64,
    }


@dataclass(frozen=True)
class Reply:
    """One answer as the local server sends it, and the template's path of the route that gave it (all a log
    line says of the request)."""

    status: int
    headers: dict[str, list[str]]  # a name may have several values, as in HTTP
    body: bytes  # also for HEAD: the server sends its headers (and length), not the body itself
    route: str = "-"


def error_reply(answer: Answer, route: str = "-") -> Reply:
    """An error answer of the API (status, JSON body, extra headers) as the server sends it."""
    status, body, headers = answer
    all_headers = {"Content-Type": ["application/json"], **{name: [value] for name, value in headers.items()}}
    return Reply(status, all_headers, json.dumps(body).encode(), route)


class LocalGateway:
    """What API Gateway and the Lambda runtime do with one request, without a socket: serve the OpenAPI document
    and the /docs page, route by template.yaml (404 and 405 from the route table, listing every function's
    routes), build the proxy event, call the function, and turn its proxy response into the HTTP answer.

    The local server asks it for every request it reads; the command line's in-process target asks it directly.
    So both targets answer alike. A function is imported (its cold start) when first called, or every one at
    once by `start_all`.
    """

    def __init__(self, template: Path = DEFAULT_TEMPLATE, load: Callable[[str], Handler] | None = None) -> None:
        self.template = template
        self.table = load_route_table(template)
        self._load = load or (lambda function: load_handler(function, template))
        self._handlers: dict[str, Handler] = {}
        self._openapi: bytes | None = None

    def start_all(self) -> LocalGateway:
        """Import every function and build the OpenAPI document now (the server does, before it serves)."""
        self.openapi()
        return self

    def handler(self, function: str) -> Handler:
        """A function's `lambda_handler`, by logical ID; imported on first use."""
        if function not in self._handlers:
            self._handlers[function] = self._load(function)
        return self._handlers[function]

    def openapi(self) -> bytes:
        """The OpenAPI document of every function (imported first, as their cold starts), built once."""
        if self._openapi is None:
            for function in self.table.handlers:
                self.handler(function)
            self._openapi = json.dumps(openapi_document(self.template)).encode()
        return self._openapi

    def answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str = LOOPBACK
    ) -> Reply:
        """The answer to one request: `method` as sent, `target` its path and query string, `body` as read."""
        path = urlsplit(target).path
        verb = method.upper()
        if verb in ("GET", "HEAD"):  # HEAD: GET's answer (the server sends no body)
            if path == OPENAPI_PATH:
                return Reply(200, {"Content-Type": ["application/json"]}, self.openapi(), OPENAPI_PATH)
            if docs_page.serves(path):  # Swagger UI and its assets, served from disk
                return Reply(*docs_page.answer(path), path)
        found = self.table.match(verb, path)
        if found is None and verb == "OPTIONS":  # a CORS preflight: the function of that path answers it
            candidates = (self.table.match(other, path) for other in self.table.allowed_methods(path))
            found = next((candidate for candidate in candidates if candidate), None)
        if found is None:
            allowed = self.table.allowed_methods(path)
            if allowed:
                return error_reply(method_not_allowed_answer(method, path, allowed), NO_ROUTE)
            return error_reply(route_not_found_answer(method, path, self.table.names()), NO_ROUTE)
        route = found.route
        event = proxy_event(method, target, headers, body, source_ip, route.path, found.path_parameters)
        answer = self.handler(route.function)(event, LocalContext(function_name=route.function))
        payload = answer.get("body") or ""
        data = base64.b64decode(payload) if answer.get("isBase64Encoded") else payload.encode("utf-8")
        multi = dict(answer.get("multiValueHeaders") or {})
        for name, value in (answer.get("headers") or {}).items():  # as API Gateway: multiValueHeaders' value wins
            multi.setdefault(name, [value])
        return Reply(int(answer["statusCode"]), multi, data, route.path)


class _Refused(Exception):
    """A request the server refuses before any function sees it; the connection is closed after the answer."""

    def __init__(self, status: HTTPStatus, message: str, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.answer = error_answer(status, code, message)


_PROTOCOL_ERRORS = {  # what BaseHTTPRequestHandler refuses, in words of our own (never echoing the request)
    HTTPStatus.BAD_REQUEST: "malformed HTTP request: send 'METHOD /path HTTP/1.1', then headers",
    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: "HTTP version not supported: send HTTP/1.1 (or HTTP/1.0)",
    HTTPStatus.REQUEST_URI_TOO_LONG: "request line over 65,536 bytes",
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: "request headers too long or too many",
    HTTPStatus.NOT_IMPLEMENTED: "malformed HTTP request: unknown method",
}


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as API Gateway offers
    disable_nagle_algorithm = True  # headers and body leave in separate writes: no 40 ms delayed-ACK stall
    server_version = "ml-service-local"
    timeout = CONNECTION_TIMEOUT_SECONDS  # a socket timeout: an idle or half-sent connection does not hold a thread
    gateway: ClassVar[LocalGateway]  # set by make_server
    quiet: ClassVar[bool] = False
    _route_path = "-"  # what a log line names: the template's path of the route, never the path as sent

    def __getattr__(self, name: str) -> Any:
        """Every method (GET, POST, post, PUT, TRACE, ...) is routed by the template; the rest answer 404/405."""
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":  # no headers, no status line: nothing this API can answer
            self.send_error(HTTPStatus.BAD_REQUEST)
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors as the API's JSON errors, as 4xx (a client's malformed request is a client error)."""
        status = HTTPStatus(code)
        words = _PROTOCOL_ERRORS.get(status, status.phrase)
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            status = HTTPStatus.BAD_REQUEST
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.1"  # so that the answer has a status line and headers
        self.close_connection = True
        self._send_answer(error_answer(status, "invalid_request", words))

    def _dispatch(self) -> None:
        try:
            body = self._read_body(self.command.upper())
        except _Refused as refused:
            self.close_connection = True
            self._send_answer(refused.answer)
            return
        headers = {name: value for name, value in self.headers.items()}
        reply = self.gateway.answer(self.command, self.path, headers, body, self.client_address[0])
        self._route_path = reply.route
        self._send(reply.status, reply.headers, reply.body)

    def _read_body(self, method: str) -> bytes:
        """The request body, framed as HTTP/1.1 says: chunked, else Content-Length, else none."""
        coding = self.headers.get("Transfer-Encoding")
        lengths = self.headers.get_all("Content-Length") or []
        if coding is not None:
            if coding.strip().lower() != "chunked":
                raise _Refused(
                    HTTPStatus.BAD_REQUEST,
                    f"Transfer-Encoding {quoted(repr(coding))} is not supported: "
                    "send Content-Length, or Transfer-Encoding: chunked",
                )
            if lengths:  # both framings: a request smuggling pattern; answer this one, then close
                self.close_connection = True
            return self._read_chunked()
        if not lengths:
            if method not in ("GET", "HEAD", "OPTIONS", "DELETE"):
                self.close_connection = True  # bytes a client sends next are not read as another request
            return b""
        try:
            length = int(lengths[0])
            if length < 0 or any(other.strip() != lengths[0].strip() for other in lengths):
                raise ValueError(length)
        except ValueError:
            raise _Refused(HTTPStatus.BAD_REQUEST, "Content-Length must be one non-negative integer") from None
        if length > MAX_BODY_BYTES:
            if length <= MAX_DRAINED_BYTES:  # read it, so the client sees the 413 instead of a broken pipe
                self._discard(length)
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _too_large(), "body_too_large")
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise _Refused(HTTPStatus.BAD_REQUEST, f"request body ended after {len(body)} of {length} bytes")
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(MAX_CHUNK_LINE_BYTES + 1)
            size_text = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not _HEX.fullmatch(size_text):
                raise _Refused(
                    HTTPStatus.BAD_REQUEST,
                    "chunked body: a chunk size must be a hexadecimal number on its own line (RFC 9112)",
                )
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _too_large(), "body_too_large")
            data = self.rfile.read(size)
            if len(data) < size or self.rfile.read(2) != b"\r\n":
                raise _Refused(HTTPStatus.BAD_REQUEST, "chunked body: a chunk is not the size its line says")
            parts.append(data)
        for _ in range(MAX_TRAILER_LINES):  # trailer fields, ignored as API Gateway ignores them
            line = self.rfile.readline(MAX_CHUNK_LINE_BYTES + 1)
            if line in (b"\r\n", b"\n"):
                return b"".join(parts)
            if not line.endswith(b"\n"):
                break
        raise _Refused(HTTPStatus.BAD_REQUEST, "chunked body: the trailer does not end with an empty line")

    def _discard(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                return
            length -= len(chunk)

    def _send_answer(self, answer: Answer) -> None:
        reply = error_reply(answer)
        self._send(reply.status, reply.headers, reply.body)

    def _send(self, status: int, headers: dict[str, list[str]], data: bytes) -> None:
        self.send_response(status)
        for name, values in headers.items():
            for value in values:
                self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        method = (self.command or "").upper()
        self._log(f"{method if method in _LOGGED_METHODS else '-'} {self._route_path} {status} {len(data)} bytes")

    # Logs: a method, a route's path, a status and a size (_send); never a path, query, header or body as sent.
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _send logs the answer once its size is known

    def log_error(self, format: str, *args: Any) -> None:
        self._log("connection timed out" if "timed out" in format else "connection error")

    def log_message(self, format: str, *args: Any) -> None:
        self._log("-")

    def _log(self, text: str) -> None:
        if not self.quiet:
            sys.stderr.write(f"{self.client_address[0]} {self.log_date_time_string()} {text}\n")


def _too_large() -> str:
    return f"request body is over {MAX_BODY_BYTES} bytes (Lambda's synchronous limit)"


class LocalServer(ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` at once (more wait in the listen queue), and the
    worker that runs queued training jobs."""

    daemon_threads = True
    request_queue_size = 256

    job_worker: LocalWorker | None = None  # runs queued training jobs for as long as the server serves

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int) -> None:
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def server_close(self) -> None:
        if self.job_worker is not None:
            self.job_worker.stop()
        super().server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that left before its answer (a closed or reset connection) is no error of the server's:
        nothing to print. Anything else is reported as socketserver does, with its traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        self._slots.acquire()  # released when the connection's thread ends (a timeout bounds the wait)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def make_server(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    quiet: bool = False,
    *,
    template: Path = DEFAULT_TEMPLATE,
    timeout: float = CONNECTION_TIMEOUT_SECONDS,
    max_connections: int = MAX_CONNECTIONS,
) -> LocalServer:
    """A threaded HTTP server wired to every function of the template; port 0 picks a free port."""
    gateway = LocalGateway(template).start_all()  # every cold start now: no thread ever imports a function
    handler_class = type("RequestHandler", (_RequestHandler,), {"gateway": gateway, "quiet": quiet, "timeout": timeout})
    server = LocalServer((host, port), handler_class, max_connections)
    train_function = gateway.table.handlers.get("TrainFunction")
    if train_function:  # the train function runs queued jobs on a worker, as SQS would on AWS
        from deployment_model.local.worker import start_worker  # imports the handlers' modules: not before now

        train = importlib.import_module(train_function.rpartition(".")[0])
        server.job_worker = start_worker(train, lambda: LocalContext(function_name="train"))
    return server
