"""The command line's in-process target answers what the local server answers

`InProcess` (no socket) and the local server (over HTTP) send a request through the same gateway code: the
same route table, the same proxy event, the same refusals, the same headers. Each request here goes to both,
on one store, and the answers must be equal: status, headers (bar those HTTP itself adds) and body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from deployment_model.local.client import Answer, Http, InProcess
from tests.integration.conftest import Client, running_local_server

HTTP_ONLY_HEADERS = {"server", "date", "content-length", "connection"}  # the HTTP framing, not the answer
JSON = {"Content-Type": "application/json"}
ROWS = json.dumps({"x_test": [[0.7, 1.0], [2.0, 5.5]]}).encode()

Request = tuple[str, str, bytes | None, dict[str, str]]
REQUESTS: list[Request] = [
    ("GET", "/nope", None, {}),  # no route: the server lists every route of both functions
    ("POST", "/nowhere", b"{}", JSON),
    ("PATCH", "/train/jobs", b"{}", JSON),  # a path one function serves, a method it does not: 405
    ("DELETE", "/predict", None, {}),
    ("GET", "/openapi.json", None, {}),  # the document of both functions, served by the gateway itself
    ("GET", "/docs", None, {}),  # the Swagger UI page (or, not installed, a 404 saying how to install it)
    ("HEAD", "/models", None, {}),  # GET's status and headers, no body
    ("GET", "/models", None, {}),
    ("GET", "/models?limit=0", None, {}),
    ("OPTIONS", "/predict", None, {"Origin": "http://localhost:8000", "Access-Control-Request-Method": "POST"}),
    ("POST", "/predict", ROWS, JSON),  # no model yet: the function's own 404
    ("GET", "/train/jobs/not-a-job", None, {}),
]
TRAINED_REQUESTS: list[Request] = [
    ("POST", "/predict", ROWS, JSON),
    ("POST", "/inference", ROWS, JSON),
    ("GET", "/models/Model_ml", None, {}),
    ("GET", "/models/Model_ml/versions/latest", None, {}),
    ("GET", "/models/Model_ml/versions/no-such-version/report", None, {}),
]


@pytest.fixture
def targets(local_server: Client, tmp_path: Path) -> Iterator[tuple[Http, InProcess]]:
    """The local server and the in-process target, on the store the server serves."""
    yield Http(local_server.base_url), InProcess(str(tmp_path / "store"))


def comparable(answer: Answer) -> tuple[int, dict[str, str], bytes]:
    headers = {name: value for name, value in answer.headers.items() if name not in HTTP_ONLY_HEADERS}
    return answer.status, headers, answer.body


def assert_same_answers(targets: tuple[Http, InProcess], requests: list[Request]) -> None:
    http, in_process = targets
    differing = []
    for method, target, body, headers in requests:
        served = comparable(http.send(method, target, body, headers))
        answered = comparable(in_process.send(method, target, body, headers))
        if answered != served:
            differing.append((f"{method} {target}", {"server": served, "in process": answered}))
    assert differing == []


def test_refusals_and_reads_in_process_are_the_servers(targets: tuple[Http, InProcess]) -> None:
    assert_same_answers(targets, REQUESTS)


def test_a_404_in_process_lists_every_route_of_both_functions(targets: tuple[Http, InProcess]) -> None:
    message = targets[1].send("GET", "/nope", None, {}).json()["message"]
    assert "POST /train" in message and "POST /predict" in message and "GET /models/{name}" in message


def test_answers_of_a_trained_model_in_process_are_the_servers(targets: tuple[Http, InProcess]) -> None:
    trained = targets[0].send("POST", "/train", json.dumps({"candidates": ["knn"]}).encode(), JSON)
    assert trained.status == 200, trained.body
    assert_same_answers(targets, TRAINED_REQUESTS)


# A function answering a header in both maps of a proxy response: API Gateway keeps multiValueHeaders' value.
app = APIGatewayRestResolver()


@app.get("/both-header-maps")
def _both_header_maps() -> Response[str]:
    return Response(200, "application/json", "{}", headers={"X-Served-By": ["multiValueHeaders"]})


def answer_with_both_header_maps(event: dict[str, Any], context: Any) -> dict[str, Any]:
    answer = app.resolve(event, context)
    return {**answer, "headers": {"X-Served-By": "headers", "X-Only-In-Headers": "kept"}}


TEMPLATE = f"""
Resources:
  BothMapsFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: {__name__}.answer_with_both_header_maps
      Events:
        Both:
          Type: Api
          Properties: {{Path: /both-header-maps, Method: get}}
"""


def test_a_header_in_both_maps_is_multi_value_headers_one_in_process_as_in_the_server(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE)
    with running_local_server(template=template) as client:
        served = Http(client.base_url).send("GET", "/both-header-maps", None, {})
        answered = InProcess(str(tmp_path / "store"), template=template).send("GET", "/both-header-maps", None, {})
        assert comparable(answered) == comparable(served)
        assert answered.headers["x-served-by"] == "multiValueHeaders"
        assert answered.headers["x-only-in-headers"] == "kept"
