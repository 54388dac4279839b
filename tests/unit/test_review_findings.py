"""Defects found by the adversarial review of the registry, jobs, ONNX and client work, each as the behaviour a
user relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployment_model.local import docs_page
from tests.conftest import Service, body_of, proxy_event


def test_an_unknown_train_field_is_answered_with_the_json_field_names_a_client_can_send(
    local_service: Service,
) -> None:
    answer = body_of(local_service.train(proxy_event("/train", {"bogus": True})))
    accepted = answer["message"].split("accepted fields: ", 1)[1].split(", ")
    assert "async" in accepted
    assert "async_" not in accepted


def test_the_docs_page_says_how_to_install_swagger_ui_when_its_assets_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(docs_page.ASSETS_ENV, str(tmp_path))
    status, headers, body = docs_page.answer("/docs")
    assert status == 404
    assert "make swagger-ui" in body.decode()
    (tmp_path / "swagger-ui-bundle.js").write_text("// bundle")
    status, headers, body = docs_page.answer("/docs")
    assert (status, headers["Content-Type"]) == (200, ["text/html; charset=utf-8"])
    assert b"swagger-ui-bundle.js" in body
