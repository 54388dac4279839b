"""Every status a route answers is in the OpenAPI document (what schemathesis checks, asserted route by route):
a client generating code from docs/openapi.json must not meet an answer the document does not describe."""

from __future__ import annotations

import re
from typing import Any

import pytest

from deployment_model.local.routes import load_route_table
from deployment_model.local.server import openapi_document
from tests.conftest import Service, proxy_event

SAMPLE_VALUES = {"name": "Model_ml", "version": "20261124T123456123456Z-1a2b3c4d", "job_id": "1" * 13 + "-" + "0" * 32}


def operations() -> list[tuple[str, str]]:
    """Every documented operation: the template's routes (test_openapi.py proves them the same), HEAD aside."""
    return [(route.method, route.path) for route in load_route_table().routes if route.method != "HEAD"]


def documented(method: str, path: str) -> set[str]:
    return set(openapi_document()["paths"][path][method.lower()]["responses"])


def answer(service: Service, method: str, path: str, **changes: Any) -> dict[str, Any]:
    """The route's own function answering an API Gateway event for it (a sample value per path parameter)."""
    concrete = re.sub(r"\{(\w+)\}", lambda match: SAMPLE_VALUES[match[1]], path)
    function = load_route_table().match(method, concrete).route.function
    event = {**proxy_event(concrete, raw="", method=method), "resource": path, **changes}
    handler = service.train if function == "TrainFunction" else service.predict
    return handler(event)


@pytest.mark.parametrize(("method", "path"), operations())
def test_a_request_the_route_cannot_read_is_a_documented_400(local_service: Service, method: str, path: str) -> None:
    """A malformed event (here its headers; for an operation, its body) is refused 400 on every route."""
    got = answer(local_service, method, path, headers={"Accept": 1}, body="{")
    assert got["statusCode"] == 400
    assert "400" in documented(method, path)


@pytest.mark.parametrize("path", ["/train", "/models/{name}/versions/{version}/export"])
def test_the_routes_own_422_stays_in_the_document(local_service: Service, path: str) -> None:
    """Powertools' default 422 is left out (validation errors are 400 here); the 422 these routes answer
    (training_too_long, model_not_servable) is the service's own, shaped as ErrorResponse."""
    response = openapi_document()["paths"][path]["post"]["responses"]["422"]
    assert response["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert "training_too_long" in response["description"] or "ONNX" in response["description"]
