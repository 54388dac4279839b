"""A 405 names the method the client sent: HEAD included, though HEAD is routed as GET (RFC 9110 9.3.2)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Service, proxy_event


@pytest.mark.parametrize(("function", "path"), [("predict", "/predict"), ("train", "/train")])
@pytest.mark.parametrize("method", ["HEAD", "head"])
def test_head_on_a_post_only_path_is_a_405_naming_head(
    local_service: Service, function: str, path: str, method: str
) -> None:
    """A hand-made event (API Gateway declares no HEAD there): the message names HEAD, not the GET it is routed as."""
    answer = getattr(local_service, function)(proxy_event(path, raw="", method=method))
    assert answer["statusCode"] == 405 and answer["multiValueHeaders"]["Allow"] == ["POST"]
    assert json.loads(answer["body"])["message"] == f"HEAD is not allowed on {path}; use POST"


@pytest.mark.parametrize(("function", "path"), [("predict", "/predict"), ("train", "/train")])
def test_get_on_a_post_only_path_still_names_get(local_service: Service, function: str, path: str) -> None:
    answer = getattr(local_service, function)(proxy_event(path, raw="", method="GET"))
    assert answer["statusCode"] == 405 and answer["multiValueHeaders"]["Allow"] == ["POST"]
    assert json.loads(answer["body"])["message"] == f"GET is not allowed on {path}; use POST"


def test_head_on_an_unknown_path_is_a_404_naming_head(local_service: Service) -> None:
    answer = local_service.predict(proxy_event("/no-such-route", raw="", method="HEAD"))
    assert answer["statusCode"] == 404
    assert json.loads(answer["body"])["message"].startswith("no route HEAD /no-such-route; this function serves ")
