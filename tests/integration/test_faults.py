"""Faults are contained: storage down, slow or failing gives a 503 with Retry-After in bounded time; a corrupt
or half-written model is never served; a warm function keeps serving the good version it holds."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from deployment_model.storage import aws_calls
from deployment_model.storage.objects import StoreUnavailableError
from tests.conftest import SEED_BUCKET, Service, failing_aws, load_event, start_service


@pytest.fixture
def quick_s3_timeouts(monkeypatch: pytest.MonkeyPatch) -> float:
    """Shorter botocore timeouts than production's, same mechanism; returns the worst case they imply."""
    monkeypatch.setattr(aws_calls, "CONNECT_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(aws_calls, "READ_TIMEOUT_SECONDS", 0.5)
    attempts = aws_calls.MAX_ATTEMPTS
    return attempts * (0.5 + 0.5) + attempts * 1.0 + 2.0  # timeouts, backoff between attempts, slack


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: a hung S3."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture
def failing_server() -> Iterator[str]:
    """Answers every request 503 SlowDown, as an overloaded S3 does."""
    with failing_aws(503, "SlowDown") as (endpoint, _):
        yield endpoint


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once this socket closes


def service_against(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Service:
    monkeypatch.setenv("MODEL_BUCKET", SEED_BUCKET)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    return start_service()


@pytest.mark.parametrize("storage", ["unreachable", "silent", "failing"])
def test_storage_faults_are_a_503_with_retry_after_in_bounded_time(
    storage: str, request: pytest.FixtureRequest, quick_s3_timeouts: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = {
        "unreachable": closed_port,
        "silent": lambda: request.getfixturevalue("silent_server"),
        "failing": lambda: request.getfixturevalue("failing_server"),
    }[storage]()
    service = service_against(endpoint, monkeypatch)
    for call, event in ((service.predict, "api_predict.json"), (service.train, "api_train.json")):
        started = time.monotonic()
        answer = call(load_event(event))
        elapsed = time.monotonic() - started
        assert answer["statusCode"] == 503, answer
        assert answer["multiValueHeaders"]["Retry-After"] == ["5"]
        assert '"error":"storage_unavailable"' in answer["body"]
        assert elapsed < quick_s3_timeouts, f"{storage}: {elapsed:.1f}s"


def test_a_warm_function_keeps_serving_through_a_storage_outage(
    moto_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_BUCKET", SEED_BUCKET)
    monkeypatch.setenv("MODEL_CACHE_TTL_SECONDS", "0")  # check the pointer on every call
    service = start_service()
    version = service.train(load_event("train.json"))["model_version"]
    assert service.predict(load_event("predict.json"))["model_version"] == version
    objects = service.inference_module.registry.objects

    def down(key: str) -> bytes:
        raise StoreUnavailableError("s3 could not be reached")

    monkeypatch.setattr(objects, "get", down)
    monkeypatch.setattr(objects, "get_tagged", down)
    answer = service.predict(load_event("predict.json"))
    assert answer["statusCode"] == 200 and answer["model_version"] == version


def test_a_corrupt_new_version_is_refused_cold_and_skipped_warm(local_service: Service, monkeypatch) -> None:
    monkeypatch.setattr(local_service.inference_module.cache, "ttl_seconds", 0)
    good = local_service.train({})["model_version"]
    assert local_service.predict({"x_test": [1, 2]})["model_version"] == good
    bad = local_service.train({"candidates": ["sgd"]})["model_version"]
    registry = local_service.train_module.registry
    metadata = registry.get_version("Model_ml", bad)
    registry.objects.put(metadata["artifacts"]["onnx"]["key"], b"tampered bytes")  # what inference serves

    warm = local_service.predict({"x_test": [1, 2]})
    assert warm["statusCode"] == 200 and warm["model_version"] == good
    cold = start_service().predict({"x_test": [1, 2]})
    assert cold["statusCode"] == 409 and cold["error"] == "model_integrity_error"
    assert bad in cold["message"] and "onnx" in cold["message"]
    pinned = start_service().predict({"x_test": [1, 2], "model_version": good})
    assert pinned["statusCode"] == 200  # the client can fall back to a good version meanwhile


def test_a_training_that_dies_before_publishing_changes_nothing(local_service: Service, monkeypatch) -> None:
    good = local_service.train({})["model_version"]
    objects = local_service.train_module.registry.objects
    real_put = objects.put

    def pointer_write_fails(key: str, data: bytes, **conditions: Any) -> str:
        if key.endswith("latest.json"):
            raise StoreUnavailableError("s3 answered SlowDown")
        return real_put(key, data, **conditions)

    monkeypatch.setattr(objects, "put", pointer_write_fails)
    failed = local_service.train({"candidates": ["sgd"]})
    assert failed["statusCode"] == 503 and "SlowDown" in failed["message"]
    fresh = start_service()
    assert fresh.predict({"x_test": [1, 2]})["model_version"] == good
