"""The jobs API's contract: POST /train's 202, validation before queuing, and the GET routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deployment_model.api.schemas import TrainRequest
from deployment_model.local.server import LocalContext
from deployment_model.train.job_queue import QueueUnavailableError
from tests.conftest import Service, body_of, load_event, proxy_event

JOB_FIELDS = {
    "job_id",
    "status",
    "submitted_at",
    "started_at",
    "finished_at",
    "progress",
    "request",
    "result",
    "error",
}


def headers_of(answer: dict[str, Any]) -> dict[str, list[str]]:
    return {name.lower(): values for name, values in answer["multiValueHeaders"].items()}


def post_train(service: Service, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    event = proxy_event("/train", body)
    event["headers"] = {**event["headers"], **headers}
    event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
    return service.train(event)


def get(service: Service, path: str, **query: str) -> dict[str, Any]:
    return service.predict(proxy_event(path, method="GET", query=query))


def queued(service: Service) -> list[str]:
    found = []
    while (job_id := service.train_module.job_queue.receive(0)) is not None:
        found.append(job_id)
        service.train_module.job_queue.done()
    return found


def stored_jobs(tmp_path: Path) -> list[str]:
    folder = tmp_path / "store" / "jobs"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def run_queued(service: Service) -> None:
    for job_id in queued(service):
        service.train_module.job_runner.process(job_id, LocalContext(function_name="train"))


# --- POST /train, asynchronously ---------------------------------------------------------------------------


def test_async_train_answers_202_with_the_job_and_where_to_find_it(local_service: Service) -> None:
    answer = post_train(
        local_service, {"async": True}, Host="abc.execute-api.eu-west-1.amazonaws.com", **{"X-Forwarded-Proto": "https"}
    )
    assert answer["statusCode"] == 202
    body = body_of(answer)
    assert set(body) == {"job_id", "status", "status_url"} and body["status"] == "queued"
    job_id = body["job_id"]
    assert headers_of(answer)["location"] == [body["status_url"]]
    assert queued(local_service) == [job_id]
    status = get(local_service, f"/train/jobs/{job_id}")
    assert status["statusCode"] == 200
    job = body_of(status)
    assert set(job) == JOB_FIELDS and job["status"] == "queued"
    assert job["request"]["filename_model"] == "Model_ml" and job["request"]["async"] is True
    assert job["progress"] == {"candidates_done": 0, "candidates_total": 2}


def test_the_status_url_keeps_the_stage_the_client_called(local_service: Service) -> None:
    event = proxy_event("/train", {"async": True})
    event["headers"] = {"Host": "abc.execute-api.eu-west-1.amazonaws.com", "X-Forwarded-Proto": "https"}
    event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
    event["requestContext"]["path"] = "/Prod/train"  # API Gateway's: the stage, then the resource path
    body = body_of(local_service.train(event))
    assert body["status_url"] == f"https://abc.execute-api.eu-west-1.amazonaws.com/Prod/train/jobs/{body['job_id']}"


@pytest.mark.parametrize("prefer", ["respond-async", "Respond-Async", "wait=10, respond-async", "respond-async; x=1"])
def test_the_prefer_header_asks_for_a_job(local_service: Service, prefer: str) -> None:
    answer = post_train(local_service, {}, Prefer=prefer)
    assert answer["statusCode"] == 202
    assert headers_of(answer)["preference-applied"] == ["respond-async"]


@pytest.mark.parametrize("prefer", [None, "respond-asynchronously", "wait=10", "return=minimal"])
def test_without_async_train_stays_synchronous(local_service: Service, prefer: str | None) -> None:
    answer = post_train(local_service, {}, **({"Prefer": prefer} if prefer else {}))
    assert answer["statusCode"] == 200 and body_of(answer)["message"] == "Train successfully"
    assert queued(local_service) == []


def test_a_direct_invocation_can_queue_a_job_too(local_service: Service) -> None:
    answer = local_service.train({"async": True})
    assert answer["statusCode"] == 202
    assert answer["status_url"] == f"/train/jobs/{answer['job_id']}"


@pytest.mark.parametrize(
    "body",
    [
        {"candidates": ["knn", "xgboost"]},
        {"candidates": {"knn": {"leaf_size": [1]}}},
        {"candidates": {"sgd": {"alpha": [-1]}}},
        {"data_key": "data/missing.csv", "target_column": "y"},
        {"data_key": "models/Model_ml/latest.json", "target_column": "y"},
        {"data_key": "jobs/x.json", "target_column": "y"},
        {"name_bucket": "someone-elses"},
        {"unknown": 1},
    ],
)
def test_a_bad_async_request_is_refused_at_once_as_a_synchronous_one_and_nothing_is_queued(
    local_service: Service, tmp_path: Path, body: dict[str, Any]
) -> None:
    synchronous = post_train(local_service, body)
    answer = post_train(local_service, {"async": True, **body})
    assert 400 <= answer["statusCode"] < 500
    assert (answer["statusCode"], body_of(answer)) == (synchronous["statusCode"], body_of(synchronous))
    assert queued(local_service) == [] and stored_jobs(tmp_path) == []


def test_async_must_be_a_boolean(local_service: Service) -> None:
    answer = post_train(local_service, {"async": "yes"})
    assert answer["statusCode"] == 400 and body_of(answer)["details"][0]["field"] == "async"


def test_a_queue_that_cannot_be_reached_is_a_503_and_leaves_no_job(
    local_service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(job_id: str) -> None:
        raise QueueUnavailableError("the training job queue could not be reached: EndpointConnectionError")

    monkeypatch.setattr(local_service.train_module.job_queue, "send", unreachable)
    answer = post_train(local_service, {"async": True})
    assert answer["statusCode"] == 503 and body_of(answer)["error"] == "queue_unavailable"
    assert headers_of(answer)["retry-after"] == ["5"]
    assert stored_jobs(tmp_path) == []


def test_a_job_trains_exactly_what_the_synchronous_call_does(local_service: Service) -> None:
    request = {"candidates": {"knn": {"n_neighbors": [3, 5]}, "logistic_regression": None}, "filename_model": "iris"}
    job_id = body_of(post_train(local_service, {**request, "async": True}))["job_id"]
    run_queued(local_service)
    job = body_of(get(local_service, f"/train/jobs/{job_id}"))
    assert job["status"] == "succeeded" and job["progress"] == {"candidates_done": 2, "candidates_total": 2}
    synchronous = body_of(post_train(local_service, request))
    volatile = {"model_version", "duration_seconds"}
    assert set(job["result"]) == set(synchronous)
    assert {k: v for k, v in job["result"].items() if k not in volatile} == {
        k: v for k, v in synchronous.items() if k not in volatile
    }


# --- GET /train/jobs/{job_id}, GET /train/jobs -------------------------------------------------------------


@pytest.mark.parametrize("job_id", ["8204349264432-" + "ab" * 16, "nope", "..%2Fmodels"])
def test_an_unknown_job_is_404(local_service: Service, job_id: str) -> None:
    answer = get(local_service, f"/train/jobs/{job_id}")
    assert answer["statusCode"] == 404 and body_of(answer)["error"] == "job_not_found"
    assert job_id in body_of(answer)["message"]


def test_jobs_are_listed_newest_first_page_by_page(local_service: Service) -> None:
    submitted = [body_of(post_train(local_service, {"async": True}))["job_id"] for _ in range(5)]
    seen: list[str] = []
    query: dict[str, str] = {"limit": "2"}
    for _ in range(5):
        page = body_of(get(local_service, "/train/jobs", **query))
        assert len(page["jobs"]) <= 2
        seen += [job["job_id"] for job in page["jobs"]]
        if page["next_token"] is None:
            break
        query = {"limit": "2", "next_token": page["next_token"]}
    assert seen == submitted[::-1]
    first = body_of(get(local_service, "/train/jobs"))["jobs"][0]
    assert first["status"] == "queued" and first["model_name"] == "Model_ml" and first["model_version"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "ten"}, "limit")],
)
def test_a_bad_limit_is_a_400_naming_it(local_service: Service, query: dict[str, str], field: str) -> None:
    answer = get(local_service, "/train/jobs", **query)
    assert answer["statusCode"] == 400
    assert [d["field"] for d in body_of(answer)["details"]] == [field]


def test_a_next_token_the_api_did_not_give_is_a_400(local_service: Service) -> None:
    answer = get(local_service, "/train/jobs", **{"next_token": "../models/"})
    assert answer["statusCode"] == 400 and "next_token" in body_of(answer)["message"]


def test_the_committed_job_events_run_through_both_functions(local_service: Service) -> None:
    """events/api_train_async.json and api_train_job.json (for `sam local invoke -e`), as API Gateway sends them."""
    answer = local_service.train(load_event("api_train_async.json"))
    assert answer["statusCode"] == 202
    job_id = body_of(answer)["job_id"]
    assert (
        body_of(answer)["status_url"]
        == f"https://1234567890.execute-api.us-east-1.amazonaws.com/Prod/train/jobs/{job_id}"
    )
    unknown = local_service.predict(load_event("api_train_job.json"))
    assert unknown["statusCode"] == 404 and body_of(unknown)["error"] == "job_not_found"
    event = load_event("api_train_job.json")
    event["path"], event["pathParameters"]["job_id"] = f"/train/jobs/{job_id}", job_id
    assert body_of(local_service.predict(event))["status"] == "queued"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"candidates": ["random_forest"], "filename_model": "m"},
        {"candidates": {"knn": {"n_neighbors": [3, 5]}, "logistic_regression": None}},
        {"data_key": "d/x.csv", "target_column": "y", "feature_columns": ["a"], "missing_values": "refuse"},
    ],
)
def test_the_recorded_request_validates_to_the_same_request(local_service: Service, body: dict[str, Any]) -> None:
    request = TrainRequest.model_validate({**body, "async": True})
    recorded = local_service.train_module.as_accepted(request)
    assert TrainRequest.model_validate(recorded) == request
    assert recorded["filename_scaler"] == "scaler"  # defaults filled in for whoever reads the job


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"headers": 5}, "headers"),
        ({"headers": ["Prefer"]}, "headers"),
        ({"headers": "Prefer: respond-async"}, "headers"),
        ({"multiValueHeaders": {"Prefer": 5}}, "multiValueHeaders"),
        ({"multiValueHeaders": []}, "multiValueHeaders"),
    ],
)
def test_malformed_headers_on_a_train_request_are_a_400_naming_the_field(
    local_service: Service, changes: dict[str, Any], field: str
) -> None:
    """The train route reads the headers (Prefer: respond-async): a malformed header field is named, not a 500."""
    answer = local_service.train({**proxy_event("/train", {}), **changes})
    assert answer["statusCode"] == 400, answer
    assert field in body_of(answer)["message"]
