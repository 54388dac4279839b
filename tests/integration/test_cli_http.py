"""The command line over HTTP: against the local server, behind an API that requires a key (found by stack
name through moto), against a fake of the documented job / registry / report routes, and `serve` itself."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws

from deployment_model.local.cli import main
from deployment_model.local.server import make_server
from tests.conftest import ROOT, Service

API_KEY = "k3y-for-tests-0123456789abcdef"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@contextlib.contextmanager
def running(server: ThreadingHTTPServer) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def warmed(url: str, capsys: pytest.CaptureFixture[str], headers: dict[str, str] | None = None) -> str:
    """The server runs in this process: its handlers' cold-start metric lines land in capsys, not in the CLI's."""
    for path in ("/train", "/predict"):
        with contextlib.suppress(urllib.error.HTTPError):
            request = urllib.request.Request(url + path, data=b"[]", method="POST", headers=headers or {})  # noqa: S310
            urllib.request.urlopen(request, timeout=30)  # noqa: S310 - loopback
    capsys.readouterr()
    return url


@pytest.fixture
def local_url(local_service: Service, capsys: pytest.CaptureFixture[str]) -> Iterator[str]:
    with running(make_server("127.0.0.1", 0, quiet=True)) as url:
        yield warmed(url, capsys)


def keyed_server() -> ThreadingHTTPServer:
    """The local server behind a check of x-api-key, answering as API Gateway does without the right key."""
    server = make_server("127.0.0.1", 0, quiet=True)
    local_handler = server.RequestHandlerClass

    class KeyChecked(local_handler):  # type: ignore[misc, valid-type]
        def parse_request(self) -> bool:
            if not super().parse_request():
                return False
            if self.headers.get("x-api-key") == API_KEY:
                return True
            body = b'{"message":"Forbidden"}'
            self.close_connection = True
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return False

    server.RequestHandlerClass = KeyChecked
    return server


def test_train_and_predict_over_http(local_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--url", local_url, "--json", "train", "--candidates", "knn,sgd")
    assert code == 0, err
    version = json.loads(out)["model_version"]
    code, out, err = run(capsys, "predict", "0.7,1", "2.0,5.5", "--url", local_url, "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["model_version"] == version
    assert [p["label"] for p in answer["predictions"]] == ["Not virginica", "virginica"]


def test_in_process_and_over_http_answer_alike(local_url: str, tmp_path: Path, capsys) -> None:
    store = os.environ["MODEL_STORE_DIR"]  # the store the local server serves
    assert run(capsys, "--store-dir", store, "train", "--candidates", "knn,sgd")[0] == 0
    write_rows(tmp_path / "rows.csv", 300)
    outputs = {}
    for target in (["--store-dir", store], ["--url", local_url]):
        code, out, err = run(capsys, *target, "predict", "--csv", str(tmp_path / "rows.csv"), "--format", "json")
        assert code == 0, err
        outputs[target[0]] = json.loads(out)
        code, _, err = run(capsys, *target, "predict", "--model", "Missing", "1,2")
        outputs[target[0] + " error"] = (code, err)
    assert outputs["--store-dir"] == outputs["--url"]
    assert outputs["--store-dir error"] == outputs["--url error"]


def test_service_errors_over_http_are_one_line(local_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--url", local_url, "predict", "--model", "Missing", "1,2")
    assert code == 1 and out == ""
    assert err.startswith("Error: ") and "Missing" in err and err.count("\n") == 1


def write_rows(path: Path, count: int) -> list[list[float]]:
    rows = [[0.1 + (i % 25) / 10, 1 + (i % 60) / 10] for i in range(count)]
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["petal_width", "petal_length"])
        writer.writerows(rows)
    return rows


def test_a_csv_predicts_in_batches_with_a_progress_bar(local_url: str, tmp_path: Path, capsys) -> None:
    assert run(capsys, "--url", local_url, "train", "--candidates", "knn")[0] == 0
    rows = write_rows(tmp_path / "rows.csv", 2_500)
    out_file = tmp_path / "labels.csv"
    argv = ["--url", local_url, "predict", "--csv", str(tmp_path / "rows.csv"), "-o", str(out_file)]
    code, _, err = run(capsys, *argv, "--batch-rows", "1000", "--progress")
    assert code == 0, err
    assert "2,500 rows" in err  # the bar's last state
    with out_file.open() as labelled:
        lines = list(csv.reader(labelled))
    assert lines[0][:2] == ["label", "class_index"]
    assert len(lines) == 1 + len(rows)
    # the same labels as one request per row subset would give: compare a sample with a direct predict
    sample = rows[:5]
    code, out, _ = run(capsys, "--url", local_url, "--json", "predict", *(f"{a},{b}" for a, b in sample))
    assert [p["label"] for p in json.loads(out)["predictions"]] == [line[0] for line in lines[1:6]]


def test_a_csv_from_stdin_to_json(local_url: str, tmp_path: Path, capsys, monkeypatch) -> None:
    assert run(capsys, "--url", local_url, "train", "--candidates", "knn")[0] == 0
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"petal_width,petal_length\n0.7,1\n2,5.5\n")))
    code, out, err = run(capsys, "--url", local_url, "predict", "--csv", "-", "--format", "json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["rows"] == 2 and [p["label"] for p in answer["predictions"]] == ["Not virginica", "virginica"]


# ---- an API that requires a key (as a deployed stage does), reached by URL and by stack name


@pytest.fixture
def keyed_url(local_service: Service, capsys: pytest.CaptureFixture[str]) -> Iterator[str]:
    with running(keyed_server()) as url:
        yield warmed(url, capsys, {"x-api-key": API_KEY})


def test_an_api_key_by_option_or_environment(keyed_url: str, capsys, monkeypatch) -> None:
    code, _, err = run(capsys, "--url", keyed_url, "train", "--candidates", "knn")
    assert code == 1
    assert err == (
        "Error: Forbidden (HTTP 403): this API needs an API key: "
        "pass --api-key, set ML_SERVICE_API_KEY, or use --stack\n"
    )
    code, _, err = run(capsys, "--url", keyed_url, "--api-key", "wrong", "train")
    assert code == 1 and "the API key was refused" in err
    code, out, err = run(capsys, "--url", keyed_url, "--api-key", API_KEY, "--json", "train", "--candidates", "knn")
    assert code == 0, err
    monkeypatch.setenv("ML_SERVICE_API_KEY", API_KEY)
    code, out, err = run(capsys, "--url", keyed_url, "--json", "predict", "0.7,1")
    assert code == 0, err
    assert json.loads(out)["predictions"][0]["label"] == "Not virginica"


def test_a_stack_by_name_reaches_its_api_with_its_key(keyed_url: str, capsys) -> None:
    with mock_aws():
        key = boto3.client("apigateway", region_name="eu-west-1").create_api_key(
            name="ml-key", enabled=True, value=API_KEY
        )
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {"ApiUrl": {"Value": keyed_url + "/"}, "ApiKeyId": {"Value": key["id"]}},
        }
        boto3.client("cloudformation", region_name="eu-west-1").create_stack(
            StackName="ml-service", TemplateBody=json.dumps(template)
        )
        trained = run(capsys, "--stack", "ml-service", "--region", "eu-west-1", "train", "--candidates", "knn")
        predicted = run(capsys, "predict", "0.7,1", "--stack", "ml-service", "--region", "eu-west-1", "--json")
    assert trained[0] == 0 and predicted[0] == 0, (trained, predicted)
    assert json.loads(predicted[1])["predictions"][0]["label"] == "Not virginica"
    for _, out, err in (trained, predicted):
        assert API_KEY not in out and API_KEY not in err  # the key is used, never printed


# ---- the documented routes of jobs (issue 11), the registry (issue 10) and reports (issue 14), faked


JOB_ID = "5f0c8d6e2b8a4c0f9d1e7a3b6c2d4e8f"
RESULT = {
    "message": "Train successfully",
    "model_name": "Model_ml",
    "model_version": "v2",
    "scaler_name": "scaler",
    "candidate": "knn",
    "estimator": "KNeighborsClassifier",
    "params": {"n_neighbors": 3},
    "metrics": {"f1_macro": 0.93, "accuracy": 0.94},
    "candidate_scores": {"knn": 0.93},
    "rows": {"total": 150, "train": 105, "test": 45, "dropped": 0},
    "feature_names": ["b", "a"],
    "labels": ["no", "yes"],
    "training_data": "iris",
    "duration_seconds": 1.5,
    "published": True,
    "publish_reason": "published: the rule is always",
}


def job(status: str, done: int, result: Any = None, error: Any = None) -> dict[str, Any]:
    return {
        "job_id": JOB_ID,
        "status": status,
        "submitted_at": "2026-11-25T10:00:00Z",
        "started_at": None if status == "queued" else "2026-11-25T10:00:01Z",
        "finished_at": "2026-11-25T10:01:00Z" if status in ("succeeded", "failed") else None,
        "progress": {"candidates_done": done, "candidates_total": 2},
        "request": {"filename_model": "Model_ml"},
        "result": result,
        "error": error,
    }


class FakeService:
    """Answers the documented shapes of the routes other issues add, and records every request."""

    def __init__(self, job_outcome: str = "succeeded") -> None:
        self.requests: list[tuple[str, str, dict[str, list[str]], Any]] = []
        final = job("succeeded", 2, result=RESULT)
        if job_outcome == "failed":
            final = job("failed", 1, error={"error": "training_failed", "message": "target column has one class"})
        self.job_states = [job("queued", 0), job("running", 1), final]
        self.predict_answers: list[tuple[int, dict[str, Any]]] = []  # answered before any real prediction
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def do_DELETE(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                url = urlsplit(self.path)
                fake.requests.append((self.command, url.path, parse_qs(url.query), body))
                status, answer = fake.route(self.command, url.path, parse_qs(url.query), body)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                if status in (429, 503):
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Type", "text/html" if isinstance(answer, bytes) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        version_meta = {"name": "Model_ml", "version": "v1", "published": True, **RESULT, "model_version": "v1"}
        routes: dict[tuple[str, str], tuple[int, Any]] = {
            ("GET", "/models"): (
                200,
                {
                    "models": [
                        {
                            "name": "Model_ml",
                            "published_version": "v1",
                            "published_at": "2026-11-25T09:00:00Z",
                            "versions": 2,
                        }
                    ],
                    "next_token": "t2",
                },
            ),
            ("GET", "/models/Model_ml"): (
                200,
                {
                    "name": "Model_ml",
                    "published_version": "v1",
                    "published_at": "2026-11-25T09:00:00Z",
                    "versions": [
                        {
                            "version": "v2",
                            "created_at": "2026-11-25T09:30:00Z",
                            "published": False,
                            "candidate": "sgd",
                            "metrics": {"f1_macro": 0.8, "accuracy": 0.81},
                            "rows": {"total": 150},
                        },
                        {
                            "version": "v1",
                            "created_at": "2026-11-25T09:00:00Z",
                            "published": True,
                            "candidate": "knn",
                            "metrics": {"f1_macro": 0.93, "accuracy": 0.94},
                            "rows": {"total": 150},
                        },
                    ],
                    "next_token": None,
                },
            ),
            ("GET", "/models/Model_ml/versions/v1"): (200, version_meta),
            ("GET", "/models/Model_ml/history"): (
                200,
                {
                    "name": "Model_ml",
                    "events": [
                        {
                            "version": "v1",
                            "previous_version": "v2",
                            "at": "2026-11-25T10:00:00Z",
                            "action": "rollback",
                            "reason": "v2 was worse",
                            "request_id": "r3",
                        }
                    ],
                },
            ),
            ("POST", "/models/Model_ml/publish"): (
                200,
                {"name": "Model_ml", "published_version": "v1", "previous_version": "v2"},
            ),
            ("DELETE", "/models/Model_ml/versions/v2"): (200, {"deleted": "v2"}),
            ("DELETE", "/models/Model_ml/versions/v1"): (
                409,
                {"error": "version_published", "message": "version v1 of Model_ml is published: publish another first"},
            ),
            ("DELETE", "/models/Model_ml"): (200, {"deleted_versions": 2}),
            ("POST", "/train"): (202, {"job_id": JOB_ID, "status": "queued", "status_url": f"/train/jobs/{JOB_ID}"}),
            ("GET", "/train/jobs"): (200, {"jobs": [self.job_states[-1]], "next_token": None}),
            ("GET", f"/train/jobs/{JOB_ID}"): (200, self.job_states[0]),
        }
        if (method, path) == ("GET", f"/train/jobs/{JOB_ID}") and len(self.job_states) > 1:
            return 200, self.job_states.pop(0)
        if (method, path) == ("GET", "/models/Model_ml/versions/v1/report"):
            if query.get("format") == ["json"]:
                return 200, {"confusion_matrix": [[1, 0], [0, 1]]}
            return 200, b"<html><body>report of v1</body></html>"
        if (method, path) == ("POST", "/predict") and self.predict_answers:
            return self.predict_answers.pop(0)
        if (method, path) == ("POST", "/predict"):
            rows = body["x_test"]
            labels = ["yes" if row[0] > row[1] else "no" for row in rows]
            return 200, {
                "result": labels,
                "prediction": [1 if label == "yes" else 0 for label in labels],
                "probabilities": None,
                "labels": ["no", "yes"],
                "model_name": "Model_ml",
                "model_version": body.get("model_version", "v1"),
                "rows": len(rows),
            }
        return routes.get((method, path), (404, {"error": "route_not_found", "message": f"no route {method} {path}"}))


@pytest.fixture
def fake() -> Iterator[FakeService]:
    service = FakeService()
    with running(service.server):
        yield service


def url_of(fake: FakeService) -> str:
    return f"http://127.0.0.1:{fake.server.server_port}"


def test_train_async_prints_the_job_id(fake: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--url", url_of(fake), "train", "--async", "--publish", "never", "--min-f1-macro", "0.9")
    assert code == 0 and JOB_ID in out
    method, path, _, body = fake.requests[-1]
    assert (method, path, body) == ("POST", "/train", {"publish": "never", "min_f1_macro": 0.9, "async": True})


def test_train_wait_follows_the_job_to_its_result(fake: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--url", url_of(fake), "--json", "train", "--wait", "--poll-seconds", "0", "--missing-values", "refuse"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert json.loads(out) == RESULT
    polls = [r for r in fake.requests if r[1] == f"/train/jobs/{JOB_ID}"]
    assert len(polls) == 3  # queued, running, succeeded
    assert fake.requests[0][3] == {"missing_values": "refuse", "async": True}


def test_a_failed_job_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    service = FakeService(job_outcome="failed")
    with running(service.server) as url:
        code, out, err = run(capsys, "--url", url, "jobs", "show", JOB_ID, "--wait", "--poll-seconds", "0")
    assert code == 1 and out == ""
    assert err == f"Error: job {JOB_ID} failed: target column has one class\n"


def test_jobs_list_and_show(fake: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--url", url_of(fake), "jobs", "list", "--limit", "5")
    assert code == 0 and JOB_ID in out and "succeeded" in out
    assert fake.requests[-1][2] == {"limit": ["5"]}
    code, out, _ = run(capsys, "--url", url_of(fake), "--json", "jobs", "show", JOB_ID)
    assert code == 0 and json.loads(out)["status"] == "queued"


def test_models_list_show_and_history(fake: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    url = url_of(fake)
    code, out, _ = run(capsys, "--url", url, "models", "list")
    assert code == 0 and "Model_ml" in out and "--next-token t2" in out
    code, out, _ = run(capsys, "--url", url, "models", "show", "Model_ml")
    assert code == 0 and re.search(r"\*\s*│\s*v1", out) and "v2" in out  # the published one marked
    code, out, _ = run(capsys, "--url", url, "--json", "models", "show", "Model_ml", "v1")
    assert code == 0 and json.loads(out)["feature_names"] == ["b", "a"]
    code, out, _ = run(capsys, "--url", url, "models", "history", "Model_ml")
    assert code == 0 and "rollback" in out and "v2 was worse" in out


def test_models_publish_and_delete(fake: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    url = url_of(fake)
    code, out, _ = run(capsys, "--url", url, "models", "publish", "Model_ml", "v1", "--reason", "v2 was worse")
    assert (code, out) == (0, "Model_ml: published v1 (was v2)\n")
    assert fake.requests[-1][3] == {"version": "v1", "reason": "v2 was worse"}
    code, out, _ = run(capsys, "--url", url, "models", "delete", "Model_ml", "v2")
    assert (code, out) == (0, "Model_ml: deleted version v2\n")
    code, _, err = run(capsys, "--url", url, "models", "delete", "Model_ml", "v1")
    assert code == 1 and err == "Error: version v1 of Model_ml is published: publish another first\n"
    code, _, err = run(capsys, "--url", url, "models", "delete", "Model_ml")
    assert code == 2 and "--yes" in err  # a whole model is not deleted unasked
    code, out, _ = run(capsys, "--url", url, "models", "delete", "Model_ml", "--yes")
    assert (code, out) == (0, "Model_ml: deleted 2 versions\n")


def test_report_saved_to_a_file(fake: FakeService, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "--url", url_of(fake), "report", "Model_ml", "v1")
    assert code == 0 and "Model_ml-v1-report.html" in out
    assert (tmp_path / "Model_ml-v1-report.html").read_text() == "<html><body>report of v1</body></html>"
    code, _, _ = run(capsys, "--url", url_of(fake), "report", "Model_ml", "v1", "--format", "json", "-o", "r.json")
    assert code == 0 and json.loads((tmp_path / "r.json").read_text()) == {"confusion_matrix": [[1, 0], [0, 1]]}


def test_csv_columns_follow_the_models_feature_names_and_one_version(fake: FakeService, tmp_path: Path, capsys) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b,extra\n" + "".join(f"{i},{10 - i},z\n" for i in range(10)))
    argv = ["--url", url_of(fake), "predict", "--csv", str(rows), "--batch-rows", "4", "--format", "csv"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    predicts = [body for method, path, _, body in fake.requests if path == "/predict"]
    assert [len(body["x_test"]) for body in predicts] == [4, 4, 2]
    assert predicts[0]["x_test"][0] == [10.0, 0.0]  # columns b, a: the version's feature_names order
    assert {body["model_version"] for body in predicts} == {"v1"}  # the published version, pinned for the file
    assert out.splitlines()[0] == "label,class_index"
    assert len(out.splitlines()) == 11


def test_a_throttled_or_unavailable_moment_is_retried(fake: FakeService, tmp_path: Path, capsys) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n" + "".join(f"{i},{10 - i}\n" for i in range(10)))
    fake.predict_answers = [
        (503, {"error": "storage_unavailable", "message": "storage unreachable"}),
        (429, {"message": "Too Many Requests"}),
    ]
    argv = ["--url", url_of(fake), "predict", "--csv", str(rows), "--batch-rows", "4", "--format", "csv"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert len(out.splitlines()) == 11
    assert len([r for r in fake.requests if r[1] == "/predict"]) == 3 + 2


def test_a_failure_midway_says_how_much_was_written(fake: FakeService, tmp_path: Path, capsys) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n" + "".join(f"{i},{10 - i}\n" for i in range(10)))
    out_file = tmp_path / "labels.csv"
    original = fake.route

    def second_batch_fails(method: str, path: str, query: Any, body: Any) -> tuple[int, Any]:
        if path == "/predict" and len([r for r in fake.requests if r[1] == "/predict"]) == 2:
            return 400, {"error": "invalid_request", "message": "x_test row 1 is out of range"}
        return original(method, path, query, body)

    fake.route = second_batch_fails  # type: ignore[method-assign]
    argv = ["--url", url_of(fake), "predict", "--csv", str(rows), "--batch-rows", "4", "-o", str(out_file)]
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert err == "Error: stopped after 4 rows were written: x_test row 1 is out of range\n"
    assert len(out_file.read_text().splitlines()) == 1 + 4


def test_api_gateways_timeout_points_at_async(fake: FakeService, capsys) -> None:
    original = fake.route
    fake.route = lambda method, path, query, body: (  # type: ignore[method-assign]
        (504, {"message": "Endpoint request timed out"}) if path == "/train" else original(method, path, query, body)
    )
    code, _, err = run(capsys, "--url", url_of(fake), "train")
    assert code == 1
    assert err == (
        "Error: Endpoint request timed out (HTTP 504): the call took longer than the API allows; train with --async\n"
    )


# ---- serve in a real process


def serve_process(*argv: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "deployment_model", "serve", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_takes_its_options_after_the_command_and_serves_a_retrain_at_once(tmp_path: Path, capsys) -> None:
    process = serve_process("--store-dir", str(tmp_path / "models"), "--port", "0", cwd=tmp_path)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"models in {tmp_path / 'models'}" in first
        url = re.search(r"http://127\.0\.0\.1:\d+", first).group(0)
        versions = []
        for _ in range(2):
            code, out, err = run(capsys, "--url", url, "--json", "train", "--candidates", "knn")
            assert code == 0, err
            versions.append(json.loads(out)["model_version"])
            # the deployed default (60 s) would keep answering the first version; serve re-reads each second
            deadline = time.monotonic() + 15
            while True:
                code, out, err = run(capsys, "--url", url, "--json", "predict", "0.7,1")
                assert code == 0, err
                if json.loads(out)["model_version"] == versions[-1] or time.monotonic() > deadline:
                    break
                time.sleep(0.1)  # polling the server's answer, bounded by the deadline
            assert json.loads(out)["model_version"] == versions[-1]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = serve_process("--port", str(port), cwd=tmp_path)
        out, err = process.communicate(timeout=120)
    assert process.returncode == 1 and out == ""
    assert err == (
        f"Error: port {port} on 127.0.0.1 is already in use: stop what runs there, or pick another port "
        f"(--port {port + 1}; with make: make run PORT={port + 1})\n"
    )
