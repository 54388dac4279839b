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


def test_a_csv_whose_answers_are_too_large_tells_the_cli_user_which_option_to_use(
    local_service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    from deployment_model.local.cli import main

    store = Path(os.environ["MODEL_STORE_DIR"])
    (store / "data").mkdir(parents=True, exist_ok=True)
    lines = ["a,b,y"] + [f"{c + i / 10},{c * 2 - i / 10},{c:03d}{'L' * 197}" for c in range(100) for i in range(6)]
    (store / "data" / "many.csv").write_text("\n".join(lines) + "\n")
    trained = local_service.train(
        {"filename_model": "many", "data_key": "data/many.csv", "target_column": "y", "candidates": ["knn"]}
    )
    assert trained["statusCode"] == 200
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n" + "".join(f"{i % 100},{i % 100 * 2}\n" for i in range(10_000)))
    capsys.readouterr()
    assert main(["--store-dir", str(store), "predict", "--csv", str(rows), "--model", "many"]) == 1
    error = capsys.readouterr().err
    assert "at most 2285 rows fit" in error and "--batch-rows" in error


def test_an_empty_report_format_is_a_400_naming_the_accepted_ones(local_service: Service) -> None:
    version = local_service.train({})["model_version"]
    answer = local_service.predict(
        proxy_event(f"/models/Model_ml/versions/{version}/report", method="GET", query={"format": ""})
    )
    assert answer["statusCode"] == 400 and "format" in body_of(answer)["message"]


def test_train_async_prints_only_the_job_id_so_a_script_can_capture_it(
    local_service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    from deployment_model.local.cli import main

    assert main(["--store-dir", os.environ["MODEL_STORE_DIR"], "train", "--async", "--candidates", "sgd"]) == 0
    captured = capsys.readouterr()
    job_id = captured.out.strip()
    assert job_id and "\n" not in job_id and " " not in job_id
    assert body_of(local_service.predict(proxy_event(f"/train/jobs/{job_id}", method="GET")))["job_id"] == job_id
    assert "jobs show" in captured.err  # the hint for a person goes to stderr


def test_a_job_queued_by_the_prefer_header_records_that_it_was_asynchronous(local_service: Service) -> None:
    event = proxy_event("/train", {"candidates": ["sgd"]})
    event["headers"] = {**event["headers"], "Prefer": "respond-async"}
    event["multiValueHeaders"] = {**event["multiValueHeaders"], "Prefer": ["respond-async"]}
    answer = local_service.train(event)
    assert answer["statusCode"] == 202
    job = body_of(local_service.predict(proxy_event(f"/train/jobs/{body_of(answer)['job_id']}", method="GET")))
    assert job["request"]["async"] is True
