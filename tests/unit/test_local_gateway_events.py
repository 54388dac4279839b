"""The local server's fidelity to API Gateway where a unit test can pin it: the proxy event's query fields, and
what it reports when a client leaves early."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from deployment_model.local import server


def test_a_repeated_query_name_keeps_every_value_as_api_gateway_does() -> None:
    event = server.proxy_event("GET", "/models?tag=a&limit=5&tag=b", {}, b"", "127.0.0.1")
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"], "limit": ["5"]}
    assert event["queryStringParameters"] == {"tag": "b", "limit": "5"}  # REST APIs: the last value


def test_no_query_is_null_in_both_fields() -> None:
    event = server.proxy_event("GET", "/models", {}, b"", "127.0.0.1")
    assert event["queryStringParameters"] is None and event["multiValueQueryStringParameters"] is None


@pytest.fixture
def local_server() -> Iterator[server.LocalServer]:
    served = server.LocalServer(("127.0.0.1", 0), BaseHTTPRequestHandler, max_connections=1)
    yield served
    served.server_close()


@pytest.mark.parametrize("left", [BrokenPipeError, ConnectionResetError])
def test_a_client_that_leaves_before_its_answer_prints_no_traceback(local_server, capsys, left) -> None:
    try:
        raise left("the client closed the connection")
    except left:
        local_server.handle_error(None, ("127.0.0.1", 50000))
    assert capsys.readouterr().err == ""


def test_any_other_error_while_serving_is_still_reported(local_server, capsys) -> None:
    try:
        raise ValueError("a bug")
    except ValueError:
        local_server.handle_error(None, ("127.0.0.1", 50000))
    assert "ValueError: a bug" in capsys.readouterr().err
