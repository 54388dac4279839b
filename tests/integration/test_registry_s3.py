"""The registry against moto's S3 over real HTTP (boto3's transport, conditional writes as S3 answers them),
each call through the same wall-clock guard the functions use."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

from deployment_model.storage.deadline import TimeBoundObjectStore
from deployment_model.storage.objects import S3ObjectStore
from deployment_model.storage.registry import ModelRegistry
from tests.conftest import SEED_BUCKET, load_event, start_service
from tests.unit.test_registry import WRITERS, events_of, tiny_version


def test_eight_writers_over_http_lose_no_event(moto_server: Any, atomic_s3_conditional_writes: None) -> None:
    registry = ModelRegistry(TimeBoundObjectStore(S3ObjectStore(SEED_BUCKET)))
    versions = [tiny_version(registry) for _ in range(WRITERS * 2)]
    start = threading.Barrier(WRITERS)
    failures: list[BaseException] = []
    changes: list[str] = []

    def writer(index: int) -> None:
        try:
            start.wait()
            for version in versions[index * 2 : index * 2 + 2]:
                result = registry.publish("m", version, action="train")
                if result.event is not None:
                    changes.append(version)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    events = events_of(registry, "m")
    assert len(events) == len(changes) == WRITERS * 2
    assert registry.published("m").version == events[0]["version"]
    for newer, older in itertools.pairwise(events):
        assert newer["previous_version"] == older["version"]


@pytest.mark.usefixtures("moto_server")
def test_roll_back_over_s3_reaches_a_warm_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_BUCKET", SEED_BUCKET)
    monkeypatch.setenv("MODEL_CACHE_TTL_SECONDS", "0")
    service = start_service()
    first = service.train(load_event("train.json"))["model_version"]
    second = service.train(load_event("train.json"))["model_version"]
    assert service.predict(load_event("predict.json"))["model_version"] == second
    registry = service.train_module.registry
    registry.publish("Model_ml", first, reason="roll back")
    assert service.predict(load_event("predict.json"))["model_version"] == first
    _, page = service.inference_module.registry.list_versions("Model_ml")
    assert [v["version"] for v in page.items] == [second, first]
