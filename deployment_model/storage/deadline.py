"""Every storage call bounded by wall-clock time, within the function's remaining time.

botocore's timeouts bound each socket operation, not a whole call: a server that sends one byte every 2 s
never trips a 3 s read timeout, and the function would run into Lambda's own timeout (a bare 502/504 at API
Gateway) instead of answering 503. Here each call runs on a worker thread and the caller waits at most
CALL_SECONDS, and never past the deadline of the request being served (set by `storage_deadline`).
A call that overruns is abandoned (its thread finishes or fails on its own) and reported as unavailable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from deployment_model.storage.objects import Listing, ObjectStore, StoreUnavailableError

T = TypeVar("T")
ANSWER_MARGIN_SECONDS = 1.0  # kept back from the function's remaining time to shape and send the answer

_deadline: ContextVar[float | None] = ContextVar("storage_deadline", default=None)


@contextmanager
def storage_deadline(remaining_seconds: float | None) -> Iterator[None]:
    """Within this block no storage call outlives the request: pass the function's remaining time."""
    deadline = None if remaining_seconds is None else time.monotonic() + remaining_seconds - ANSWER_MARGIN_SECONDS
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


class TimeBoundObjectStore:
    """An ObjectStore whose every call returns, or raises StoreUnavailableError, within its time budget."""

    CALL_SECONDS = 10.0  # about botocore's own worst case (2 attempts x (1 s connect + 3 s read) + backoff)

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.location = inner.location
        self.tags_are_etags = inner.tags_are_etags

    def get(self, key: str) -> bytes:
        return self._bounded(self.inner.get, key)

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        return self._bounded(self.inner.get_tagged, key)

    def size(self, key: str) -> int:
        return self._bounded(self.inner.size, key)

    def put(self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None) -> str:
        return self._bounded(lambda: self.inner.put(key, data, if_none_match=if_none_match, if_match=if_match))

    def delete(self, key: str) -> None:
        self._bounded(self.inner.delete, key)

    def list_objects(
        self, prefix: str, *, start_after: str | None = None, limit: int = 1000, delimiter: str | None = None
    ) -> Listing:
        return self._bounded(
            lambda: self.inner.list_objects(prefix, start_after=start_after, limit=limit, delimiter=delimiter)
        )

    def _bounded(self, call: Callable[..., T], *args: Any) -> T:
        budget = self.CALL_SECONDS
        deadline = _deadline.get()
        if deadline is not None:
            budget = min(budget, deadline - time.monotonic())
        if budget <= 0:
            raise StoreUnavailableError(f"{self.location}: no time left in this request for another storage call")
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append((True, call(*args)))
            except BaseException as exc:  # handed to the caller's thread below
                outcome.append((False, exc))

        worker = threading.Thread(target=run, name="storage-call", daemon=True)
        worker.start()
        worker.join(budget)
        if not outcome:
            raise StoreUnavailableError(f"{self.location} did not answer within {budget:.1f} s")
        succeeded, value = outcome[0]
        if not succeeded:
            raise value
        return value
