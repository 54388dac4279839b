"""HEAD (RFC 9110 9.3.2): wherever GET answers, HEAD answers the same status and headers, with no body.

The deployed API routes HEAD on every GET route (template.yaml declares it) to the function that serves GET,
which answers it as GET; the local server does the same for those routes, and for its own pages itself.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from deployment_model.local import docs_page
from tests.conftest import Service, proxy_event
from tests.integration.conftest import Client

IGNORED = {"date", "content-length"}  # the date may tick between the two answers; lengths are compared apart


def answers(client: Client, requests: list[tuple[str, str]]) -> list[tuple[int, dict[str, str], bytes]]:
    """Send the requests on one connection and read each answer, as a client does: no body after a HEAD's
    headers (RFC 9110), so a body the server sent anyway would be misread as the next answer's status line."""
    host, port = client.base_url.removeprefix("http://").split(":")
    data = "".join(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n" for method, path in requests).encode()
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(data)
        stream = connection.makefile("rb")
        result = []
        for method, _ in requests:
            status_line = stream.readline()
            assert status_line.startswith(b"HTTP/1.1 "), f"not a status line: {status_line[:80]!r}"
            headers = {}
            while (line := stream.readline().decode("latin-1").strip()) != "":
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = b"" if method == "HEAD" else stream.read(int(headers["content-length"]))
            result.append((int(status_line.split()[1]), headers, body))
        return result


def get_then_head(client: Client, path: str) -> list[tuple[int, dict[str, str], bytes]]:
    """GET, HEAD, then another GET on one connection: the last is read right only if HEAD sent no body."""
    get, head, after = answers(client, [("GET", path), ("HEAD", path), ("GET", "/openapi.json")])
    assert after[0] == 200 and json.loads(after[2])["openapi"]
    return [get, head]


def assert_head_is_get_without_body(client: Client, path: str, status: int) -> None:
    (get_status, get_headers, get_body), (head_status, head_headers, _) = get_then_head(client, path)
    assert head_status == get_status == status
    assert head_headers["content-length"] == get_headers["content-length"] == str(len(get_body))
    assert {k: v for k, v in head_headers.items() if k not in IGNORED} == {
        k: v for k, v in get_headers.items() if k not in IGNORED
    }


@pytest.mark.parametrize("path", ["/openapi.json", "/docs/init.js", "/docs/no-such-asset"])
def test_head_on_the_local_servers_own_pages_answers_as_get(local_server: Client, path: str) -> None:
    status = 404 if path.endswith("no-such-asset") else 200
    assert_head_is_get_without_body(local_server, path, status)


@pytest.mark.parametrize(
    ("path", "status"),
    [("/models", 200), ("/v2/health/live", 200), ("/train/jobs", 200), ("/models/no_such_model", 404)],
)
def test_head_on_an_api_get_route_answers_as_get(local_server: Client, path: str, status: int) -> None:
    assert_head_is_get_without_body(local_server, path, status)


def test_head_on_a_report_page_answers_as_get(local_server: Client) -> None:
    _, _, trained = local_server.post("/train", {"candidates": ["sgd"]})
    path = f"/models/{trained['model_name']}/versions/{trained['model_version']}/report"
    assert_head_is_get_without_body(local_server, path, 200)


def test_head_on_a_path_serving_only_other_methods_is_405_naming_them(local_server: Client) -> None:
    (status, headers, _), after = answers(local_server, [("HEAD", "/predict"), ("GET", "/openapi.json")])
    assert status == 405 and headers["allow"] == "POST" and int(headers["content-length"]) > 0
    assert after[0] == 200 and json.loads(after[2])["openapi"]


def test_a_function_answers_a_head_event_as_get(local_service: Service) -> None:
    """What API Gateway hands the function for a declared HEAD route: answered as GET (API Gateway drops the body)."""
    get = local_service.predict(proxy_event("/models", raw="", method="GET"))
    head = local_service.predict(proxy_event("/models", raw="", method="HEAD"))
    assert head["statusCode"] == get["statusCode"] == 200
    assert head["multiValueHeaders"] == get["multiValueHeaders"] and head["body"] == get["body"]


def test_a_function_refuses_head_where_no_get_route_is_declared(local_service: Service) -> None:
    """API Gateway never sends these (no HEAD route there); a hand-made event gets the 405 a GET would."""
    answer = local_service.predict(proxy_event("/predict", raw="", method="HEAD"))
    assert answer["statusCode"] == 405 and answer["multiValueHeaders"]["Allow"] == ["POST"]
    assert json.loads(answer["body"])["message"].endswith("on /predict; use POST")


def test_head_on_the_docs_page_answers_as_get(
    local_server: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "swagger-ui-bundle.js").write_text("// the page is served once its assets are installed")
    monkeypatch.setenv(docs_page.ASSETS_ENV, str(tmp_path))
    assert_head_is_get_without_body(local_server, "/docs", 200)
