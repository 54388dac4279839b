"""The local server over HTTP: the README's quick start, the same routes and errors as API Gateway."""

from __future__ import annotations

import json
import socket

from tests.integration.conftest import Client


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
