"""The local server over HTTP: the README's quick start, the same routes and errors as API Gateway."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import MAX_TEST_CONNECTIONS, Client, running_local_server


def test_the_quick_start_train_then_predict(local_server: Client) -> None:
    status, headers, body = local_server.post("/train", {"filename_model": "Model_ml", "filename_scaler": "scaler"})
    assert status == 200 and body["message"] == "Train successfully"
    assert headers["Content-Type"] == "application/json"
    status, _, body = local_server.post(
        "/predict", {"x_test": [[0.7, 1], [2.0, 5.5]], "filename_model": "Model_ml", "filename_scaler": "scaler"}
    )
    assert status == 200 and body["result"] == ["Not virginica", "virginica"]


def test_the_seeds_inference_path_is_an_alias(local_server: Client) -> None:
    local_server.post("/train", {})
    assert local_server.post("/inference", {"x_test": [2.0, 5.5]})[2]["result"] == "virginica"


def test_curl_d_without_a_json_content_type_still_works(local_server: Client) -> None:
    local_server.post("/train", {})
    raw = json.dumps({"x_test": [0.7, 1]}).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}  # what `curl -d` sends
    status, _, body = local_server.request("POST", "/predict", raw=raw, headers=form)
    assert status == 200 and body["result"] == "Not virginica"


def test_errors_over_http(local_server: Client) -> None:
    status, headers, body = local_server.request("GET", "/predict")
    assert status == 405 and headers["Allow"] == "POST" and body["error"] == "method_not_allowed"
    status, _, body = local_server.post("/nowhere", {})
    assert status == 404 and "no route POST /nowhere" in body["message"]
    status, _, body = local_server.request(
        "POST", "/predict", raw=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and "not valid JSON" in body["message"]
    status, _, body = local_server.post("/predict", {"x_test": [1, 2], "filename_model": "never-trained"})
    assert status == 404 and body["error"] == "model_not_found"


def test_binary_bodies_arrive_base64_encoded_and_are_refused_cleanly(local_server: Client) -> None:
    status, _, body = local_server.request("POST", "/predict", raw=b"\xff\xfe\x00", headers={})
    assert status == 400 and body["error"] == "invalid_request"


def test_the_openapi_document_is_served(local_server: Client) -> None:
    status, _, document = local_server.request("GET", "/openapi.json")
    assert status == 200
    assert {"/train", "/predict", "/inference"} <= set(document["paths"])
    assert "PredictRequest" in document["components"]["schemas"]


def test_the_local_server_refuses_bodies_lambda_would_refuse(local_server: Client) -> None:
    status, _, body = local_server.request("POST", "/predict", raw=b"[" + b"1," * 3_500_000 + b"1]")
    assert status == 413 and body["error"] == "body_too_large"


def test_a_malformed_content_length_is_a_400(local_server: Client) -> None:
    host, port = local_server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
        response = connection.makefile("rb").read()
    assert response.startswith(b"HTTP/1.1 400") and b"Content-Length must be" in response


# --- HTTP/1.1 as clients speak it: chunked bodies, bodies without a length, methods in any case, slow clients ---


def exchange(client: Client, data: bytes, timeout: float = 30) -> list[tuple[int, dict[str, str], bytes]]:
    """Send raw bytes on one connection; every response until the server closes it (status, headers, body)."""
    host, port = client.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(data)
        stream = connection.makefile("rb")
        responses = []
        while status_line := stream.readline():
            status = int(status_line.split()[1])
            headers = {}
            while (line := stream.readline().decode("latin-1").strip()) != "":
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if status >= 200:  # an interim 100 Continue is not an answer
                responses.append((status, headers, stream.read(int(headers.get("content-length", 0)))))
        return responses


def chunked(body: bytes, size: int = 7) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\nTrailer: x\r\n\r\n"


def test_a_chunked_upload_is_decoded_and_the_next_request_is_answered_too(local_server: Client) -> None:
    local_server.post("/train", {})
    body = json.dumps({"x_test": [2.0, 5.5]}).encode()
    first = b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body)
    second = b"POST /predict HTTP/1.1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    responses = exchange(local_server, first + second)
    assert [status for status, _, _ in responses] == [200, 200]
    assert all(json.loads(data)["result"] == "virginica" for _, _, data in responses)


@pytest.mark.parametrize(
    ("chunks", "status", "words"),
    [
        (b"zz\r\n{}\r\n0\r\n\r\n", 400, "chunk size"),
        (b"5\r\n{}\r\n0\r\n\r\n", 400, "chunk"),
        (b"%x\r\n" % (7 * 1024 * 1024) + b"{" * 1024, 413, "over"),
    ],
)
def test_a_malformed_or_oversized_chunked_body_is_refused_and_the_connection_closed(
    local_server: Client, chunks: bytes, status: int, words: str
) -> None:
    request = b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
    responses = exchange(local_server, request + b"GET /predict HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(responses) == 1, responses  # nothing after a broken body is read as a request
    got, headers, data = responses[0]
    assert got == status and headers["content-type"] == "application/json" and words in json.loads(data)["message"]


def test_another_transfer_coding_is_refused_clearly(local_server: Client) -> None:
    request = b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    [(status, _, data)] = exchange(local_server, request)
    assert status == 400 and "Transfer-Encoding" in json.loads(data)["message"]


def test_a_body_without_a_length_is_never_read_as_a_request_nor_logged(local_server_logs) -> None:
    client, logs = local_server_logs
    secret = b'{"x_test": [123456.789, 2], "filename_model": "SECRET-NAME"}'
    responses = exchange(client, b"POST /predict?token=SECRET-QUERY HTTP/1.1\r\nHost: x\r\n\r\n" + secret)
    assert len(responses) == 1  # HTTP/1.1: no Content-Length and no Transfer-Encoding is an empty body
    status, headers, data = responses[0]
    assert status == 400 and "body is missing" in json.loads(data)["message"] and headers["connection"] == "close"
    exchange(client, b"GET /SECRET-PATH HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    exchange(client, b"SECRET-LINE\r\n\r\n")
    text = logs()
    assert "400" in text and "404" in text  # the requests are logged...
    assert "SECRET" not in text and "123456.789" not in text  # ...without what the client sent


@pytest.mark.parametrize("method", [b"post", b"Post"])
def test_a_method_in_lower_case_is_that_method(local_server: Client, method: bytes) -> None:
    local_server.post("/train", {})
    body = json.dumps({"x_test": [2.0, 5.5]}).encode()
    request = method + b" /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    [(status, _, data)] = exchange(local_server, request + body)
    assert status == 200 and json.loads(data)["result"] == "virginica"


@pytest.mark.parametrize(
    "request_line",
    [b"GET /predict HTTP/2.0", b"GET /predict HTTP/x", b"GET", b"\x16\x03\x01 hello", b"GET /" + b"a" * 70_000],
)
def test_protocol_errors_are_json_4xx(local_server: Client, request_line: bytes) -> None:
    responses = exchange(local_server, request_line + b"\r\nHost: x\r\n\r\n")
    assert len(responses) == 1
    status, headers, data = responses[0]
    assert 400 <= status < 500 and headers["content-type"] == "application/json" and json.loads(data)["message"]


def test_the_404_lists_every_route_of_the_template(local_server: Client) -> None:
    status, _, body = local_server.post("/nope", {})
    assert status == 404
    for route in ("POST /train", "POST /predict", "POST /inference"):
        assert route in body["message"]


def test_a_trailing_slash_is_the_same_route(local_server: Client) -> None:
    local_server.post("/train", {})
    for path in ("/predict/", "/inference/"):
        status, _, body = local_server.post(path, {"x_test": [2.0, 5.5]})
        assert status == 200 and body["result"] == "virginica"
    form = {"Content-Type": "application/x-www-form-urlencoded"}  # what `curl -d` sends
    status, _, body = local_server.request("POST", "/predict/", raw=b'{"x_test": [2.0, 5.5]}', headers=form)
    assert status == 200 and body["result"] == "virginica"


def test_idle_and_half_sent_connections_time_out(short_timeout_server: Client) -> None:
    half_sent = [b"POST /predict HTTP/1.1\r\nHost: x\r\n", b"POST /predict HTTP/1.1\r\nContent-Length: 10\r\n\r\n{"]
    for data in [b"", *half_sent]:
        host, port = short_timeout_server.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as connection:
            connection.sendall(data)
            received = b""
            while chunk := connection.recv(65536):  # the server closes the connection: recv returns b""
                received += chunk
        assert received == b"" or received.startswith(b"HTTP/1.1 4"), received


def test_threads_stay_bounded_under_200_half_sent_requests(short_timeout_server: Client) -> None:
    host, port = short_timeout_server.base_url.removeprefix("http://").split(":")
    before = threading.active_count()
    connections = []
    try:
        for _ in range(200):
            connection = socket.create_connection((host, int(port)), timeout=30)
            connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
            connections.append(connection)
        peak = threading.active_count() - before
        status, _, _ = short_timeout_server.request("GET", "/openapi.json")  # answered once slots time out
    finally:
        for connection in connections:
            connection.close()
    assert peak <= MAX_TEST_CONNECTIONS + 1 and status == 200


# --- a route declared only in a template and with Powertools' decorators works locally, with no other table ---


@pytest.fixture
def things_server(tmp_path: Path) -> Iterator[Client]:
    from tests.unit.test_local_routes import THINGS_TEMPLATE

    template = tmp_path / "template.yaml"
    template.write_text(THINGS_TEMPLATE)
    with running_local_server(tmp_path / "store", template=template) as client:
        yield client


def test_routes_with_path_parameters_from_the_template(things_server: Client) -> None:
    assert things_server.request("GET", "/things/a")[2] == {"name": "a", "limit": 5}
    assert things_server.request("GET", "/things/a/?limit=7")[2] == {"name": "a", "limit": 7}
    assert things_server.request("DELETE", "/things/b")[2] == {"deleted": "b"}
    assert things_server.post("/things/c/resize", {"size": 4})[2] == {"name": "c", "size": 4}
    status, _, body = things_server.request("GET", "/things/a?limit=many")
    assert status == 400 and "limit" in body["message"]
    status, headers, body = things_server.request("PUT", "/things/a", {})
    assert status == 405 and headers["Allow"] == "DELETE, GET" and "PUT is not allowed" in body["message"]
    status, _, body = things_server.post("/nope", {})
    assert status == 404
    for route in ("POST /things", "GET /things/{name}", "DELETE /things/{name}", "ANY /files/{key+}"):
        assert route in body["message"]


# --- any request line and headers: a JSON answer, never a 5xx -----------------------------------------------

TOKEN = st.text(alphabet="!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1)
PRINTABLE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "POST", "post", "PUT", "DELETE", "OPTIONS", "HEAD"]) | TOKEN,
    path=st.sampled_from(["/predict", "/train/", "/inference//", "/openapi.json"]) | PRINTABLE.map(lambda p: "/" + p),
    headers=st.dictionaries(
        st.sampled_from(["Content-Type", "Content-Encoding", "Origin", "Expect", "Accept"]) | TOKEN,
        PRINTABLE,
        max_size=4,
    ),
    body=st.binary(max_size=60),
)
def test_any_request_line_headers_and_body_get_a_json_answer_below_500(
    local_server: Client, method: str, path: str, headers: dict[str, str], body: bytes
) -> None:
    framing = ("content-length", "transfer-encoding", "connection")  # one request, then the server closes
    headers = {k: v for k, v in headers.items() if k.lower() not in framing}
    lines = [f"{method} {path} HTTP/1.1", "Host: x", *(f"{k}: {v}" for k, v in headers.items())]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    responses = exchange(local_server, ("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    assert len(responses) == 1
    status, response_headers, data = responses[0]
    assert status < 500, (status, data)
    if status >= 400:
        assert response_headers["content-type"] == "application/json"
        assert method.upper() == "HEAD" or json.loads(data)["message"]  # HEAD: the headers only


def test_a_cors_preflight_reaches_the_function_of_that_path(tmp_path: Path) -> None:
    with running_local_server(tmp_path / "store", env={"ALLOWED_ORIGIN": "https://app.example.com"}) as client:
        preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
        status, headers, _ = client.request("OPTIONS", "/predict", headers=preflight)
        assert status == 204 and headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        assert "POST" in headers["Access-Control-Allow-Methods"]
