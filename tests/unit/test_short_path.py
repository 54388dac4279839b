"""Routes on the short path (v2 infer): answered without Powertools' middleware, yet as Powertools would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deployment_model.api.service import MAX_REMEMBERED_MATCHES, ServiceApp
from tests.conftest import ROOT, Service, body_of, proxy_event

BODY = {"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [0.7, 1.0]}]}
PINNED = "/v2/models/Model_ml/versions/20200101T000000000000Z-00000000/infer"


def call(service: Service, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    answer = service.predict(proxy_event(path, body, method=method))
    return answer["statusCode"], body_of(answer)


def test_a_route_after_a_short_path_request_answers_its_own_request(trained_local_service: Service) -> None:
    # The short path hands the event to the route where Powertools' own routing reads it: a later request
    # through Powertools must see its own event, not the short-path request's.
    assert call(trained_local_service, "POST", PINNED, BODY) == (
        404,
        {"error": f"model 'Model_ml' has no version '{PINNED.split('/')[5]}'"},
    )
    assert call(trained_local_service, "GET", "/v2/models/nope") == (
        404,
        {"error": "model 'nope' has not been trained yet"},
    )
    status, body = call(trained_local_service, "GET", "/v2/models/Model_ml")
    assert status == 200 and body["name"] == "Model_ml"


def test_short_path_answers_equal_powertools_routing(
    trained_local_service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [
        ("/v2/models/Model_ml/infer", BODY),
        ("/v2/models/Model_ml/infer/", BODY),
        (PINNED, BODY),
        ("/v2/models/nope/infer", BODY),
        ("/v2/models/Model_ml/infer", {"inputs": []}),
        ("/v2/models/Model_ml/infer", "not an object"),
    ]
    short = [trained_local_service.predict(proxy_event(path, body)) for path, body in cases]
    monkeypatch.setattr(
        trained_local_service.inference_module.app, "short_paths", {}
    )  # every route through Powertools' resolver
    routed = [trained_local_service.predict(proxy_event(path, body)) for path, body in cases]
    assert short == routed
    assert [answer["statusCode"] for answer in short] == [200, 200, 404, 404, 400, 400]


# --- one mechanism for operations and short-path routes -------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"httpMethod": 5}, "httpMethod"),
        ({"path": None}, "path"),
        ({"body": 5}, "body"),
        ({"isBase64Encoded": "maybe"}, "isBase64Encoded"),
        ({"headers": 5}, None),
        ({"headers": {"a": 5}}, None),
        ({"multiValueHeaders": {"a": "b"}}, None),
        ({"queryStringParameters": []}, None),
        ({"requestContext": "x"}, None),
    ],
)
def test_infer_reads_only_what_an_operation_reads(
    trained_local_service: Service, changes: dict[str, Any], field: str | None
) -> None:
    """As /predict: the method, path and body are checked (a 400 naming the field, in the protocol's shape);
    a malformed field the route does not read is no reason to refuse it."""
    for path in ("/v2/models/Model_ml/infer", "/predict"):
        body = BODY if path.startswith("/v2") else {"x_test": [0.7, 1.0]}
        answer = trained_local_service.predict({**proxy_event(path, body), **changes})
        text = json.loads(answer["body"])
        if field is None:
            assert answer["statusCode"] == 200, text
        else:
            assert answer["statusCode"] == 400 and field in text.get("error", "") + text.get("message", ""), text


def test_a_remembered_match_gives_way_to_a_route_declared_later() -> None:
    app = ServiceApp()

    @app.short_path("POST", "/items/<name>")
    def item(name: str) -> dict[str, Any]:
        return {"name": name}

    matched = app.matched_short_path("POST", "/items/special")
    assert matched is not None and matched[1] == {"name": "special"}
    assert app.matched_short_path("POST", "/items/special") == matched  # remembered: the same answer

    @app.post("/items/special")  # a static route: Powertools matches it before any route with parameters
    def special() -> dict[str, Any]:
        return {}

    assert app.matched_short_path("POST", "/items/special") is None
    assert app.matched_short_path("POST", "/items/other") == (
        app.short_paths[("POST", "/items/<name>")],
        {"name": "other"},
    )


def test_many_distinct_paths_are_matched_right_with_bounded_memory() -> None:
    app = ServiceApp()

    @app.short_path("POST", "/items/<name>")
    def item(name: str) -> dict[str, Any]:
        return {"name": name}

    for number in range(3 * MAX_REMEMBERED_MATCHES):
        matched = app.matched_short_path("POST", f"/items/n{number}")
        assert matched is not None and matched[1] == {"name": f"n{number}"}
        assert len(app._remembered) <= MAX_REMEMBERED_MATCHES
    assert app.matched_short_path("GET", "/items/n1") is None  # another method: Powertools answers (405)


COLD_START = """
import json
from pydantic import BaseModel, TypeAdapter
from deployment_model.local.server import LocalContext
from tests.conftest import proxy_event

def refuse(*_, **__):
    raise AssertionError("a JSON schema was built before the document was asked for")

json_schema, model_json_schema = TypeAdapter.json_schema, BaseModel.model_json_schema
TypeAdapter.json_schema, BaseModel.model_json_schema = refuse, refuse
from deployment_model.train.app import lambda_handler as train
from deployment_model.inference import app
from deployment_model.api import v2
ctx = LocalContext("f")
assert train({}, ctx)["statusCode"] == 200
assert app.lambda_handler({"x_test": [0.7, 1.0]}, ctx)["statusCode"] == 200
models = (v2.InferResponse, v2.V2Error)
print("after predict", v2._INFER_REQUEST.pydantic_complete, [m.__pydantic_complete__ for m in models])
body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [0.7, 1.0]}]}
print("infer", app.lambda_handler(proxy_event("/v2/models/Model_ml/infer", body), ctx)["statusCode"])
print("after infer", v2._INFER_REQUEST.pydantic_complete)
TypeAdapter.json_schema, BaseModel.model_json_schema = json_schema, model_json_schema
document = json.loads(app.app.get_openapi_json_schema())
schema = document["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]["application/json"]["schema"]
print("documented", schema["properties"]["inputs"]["maxItems"])
"""


def test_a_cold_start_builds_no_json_schema_and_no_v2_validator(tmp_path: Path) -> None:
    """The infer routes' request body schema is built when the OpenAPI document is generated, the inference
    request's validator at the first infer, the v2 response models for the document only: none at import."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MODEL_STORE_DIR": str(tmp_path / "store")}
    result = subprocess.run([sys.executable, "-c", COLD_START], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = [line for line in result.stdout.splitlines() if not line.startswith("{")]
    assert printed == ["after predict False [False, False]", "infer 200", "after infer True", "documented 1"]
