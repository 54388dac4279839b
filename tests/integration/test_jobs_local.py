"""Queued training jobs on the local server: its worker thread runs them, and resumes them after a restart.

Tests wait for the worker with its queue's join (every job sent has been handled) or on events the training
sets; none sleeps.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deployment_model.local.server import LocalContext
from deployment_model.storage.jobs import Claim
from tests.conftest import start_service
from tests.integration.conftest import LocalServerClient, running_local_server

WAIT_SECONDS = 120


def wait_for_jobs(running: LocalServerClient) -> None:
    """Until the server's worker has handled every job sent to it."""
    assert running.server.job_worker is not None
    assert running.server.job_worker.queue.join(WAIT_SECONDS), "the worker did not finish its jobs"


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODEL_STORE_DIR", str(tmp_path / "store"))
    return tmp_path / "store"


def test_an_async_train_is_202_then_runs_on_the_worker_and_its_version_predicts(
    local_server: LocalServerClient,
) -> None:
    status, headers, body = local_server.post("/train", {"async": True, "filename_model": "iris"})
    assert status == 202 and body["status"] == "queued"
    assert headers["Location"] == body["status_url"] == f"{local_server.base_url}/train/jobs/{body['job_id']}"
    wait_for_jobs(local_server)
    status, _, job = local_server.request("GET", body["status_url"].removeprefix(local_server.base_url))
    assert status == 200 and job["status"] == "succeeded", job
    assert job["result"]["message"] == "Train successfully" and job["result"]["model_name"] == "iris"
    version = job["result"]["model_version"]
    status, _, predicted = local_server.post("/predict", {"filename_model": "iris", "x_test": [2.0, 5.5]})
    assert status == 200 and predicted["model_version"] == version and predicted["result"] == "virginica"
    status, _, listing = local_server.request("GET", "/train/jobs?limit=1")
    assert status == 200 and [j["job_id"] for j in listing["jobs"]] == [body["job_id"]]


def test_a_running_job_shows_its_progress(local_server: LocalServerClient, monkeypatch: pytest.MonkeyPatch) -> None:
    train_module = local_server.service.train_module
    first_done, release = threading.Event(), threading.Event()
    real_train_model = train_module.train_model

    def paused_after_the_first_candidate(*args: Any, on_candidate_done: Any = None, **kwargs: Any) -> Any:
        def progress(done: int, total: int) -> None:
            on_candidate_done(done, total)
            if done == 1:
                first_done.set()
                assert release.wait(WAIT_SECONDS)

        return real_train_model(*args, on_candidate_done=progress, **kwargs)

    monkeypatch.setattr(train_module, "train_model", paused_after_the_first_candidate)
    _, _, body = local_server.post("/train", {"async": True, "candidates": ["knn", "logistic_regression"]})
    assert first_done.wait(WAIT_SECONDS)
    _, _, job = local_server.request("GET", f"/train/jobs/{body['job_id']}")
    assert job["status"] == "running" and job["started_at"] and job["finished_at"] is None
    assert job["progress"] == {"candidates_done": 1, "candidates_total": 2}
    release.set()
    wait_for_jobs(local_server)
    _, _, job = local_server.request("GET", f"/train/jobs/{body['job_id']}")
    assert job["status"] == "succeeded" and job["progress"] == {"candidates_done": 2, "candidates_total": 2}


def test_a_job_on_a_one_class_csv_ends_failed_naming_it(tmp_path: Path, local_server: LocalServerClient) -> None:
    data = tmp_path / "store" / "data"  # local_server's store
    data.mkdir(parents=True)
    (data / "one.csv").write_text("x,y,label\n" + "1,2,only\n3,4,only\n" * 10)
    request = {"async": True, "data_key": "data/one.csv", "target_column": "label"}
    _, _, body = local_server.post("/train", request)
    wait_for_jobs(local_server)
    _, _, job = local_server.request("GET", f"/train/jobs/{body['job_id']}")
    assert job["status"] == "failed" and job["result"] is None
    assert job["error"]["error"] == "invalid_training_request"
    assert "at least two classes; found ['only']" in job["error"]["message"]


def test_jobs_left_by_a_stopped_server_are_resumed_or_failed_when_it_starts_again(store_dir: Path) -> None:
    # Before: a job queued (the CLI, or a server that stopped before running it) and one whose worker died.
    before = start_service().train_module
    waiting = before.lambda_handler({"async": True, "filename_model": "resumed"}, LocalContext("train"))
    assert waiting["statusCode"] == 202
    dying = before.jobs.create({"filename_model": "dead"}, candidates_total=2, max_wait=None)
    claimed = before.jobs.claim(dying.job_id, deadline=datetime.now(UTC) - timedelta(seconds=1))
    assert isinstance(claimed, Claim)  # running, and its deadline has passed: its process was killed

    with running_local_server(store_dir) as running:  # a fresh process: nothing in memory, only what is on disk
        wait_for_jobs(running)
        _, _, resumed = running.request("GET", f"/train/jobs/{waiting['job_id']}")
        assert resumed["status"] == "succeeded" and resumed["result"]["model_name"] == "resumed"
        _, _, dead = running.request("GET", f"/train/jobs/{dying.job_id}")
        assert dead["status"] == "failed" and "timed out or ran out of memory" in dead["error"]["message"]
    assert not (store_dir / "models" / "dead").exists()
