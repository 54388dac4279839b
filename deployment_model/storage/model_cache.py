"""The models an inference function keeps in memory between invocations.

The seed downloaded and unpickled model and scaler on every call. Here a warm call makes no storage
request at all, except one small read of the `latest` pointer per TTL to notice a newly published version.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from deployment_model.storage.models import ModelStore
from deployment_model.storage.objects import ArtifactIntegrityError, IncompatibleModelError, StoreUnavailableError


class Served(Protocol):
    """What the cache holds: a loaded version (the store's LoadedModel, or what `load` builds, e.g. ONNX)."""

    name: str
    version: str


@dataclass
class _Published:
    model: Served
    checked_at: float


class ModelCache:
    """Loaded models kept between invocations: the latest version per name, and a few pinned versions.

    A newly published version that fails its checks (digest, library versions) is not swapped in: the
    version already held keeps serving and the failure is logged. Likewise when storage is unreachable.
    """

    def __init__(
        self,
        store: ModelStore,
        ttl_seconds: float,
        *,
        logger: logging.Logger | None = None,
        on_load: Callable[[Served, float], None] | None = None,
        max_pinned: int = 8,
        clock: Callable[[], float] = time.monotonic,
        load: Callable[[str, str, str | None], Served] | None = None,
    ) -> None:
        """load(name, version, metadata_sha256) builds what is served; by default the store's joblib load."""
        self.store = store
        self._load_version = load or store.load
        self.ttl_seconds = ttl_seconds
        self._logger = logger or logging.getLogger(__name__)
        self._on_load = on_load
        self._max_pinned = max_pinned
        self._clock = clock
        self._latest: dict[str, _Published] = {}
        self._pinned: OrderedDict[tuple[str, str], Served] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, version: str | None = None) -> Served:
        with self._lock:
            return self._pinned_version(name, version) if version else self._latest_version(name)

    def _latest_version(self, name: str) -> Served:
        now = self._clock()
        held = self._latest.get(name)
        if held and now - held.checked_at < self.ttl_seconds:
            return held.model
        try:
            pointer = self.store.latest_pointer(name)
            if held and pointer["version"] == held.model.version:
                held.checked_at = now
                return held.model
            loaded = self._load(name, pointer["version"], pointer.get("metadata_sha256"))
        except (StoreUnavailableError, ArtifactIntegrityError, IncompatibleModelError) as exc:
            if held is None:
                raise
            self._logger.error(
                "keeping the version already loaded",
                extra={"model_name": name, "model_version": held.model.version, "reason": str(exc)},
            )
            held.checked_at = now
            return held.model
        self._latest[name] = _Published(loaded, now)
        return loaded

    def _pinned_version(self, name: str, version: str) -> Served:
        held = self._latest.get(name)
        if held and held.model.version == version:
            return held.model
        key = (name, version)
        if key in self._pinned:
            self._pinned.move_to_end(key)
            return self._pinned[key]
        loaded = self._load(name, version, None)
        self._pinned[key] = loaded
        if len(self._pinned) > self._max_pinned:
            self._pinned.popitem(last=False)
        return loaded

    def _load(self, name: str, version: str, metadata_sha256: str | None) -> Served:
        started = time.perf_counter()
        loaded = self._load_version(name, version, metadata_sha256)
        seconds = time.perf_counter() - started
        self._logger.info(
            "model loaded", extra={"model_name": name, "model_version": version, "load_ms": round(seconds * 1e3, 2)}
        )
        if self._on_load:
            self._on_load(loaded, seconds)
        return loaded
