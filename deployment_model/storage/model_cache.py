"""The models an inference function keeps in memory between invocations.

The seed downloaded and unpickled model and scaler on every call. Here a warm call makes no storage
request at all, except one small read of the published-version pointer per TTL to notice a newly published
version. What a version becomes in memory is the caller's business: it passes a loader (bytes -> object).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from deployment_model.storage.objects import ModelNotFoundError, StoreError
from deployment_model.storage.registry import ModelRegistry, StoredVersion

T = TypeVar("T")


@dataclass
class _Held(Generic[T]):
    version: str
    value: T
    checked_at: float


class ModelCache(Generic[T]):
    """Loaded versions kept between invocations: the published version of the most recently used names,
    and a few pinned versions, each bounded and evicted least recently used first.

    A newly published version that fails its checks (a StoreError, or one of `load_errors` from the loader)
    is not swapped in: the version already held keeps serving and the failure is logged. Likewise when
    storage is unreachable. A model whose pointer is gone (deleted) is dropped.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        loader: Callable[[StoredVersion], T],
        ttl_seconds: float,
        *,
        kinds: Iterable[str] = ("model", "scaler"),
        load_errors: tuple[type[Exception], ...] = (),
        logger: logging.Logger | None = None,
        on_load: Callable[[T, float], None] | None = None,
        max_published: int = 16,
        max_pinned: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.ttl_seconds = ttl_seconds
        self._loader = loader
        self._kinds = tuple(kinds)
        self._keep_serving_on = (StoreError, *load_errors)
        self._logger = logger or logging.getLogger(__name__)
        self._on_load = on_load
        self._max_published = max_published
        self._max_pinned = max_pinned
        self._clock = clock
        self._published: OrderedDict[str, _Held[T]] = OrderedDict()
        self._pinned: OrderedDict[tuple[str, str], T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, version: str | None = None) -> T:
        with self._lock:
            return self._pinned_version(name, version) if version else self._published_version(name)

    def _published_version(self, name: str) -> T:
        now = self._clock()
        held = self._published.get(name)
        if held is not None:
            self._published.move_to_end(name)
            if now - held.checked_at < self.ttl_seconds:
                return held.value
        try:
            pointer = self.registry.published(name)
        except ModelNotFoundError:
            self._published.pop(name, None)  # deleted (or never trained): nothing to keep serving
            raise
        except self._keep_serving_on as exc:
            return self._keep(name, held, now, exc)
        if held is not None and pointer.version == held.version:
            held.checked_at = now
            return held.value
        try:
            value = self._load(name, pointer.version, pointer.metadata_sha256)
        except self._keep_serving_on as exc:
            return self._keep(name, held, now, exc)
        self._published[name] = _Held(pointer.version, value, now)
        self._published.move_to_end(name)
        if len(self._published) > self._max_published:
            self._published.popitem(last=False)
        return value

    def _keep(self, name: str, held: _Held[T] | None, now: float, exc: Exception) -> T:
        if held is None:
            raise exc
        self._logger.error(
            "keeping the version already loaded",
            extra={"model_name": name, "model_version": held.version, "reason": str(exc)},
        )
        held.checked_at = now
        return held.value

    def _pinned_version(self, name: str, version: str) -> T:
        held = self._published.get(name)
        if held is not None and held.version == version:
            return held.value
        key = (name, version)
        if key in self._pinned:
            self._pinned.move_to_end(key)
            return self._pinned[key]
        loaded = self._load(name, version, None)
        self._pinned[key] = loaded
        if len(self._pinned) > self._max_pinned:
            self._pinned.popitem(last=False)
        return loaded

    def _load(self, name: str, version: str, metadata_sha256: str | None) -> T:
        started = time.perf_counter()
        value = self._loader(self.registry.load(name, version, self._kinds, metadata_sha256))
        seconds = time.perf_counter() - started
        self._logger.info(
            "model loaded", extra={"model_name": name, "model_version": version, "load_ms": round(seconds * 1e3, 2)}
        )
        if self._on_load:
            self._on_load(value, seconds)
        return value
