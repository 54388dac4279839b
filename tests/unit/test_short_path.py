"""Routes on the short path (v2 infer): answered without Powertools' middleware, yet as Powertools would."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Service, body_of, proxy_event

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
