"""Defects found by the adversarial review of the registry, jobs, ONNX and client work, each as the behaviour a
user relies on."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from deployment_model.local import docs_page
from tests.conftest import SEED_BUCKET, Service, body_of, proxy_event


def test_an_unknown_train_field_is_answered_with_the_json_field_names_a_client_can_send(
    local_service: Service,
) -> None:
    answer = body_of(local_service.train(proxy_event("/train", {"bogus": True})))
    accepted = answer["message"].split("accepted fields: ", 1)[1].split(", ")
    assert "async" in accepted
    assert "async_" not in accepted


def test_the_docs_page_says_how_to_install_swagger_ui_when_its_assets_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(docs_page.ASSETS_ENV, str(tmp_path))
    status, headers, body = docs_page.answer("/docs")
    assert status == 404
    assert "make swagger-ui" in body.decode()
    (tmp_path / "swagger-ui-bundle.js").write_text("// bundle")
    status, headers, body = docs_page.answer("/docs")
    assert (status, headers["Content-Type"]) == (200, ["text/html; charset=utf-8"])
    assert b"swagger-ui-bundle.js" in body


WRITE_ROUTES_WITH_BODIES = [
    "/models/Model_ml/publish",
    "/models/Model_ml/versions/20261126T011738011831Z-3df1e171/export",
]


@pytest.mark.parametrize("path", WRITE_ROUTES_WITH_BODIES)
def test_a_body_that_is_not_utf8_is_a_400_on_every_write_route(local_service: Service, path: str) -> None:
    event = proxy_event(path, raw=base64.b64encode(b"\xff\xfe{}").decode(), base64_encoded=True)
    answer = local_service.train(event)
    assert answer["statusCode"] == 400
    assert "UTF-8" in body_of(answer)["message"]


@pytest.mark.parametrize("path", WRITE_ROUTES_WITH_BODIES)
def test_json_nested_beyond_any_parser_is_a_400_on_every_write_route(local_service: Service, path: str) -> None:
    answer = local_service.train(proxy_event(path, raw='{"a":' * 5000))
    assert answer["statusCode"] == 400
    assert body_of(answer)["error"] == "invalid_request" and "JSON" in body_of(answer)["message"]


LONG = "a" * 20_000


@pytest.mark.parametrize(
    "path",
    [f"/train/jobs/{LONG}", f"/v2/models/{LONG}", f"/v2/models/Model_ml/versions/{LONG}", f"/v2/models/{LONG}/ready"],
)
def test_an_error_naming_a_path_parameter_does_not_grow_with_it(local_service: Service, path: str) -> None:
    answer = local_service.predict(proxy_event(path, method="GET"))
    assert 400 <= answer["statusCode"] < 500
    assert len(answer["body"]) < 1_200


def test_a_bad_version_to_publish_is_explained_in_the_publish_routes_own_terms(local_service: Service) -> None:
    answer = local_service.train(proxy_event("/models/Model_ml/publish", {"version": "latest"}))
    assert answer["statusCode"] == 400
    message = body_of(answer)["message"]
    assert "version: must be a version id such as" in message
    assert "model_version" not in message.replace("a train response's model_version", "")
    pinned = body_of(local_service.predict(proxy_event("/predict", {"x_test": [1, 2], "model_version": "latest"})))
    assert "omit model_version for the latest" in pinned["message"]  # the predict hint stays


def test_the_jobs_table_shows_each_jobs_model_and_version_from_the_listing() -> None:
    from rich.console import Console

    from deployment_model.local import views

    listing = {  # GET /train/jobs: each job as the README documents it (no request, no result)
        "jobs": [
            {
                "job_id": "8204343583028-a71faaa7a95e6baac0c02928f1656136",
                "status": "succeeded",
                "submitted_at": "2026-11-26T01:26:56+00:00",
                "started_at": "2026-11-26T01:26:56+00:00",
                "finished_at": "2026-11-26T01:26:57+00:00",
                "progress": {"candidates_done": 2, "candidates_total": 2},
                "error": None,
                "model_name": "flowers",
                "model_version": "20261126T012657401001Z-bfe10346",
            }
        ],
        "next_token": None,
    }
    console = Console(record=True, width=300)
    views.show_jobs(console, listing)
    table = console.export_text()
    assert "flowers" in table and "20261126T012657401001Z-bfe10346" in table


def test_a_missing_data_key_on_s3_does_not_reveal_the_buckets_name(s3_service: Service) -> None:
    answer = s3_service.train(proxy_event("/train", {"data_key": "data/missing.csv", "target_column": "y"}))
    assert answer["statusCode"] == 404
    message = body_of(answer)["message"]
    assert "data/missing.csv" in message and "this service's bucket" in message
    assert SEED_BUCKET not in message
