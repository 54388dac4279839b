"""What the commands send and print, against a recording stand-in for the service: the request each option
makes, and each command's output as a person reads it and as a script reads it (--json)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deployment_model.local import cli
from deployment_model.local.client import Answer, ServiceClient

JOB_ID = "8204a1f0-5f2c-4c43-9d7e-0c3b5f7a9e11"
FAILED_JOB = {"job_id": JOB_ID, "status": "failed", "error": {"message": "target column has one class"}}
ANSWERS: dict[tuple[str, str], Any] = {
    ("POST", "/train"): {"job_id": JOB_ID, "status": "queued", "status_url": f"/train/jobs/{JOB_ID}"},
    ("GET", f"/train/jobs/{JOB_ID}"): FAILED_JOB,
    ("POST", "/models/Model_ml/publish"): {"name": "Model_ml", "published_version": "v1", "previous_version": "v2"},
    ("POST", "/models/Model_ml/versions/v1/export"): {
        "model_name": "Model_ml",
        "model_version": "v3",
        "derived_from": "v1",
        "published": True,
    },
    ("DELETE", "/models/Model_ml/versions/v2"): {"deleted": "v2"},
    ("DELETE", "/models/Model_ml"): {"deleted_versions": 2},
}


class Recorded:
    """A transport answering ANSWERS and keeping each request's method, path and JSON body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []

    def send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        self.requests.append((method, target, json.loads(body) if body else None))
        answer = ANSWERS[(method, target.split("?")[0])]
        return Answer(
            202 if target == "/train" else 200, {"content-type": "application/json"}, json.dumps(answer).encode()
        )


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Recorded:
    recorded = Recorded()
    monkeypatch.setattr(cli, "_client", lambda ctx: ServiceClient(recorded))
    return recorded


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def printed(answer: Any) -> str:
    return json.dumps(answer, indent=2) + "\n"


@pytest.mark.parametrize(
    ("options", "candidates"),
    [
        (["--candidates", "knn", "--candidates", "sgd"], ["knn", "sgd"]),
        (["--candidates", "knn,sgd"], ["knn", "sgd"]),
        (["--candidates", "sgd, knn", "--candidates", "knn,random_forest"], ["sgd", "knn", "random_forest"]),
        (["--candidates", "knn,sgd", "--candidates", "knn"], ["knn", "sgd"]),
        (["--candidates", "knn,knn"], ["knn"]),
    ],
)
def test_candidates_given_repeated_or_comma_separated_are_one_list_in_order_each_once(
    service: Recorded, capsys: pytest.CaptureFixture[str], options: list[str], candidates: list[str]
) -> None:
    code, _, err = run(capsys, "train", "--async", *options)
    assert code == 0, err
    assert service.requests == [("POST", "/train", {"candidates": candidates, "async": True})]


def test_without_candidates_the_request_leaves_them_to_the_service(
    service: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "train", "--async")[0] == 0
    assert service.requests == [("POST", "/train", {"async": True})]


def test_repeated_candidates_with_grids_is_still_a_usage_error(
    service: Recorded, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    grids = tmp_path / "grids.json"
    grids.write_text('{"knn": null}')
    code, _, err = run(capsys, "train", "--candidates", "knn", "--candidates", "sgd", "--grids", str(grids))
    assert code == 2 and "--candidates and --grids both choose the candidates" in err
    assert service.requests == []


def test_the_help_says_candidates_may_be_repeated(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "train", "--help")
    assert "repeat" in " ".join(out.split()).split("--candidates", 1)[1].split("--grids")[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["models", "publish", "Model_ml", "v1"], "Model_ml: published v1 (was v2)\n"),
        (["models", "export", "Model_ml", "v1", "--publish"], "Model_ml: version v3 derived from v1 (published)\n"),
        (["models", "delete", "Model_ml", "v2"], "Model_ml: deleted version v2\n"),
        (["models", "delete", "Model_ml", "--yes"], "Model_ml: deleted 2 versions\n"),
    ],
)
def test_a_change_prints_one_line_for_a_person_and_the_answer_for_a_script(
    service: Recorded, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run(capsys, *argv) == (0, message, "")
    method, target, _ = service.requests[-1]
    assert run(capsys, "--json", *argv) == (0, printed(ANSWERS[(method, target)]), "")


def test_an_export_not_published_says_so(service: Recorded, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    key = ("POST", "/models/Model_ml/versions/v1/export")
    monkeypatch.setitem(ANSWERS, key, {**ANSWERS[key], "published": False})
    code, out, _ = run(capsys, "models", "export", "Model_ml", "v1")
    assert (code, out) == (0, "Model_ml: version v3 derived from v1 (stored, not published)\n")


def test_a_queued_job_prints_its_id_alone_and_how_to_follow_it_on_stderr(
    service: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--url", "http://127.0.0.1:3000", "train", "--async")
    assert (code, out) == (0, f"{JOB_ID}\n")
    assert err == f"queued; follow it with: python -m deployment_model jobs show {JOB_ID} --wait\n"
    code, out, err = run(capsys, "train", "--async")  # in-process: nothing runs it until a server does
    assert (code, out) == (0, f"{JOB_ID}\n")
    assert err == (
        "queued; follow it with: `python -m deployment_model serve`, then "
        f"python -m deployment_model jobs show {JOB_ID} --wait --url http://127.0.0.1:3000\n"
    )
    assert run(capsys, "--json", "train", "--async") == (0, printed(ANSWERS[("POST", "/train")]), "")


def test_a_failed_job_prints_its_record_for_a_script_and_one_error_line(
    service: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--url", "http://127.0.0.1:3000", "jobs", "show", JOB_ID, "--wait", "--poll-seconds", "0"]
    error = f"Error: job {JOB_ID} failed: target column has one class\n"
    assert run(capsys, *argv) == (1, "", error)
    assert run(capsys, "--json", *argv) == (1, printed(FAILED_JOB), error)
