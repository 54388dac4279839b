"""The committed OpenAPI document is the one the code generates (`make openapi` refreshes it)."""

from __future__ import annotations

import json

from deployment_model.local.server import openapi_document
from tests.conftest import ROOT


def test_docs_openapi_json_is_up_to_date(local_service) -> None:
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert committed == openapi_document(), "run `make openapi` and commit docs/openapi.json"


def test_every_route_documents_its_errors_as_error_responses(local_service) -> None:
    document = openapi_document()
    for path in ("/train", "/predict", "/inference"):
        responses = document["paths"][path]["post"]["responses"]
        assert {"200", "400", "403", "404", "503"} <= set(responses)
        assert responses["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")


def test_the_api_key_the_deployed_api_enforces_is_declared(local_service) -> None:
    document = openapi_document()
    assert document["components"]["securitySchemes"] == {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}
    }
    assert document["security"] == [{"ApiKey": []}]


def test_operations_have_readable_unique_ids(local_service) -> None:
    document = openapi_document()
    ids = {path: operation["operationId"] for path, item in document["paths"].items() for operation in item.values()}
    assert {ids["/train"], ids["/predict"], ids["/inference"]} == {"train", "predict", "inference"}
    assert len(set(ids.values())) == len(ids)


def test_routes_declared_with_powertools_decorators_are_named_after_their_function() -> None:
    from tests import things_app

    document = json.loads(things_app.app.get_openapi_json_schema())
    ids = {(path, method): op["operationId"] for path, item in document["paths"].items() for method, op in item.items()}
    assert ids == {
        ("/things", "post"): "things",
        ("/things/{name}", "get"): "get_thing",
        ("/things/{name}", "delete"): "delete_thing",
        ("/things/{name}/resize", "post"): "resize_thing",
    }


def test_the_documented_routes_are_the_templates_routes(local_service) -> None:
    """One declaration per route: what API Gateway (and the local server) routes is what the functions serve."""
    from deployment_model.local.routes import load_route_table

    documented = {(method.upper(), path) for path, item in openapi_document()["paths"].items() for method in item}
    routes = load_route_table().routes
    assert documented == {(route.method, route.path) for route in routes if route.method != "HEAD"}
    # HEAD is GET without the body (RFC 9110 9.3.2): routed wherever GET is, to the same function, undocumented.
    gets = {(route.path, route.function) for route in routes if route.method == "GET"}
    assert {(route.path, route.function) for route in routes if route.method == "HEAD"} == gets
