"""Fixtures shared by every test: offline AWS credentials, and the two functions wired to a store."""

from __future__ import annotations

import contextlib
import importlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from deployment_model.local.server import LocalContext

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
SEED_BUCKET = "s3-bucket-model"  # the bucket name in the seed tutorial's JSON


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture(autouse=True)
def offline_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no inherited configuration: nothing here may reach a real AWS endpoint."""
    for name in ("MODEL_BUCKET", "MODEL_STORE_DIR", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")


@dataclass
class Service:
    """Both functions as Lambda would run them, plus direct access to their modules."""

    train_module: ModuleType
    inference_module: ModuleType

    def train(self, event: Any) -> dict[str, Any]:
        return self.train_module.lambda_handler(event, LocalContext(function_name="train"))

    def predict(self, event: Any) -> dict[str, Any]:
        return self.inference_module.lambda_handler(event, LocalContext(function_name="inference"))


HANDLER_MODULES = ("deployment_model.train.app", "deployment_model.inference.app")


def start_service() -> Service:
    """(Re)import both handlers so they open the store the environment now names, as a cold start does."""
    train, inference = (importlib.reload(importlib.import_module(name)) for name in HANDLER_MODULES)
    return Service(train, inference)


def loaded_service() -> Service:
    """Both handlers as they are now imported (started, or patched by a test): no cold start."""
    train, inference = (importlib.import_module(name) for name in HANDLER_MODULES)
    return Service(train, inference)


@pytest.fixture
def local_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Service:
    monkeypatch.setenv("MODEL_STORE_DIR", str(tmp_path / "store"))
    return start_service()


@pytest.fixture
def s3() -> Iterator[Any]:
    """moto's in-process S3 with the seed's bucket created."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=SEED_BUCKET)
        yield client


@pytest.fixture
def s3_service(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Service:
    monkeypatch.setenv("MODEL_BUCKET", SEED_BUCKET)
    return start_service()


def proxy_event(
    path: str,
    body: Any = None,
    *,
    raw: str | None = None,
    method: str = "POST",
    query: Mapping[str, str | Sequence[str]] | None = None,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """An API Gateway proxy event (the shape of events/api_predict.json) with this path, method, query and body.

    `body` is sent as JSON; None (and no `raw` text) is no body at all, as API Gateway sends a GET. `query` maps a
    name to a value or to a list of values (a name repeated in the URL): API Gateway puts every value in
    multiValueQueryStringParameters and the last one in queryStringParameters; no query is null in both. The
    requestContext stays the sample's (its path is /Prod/predict, whatever `path` is)."""
    event = load_event("api_predict.json")
    text = raw if raw is not None else (None if body is None else json.dumps(body))
    values = {name: [value] if isinstance(value, str) else list(value) for name, value in (query or {}).items()}
    event.update(
        path=path,
        resource=path,
        httpMethod=method,
        body=text,
        isBase64Encoded=base64_encoded,
        queryStringParameters={name: given[-1] for name, given in values.items()} or None,
        multiValueQueryStringParameters=values or None,
    )
    return event


def body_of(answer: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a proxy response, checking it is declared as JSON."""
    headers = {k.lower(): v for k, v in (answer.get("multiValueHeaders") or {}).items()}
    assert headers["content-type"] == ["application/json"]
    return json.loads(answer["body"])


@pytest.fixture
def atomic_s3_conditional_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto checks If-Match / If-None-Match and then writes, without a lock between (S3 itself decides
    atomically), and an overwrite closes the old object's buffer while a GET may still be reading it ("I/O
    operation on closed file", about 1 run in 15 of the racing-writers test): serialise moto's PutObject and
    GetObject so racing readers and writers meet S3's semantics, in-process or over HTTP."""
    from moto.s3.responses import S3Response

    lock = threading.Lock()

    def atomic(operation: Callable[[S3Response], Any]) -> Callable[[S3Response], Any]:
        def under_lock(self: S3Response) -> Any:
            with lock:
                return operation(self)

        return under_lock

    for name in ("put_object", "get_object"):
        monkeypatch.setattr(S3Response, name, atomic(getattr(S3Response, name)))


@contextlib.contextmanager
def failing_aws(status: int, code: str) -> Iterator[tuple[str, list[str]]]:
    """A 127.0.0.1 endpoint that answers every request with this AWS error (status, code), as S3 or SQS would
    when overloaded or failing; yields its URL and the paths it was asked for, in order."""
    asked: list[str] = []

    class Failing(BaseHTTPRequestHandler):
        def _fail(self) -> None:
            asked.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = f"<Error><Code>{code}</Code><Message>{code}</Message></Error>".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _fail

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", asked
    finally:
        server.shutdown()
        server.server_close()
