"""Statuses a client meets at the local server (as at API Gateway) before any function runs, documented."""

from __future__ import annotations

import json
import re

import pytest

from deployment_model.local.routes import load_route_table
from deployment_model.local.server import MAX_BODY_BYTES
from tests.conftest import ROOT
from tests.integration.conftest import Client
from tests.unit.test_documented_statuses import SAMPLE_VALUES

BODY_ROUTES = [route.path for route in load_route_table().routes if route.method == "POST"]


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_a_body_over_lambdas_limit_is_a_documented_413(local_server: Client, path: str) -> None:
    concrete = re.sub(r"\{(\w+)\}", lambda match: SAMPLE_VALUES[match[1]], path)
    status, _, body = local_server.request(
        "POST", concrete, raw=b"{" + b" " * MAX_BODY_BYTES + b"}", headers={"Content-Type": "application/json"}
    )
    assert status == 413 and body["error"] == "body_too_large"
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert "413" in document["paths"][path]["post"]["responses"]
