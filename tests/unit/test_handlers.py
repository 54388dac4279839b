"""Both Lambda handlers, driven with the events/ files: direct invocations and API Gateway proxy events."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT, SEED_BUCKET, Service, body_of, load_event, proxy_event, start_service

# --- the seed's contract --------------------------------------------------------------------------------


def test_the_seeds_exact_json_works_as_direct_invocations(s3_service: Service, s3: Any) -> None:
    """events/seed/ keeps the seed's JSON byte for byte; on a bucket named as the seed's, it works unchanged."""
    assert s3_service.train(load_event("seed/train.json"))["message"] == "Train successfully"
    answer = s3_service.predict(load_event("seed/predict.json"))
    assert answer["statusCode"] == 200 and answer["result"] == "Not virginica"
    virginica = {**load_event("seed/predict.json"), "x_test": [2.0, 5.5]}
    assert s3_service.predict(virginica)["result"] == "virginica"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=SEED_BUCKET)["Contents"]]
    assert "models/Model_ml/latest.json" in keys


def test_the_seeds_requests_work_as_api_gateway_events(s3_service: Service) -> None:
    trained = s3_service.train(load_event("seed/api_train.json"))
    assert trained["statusCode"] == 200 and body_of(trained)["message"] == "Train successfully"
    answer = s3_service.predict(load_event("seed/api_predict.json"))
    assert answer["statusCode"] == 200 and body_of(answer)["result"] == "Not virginica"


GENERATED_BUCKET = "ml-service-modelbucket-1a2b3c4d5e6f"  # what `sam deploy` names the stack's bucket


@pytest.fixture
def deployed_service(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Service:
    """The functions as the README's `sam deploy` leaves them: a bucket with a generated name."""
    s3.create_bucket(Bucket=GENERATED_BUCKET)
    monkeypatch.setenv("MODEL_BUCKET", GENERATED_BUCKET)
    return start_service()


def test_the_events_the_readme_runs_work_on_a_deployed_stack(deployed_service: Service) -> None:
    assert deployed_service.train(load_event("train.json"))["statusCode"] == 200
    assert deployed_service.predict(load_event("predict.json"))["result"] == "Not virginica"
    assert deployed_service.predict(load_event("predict_batch.json"))["rows"] == 4
    assert body_of(deployed_service.train(load_event("api_train.json")))["message"] == "Train successfully"
    assert body_of(deployed_service.predict(load_event("api_predict.json")))["result"] == "Not virginica"
    assert body_of(deployed_service.predict(load_event("api_inference_base64.json")))["rows"] == 4


def test_the_seeds_bucket_name_on_a_deployed_stack_is_refused_without_naming_the_stacks_bucket(
    deployed_service: Service,
) -> None:
    for answer in (
        deployed_service.train(load_event("seed/train.json")),
        deployed_service.predict(load_event("seed/predict.json")),
    ):
        assert answer["statusCode"] == 403 and "this service's bucket" in answer["message"]
        assert GENERATED_BUCKET not in json.dumps(answer)
    answer = deployed_service.predict(load_event("seed/api_predict.json"))
    assert answer["statusCode"] == 403 and GENERATED_BUCKET not in answer["body"]


def test_base64_encoded_bodies_and_the_seeds_inference_path(s3_service: Service) -> None:
    s3_service.train(load_event("train.json"))
    answer = s3_service.predict(load_event("api_inference_base64.json"))
    assert body_of(answer)["result"] == ["Not virginica", "virginica", "Not virginica", "virginica"]


# --- what we add ------------------------------------------------------------------------------------------


def test_train_response_describes_the_published_model(local_service: Service) -> None:
    answer = local_service.train({})
    assert answer["statusCode"] == 200
    assert answer["model_name"] == "Model_ml" and answer["scaler_name"] == "scaler"
    assert answer["estimator"] == "KNeighborsClassifier" and answer["params"] == {
        "n_neighbors": 3,
        "weights": "distance",
    }
    assert set(answer["metrics"]) == {"f1_macro", "accuracy"}
    assert answer["rows"] == {"total": 150, "train": 105, "test": 45, "dropped": 0, "dropped_reason": None}
    assert answer["feature_names"] == ["petal_width", "petal_length"]
    assert answer["labels"] == ["Not virginica", "virginica"]
    assert answer["duration_seconds"] > 0


def test_batch_predictions_keep_order_and_name_the_version(local_service: Service) -> None:
    version = local_service.train({})["model_version"]
    answer = local_service.predict(load_event("predict_batch.json"))
    assert answer["result"] == ["Not virginica", "virginica", "Not virginica", "virginica"]
    assert answer["prediction"] == [0, 1, 0, 1]
    assert len(answer["probabilities"]) == 4 and answer["labels"] == ["Not virginica", "virginica"]
    assert answer["model_version"] == version and answer["rows"] == 4


def test_a_predict_may_pin_an_older_version(local_service: Service) -> None:
    old = local_service.train({})["model_version"]
    new = local_service.train({"candidates": ["sgd"]})["model_version"]
    assert local_service.predict({"x_test": [1, 2]})["model_version"] == new
    assert local_service.predict({"x_test": [1, 2], "model_version": old})["model_version"] == old


def test_training_on_a_users_csv_in_the_bucket(s3_service: Service, s3: Any) -> None:
    rows = [(0.2, 1.4, "setosa"), (1.3, 4.0, "versicolor"), (2.1, 5.8, "virginica")] * 8
    csv = "petal_width,petal_length,sepal,species\n" + "".join(f"{w},{l},9,{s}\n" for w, l, s in rows)  # noqa: E741
    s3.put_object(Bucket=SEED_BUCKET, Key="data/flowers.csv", Body=csv.encode())
    answer = s3_service.train(
        {
            "filename_model": "flowers",
            "data_key": "data/flowers.csv",
            "target_column": "species",
            "feature_columns": ["petal_width", "petal_length"],
            "candidates": {"knn": {"n_neighbors": [1, 3]}, "logistic_regression": None},
        }
    )
    assert answer["statusCode"] == 200, answer
    assert answer["labels"] == ["setosa", "versicolor", "virginica"] and answer["training_data"] == "data/flowers.csv"
    predicted = s3_service.predict({"filename_model": "flowers", "x_test": [[0.2, 1.4], [2.1, 5.8]]})
    assert predicted["result"] == ["setosa", "virginica"]


# --- errors: every one a JSON object naming the problem --------------------------------------------------


def test_another_bucket_is_forbidden_and_untouched(s3_service: Service, s3: Any) -> None:
    s3.create_bucket(Bucket="someone-elses")
    answer = s3_service.train({"name_bucket": "someone-elses"})
    assert answer["statusCode"] == 403 and "someone-elses" in answer["message"]
    assert SEED_BUCKET not in answer["message"]  # the stack's bucket is not told to the caller
    assert s3_service.predict({"x_test": [1, 2], "name_bucket": "someone-elses"})["statusCode"] == 403
    assert s3.list_objects_v2(Bucket="someone-elses")["KeyCount"] == 0
    assert s3.list_objects_v2(Bucket=SEED_BUCKET)["KeyCount"] == 0


@pytest.mark.parametrize(
    ("event", "status", "field"),
    [
        ({"x_test": [0.7]}, 400, "2 values (petal_width, petal_length)"),
        ({"x_test": [[1, 2], [3]]}, 400, "x_test"),
        ({"x_test": [1, 2], "filename_model": "../other"}, 400, "filename_model"),
        ({"x_test": [1, 2], "filename_scaler": "a/b"}, 400, "filename_scaler"),
        ({"x_test": [1, 2], "extra": True}, 400, "extra: is not a known field"),
        ({}, 400, "x_test: is required"),
        ({"x_test": [1, 2], "filename_model": "unknown"}, 404, "'unknown' has not been trained"),
        ({"x_test": [1, 2], "model_version": "20200101T000000000000Z-00000000"}, 404, "no version"),
        ({"x_test": [1, 2], "filename_scaler": "other"}, 404, "trained with scaler 'scaler', not 'other'"),
        ({"x_test": [[1, 2]] * 10_001}, 413, "at most 10000"),
    ],
)
def test_client_mistakes_get_a_4xx_naming_the_problem(local_service: Service, event, status: int, field: str) -> None:
    local_service.train({})
    answer = local_service.predict(event)
    assert answer["statusCode"] == status, answer
    assert field in answer["message"] and answer["error"]


@pytest.mark.parametrize(
    ("event", "status", "message"),
    [
        (proxy_event("/predict", None, raw="{not json"), 400, "not valid JSON"),
        (proxy_event("/predict", None, raw="[1, 2]"), 400, "must be a JSON object"),
        (proxy_event("/predict", None, raw=""), 400, "body is missing"),
        ({**proxy_event("/predict", None, raw="%%%"), "isBase64Encoded": True}, 400, "isBase64Encoded"),
        (proxy_event("/predict", {"x_test": [1, 2]}, method="GET"), 405, "GET is not allowed on /predict; use POST"),
        (proxy_event("/nowhere", {"x_test": [1, 2]}), 404, "no route POST /nowhere"),
        (proxy_event("/predict", None, raw="[" * 100_000 + "]" * 100_000), 400, "not valid JSON"),
    ],
)
def test_malformed_http_requests_get_a_4xx(local_service: Service, event, status: int, message: str) -> None:
    answer = local_service.predict(event)
    assert answer["statusCode"] == status
    assert message in body_of(answer)["message"]


def test_405_says_which_methods_are_allowed(local_service: Service) -> None:
    answer = local_service.train(proxy_event("/train", {}, method="DELETE"))
    assert answer["multiValueHeaders"]["Allow"] == ["POST"]


def test_a_direct_invocation_that_is_not_an_object_is_a_400(local_service: Service) -> None:
    assert local_service.predict([1, 2])["statusCode"] == 400
    assert local_service.train("train please")["statusCode"] == 400


def test_a_bug_is_a_500_with_the_request_id_and_no_traceback(
    local_service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_service.train({})

    def broken(*args: Any) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(local_service.inference_module.OnnxModel, "predict", broken)
    answer = local_service.predict({"x_test": [1, 2]})
    assert answer["statusCode"] == 500 and answer["error"] == "internal_error"
    assert "request id" in answer["message"] and "Traceback" not in json.dumps(answer)


def test_training_errors_are_400s(local_service: Service) -> None:
    answer = local_service.train({"candidates": {"knn": {"n_neighbors": [0]}}})
    assert answer["statusCode"] == 400 and "candidates.knn.n_neighbors" in answer["message"]
    missing = local_service.train({"data_key": "data/none.csv", "target_column": "y"})
    assert missing["statusCode"] == 404 and "data/none.csv" in missing["message"]


@pytest.mark.parametrize(
    ("function", "event"),
    [
        ("train", proxy_event("/train", None, raw=base64.b64encode(b'{"candidates": ["sgd"]}').decode())),
        ("predict", proxy_event("/predict", {"x_test": [1, 2]})),
        ("predict", proxy_event("/predict", {"x_test": "no"})),
        ("predict", proxy_event("/nowhere", {})),
        ("predict", proxy_event("/predict", {}, method="GET")),
        ("predict", proxy_event("/predict", {"x_test": [1, 2], "filename_model": "never"})),
    ],
)
def test_api_gateway_answers_are_json_with_a_content_type(local_service: Service, function: str, event) -> None:
    local_service.train({})
    if function == "train":
        event["isBase64Encoded"] = True
    answer = getattr(local_service, function)(event)
    content_types = [v for k, v in answer["multiValueHeaders"].items() if k.lower() == "content-type"]
    assert content_types == [["application/json"]], answer["multiValueHeaders"]
    assert isinstance(json.loads(answer["body"]), dict) and answer["isBase64Encoded"] is False


def test_the_inference_function_works_without_pandas(local_service: Service, tmp_path) -> None:
    """The inference image has no pandas: with the import blocked, a cold start still predicts."""
    local_service.train({})
    code = (
        "import sys\n"
        "class NotInstalled:\n"  # an import finder that makes pandas look uninstalled
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pandas': raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, NotInstalled())\n"
        "from deployment_model.local.server import LocalContext\n"
        "from deployment_model.inference.app import lambda_handler\n"
        "print(lambda_handler({'x_test': [2.0, 5.5]}, LocalContext('inference')).get('result'))\n"
        "print('pandas' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-2:] == ["virginica", "False"], out.stdout[-1500:]


def test_cors_headers_only_for_the_configured_origin(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import start_service

    monkeypatch.setenv("MODEL_STORE_DIR", str(tmp_path))
    event = proxy_event("/train", {})
    event["headers"] = {**event["headers"], "Origin": "https://app.example.com"}
    event["multiValueHeaders"] = {**event["multiValueHeaders"], "Origin": ["https://app.example.com"]}
    closed = start_service().train(event)
    assert "Access-Control-Allow-Origin" not in closed["multiValueHeaders"]
    monkeypatch.setenv("ALLOWED_ORIGIN", "https://app.example.com")
    opened = start_service().train(event)
    assert opened["multiValueHeaders"]["Access-Control-Allow-Origin"] == ["https://app.example.com"]


def test_a_body_over_lambdas_6_mb_is_a_413(local_service: Service) -> None:
    answer = local_service.predict(proxy_event("/predict", None, raw='{"x_test": [' + "1.0," * 2_000_000 + "1.0]}"))
    assert answer["statusCode"] == 413 and body_of(answer)["error"] == "body_too_large"


def test_a_cold_load_reads_the_pointer_the_metadata_and_the_graph_once_each(local_service: Service) -> None:
    """Every object read is a storage round trip on a cold start (and when a new version is published)."""
    from tests.unit.test_store import RecordingObjects

    assert local_service.train({})["statusCode"] == 200
    inference = local_service.inference_module
    recording = RecordingObjects(inference.registry.objects)
    inference.registry.objects = recording
    assert local_service.predict({"x_test": [0.7, 1]})["statusCode"] == 200
    read = [key.rsplit("/", 2)[-2:] for operation, key in recording.calls if operation == "get"]
    assert len(read) == 3, recording.calls
    assert read[0] == ["Model_ml", "latest.json"]
    assert read[1][1] == "metadata.json"
    assert read[2] == ["onnx", "Model_ml.onnx"]
