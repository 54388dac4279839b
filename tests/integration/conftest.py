"""Servers on loopback for the integration tests: the local API server and moto's S3 over HTTP."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from deployment_model.local.server import LocalServer, make_server
from tests.conftest import SEED_BUCKET, Service, loaded_service, start_service


@dataclass
class Client:
    """A tiny HTTP client for the local server: (status, headers, JSON body)."""

    base_url: str

    def request(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers or {})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http on loopback only
                return response.status, dict(response.headers), json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), json.loads(error.read() or b"null")

    def post(self, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
        return self.request("POST", path, body, headers={"Content-Type": "application/json"})


MAX_TEST_CONNECTIONS = 8

HandlerWrapper = Callable[[type[BaseHTTPRequestHandler]], type[BaseHTTPRequestHandler]]


@dataclass
class LocalServerClient(Client):
    """A client of a running local server, with the server (its job worker) and the handlers it serves."""

    server: LocalServer
    service: Service


@contextmanager
def running_local_server(
    store: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    wrap_handler: HandlerWrapper | None = None,
    **options: Any,
) -> Iterator[LocalServerClient]:
    """The local server as `make run` starts it, on a free loopback port, serving until the block ends.

    With a `store`, the handlers are cold-started on that folder (and `env`) first, and the environment is
    restored after; without, the handlers already imported are served (say, patched by the test, or shared with
    another server). `wrap_handler` subclasses the request handler (e.g. to check an API key, as API Gateway
    would); `options` go to make_server (quiet, template, timeout, max_connections). The socket listens before
    the block starts, so a request sent at once waits for the server: no polling needed."""
    with pytest.MonkeyPatch.context() as patch:
        if store is not None:
            patch.setenv("MODEL_STORE_DIR", str(store))
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        service = start_service() if store is not None else loaded_service()
        server = make_server("127.0.0.1", 0, **{"quiet": True, **options})
        if wrap_handler is not None:
            server.RequestHandlerClass = wrap_handler(server.RequestHandlerClass)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield LocalServerClient(f"http://127.0.0.1:{server.server_port}", server, service)
        finally:
            server.shutdown()
            server.server_close()


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[LocalServerClient]:
    """The local server on a free port, with a directory store, as `make run` starts it."""
    with running_local_server(tmp_path / "store") as client:
        yield client


@pytest.fixture
def short_timeout_server(tmp_path: Path) -> Iterator[LocalServerClient]:
    """The local server with a 0.2 s connection timeout and at most MAX_TEST_CONNECTIONS connections at once."""
    with running_local_server(tmp_path / "store", timeout=0.2, max_connections=MAX_TEST_CONNECTIONS) as client:
        yield client


@pytest.fixture
def local_server_logs(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> Iterator[tuple[LocalServerClient, Callable[[], str]]]:
    """The local server logging its requests as `make run` does, and a function returning what it logged."""
    with running_local_server(tmp_path / "store", quiet=False) as client:
        yield client, lambda: "".join(capfd.readouterr())


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's S3 as a real HTTP server on loopback; boto3 reaches it through AWS_ENDPOINT_URL_S3."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto keeps its state per process, not per server: start from an empty S3.
    reset = urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310 - loopback
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://{host}:{port}")
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=SEED_BUCKET)
    try:
        yield client
    finally:
        server.stop()
