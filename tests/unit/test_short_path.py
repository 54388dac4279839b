"""Routes on the short path (v2 infer): answered without Powertools' middleware, yet as Powertools would."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter

from deployment_model.api.service import MAX_REMEMBERED_MATCHES, ServiceApp
from tests.conftest import Service, body_of, proxy_event, start_service

BODY = {"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [0.7, 1.0]}]}
PINNED = "/v2/models/Model_ml/versions/20200101T000000000000Z-00000000/infer"


def call(service: Service, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    event = proxy_event(path, body, method=method)
    if body is None:
        event["body"] = None
    answer = service.predict(event)
    return answer["statusCode"], body_of(answer)


@pytest.fixture
def trained(local_service: Service) -> Service:
    local_service.train({})
    return local_service


def test_a_route_after_a_short_path_request_answers_its_own_request(trained: Service) -> None:
    # The short path hands the event to the route where Powertools' own routing reads it: a later request
    # through Powertools must see its own event, not the short-path request's.
    assert call(trained, "POST", PINNED, BODY) == (
        404,
        {"error": f"model 'Model_ml' has no version '{PINNED.split('/')[5]}'"},
    )
    assert call(trained, "GET", "/v2/models/nope") == (404, {"error": "model 'nope' has not been trained yet"})
    status, body = call(trained, "GET", "/v2/models/Model_ml")
    assert status == 200 and body["name"] == "Model_ml"


def test_short_path_answers_equal_powertools_routing(trained: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [
        ("/v2/models/Model_ml/infer", BODY),
        ("/v2/models/Model_ml/infer/", BODY),
        (PINNED, BODY),
        ("/v2/models/nope/infer", BODY),
        ("/v2/models/Model_ml/infer", {"inputs": []}),
        ("/v2/models/Model_ml/infer", "not an object"),
    ]
    short = [trained.predict(proxy_event(path, body)) for path, body in cases]
    monkeypatch.setattr(trained.inference_module.app, "short_paths", {})  # every route through Powertools' resolver
    routed = [trained.predict(proxy_event(path, body)) for path, body in cases]
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
def test_infer_reads_only_what_an_operation_reads(trained: Service, changes: dict[str, Any], field: str | None) -> None:
    """As /predict: the method, path and body are checked (a 400 naming the field, in the protocol's shape);
    a malformed field the route does not read is no reason to refuse it."""
    for path in ("/v2/models/Model_ml/infer", "/predict"):
        body = BODY if path.startswith("/v2") else {"x_test": [0.7, 1.0]}
        answer = trained.predict({**proxy_event(path, body), **changes})
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


def test_a_cold_start_builds_no_json_schema(local_service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """The infer routes' request body schema is built when the OpenAPI document is generated, not at import."""

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("a JSON schema was built at import")

    monkeypatch.setattr(TypeAdapter, "json_schema", refuse)
    monkeypatch.setattr(BaseModel, "model_json_schema", refuse)
    service = start_service()
    monkeypatch.undo()
    document = json.loads(service.inference_module.app.get_openapi_json_schema())
    body = document["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["properties"]["inputs"]["maxItems"] == 1
