"""Run the service on a laptop: no AWS, no Docker.

`serve` stands in for API Gateway and the Lambda runtime: each HTTP request becomes the REST proxy event
API Gateway would send, and goes through the same `lambda_handler` the images run. `train` and `predict`
invoke the handlers directly, as the Lambda console or `sam local invoke` would.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000  # the port `sam local start-api` uses
DEFAULT_STORE_DIR = ".model-store"
OPENAPI_PATH = "/openapi.json"
MAX_BODY_BYTES = 6 * 1024 * 1024  # what Lambda accepts synchronously
MAX_DRAINED_BYTES = 64 * 1024 * 1024  # larger bodies are cut off unread

# Which function answers which path: the same mapping as the API in template.yaml.
FUNCTIONS = {
    "train": "deployment_model.train.app",
    "inference": "deployment_model.inference.app",
}
ROUTES = {"/train": "train", "/predict": "inference", "/inference": "inference"}

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


def function_for(method: str, path: str) -> str:
    """Which function answers this request; an unknown path still gets the inference handler's own 404."""
    return ROUTES.get(path, "inference")


def load_handler(function: str) -> Handler:
    return importlib.import_module(FUNCTIONS[function]).lambda_handler


def invoke(function: str, event: Any) -> dict[str, Any]:
    """A direct invocation; what the function prints (its logs and metrics) goes to stderr."""
    handler = load_handler(function)
    with contextlib.redirect_stdout(sys.stderr):
        return handler(event, LocalContext(function_name=function))


def openapi_document() -> dict[str, Any]:
    """One OpenAPI document for both functions' routes, generated from their Powertools apps."""
    document: dict[str, Any] = {}
    for module in FUNCTIONS.values():
        app = importlib.import_module(module).app
        part = json.loads(app.get_openapi_json_schema(title="ML service", version="1.0.0"))
        if not document:
            document = part
            continue
        document["paths"].update(part["paths"])
        document.setdefault("components", {}).setdefault("schemas", {}).update(
            part.get("components", {}).get("schemas", {})
        )
    # Powertools documents its default 422 for validation errors; this service answers them 400 (ErrorResponse).
    for operations in document["paths"].values():
        for operation in operations.values():
            operation["responses"].pop("422", None)
    schemas = document["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    return document


def proxy_event(method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict[str, Any]:
    """The REST API proxy event API Gateway builds for this request (the shape `sam local` generates)."""
    url = urlsplit(target)
    query = dict(parse_qsl(url.query, keep_blank_values=True)) or None
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode("ascii"), True
    return {
        "resource": url.path,
        "path": url.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": url.path,
            "httpMethod": method,
            "path": f"/Prod{url.path}",
            "stage": "Prod",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip},
            "protocol": "HTTP/1.1",
        },
        "body": text if body else None,
        "isBase64Encoded": is_base64,
    }


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as API Gateway offers
    disable_nagle_algorithm = True  # headers and body leave in separate writes: no 40 ms delayed-ACK stall
    server_version = "ml-service-local"
    handlers: ClassVar[dict[str, Handler]] = {}  # set by make_server
    openapi: ClassVar[bytes] = b"{}"

    def do_GET(self) -> None:
        if urlsplit(self.path).path == OPENAPI_PATH:
            self._send(200, {"Content-Type": ["application/json"]}, self.openapi)
        else:
            self._dispatch()

    def __getattr__(self, name: str) -> Any:
        """Every other method (POST, PUT, TRACE, ...) goes to the handlers, which answer 404 or 405 as JSON."""
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self.close_connection = True
            message = {"error": "invalid_request", "message": "Content-Length must be a non-negative integer"}
            self._send(400, {"Content-Type": ["application/json"]}, json.dumps(message).encode())
            return
        if length > MAX_BODY_BYTES:
            if length <= MAX_DRAINED_BYTES:  # read it, so the client sees the 413 instead of a broken pipe
                self._discard(length)
            message = {"error": "body_too_large", "message": f"request body is over {MAX_BODY_BYTES} bytes"}
            self.close_connection = True
            self._send(413, {"Content-Type": ["application/json"]}, json.dumps(message).encode())
            return
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        function = function_for(self.command, path)
        headers = {name: value for name, value in self.headers.items()}
        event = proxy_event(self.command, self.path, headers, body, self.client_address[0])
        answer = self.handlers[function](event, LocalContext(function_name=function))
        payload = answer.get("body") or ""
        data = base64.b64decode(payload) if answer.get("isBase64Encoded") else payload.encode("utf-8")
        multi = dict(answer.get("multiValueHeaders") or {})
        for name, value in (answer.get("headers") or {}).items():
            multi.setdefault(name, [value])
        self._send(int(answer["statusCode"]), multi, data)

    def _discard(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                return
            length -= len(chunk)

    def _send(self, status: int, headers: dict[str, list[str]], data: bytes) -> None:
        self.send_response(status)
        for name, values in headers.items():
            for value in values:
                self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def make_server(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, quiet: bool = False) -> ThreadingHTTPServer:
    """A threaded HTTP server wired to both handlers; port 0 picks a free port."""
    handler_class = type(
        "RequestHandler",
        (_RequestHandler,),
        {
            "handlers": {name: load_handler(name) for name in FUNCTIONS},
            "openapi": json.dumps(openapi_document()).encode(),
            **({"log_message": lambda self, *args: None} if quiet else {}),
        },
    )
    server = ThreadingHTTPServer((host, port), handler_class)
    server.daemon_threads = True
    return server
