"""A real client of the Open Inference Protocol, tritonclient's HTTP client (JSON tensors), against the local
server: what a KServe or Triton user's code does, unchanged, pointed at this service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import schemathesis
import tritonclient.http as triton
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tritonclient.utils import InferenceServerException

from deployment_model.api.schemas import MAX_ROWS_PER_REQUEST
from tests.conftest import ROOT
from tests.integration.conftest import Client, running_local_server

ROWS = np.array([[0.7, 1.0], [2.0, 5.5], [0.2, 1.4]])
LABELS = ["Not virginica", "virginica", "Not virginica"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, dict[str, Any]]]:
    """The local server with the seed's model trained (KNN: labels and probabilities)."""
    with running_local_server(tmp_path_factory.mktemp("v2") / "store") as client:
        yield client, client.service.train({})


@pytest.fixture
def client(server: tuple[Client, dict[str, Any]]) -> Iterator[triton.InferenceServerClient]:
    base_url = server[0].base_url
    connection = triton.InferenceServerClient(url=base_url.removeprefix("http://"), network_timeout=30)
    yield connection
    connection.close()


def infer_input(rows: np.ndarray, datatype: str = "FP64", name: str = "input-0") -> triton.InferInput:
    tensor = triton.InferInput(name, list(rows.shape), datatype)
    tensor.set_data_from_numpy(rows, binary_data=False)
    return tensor


def requested(*names: str) -> list[triton.InferRequestedOutput]:
    return [triton.InferRequestedOutput(name, binary_data=False) for name in names]


def refusal(call: Any) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return caught.value


def test_health_and_server_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    metadata = client.get_server_metadata()
    assert metadata["name"] == "ml-service" and metadata["extensions"] == []


def test_model_readiness_and_metadata(client: triton.InferenceServerClient, server: Any) -> None:
    version = server[1]["model_version"]
    assert client.is_model_ready("Model_ml") and client.is_model_ready("Model_ml", version)
    assert not client.is_model_ready("nope")
    metadata = client.get_model_metadata("Model_ml")
    assert metadata["versions"] == [version]
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 2]}]
    assert [(o["name"], o["datatype"]) for o in metadata["outputs"]] == [
        ("label", "BYTES"),
        ("class_index", "INT64"),
        ("probabilities", "FP64"),
    ]
    assert client.get_model_metadata("Model_ml", version) == metadata


def test_infer_gives_labels_class_indexes_and_probabilities(client: triton.InferenceServerClient, server: Any) -> None:
    outputs = requested("label", "class_index", "probabilities")
    result = client.infer("Model_ml", [infer_input(ROWS)], outputs=outputs, request_id="req-7")
    response = result.get_response()
    assert response["id"] == "req-7" and response["model_version"] == server[1]["model_version"]
    assert result.as_numpy("label").tolist() == LABELS
    assert result.as_numpy("class_index").tolist() == [0, 1, 0]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (3, 2) and np.allclose(probabilities.sum(axis=1), 1.0)
    assert probabilities.argmax(axis=1).tolist() == [0, 1, 0]


def test_without_named_outputs_every_output_comes_back_as_json(client: triton.InferenceServerClient) -> None:
    """tritonclient then asks for binary outputs; this server answers JSON, which the client reads as well."""
    result = client.infer("Model_ml", [infer_input(ROWS)])
    assert {o["name"] for o in result.get_response()["outputs"]} == {"label", "class_index", "probabilities"}
    assert result.as_numpy("class_index").tolist() == [0, 1, 0]


def test_a_subset_of_outputs_and_fp32_inputs(client: triton.InferenceServerClient) -> None:
    result = client.infer("Model_ml", [infer_input(ROWS.astype(np.float32), "FP32")], outputs=requested("class_index"))
    assert [o["name"] for o in result.get_response()["outputs"]] == ["class_index"]
    assert result.as_numpy("class_index").tolist() == [0, 1, 0]
    assert result.as_numpy("label") is None


def test_a_pinned_version(client: triton.InferenceServerClient, server: Any) -> None:
    version = server[1]["model_version"]
    result = client.infer("Model_ml", [infer_input(ROWS)], model_version=version, outputs=requested("label"))
    assert result.get_response()["model_version"] == version


@pytest.mark.parametrize(
    ("make_call", "status", "words"),
    [
        (lambda c: c.infer("Model_ml", [infer_input(np.ones((2, 3)))]), "400", "rows must have 2 values"),
        (lambda c: c.infer("Model_ml", [infer_input(np.ones((2, 2), dtype=np.int64), "INT64")]), "400", "datatype"),
        (
            lambda c: c.infer("Model_ml", [infer_input(np.array([[b"0.7", b"1"]], dtype=np.object_), "BYTES")]),
            "400",
            "inputs.0.datatype: Input should be 'FP64' or 'FP32'",
        ),
        (lambda c: c.infer("nope", [infer_input(ROWS)]), "404", "model 'nope' has not been trained yet"),
        (lambda c: c.infer("Model_ml", [infer_input(ROWS)], outputs=requested("score")), "400", "outputs.0.name"),
        (
            lambda c: c.infer("Model_ml", [infer_input(np.ones((MAX_ROWS_PER_REQUEST + 1, 2)))]),
            "413",
            f"at most {MAX_ROWS_PER_REQUEST} per request",
        ),
        (
            lambda c: c.infer("Model_ml", [infer_input(ROWS)], model_version="20200101T000000000000Z-00000000"),
            "404",
            "has no version",
        ),
        (lambda c: c.get_model_metadata("nope"), "404", "model 'nope' has not been trained yet"),
    ],
)
def test_mistakes_are_4xx_with_the_protocols_error(
    client: triton.InferenceServerClient, make_call: Any, status: str, words: str
) -> None:
    error = refusal(lambda: make_call(client))
    assert error.status() == status and words in error.message(), (error.status(), error.message())


def test_binary_input_tensors_are_refused_with_the_reason(client: triton.InferenceServerClient) -> None:
    tensor = triton.InferInput("input-0", list(ROWS.shape), "FP64")
    tensor.set_data_from_numpy(ROWS, binary_data=True)
    error = refusal(lambda: client.infer("Model_ml", [tensor]))
    assert error.status() == "400" and "binary tensor data is not supported" in error.message()


def test_the_specifications_example_exchange_over_http(server: Any) -> None:
    """The specification's example request, on the wire: POST /v2/models/<name>/infer, id echoed, one output."""
    http = server[0]
    body = {
        "id": "42",
        "inputs": [{"name": "input0", "shape": [2, 2], "datatype": "FP64", "data": [0.7, 1, 2.0, 5.5]}],
        "outputs": [{"name": "label"}],
    }
    status, headers, answer = http.post("/v2/models/Model_ml/infer", body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert answer["id"] == "42"
    assert answer["outputs"] == [{"name": "label", "shape": [2], "datatype": "BYTES", "data": LABELS[:2]}]


# --- the documented contract, fuzzed: schemathesis generates v2 requests from docs/openapi.json --------------

schema = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.json")
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@schema.include(path_regex="^/v2").parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_v2_routes_conform_to_the_document(case: schemathesis.Case, server: Any) -> None:
    case.call_and_validate(base_url=server[0].base_url, checks=CHECKS)


def test_a_request_the_server_cannot_read_is_a_documented_400_on_every_v2_route(server: Any) -> None:
    """Found by schemathesis in CI: an empty Transfer-Encoding header on GET /v2/health/live is refused 400,
    so every v2 route documents 400, with a body its error schema accepts."""
    import http.client
    import json

    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    for path, operations in document["paths"].items():
        if path.startswith("/v2"):
            assert all("400" in operation["responses"] for operation in operations.values()), path
    host = server[0].base_url.removeprefix("http://")
    connection = http.client.HTTPConnection(host, timeout=10)
    connection.putrequest("GET", "/v2/health/live")
    connection.putheader("Transfer-Encoding", "")
    connection.endheaders()
    answer = connection.getresponse()
    assert answer.status == 400 and isinstance(json.loads(answer.read())["error"], str)
    connection.close()
