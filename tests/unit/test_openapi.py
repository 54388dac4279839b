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
