"""The Open Inference Protocol (KServe v2) through the inference handler: API Gateway events, as deployed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from deployment_model.api.schemas import MAX_ROWS_PER_REQUEST
from deployment_model.api.v2 import SERVER_VERSION
from deployment_model.local.server import LocalContext
from tests.conftest import ROOT, Service, body_of, proxy_event

ROWS = [[0.7, 1.0], [2.0, 5.5], [0.2, 1.4]]  # petal width, petal length: Not virginica, virginica, Not virginica
FLAT = [value for row in ROWS for value in row]


def tensor(data: list[Any] = FLAT, shape: list[int] | None = None, datatype: str = "FP64", **extra: Any) -> dict:
    return {"name": "input-0", "shape": shape or [len(ROWS), 2], "datatype": datatype, "data": data, **extra}


def get(service: Service, path: str) -> tuple[int, dict[str, Any]]:
    answer = service.predict(proxy_event(path, method="GET"))
    return answer["statusCode"], body_of(answer)


def post(service: Service, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    event = proxy_event(path, body)
    if headers:
        event["headers"] = {**(event.get("headers") or {}), **headers}
    answer = service.predict(event)
    return answer["statusCode"], body_of(answer)


def infer(service: Service, body: Any, path: str = "/v2/models/Model_ml/infer") -> tuple[int, dict[str, Any]]:
    return post(service, path, body)


def outputs_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {output["name"]: output for output in body["outputs"]}


# --- health and metadata ----------------------------------------------------------------------------------


def test_health_and_server_metadata(local_service: Service) -> None:
    assert get(local_service, "/v2/health/live") == (200, {"live": True})
    assert get(local_service, "/v2/health/ready") == (200, {"ready": True})
    status, body = get(local_service, "/v2")
    assert status == 200 and body == {"name": "ml-service", "version": SERVER_VERSION, "extensions": []}


def test_the_server_version_is_the_packages() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == SERVER_VERSION


def test_model_metadata_describes_the_tensors(trained_local_service: Service) -> None:
    status, body = get(trained_local_service, "/v2/models/Model_ml")
    assert status == 200
    version = body["versions"][0]
    assert body == {
        "name": "Model_ml",
        "versions": [version],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 2]}],
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "class_index", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]},
        ],
    }
    assert get(trained_local_service, f"/v2/models/Model_ml/versions/{version}") == (200, body)
    assert get(trained_local_service, "/v2/models/Model_ml/ready") == (200, {"name": "Model_ml", "ready": True})
    assert get(trained_local_service, f"/v2/models/Model_ml/versions/{version}/ready") == (
        200,
        {"name": "Model_ml", "ready": True},
    )


def test_an_estimator_without_probabilities_declares_none_and_refuses_to_give_them(local_service: Service) -> None:
    local_service.train({"candidates": ["sgd"]})
    status, body = get(local_service, "/v2/models/Model_ml")
    assert status == 200 and [o["name"] for o in body["outputs"]] == ["label", "class_index"]
    status, body = infer(local_service, {"inputs": [tensor()]})
    assert status == 200 and set(outputs_of(body)) == {"label", "class_index"}
    status, body = infer(local_service, {"inputs": [tensor()], "outputs": [{"name": "probabilities"}]})
    assert status == 400 and "has no probabilities" in body["error"] and set(body) == {"error"}


@pytest.mark.parametrize(
    "path",
    ["/v2/models/nope", "/v2/models/nope/ready", "/v2/models/Model_ml/versions/20200101T000000000000Z-00000000"],
)
def test_unknown_models_and_versions_are_404s_in_the_protocols_shape(trained_local_service: Service, path: str) -> None:
    status, body = get(trained_local_service, path)
    assert status == 404 and set(body) == {"error"}
    assert ("nope" in path and "'nope'" in body["error"]) or "no version '20200101T000000000000Z-00000000'" in body[
        "error"
    ]


# --- inference --------------------------------------------------------------------------------------------


def test_infer_answers_what_predict_answers(trained_local_service: Service) -> None:
    status, body = infer(trained_local_service, {"id": "42", "inputs": [tensor()]})
    predicted = body_of(trained_local_service.predict(proxy_event("/predict", {"x_test": ROWS})))
    assert status == 200
    assert body["id"] == "42" and body["model_name"] == "Model_ml"
    assert body["model_version"] == predicted["model_version"]
    outputs = outputs_of(body)
    assert list(outputs) == ["label", "class_index", "probabilities"]
    assert outputs["label"] == {"name": "label", "datatype": "BYTES", "shape": [3], "data": predicted["result"]}
    assert outputs["class_index"] == {"name": "class_index", "datatype": "INT64", "shape": [3], "data": [0, 1, 0]}
    assert predicted["result"] == ["Not virginica", "virginica", "Not virginica"]
    flat_probabilities = [p for row in predicted["probabilities"] for p in row]
    assert outputs["probabilities"] == {
        "name": "probabilities",
        "datatype": "FP64",
        "shape": [3, 2],
        "data": flat_probabilities,
    }


def test_without_an_id_none_is_invented(trained_local_service: Service) -> None:
    status, body = infer(trained_local_service, {"inputs": [tensor()]})
    assert status == 200 and "id" not in body


def test_the_natural_and_the_flattened_representations_are_the_same_tensor(trained_local_service: Service) -> None:
    """The specification's Tensor Data section: [[1, 2], [4, 5]] and [1, 2, 4, 5] are the same 2x2 matrix."""
    flat = infer(trained_local_service, {"inputs": [tensor(FLAT)]})
    nested = infer(trained_local_service, {"inputs": [tensor(ROWS)]})
    assert flat == nested and flat[0] == 200


def test_fp32_is_accepted(trained_local_service: Service) -> None:
    status, body = infer(trained_local_service, {"inputs": [tensor(datatype="FP32")]})
    assert status == 200 and outputs_of(body)["label"]["data"][1] == "virginica"


def test_outputs_named_in_the_request_are_the_ones_returned_in_that_order(trained_local_service: Service) -> None:
    request = {"inputs": [tensor()], "outputs": [{"name": "probabilities"}, {"name": "label"}]}
    status, body = infer(trained_local_service, request)
    assert status == 200 and [o["name"] for o in body["outputs"]] == ["probabilities", "label"]


def test_the_specifications_example_request_shape_with_one_output(trained_local_service: Service) -> None:
    """The specification's inference example (id "42", one named output), on this model's tensor."""
    request = {"id": "42", "inputs": [tensor([0.7, 1.0, 2.0, 5.5], [2, 2])], "outputs": [{"name": "label"}]}
    status, body = infer(trained_local_service, request)
    assert status == 200
    assert body["id"] == "42"
    assert body["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["Not virginica", "virginica"]}
    ]


def test_the_specifications_example_request_verbatim_is_a_400_naming_what_this_model_takes(
    trained_local_service: Service,
) -> None:
    request = {
        "id": "42",
        "inputs": [
            {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]},
            {"name": "input1", "shape": [3], "datatype": "BOOL", "data": [True]},
        ],
        "outputs": [{"name": "output0"}],
    }
    status, body = infer(trained_local_service, request)
    assert status == 400 and set(body) == {"error"}
    for problem in ("inputs: List should have at most 1 item", "outputs.0.name", "'label'"):
        assert problem in body["error"]


def test_a_pinned_version_answers_even_after_a_newer_one_is_published(
    trained_local_service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        trained_local_service.inference_module.cache, "ttl_seconds", 0
    )  # notice the new version at once
    old = get(trained_local_service, "/v2/models/Model_ml")[1]["versions"][0]
    new = trained_local_service.train({"candidates": ["sgd"]})["model_version"]
    status, body = infer(trained_local_service, {"inputs": [tensor()]}, f"/v2/models/Model_ml/versions/{old}/infer")
    assert status == 200 and body["model_version"] == old and "probabilities" in outputs_of(body)
    status, body = infer(trained_local_service, {"inputs": [tensor()]})
    assert status == 200 and body["model_version"] == new


def test_a_warm_infer_reads_nothing_from_storage(
    trained_local_service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The v2 path shares /predict's model cache: once warm, no storage read (within the TTL)."""
    assert infer(trained_local_service, {"inputs": [tensor()]})[0] == 200
    store = trained_local_service.inference_module.cache.registry

    def no_storage(*_: Any, **__: Any) -> Any:
        raise AssertionError("a warm infer read from storage")

    monkeypatch.setattr(store.objects, "get", no_storage)
    assert infer(trained_local_service, {"inputs": [tensor()]})[0] == 200
    assert trained_local_service.predict(proxy_event("/predict", {"x_test": ROWS}))["statusCode"] == 200


# --- unhappy paths: 4xx, the protocol's {"error": "..."} ------------------------------------------------


@pytest.mark.parametrize(
    ("request_body", "status", "words"),
    [
        ({"inputs": [tensor(FLAT, [3, 3])]}, 400, "inputs[0].data has 6 values; shape [3, 3] declares 9"),
        ({"inputs": [tensor([0.1, 0.2, 0.3], [1, 3])]}, 400, "inputs[0].data rows must have 2 values"),
        ({"inputs": [tensor(ROWS, [2, 2])]}, 400, "does not have the shape [2, 2]"),
        ({"inputs": [tensor(shape=[6])]}, 400, "inputs.0.shape"),
        ({"inputs": [tensor(datatype="INT64")]}, 400, "inputs.0.datatype: Input should be 'FP64' or 'FP32'"),
        ({"inputs": [tensor(datatype="BYTES", data=["a", "b"], shape=[1, 2])]}, 400, "datatype"),
        ({"inputs": [tensor([0.7, "1"], [1, 2])]}, 400, "inputs[0].data rows must hold numbers only"),
        ({"inputs": [tensor([0.7, None], [1, 2])]}, 400, "inputs[0].data rows must hold numbers only"),
        ({"inputs": [tensor([0.7, 1e308], [1, 2])]}, 400, "is outside what model 'Model_ml' can compute with"),
        ({"inputs": [tensor([], [0, 2])]}, 400, "non-empty"),
        ({"inputs": [tensor(), tensor()]}, 400, "inputs: List should have at most 1 item"),
        ({"inputs": []}, 400, "inputs: List should have at least 1 item"),
        ({}, 400, "inputs: is required"),
        ({"inputs": [tensor()], "outputs": [{"name": "score"}]}, 400, "outputs.0.name"),
        ({"inputs": [tensor()], "id": 42}, 400, "id: Input should be a valid string"),
        ({"inputs": [tensor()], "colour": "red"}, 400, "colour: is not a known field"),
        ({"inputs": [tensor(parameters={"binary_data_size": 48})]}, 400, "binary tensor data is not supported"),
        (
            {"inputs": [tensor([0.0] * 2 * (MAX_ROWS_PER_REQUEST + 1), [MAX_ROWS_PER_REQUEST + 1, 2])]},
            413,
            f"at most {MAX_ROWS_PER_REQUEST}",
        ),
        ({"inputs": [tensor([0.0], [10**12, 2])]}, 413, "at most"),
        ({"inputs": [tensor([0.0], [2**64, 2])]}, 400, "inputs.0.shape.0: Input should be a valid integer"),
        ({"inputs": [tensor([0.0], [-1, 2])]}, 400, "inputs.0.shape.0: Input should be greater than or equal to 0"),
        ([1, 2], 400, "must be a JSON object"),
    ],
)
def test_client_mistakes_are_4xx_in_the_protocols_shape(
    trained_local_service: Service, request_body: Any, status: int, words: str
) -> None:
    answer_status, body = infer(trained_local_service, request_body)
    assert answer_status == status, body
    assert set(body) == {"error"} and words in body["error"], body["error"]
    assert "x_test" not in body["error"] and "filename_model" not in body["error"]


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/v2/models/nope/infer", 404, "model 'nope' has not been trained yet"),
        ("/v2/models/a..b/infer", 400, "model name: must be 1-128 letters"),
        ("/v2/models/Model_ml/versions/latest/infer", 400, "model version: must be a published version"),
        ("/v2/models/Model_ml/versions/20200101T000000000000Z-00000000/infer", 404, "has no version"),
    ],
)
def test_unknown_models_and_bad_names_in_the_path(
    trained_local_service: Service, path: str, status: int, words: str
) -> None:
    answer_status, body = infer(trained_local_service, {"inputs": [tensor()]}, path)
    assert answer_status == status and set(body) == {"error"} and words in body["error"], body


@pytest.mark.parametrize(
    "header", ["Inference-Header-Content-Length", "inference-header-content-length", "INFERENCE-HEADER-content-LENGTH"]
)
def test_a_binary_tensor_request_is_refused_with_the_reason(trained_local_service: Service, header: str) -> None:
    status, body = post(trained_local_service, "/v2/models/Model_ml/infer", {"inputs": [tensor()]}, {header: "120"})
    assert status == 400 and "binary tensor data is not supported" in body["error"]


@pytest.mark.parametrize("header", ["X-Inference-Header-Content-Length", "Inference-Header-Content-Length-X"])
def test_only_that_header_marks_a_binary_request(trained_local_service: Service, header: str) -> None:
    assert post(trained_local_service, "/v2/models/Model_ml/infer", {"inputs": [tensor()]}, {header: "120"})[0] == 200


def test_a_body_that_is_not_json_is_a_400(trained_local_service: Service) -> None:
    answer = trained_local_service.predict(proxy_event("/v2/models/Model_ml/infer", raw="{inputs"))
    assert answer["statusCode"] == 400 and "not valid JSON" in json.loads(answer["body"])["error"]
    answer = trained_local_service.predict(proxy_event("/v2/models/Model_ml/infer", raw=""))
    assert answer["statusCode"] == 400 and "body is missing" in json.loads(answer["body"])["error"]


def test_storage_down_is_a_503_with_retry_after(
    trained_local_service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deployment_model.storage.objects import StoreUnavailableError

    def down(*_: Any, **__: Any) -> Any:
        raise StoreUnavailableError("storage unreachable")

    monkeypatch.setattr(trained_local_service.inference_module.cache.registry.objects, "get", down)
    answer = trained_local_service.predict(proxy_event("/v2/models/Model_ml/infer", {"inputs": [tensor()]}))
    headers = {k.lower(): v for k, v in answer["multiValueHeaders"].items()}
    assert answer["statusCode"] == 503 and headers["retry-after"] == ["5"]
    assert set(json.loads(answer["body"])) == {"error"}


def test_logs_hold_no_tensor_values_at_debug_level(tmp_path: Path) -> None:
    """As for /predict (tests/unit/test_security.py): the v2 routes log no feature values or bodies."""
    script = """
import json
from deployment_model.local.server import LocalContext
from deployment_model.train.app import lambda_handler as train
from deployment_model.inference.app import lambda_handler as predict
from tests.conftest import proxy_event
ctx = LocalContext("f")
train({"filename_model": "Model_ml"}, ctx)
for data, shape in (([1.234567, 7.654321], [1, 2]), ([9.876543], [1, 1]), (["BODY-MARKER"], [1, 1])):
    body = {"id": "ID-MARKER", "inputs": [{"name": "x", "shape": shape, "datatype": "FP64", "data": data}]}
    print("STATUS", predict(proxy_event("/v2/models/Model_ml/infer", body), ctx)["statusCode"])
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MODEL_STORE_DIR": str(tmp_path / "store")}
    env["POWERTOOLS_LOG_LEVEL"] = "DEBUG"
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert [line for line in output.splitlines() if line.startswith("STATUS")] == [
        "STATUS 200",
        "STATUS 400",
        "STATUS 400",
    ]
    assert '"model loaded"' in output  # the logs are there...
    for leaked in ("1.234567", "7.654321", "9.876543", "BODY-MARKER", "ID-MARKER"):  # ...but not what clients sent
        assert leaked not in output, leaked


def test_a_bug_is_a_500_quoting_the_request_id_without_a_traceback(
    trained_local_service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(trained_local_service.inference_module.OnnxModel, "predict", broken)
    event = proxy_event("/v2/models/Model_ml/infer", {"inputs": [tensor()]})
    context = LocalContext(function_name="inference")
    answer = trained_local_service.inference_module.lambda_handler(event, context)
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 500 and set(body) == {"error"}
    assert context.aws_request_id in body["error"] and "Traceback" not in answer["body"]
