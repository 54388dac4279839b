"""Schema-driven fuzzing: schemathesis generates requests from the OpenAPI document and drives the local
server over HTTP. No 5xx, and every response conforms to the documented schema.

The document is docs/openapi.json, which tests/unit/test_openapi.py proves equal to the one the server serves.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ROOT
from tests.integration.conftest import running_local_server

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
schema = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.json")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The local server with a trained model, so that valid requests reach the model."""
    store = tmp_path_factory.mktemp("fuzz") / "store"
    with running_local_server(store, env={"POWERTOOLS_LOG_LEVEL": "CRITICAL"}) as client:
        client.service.train({})
        yield client.base_url


@schema.include(path_regex="^/(predict|inference)$").parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_predict_routes_conform(case: schemathesis.Case, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, checks=CHECKS)


@schema.include(path="/train").parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_train_route_conforms(case: schemathesis.Case, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, checks=CHECKS)


@schema.include(path_regex="^/(models|train/jobs)").parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_registry_and_job_routes_conform(case: schemathesis.Case, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, checks=CHECKS)
