"""The wall-clock guard on storage calls: a call that does not return in time is abandoned as unavailable,
within the request's remaining time; results and errors of calls that do return pass through unchanged."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployment_model.storage import deadline
from deployment_model.storage.deadline import TimeBoundObjectStore, storage_deadline
from deployment_model.storage.objects import DirectoryObjectStore, ObjectNotFoundError, StoreUnavailableError


class Hangs(DirectoryObjectStore):
    """A store whose reads block until released: a storage call that never completes on its own."""

    def __init__(self, root: Path, release: threading.Event) -> None:
        super().__init__(root)
        self.release = release

    def get(self, key: str) -> bytes:
        self.release.wait()
        return super().get(key)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # let the abandoned worker threads finish


def test_a_hung_call_is_abandoned_within_the_requests_remaining_time(tmp_path: Path, release) -> None:
    store = TimeBoundObjectStore(Hangs(tmp_path, release))
    remaining = deadline.ANSWER_MARGIN_SECONDS + 0.5
    started = time.monotonic()
    with storage_deadline(remaining), pytest.raises(StoreUnavailableError, match="did not answer within"):
        store.get("models/m/latest.json")
    assert time.monotonic() - started < remaining  # the request still has time to answer 503


def test_without_a_request_each_call_has_its_own_limit(tmp_path: Path, release, monkeypatch) -> None:
    monkeypatch.setattr(TimeBoundObjectStore, "CALL_SECONDS", 0.3)
    store = TimeBoundObjectStore(Hangs(tmp_path, release))
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        store.get("k")
    assert time.monotonic() - started < 2


def test_no_time_left_means_no_call(tmp_path: Path) -> None:
    inner = DirectoryObjectStore(tmp_path)
    with storage_deadline(deadline.ANSWER_MARGIN_SECONDS - 0.1), pytest.raises(StoreUnavailableError, match="no time"):
        TimeBoundObjectStore(inner).put("k", b"1")
    with pytest.raises(ObjectNotFoundError):
        inner.get("k")  # nothing was written


def test_answers_and_errors_pass_through(tmp_path: Path) -> None:
    store = TimeBoundObjectStore(DirectoryObjectStore(tmp_path))
    tag = store.put("a/b", b"x", if_none_match=True)
    assert store.get_tagged("a/b") == (b"x", tag)
    assert store.list_objects("a/").keys == ["a/b"]
    store.delete("a/b")
    with pytest.raises(ObjectNotFoundError):
        store.get("a/b")


def test_storage_time_ends_with_the_function_or_api_gateway() -> None:
    from deployment_model.api.deadlines import storage_seconds
    from deployment_model.local.server import LocalContext

    api_event = {"httpMethod": "GET", "path": "/models", "requestContext": {}}
    direct = LocalContext(function_name="f", deadline=time.monotonic() + 600)
    assert storage_seconds(api_event, direct) == 29.0  # API Gateway stops waiting first
    assert 590 < storage_seconds({"x_test": [1]}, direct) <= 600  # a direct invocation has the function's time
    short = LocalContext(function_name="f", deadline=time.monotonic())
    assert storage_seconds(api_event, short) == 0.0
    assert storage_seconds(api_event, object()) == 29.0  # a context that cannot say
