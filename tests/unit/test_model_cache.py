"""The warm cache's bookkeeping: no storage request within the TTL (exactly 60 s), one small read after it,
bounded least-recently-used caches, the held version kept through outages and bad versions, never a mix."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from deployment_model.ml.artifacts import MODEL_KINDS, LoadedModel, load_model
from deployment_model.storage.model_cache import ModelCache
from deployment_model.storage.objects import (
    ArtifactIntegrityError,
    DirectoryObjectStore,
    ModelNotFoundError,
    StoreUnavailableError,
)
from deployment_model.storage.registry import ModelRegistry, StoredVersion
from tests.unit.test_store import RecordingObjects, publish, store_version

TTL = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def objects(tmp_path: Path) -> RecordingObjects:
    return RecordingObjects(DirectoryObjectStore(tmp_path))


@pytest.fixture
def registry(objects: RecordingObjects) -> ModelRegistry:
    return ModelRegistry(objects)


def calls(objects: RecordingObjects) -> int:
    return len(objects.calls)


def cache_of(registry: ModelRegistry, clock: Clock, **options) -> ModelCache[StoredVersion]:
    """A cache whose loader keeps the verified bytes as they are (fast, and shows what it was handed)."""
    return ModelCache(registry, lambda stored: stored, TTL, kinds=MODEL_KINDS, clock=clock, **options)


def test_a_warm_call_within_the_ttl_reads_nothing(objects, registry, trained_iris_model) -> None:
    clock = Clock()
    publish(registry, trained_iris_model)
    cache = cache_of(registry, clock)
    cache.get("Model_ml")
    before = calls(objects)
    for _ in range(100):
        clock.now += 0.5
        cache.get("Model_ml")
    assert calls(objects) == before


def test_the_ttl_boundary_is_exactly_ttl_seconds(objects, registry, trained_iris_model) -> None:
    clock = Clock()
    publish(registry, trained_iris_model)
    cache = cache_of(registry, clock)
    cache.get("Model_ml")
    start, before = clock.now, calls(objects)
    clock.now = start + TTL - 1e-6
    cache.get("Model_ml")
    assert calls(objects) == before  # not yet
    clock.now = start + TTL
    cache.get("Model_ml")
    assert objects.calls[before:] == [("get", "models/Model_ml/latest.json")]  # exactly at the TTL: one check


def test_an_unchanged_pointer_costs_one_read_and_resets_the_check_time(objects, registry, trained_iris_model) -> None:
    clock = Clock()
    publish(registry, trained_iris_model)
    cache = cache_of(registry, clock)
    cache.get("Model_ml")
    clock.now += TTL + 1
    before = calls(objects)
    cache.get("Model_ml")
    assert objects.calls[before:] == [("get", "models/Model_ml/latest.json")]
    checked = clock.now
    for step in (1, 20, 40, TTL - 1):  # several calls within one TTL of that check: nothing more
        clock.now = checked + step
        cache.get("Model_ml")
    assert calls(objects) == before + 1
    clock.now = checked + TTL
    cache.get("Model_ml")
    assert calls(objects) == before + 2


def test_an_outage_keeps_the_held_version_and_resets_the_check_time(
    objects, registry, trained_iris_model, monkeypatch
) -> None:
    clock = Clock()
    good = publish(registry, trained_iris_model)["version"]
    cache = cache_of(registry, clock)
    cache.get("Model_ml")
    attempts: list[str] = []

    def unreachable(key: str) -> tuple[bytes, str]:
        attempts.append(key)
        raise StoreUnavailableError("s3://bucket could not be reached")

    monkeypatch.setattr(objects.inner, "get_tagged", unreachable)
    clock.now += TTL + 1
    for _ in range(5):  # within one TTL of the failed check: one attempt, not one per call
        assert cache.get("Model_ml").version == good
        clock.now += 10
    assert len(attempts) == 1
    with pytest.raises(StoreUnavailableError):
        cache_of(registry, clock).get("Model_ml")  # a cold function has nothing to fall back on


def test_a_bad_new_version_is_skipped_warm_refused_cold_and_retried_once_per_ttl(
    objects, registry, trained_iris_model
) -> None:
    clock = Clock()
    good = publish(registry, trained_iris_model)["version"]
    cache = ModelCache(registry, load_model, TTL, clock=clock)
    cache.get("Model_ml")
    bad = publish(registry, trained_iris_model)
    objects.put(bad["artifacts"]["model"]["key"], b"corrupted")
    clock.now += TTL + 1
    assert cache.get("Model_ml").version == good
    before = calls(objects)
    clock.now += TTL / 2
    assert cache.get("Model_ml").version == good
    assert calls(objects) == before  # the failed check counts as a check
    with pytest.raises(ArtifactIntegrityError, match=bad["version"]):
        ModelCache(registry, load_model, TTL).get("Model_ml")


def test_ttl_zero_checks_the_pointer_on_every_call(objects, registry, trained_iris_model) -> None:
    publish(registry, trained_iris_model)
    cache = ModelCache(registry, lambda stored: stored, 0)
    cache.get("Model_ml")
    before = calls(objects)
    for _ in range(3):
        cache.get("Model_ml")
    assert objects.calls[before:] == [("get", "models/Model_ml/latest.json")] * 3


def test_a_pinned_version_is_loaded_once_and_never_rechecked(objects, registry, trained_iris_model) -> None:
    clock = Clock()
    first = publish(registry, trained_iris_model)["version"]
    publish(registry, trained_iris_model)
    cache = cache_of(registry, clock)
    assert cache.get("Model_ml", first).version == first
    before = calls(objects)
    clock.now += 3600
    assert cache.get("Model_ml", first).version == first
    assert calls(objects) == before


def test_the_pinned_cache_is_bounded_and_evicts_the_least_recently_used(objects, registry, trained_iris_model) -> None:
    clock = Clock()
    v1, v2, v3 = (store_version(registry, trained_iris_model)["version"] for _ in range(3))
    cache = cache_of(registry, clock, max_pinned=2)
    cache.get("Model_ml", v1)
    cache.get("Model_ml", v2)
    cache.get("Model_ml", v1)  # v1 is now the most recently used
    cache.get("Model_ml", v3)  # evicts v2
    before = calls(objects)
    cache.get("Model_ml", v1)
    cache.get("Model_ml", v3)
    assert calls(objects) == before  # still held
    cache.get("Model_ml", v2)
    assert calls(objects) > before  # evicted: loaded again


def test_the_published_cache_is_bounded_and_evicts_the_least_recently_used(
    objects, registry, trained_iris_model
) -> None:
    clock = Clock()
    for name in ("a", "b", "c"):
        publish(registry, trained_iris_model, name=name)
    cache = cache_of(registry, clock, max_published=2)
    cache.get("a")
    cache.get("b")
    cache.get("a")  # a is now the most recently used
    cache.get("c")  # evicts b
    before = calls(objects)
    cache.get("a")
    cache.get("c")
    assert calls(objects) == before
    cache.get("b")
    assert len(objects.calls) - before > 1  # not just a pointer check: loaded again


def test_a_deleted_model_is_dropped_after_the_ttl(objects, registry, trained_iris_model) -> None:
    clock = Clock()
    version = publish(registry, trained_iris_model)["version"]
    cache = cache_of(registry, clock)
    cache.get("Model_ml")
    registry.delete_model("Model_ml")
    clock.now += TTL
    with pytest.raises(ModelNotFoundError):
        cache.get("Model_ml")
    with pytest.raises(ModelNotFoundError):  # nor served from memory when pinned by its version
        cache.get("Model_ml", version)


def test_rollback_reaches_traffic_within_the_ttl_and_never_mixes_versions(
    objects, registry, trained_iris_model
) -> None:
    clock = Clock()
    first = publish(registry, trained_iris_model)
    second = publish(registry, trained_iris_model)
    cache = cache_of(registry, clock)
    assert cache.get("Model_ml").version == second["version"]
    registry.publish("Model_ml", first["version"], reason="second one misbehaves")
    clock.now += TTL
    served = cache.get("Model_ml")
    assert served.version == first["version"]
    for kind in MODEL_KINDS:  # model and scaler both from the version served, digests as recorded at training
        assert hashlib.sha256(served.artifacts[kind]).hexdigest() == first["artifacts"][kind]["sha256"]


def test_loads_are_reported(registry, trained_iris_model) -> None:
    version = publish(registry, trained_iris_model)["version"]
    loads: list[tuple[str, float]] = []

    def on_load(loaded: LoadedModel, seconds: float) -> None:
        loads.append((loaded.version, seconds))

    cache = ModelCache(registry, load_model, TTL, on_load=on_load)
    cache.get("Model_ml")
    cache.get("Model_ml")
    assert [v for v, _ in loads] == [version] and loads[0][1] > 0


def test_pinning_the_published_version_reuses_what_is_held(objects, registry, trained_iris_model) -> None:
    clock = Clock()
    published = publish(registry, trained_iris_model)["version"]
    cache = cache_of(registry, clock)
    held = cache.get("Model_ml")
    before = calls(objects)
    assert cache.get("Model_ml", published) is held  # the same object: not loaded a second time
    assert calls(objects) == before


def test_keeping_the_held_version_is_logged_with_the_model_the_version_and_why(
    objects, registry, trained_iris_model, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    good = publish(registry, trained_iris_model)["version"]
    cache = cache_of(registry, clock)
    cache.get("Model_ml")

    def unreachable(key: str) -> tuple[bytes, str]:
        raise StoreUnavailableError("s3://bucket could not be reached")

    monkeypatch.setattr(objects.inner, "get_tagged", unreachable)
    clock.now += TTL + 1
    with caplog.at_level("ERROR", logger="deployment_model.storage.model_cache"):
        assert cache.get("Model_ml").version == good
    [record] = [r for r in caplog.records if r.name == "deployment_model.storage.model_cache"]
    assert record.getMessage() == "keeping the version already loaded"
    assert (record.model_name, record.model_version) == ("Model_ml", good)
    assert record.reason == "s3://bucket could not be reached"


def test_skipping_a_bad_new_version_is_logged_with_the_model_and_the_version_kept(
    objects, registry, trained_iris_model, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    good = publish(registry, trained_iris_model)["version"]
    cache = ModelCache(registry, load_model, TTL, clock=clock)
    cache.get("Model_ml")
    bad = publish(registry, trained_iris_model)
    objects.put(bad["artifacts"]["model"]["key"], b"corrupted")
    clock.now += TTL + 1
    with caplog.at_level("ERROR", logger="deployment_model.storage.model_cache"):
        assert cache.get("Model_ml").version == good
    [record] = [r for r in caplog.records if r.name == "deployment_model.storage.model_cache"]
    assert (record.getMessage(), record.model_name, record.model_version) == (
        "keeping the version already loaded",
        "Model_ml",
        good,
    )
    assert bad["version"] in record.reason
