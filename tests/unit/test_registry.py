"""The registry's rules on both backends: no lost update under racing writers, bounded listing cost, history,
publish and delete rules, page tokens, and models written before the registry existed."""

from __future__ import annotations

import hashlib
import itertools
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from deployment_model.ml.artifacts import MODEL_KINDS, dump, load_model, runtime_versions
from deployment_model.storage.objects import ArtifactIntegrityError, DirectoryObjectStore, ModelNotFoundError
from deployment_model.storage.publishing import decide, publish_trained_version
from deployment_model.storage.registry import (
    InvalidRegistryRequestError,
    ModelRegistry,
    PublishConflictError,
    VersionPublishedError,
    new_version_id,
)
from tests.unit.test_store import RecordingObjects, store_version

WRITERS = 8
ROUNDS = 3


def tiny_version(registry: ModelRegistry, name: str = "m", f1: float = 0.5, features: Any = None) -> str:
    """A version with small artifacts (the registry deals in bytes; what they hold does not matter here)."""
    metadata = {"metrics": {"f1_macro": f1, "accuracy": f1}, "feature_names": features or ["a", "b"]}
    written = registry.create_version(name, {"model": ("m.bin", b"model"), "scaler": ("s.bin", b"scaler")}, metadata)
    return written["version"]


def events_of(registry: ModelRegistry, name: str) -> list[dict[str, Any]]:
    events, token = [], None
    while True:
        page = registry.history(name, limit=7, next_token=token)
        events += page.items
        if page.next_token is None:
            return events
        token = page.next_token


# --- no lost update -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("atomic_s3_conditional_writes")
def test_racing_writers_lose_no_event_and_the_pointer_names_the_last_one(objects: RecordingObjects) -> None:
    registry = ModelRegistry(objects)
    seed = tiny_version(registry)
    registry.publish("m", seed, action="train")
    start = threading.Barrier(WRITERS)
    changes: list[str] = []
    failures: list[BaseException] = []
    # Versions are written beforehand, so that the writers collide on the pointer itself.
    plans = [[seed if (i + r) % 3 == 2 else tiny_version(registry) for r in range(ROUNDS)] for i in range(WRITERS)]

    def writer(index: int) -> None:
        try:
            start.wait()
            for version in plans[index]:  # a new version ("train"), or a rollback to the first one meanwhile
                action = None if version == seed else "train"
                result = registry.publish("m", version, reason=f"writer {index}", action=action)
                if result.event is not None:
                    changes.append(result.event["version"])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    events = events_of(registry, "m")
    assert len(events) == len(changes) + 1  # every change is one event; nothing else is
    pointer = registry.published("m")
    assert pointer.version == events[0]["version"] and pointer.seq == len(events)
    for newer, older in itertools.pairwise(events):  # an unbroken chain: nothing lost in between
        assert newer["previous_version"] == older["version"]
    assert events[-1]["previous_version"] is None


# --- bounded cost -------------------------------------------------------------------------------------


class _NoNameCheck(ModelRegistry):
    """Setup only: skips the per-training name check so that 1,000 versions are quick to write."""

    def _refuse_case_twins(self, name: str) -> None:
        pass


def test_listing_a_model_with_1000_versions_costs_limit_plus_a_few_requests(tmp_path: Path) -> None:
    setup = _NoNameCheck(DirectoryObjectStore(tmp_path))
    versions = [tiny_version(setup) for _ in range(1000)]
    setup.publish("m", versions[500])
    objects = RecordingObjects(DirectoryObjectStore(tmp_path))
    registry = ModelRegistry(objects)
    seen: list[str] = []
    token = None
    for limit in (20, 100, 1):
        objects.calls.clear()
        pointer, page = registry.list_versions("m", limit=limit, next_token=token)
        assert len(page.items) == limit and len(objects.calls) <= limit + 3, objects.calls
        seen += [v["version"] for v in page.items]
        token = page.next_token
    assert seen == sorted(versions, reverse=True)[:121]  # newest first, across pages, nothing repeated
    assert pointer.version == versions[500]
    objects.calls.clear()
    (summary,) = registry.list_models().items
    assert summary.versions == 1000 and summary.published_version == versions[500]
    assert len(objects.calls) <= 4


# --- history, publish and delete rules ----------------------------------------------------------------


def test_history_records_train_publish_and_rollback_newest_first(objects: RecordingObjects) -> None:
    registry = ModelRegistry(objects)
    first, second = tiny_version(registry), tiny_version(registry)
    registry.publish("m", first, action="train", request_id="r1")
    registry.publish("m", second, reason="better", request_id="r2")
    registry.publish("m", first, reason="second misbehaves", request_id="r3")
    events = events_of(registry, "m")
    assert [(e["action"], e["version"], e["previous_version"]) for e in events] == [
        ("rollback", first, second),
        ("publish", second, first),
        ("train", first, None),
    ]
    assert [e["reason"] for e in events] == ["second misbehaves", "better", None]
    assert [e["request_id"] for e in events] == ["r3", "r2", "r1"]
    assert all(e["at"] for e in events)


def test_publishing_the_published_version_changes_nothing(objects: RecordingObjects) -> None:
    registry = ModelRegistry(objects)
    version = tiny_version(registry)
    registry.publish("m", version)
    result = registry.publish("m", version)
    assert result.event is None and result.previous_version == version
    assert len(events_of(registry, "m")) == 1


def test_expected_version_guards_a_publish(objects: RecordingObjects) -> None:
    registry = ModelRegistry(objects)
    first, second = tiny_version(registry), tiny_version(registry)
    registry.publish("m", first)
    with pytest.raises(PublishConflictError, match=f"{first!r} is published now"):
        registry.publish("m", second, expected_version=second)
    assert registry.published("m").version == first
    assert registry.publish("m", second, expected_version=first).previous_version == first


def test_an_event_left_in_the_pointer_by_a_dying_writer_is_not_lost(objects: RecordingObjects) -> None:
    registry = ModelRegistry(objects)
    first, second = tiny_version(registry), tiny_version(registry)
    registry.publish("m", first)

    class DiesAfterThePointer(RecordingObjects):
        def put(self, key: str, data: bytes, **conditions: Any) -> str:
            if "/history/" in key and second.encode() in data:  # after moving the pointer, before its event
                raise TimeoutError("Lambda timed out")
            return super().put(key, data, **conditions)

    with pytest.raises(TimeoutError):
        ModelRegistry(DiesAfterThePointer(objects)).publish("m", second, action="train")
    assert [e["version"] for e in events_of(registry, "m")] == [second, first]  # read from the pointer
    registry.publish("m", first)  # the next writer copies it to history/ first
    assert [e["version"] for e in events_of(registry, "m")] == [first, second, first]


def test_the_published_version_cannot_be_deleted_others_can(objects: RecordingObjects) -> None:
    registry = ModelRegistry(objects)
    first, second = tiny_version(registry), tiny_version(registry)
    registry.publish("m", second)
    with pytest.raises(VersionPublishedError, match="publish another one first"):
        registry.delete_version("m", second)
    registry.delete_version("m", first)
    _, page = registry.list_versions("m")
    assert [v["version"] for v in page.items] == [second]
    assert not objects.list_objects(f"models/m/versions/{first}/").keys
    with pytest.raises(ModelNotFoundError):
        registry.delete_version("m", first)
    with pytest.raises(ModelNotFoundError):
        registry.publish("m", first)


def test_deleting_a_model_removes_everything_under_it(objects: RecordingObjects) -> None:
    registry = ModelRegistry(objects)
    for _ in range(3):
        registry.publish("m", tiny_version(registry))
    tiny_version(registry, name="other")
    assert registry.delete_model("m") == 3
    assert objects.list_objects("models/m/").keys == []
    assert [m.name for m in registry.list_models().items] == ["other"]
    for read in (registry.published, registry.list_versions, registry.history, registry.delete_model):
        with pytest.raises(ModelNotFoundError):
            read("m")


def test_list_models_pages_by_name(objects: RecordingObjects) -> None:
    registry = ModelRegistry(objects)
    for name in ("c", "a", "b"):
        tiny_version(registry, name=name)
    registry.publish("b", tiny_version(registry, name="b"))
    first = registry.list_models(limit=2)
    second = registry.list_models(limit=2, next_token=first.next_token)
    assert [m.name for m in first.items] == ["a", "b"] and [m.name for m in second.items] == ["c"]
    assert second.next_token is None
    b = first.items[1]
    assert b.versions == 2 and b.published_version is not None and b.published_at is not None
    assert first.items[0].published_version is None


@pytest.mark.parametrize("token", ["garbage!", "", "bW9kZWxzL290aGVyLw", "Li4v"])
def test_a_token_this_listing_did_not_give_is_refused(objects: RecordingObjects, token: str) -> None:
    registry = ModelRegistry(objects)
    tiny_version(registry)
    for listing in (
        lambda: registry.list_versions("m", next_token=token),
        lambda: registry.history("m", next_token=token),
    ):
        with pytest.raises(InvalidRegistryRequestError, match="next_token"):
            listing()


# --- the publish gate ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "minimum", "candidate_f1", "published_f1", "same_features", "expected"),
    [
        ("always", None, 0.1, 0.9, True, True),
        ("never", None, 0.9, 0.1, True, False),
        ("if_better", None, 0.8, 0.8, True, True),  # at least: a tie publishes
        ("if_better", None, 0.79, 0.8, True, False),
        ("if_better", None, 0.9, 0.8, False, False),  # other features: never replaces it
        ("if_better", None, 0.1, None, True, True),  # nothing published yet
        ("always", 0.9, 0.8999, None, True, False),
        ("always", 0.9, 0.9, None, True, True),  # exactly the floor passes
        ("if_better", 0.5, 0.95, 0.9, True, True),
    ],
)
def test_the_publish_rule(rule, minimum, candidate_f1, published_f1, same_features, expected) -> None:
    candidate = {"version": "new", "metrics": {"f1_macro": candidate_f1}, "feature_names": ["a"]}
    published = None
    if published_f1 is not None:
        published = {
            "version": "old",
            "metrics": {"f1_macro": published_f1},
            "feature_names": ["a" if same_features else "b"],
        }
    decision = decide(candidate, published, rule, minimum)
    assert decision.published is expected
    assert decision.reason.startswith("published" if expected else "not published") and len(decision.reason) > 30


def test_a_training_publishes_only_when_its_rule_allows(objects: RecordingObjects) -> None:
    registry = ModelRegistry(objects)
    good = registry.get_version("m", tiny_version(registry, f1=0.9))
    assert publish_trained_version(registry, good, "if_better", None, "r1").published
    worse = registry.get_version("m", tiny_version(registry, f1=0.7))
    decision = publish_trained_version(registry, worse, "if_better", None, "r2")
    assert not decision.published and "0.7000 is below" in decision.reason
    assert registry.published("m").version == good["version"]
    assert [e["action"] for e in events_of(registry, "m")] == ["train"]


# --- models written before the registry (pointer without history, versions without records) ----------


def legacy_version(objects: Any, trained_iris_model, name: str = "Model_ml", scaler: str = "scaler") -> tuple[str, str]:
    """A version exactly as the code before the registry wrote it. Returns (version, metadata sha256)."""
    version = new_version_id()
    prefix = f"models/{name}/versions/{version}/"
    contents = {
        "model": (f"{prefix}{name}.joblib", dump(trained_iris_model.model)),
        "scaler": (f"{prefix}{scaler}.joblib", dump(trained_iris_model.scaler)),
    }
    artifacts = {
        kind: {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        for kind, (key, data) in contents.items()
    }
    metadata = {
        **trained_iris_model.summary(),
        "name": name,
        "version": version,
        "scaler_name": scaler,
        "created_at": "2026-11-01T00:00:00+00:00",
        "artifacts": artifacts,
        "runtime": runtime_versions(),
    }
    data = orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS)
    for key, blob in contents.values():
        objects.put(key, blob)
    objects.put(f"{prefix}metadata.json", data)
    digest = hashlib.sha256(data).hexdigest()
    objects.put(f"models/{name}/latest.json", orjson.dumps({"version": version, "metadata_sha256": digest}))
    return version, digest


def test_old_models_list_load_and_roll_back(objects: RecordingObjects, trained_iris_model) -> None:
    old, _ = legacy_version(objects, trained_iris_model)
    newer, _ = legacy_version(objects, trained_iris_model)
    registry = ModelRegistry(objects)
    (summary,) = registry.list_models().items
    assert (summary.name, summary.published_version, summary.versions) == ("Model_ml", newer, 2)
    assert summary.published_at is None  # not recorded before the registry
    _pointer, page = registry.list_versions("Model_ml", limit=1)
    assert [v["version"] for v in page.items] == [newer] and page.items[0]["published"]
    _, rest = registry.list_versions("Model_ml", limit=1, next_token=page.next_token)
    assert [v["version"] for v in rest.items] == [old] and rest.next_token is None
    assert registry.history("Model_ml").items == []
    assert load_model(registry.load("Model_ml", kinds=MODEL_KINDS)).version == newer
    assert load_model(registry.load("Model_ml", old, MODEL_KINDS)).version == old

    result = registry.publish("Model_ml", old, reason="back to the old one")
    assert (result.previous_version, result.event["action"]) == (newer, "rollback")
    assert load_model(registry.load("Model_ml", kinds=MODEL_KINDS)).version == old
    third = store_version(registry, trained_iris_model)["version"]
    _, page = registry.list_versions("Model_ml")
    assert [v["version"] for v in page.items] == [third, newer, old]
    objects.put(f"models/Model_ml/versions/{newer}/metadata.json", b'{"tampered": true}')
    with pytest.raises(ArtifactIntegrityError):  # adopted: now as trusted as any other version
        registry.load("Model_ml", newer)


def test_an_old_version_tampered_before_adoption_is_not_adopted(objects: RecordingObjects, trained_iris_model) -> None:
    version, _ = legacy_version(objects, trained_iris_model)
    key = f"models/Model_ml/versions/{version}/metadata.json"
    objects.put(key, objects.get(key).replace(b"virginica", b"virginicX"))
    registry = ModelRegistry(objects)
    store_version(registry, trained_iris_model)
    with pytest.raises(ModelNotFoundError):
        registry.load("Model_ml", version)


def test_storage_deals_in_bytes_only() -> None:
    """Nothing in storage/ imports scikit-learn, joblib or ml/: (de)serialisation is ml/'s business."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    script = (
        "import sys, pkgutil, importlib, deployment_model.storage as s\n"
        "for m in pkgutil.iter_modules(s.__path__): importlib.import_module(f'deployment_model.storage.{m.name}')\n"
        "print(sorted(n for n in sys.modules\n"
        "             if n.split('.')[0] in {'sklearn', 'joblib'} or n.startswith('deployment_model.ml')))"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
