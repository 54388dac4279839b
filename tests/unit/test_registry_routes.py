"""The registry routes through both handlers, as API Gateway calls them: read routes on the inference function,
write routes on the train function; the walkthrough of issue 10's "done when"; every client mistake a 4xx."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Service, proxy_event


def call(
    handler: Any, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
) -> tuple[int, Any]:
    event = proxy_event(path, body, method=method, query=query)
    event["requestContext"] = {**event["requestContext"], "httpMethod": method, "resourcePath": path}
    answer = handler(event)
    return answer["statusCode"], json.loads(answer["body"])


def read(service: Service, path: str, **query: str) -> tuple[int, Any]:
    return call(service.predict, "GET", path, query=query or None)


def write(service: Service, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return call(service.train, method, path, body)


def test_train_list_roll_back_predict_history_and_delete(local_service: Service) -> None:
    first = local_service.train({})
    second = local_service.train({"candidates": ["sgd"], "publish": "never"})
    third = local_service.train({"candidates": ["logistic_regression"]})
    assert (first["published"], second["published"], third["published"]) == (True, False, True)
    assert "never" in second["publish_reason"] and third["publish_reason"]
    v1, v2, v3 = (t["model_version"] for t in (first, second, third))

    status, models = read(local_service, "/models")
    assert status == 200 and models["next_token"] is None
    assert models["models"] == [
        {
            "name": "Model_ml",
            "published_version": v3,
            "published_at": models["models"][0]["published_at"],
            "versions": 3,
        }
    ]
    status, shown = read(local_service, "/models/Model_ml")
    assert status == 200 and shown["published_version"] == v3
    assert [(v["version"], v["published"]) for v in shown["versions"]] == [(v3, True), (v2, False), (v1, False)]
    assert shown["versions"][1]["estimator"] == "SGDClassifier"
    assert set(shown["versions"][0]) == {
        "version", "created_at", "published", "candidate", "estimator", "params", "metrics", "rows",
        "training_data", "feature_names", "labels",
    }  # fmt: skip

    status, published = write(local_service, "POST", "/models/Model_ml/publish", {"version": v1, "reason": "v3 drifts"})
    assert status == 200 and published == {"name": "Model_ml", "published_version": v1, "previous_version": v3}
    local_service.inference_module.cache.ttl_seconds = 0  # a warm function notices at its next check
    assert local_service.predict({"x_test": [1, 2]})["model_version"] == v1

    status, history = read(local_service, "/models/Model_ml/history")
    assert status == 200
    assert [(e["action"], e["version"], e["previous_version"]) for e in history["events"]] == [
        ("rollback", v1, v3),
        ("train", v3, v1),
        ("train", v1, None),
    ]
    assert history["events"][0]["reason"] == "v3 drifts" and history["events"][0]["request_id"]

    status, version = read(local_service, f"/models/Model_ml/versions/{v2}")
    assert status == 200 and version["version"] == v2 and version["published"] is False
    assert version["artifacts"]["model"]["sha256"] and version["runtime"]["scikit-learn"]

    assert write(local_service, "DELETE", f"/models/Model_ml/versions/{v2}") == (200, {"deleted": v2})
    status, refused = write(local_service, "DELETE", f"/models/Model_ml/versions/{v1}")
    assert status == 409 and refused["error"] == "version_published" and "publish another" in refused["message"]
    assert write(local_service, "DELETE", "/models/Model_ml") == (200, {"deleted_versions": 2})
    assert read(local_service, "/models") == (200, {"models": [], "next_token": None})


def test_if_better_and_min_f1_macro_gate_a_training(local_service: Service) -> None:
    first = local_service.train({"publish": "if_better"})
    assert first["published"] and "no version" in first["publish_reason"]
    floor = local_service.train({"min_f1_macro": 1.0})
    assert not floor["published"] and "below min_f1_macro 1.0" in floor["publish_reason"]
    same = local_service.train({"publish": "if_better"})  # the same recipe scores the same: at least as good
    assert same["published"] and "at least" in same["publish_reason"]
    worse = local_service.train({"publish": "if_better", "candidates": {"knn": {"n_neighbors": [60]}}})
    assert not worse["published"] and "below that of version" in worse["publish_reason"]
    assert local_service.predict({"x_test": [1, 2]})["model_version"] == same["model_version"]


def test_expected_version_makes_a_publish_conditional(local_service: Service) -> None:
    v1 = local_service.train({})["model_version"]
    v2 = local_service.train({"publish": "never"})["model_version"]
    status, body = write(local_service, "POST", "/models/Model_ml/publish", {"version": v2, "expected_version": v2})
    assert status == 409 and body["error"] == "publish_conflict" and v1 in body["message"]
    status, body = write(local_service, "POST", "/models/Model_ml/publish", {"version": v2, "expected_version": v1})
    assert status == 200 and body["previous_version"] == v1


def test_a_version_that_would_not_load_is_not_published(local_service: Service, tmp_path) -> None:
    v1 = local_service.train({})["model_version"]
    v2 = local_service.train({"publish": "never"})["model_version"]
    registry = local_service.train_module.registry
    metadata = registry.get_version("Model_ml", v2)
    registry.objects.put(metadata["artifacts"]["scaler"]["key"], b"tampered")
    status, body = write(local_service, "POST", "/models/Model_ml/publish", {"version": v2})
    assert status == 409 and body["error"] == "model_integrity_error" and v2 in body["message"]
    assert registry.published("Model_ml").version == v1
    assert read(local_service, "/models/Model_ml/history")[1]["events"][0]["version"] == v1


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "status", "words"),
    [
        ("GET", "/models", {"limit": "0"}, None, 400, "limit"),
        ("GET", "/models", {"limit": "101"}, None, 400, "limit"),
        ("GET", "/models", {"limit": "ten"}, None, 400, "limit"),
        ("GET", "/models", {"next_token": "not-ours"}, None, 400, "next_token"),
        ("GET", "/models/..", None, None, 400, "name"),
        ("GET", "/models/a%2Fb", None, None, 400, "name"),
        ("GET", "/models/Model_ml", {"limit": "-1"}, None, 400, "limit"),
        ("GET", "/models/Model_ml/history", {"next_token": "bW9kZWxzLw"}, None, 400, "next_token"),
        ("GET", "/models/Model_ml/versions/latest", None, None, 400, "version"),
        ("GET", "/models/unknown", None, None, 404, "unknown"),
        ("GET", "/models/unknown/history", None, None, 404, "unknown"),
        ("GET", "/models/Model_ml/versions/20200101T000000000000Z-00000000", None, None, 404, "no version"),
        ("POST", "/models/Model_ml/publish", None, {"version": "v1"}, 400, "version"),
        ("POST", "/models/Model_ml/publish", None, {"version": None}, 400, "version"),
        ("POST", "/models/Model_ml/publish", None, {}, 400, "version"),
        ("POST", "/models/Model_ml/publish", None, {"version": "20200101T000000000000Z-00000000", "x": 1}, 400, "x"),
        ("POST", "/models/Model_ml/publish", None, {"version": "20200101T000000000000Z-00000000"}, 404, "no version"),
        ("POST", "/models/unknown/publish", None, {"version": "20200101T000000000000Z-00000000"}, 404, "unknown"),
        ("DELETE", "/models/Model_ml/versions/20200101T000000000000Z-00000000", None, None, 404, "no version"),
        ("DELETE", "/models/unknown", None, None, 404, "unknown"),
        ("DELETE", "/models/bad..name", None, None, 400, "name"),
    ],
)
def test_client_mistakes_are_4xx_naming_the_problem(
    local_service: Service, method: str, path: str, query: Any, body: Any, status: int, words: str
) -> None:
    local_service.train({})
    handler = local_service.predict if method == "GET" else local_service.train
    answer_status, answer = call(handler, method, path, body, query)
    assert answer_status == status, answer
    assert words in json.dumps(answer) and answer["error"]


def test_the_train_request_checks_its_publish_fields(local_service: Service) -> None:
    for request, field in (
        ({"publish": "sometimes"}, "publish"),
        ({"min_f1_macro": 1.5}, "min_f1_macro"),
        ({"min_f1_macro": -0.1}, "min_f1_macro"),
        ({"min_f1_macro": "high"}, "min_f1_macro"),
        ({"min_f1_macro": True}, "min_f1_macro"),
        ({"min_f1_macro": "0.5"}, "min_f1_macro"),
    ):
        answer = local_service.train(request)
        assert answer["statusCode"] == 400 and field in answer["message"], answer


def test_names_differing_only_by_case_are_a_conflict(local_service: Service) -> None:
    local_service.train({"filename_model": "flowers"})
    answer = local_service.train({"filename_model": "Flowers"})
    assert answer["statusCode"] == 409 and answer["error"] == "model_name_conflict"


def test_storage_outage_on_a_registry_route_is_a_503_with_retry_after(s3_service: Service, monkeypatch) -> None:
    from deployment_model.storage.objects import StoreUnavailableError

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailableError("s3 answered SlowDown")

    monkeypatch.setattr(s3_service.inference_module.registry.objects, "list_objects", down)
    event = proxy_event("/models", None, method="GET", raw="")
    answer = s3_service.predict(event)
    assert answer["statusCode"] == 503 and answer["multiValueHeaders"]["Retry-After"] == ["5"]


def test_the_events_files_drive_every_registry_route(local_service: Service) -> None:
    """events/api_models_*.json (for `sam local invoke -e`), with their example version replaced by real ones."""
    from tests.conftest import EVENTS

    first = local_service.train({})["model_version"]
    second = local_service.train({})["model_version"]
    example = "20261124T120000000000Z-1a2b3c4d"

    def send(name: str, version: str) -> int:
        event = json.loads((EVENTS / name).read_text().replace(example, version))
        handler = local_service.predict if event["httpMethod"] == "GET" else local_service.train
        answer = handler(event)
        return answer["statusCode"]

    for name in ("list", "show", "version", "history", "publish"):
        assert send(f"api_models_{name}.json", first) == 200, name
    assert local_service.train_module.registry.published("Model_ml").version == first
    assert send("api_models_delete_version.json", second) == 200
    assert send("api_models_delete.json", first) == 200
