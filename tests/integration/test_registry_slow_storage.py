"""A slow S3 is bounded by wall-clock time (issue 15.8): an endpoint that trickles one byte at a time never
trips botocore's per-read timeout, yet every storage call gives up within its budget and the function's
remaining time, answering 503 with Retry-After instead of a Lambda timeout."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from deployment_model.local.server import LocalContext
from deployment_model.storage import aws_calls
from tests.conftest import SEED_BUCKET, load_event, start_service

TRICKLE_INTERVAL_SECONDS = 0.2


@pytest.fixture
def trickling_server() -> Iterator[str]:
    """Answers every request with headers promising a large body, then one byte per interval, for a minute."""
    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)

    def trickle(connection: socket.socket) -> None:
        with connection:
            connection.settimeout(1)
            try:
                connection.recv(65536)
                connection.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nETag: "x"\r\n\r\n')
                for _ in range(300):
                    if stop.wait(TRICKLE_INTERVAL_SECONDS):
                        return
                    connection.sendall(b"x")
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=trickle, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


def answer_within(call: Any, seconds: float) -> dict[str, Any]:
    """Run the call; fail (instead of hanging the suite) when it takes longer than `seconds`."""
    outcome: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: outcome.update(answer=call()), daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"no answer within {seconds} s"
    outcome["seconds"] = time.monotonic() - started
    return outcome


def test_a_trickling_s3_never_trips_the_read_timeout_but_is_bounded(
    trickling_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aws_calls, "READ_TIMEOUT_SECONDS", 1.0)  # > the trickle interval: never trips
    monkeypatch.setenv("MODEL_BUCKET", SEED_BUCKET)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", trickling_server)
    service = start_service()
    remaining_seconds = 4.0
    context = LocalContext(function_name="inference", deadline=time.monotonic() + remaining_seconds)
    outcome = answer_within(
        lambda: service.inference_module.lambda_handler(load_event("api_predict.json"), context), 10
    )
    answer = outcome["answer"]
    assert answer["statusCode"] == 503, answer
    assert answer["multiValueHeaders"]["Retry-After"] == ["5"]
    assert outcome["seconds"] < remaining_seconds  # answered inside the function's time, not by a Lambda timeout
