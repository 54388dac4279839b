"""Predictions from a loaded version: labels, classes, probabilities, input limits and the answer's size."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from deployment_model.ml.artifacts import model_artifacts, model_metadata
from deployment_model.ml.limits import MAX_CLASSES, MAX_ROWS_PER_REQUEST
from deployment_model.ml.prediction import InvalidRowsError, check_answer_size, predict
from deployment_model.ml.training import iris_dataset, resolve_grids, train_model
from deployment_model.storage.objects import DirectoryObjectStore
from deployment_model.storage.registry import ModelRegistry
from tests.conftest import body_of, proxy_event
from tests.unit.test_store import RecordingObjects, load
from tests.unit.test_store import publish as publish_version


@pytest.fixture
def objects(tmp_path: Path) -> RecordingObjects:
    return RecordingObjects(DirectoryObjectStore(tmp_path))


def publish(store: ModelRegistry, trained) -> str:
    return publish_version(store, trained)["version"]


def test_predict_gives_labels_classes_and_probabilities(objects, trained_iris_model) -> None:
    store = ModelRegistry(objects)
    publish(store, trained_iris_model)
    result = predict(load(store), np.array([[0.7, 1.0], [2.0, 5.5]]))
    assert result.labels == ["Not virginica", "virginica"]
    assert result.classes.tolist() == [0, 1]
    assert result.probabilities.shape == (2, 2)
    assert np.allclose(result.probabilities.sum(axis=1), 1.0)


def test_estimators_without_probabilities_still_label(objects) -> None:
    store = ModelRegistry(objects)
    sgd = train_model(iris_dataset(), resolve_grids({"sgd": None}))
    publish(store, sgd)
    result = predict(load(store), np.array([[0.7, 1.0], [2.0, 5.5]]))
    assert result.probabilities is None
    assert result.labels == ["Not virginica", "virginica"]


def test_rows_of_the_wrong_width_name_the_expected_features(objects, trained_iris_model) -> None:
    store = ModelRegistry(objects)
    publish(store, trained_iris_model)
    with pytest.raises(InvalidRowsError, match=r"must have 2 values \(petal_width, petal_length\).*got 3"):
        predict(load(store), np.ones((1, 3)))


@pytest.mark.parametrize("row", [[0.001, -5.69e190], [1e155, 1.0], [1e300, 1e300], [1e30, 1e30], [2e12, 1.0]])
def test_values_beyond_what_the_model_can_compute_are_refused(objects, trained_iris_model, row) -> None:
    store = ModelRegistry(objects)
    publish(store, trained_iris_model)
    refusal = r"x_test row 1, feature 'petal_\w+' \(column ., both counted from 0\): \S+ is outside what model"
    with pytest.raises(InvalidRowsError, match=refusal):
        predict(load(store), np.array([[0.7, 1.0], row]))


def test_versions_trained_before_input_limits_keep_the_older_check(objects, trained_iris_model) -> None:
    store = ModelRegistry(objects)
    summary = {k: v for k, v in trained_iris_model.summary().items() if k != "input_limits"}
    artifacts = model_artifacts("Model_ml", "scaler", trained_iris_model.model, trained_iris_model.scaler)
    version = store.create_version("Model_ml", artifacts, model_metadata(summary, "scaler"))["version"]
    store.publish("Model_ml", version)
    with pytest.raises(InvalidRowsError, match="row 1 has values too large"):
        predict(load(store), np.array([[0.7, 1.0], [1e155, 1.0]]))


def test_large_but_computable_values_still_predict(objects, trained_iris_model) -> None:
    store = ModelRegistry(objects)
    publish(store, trained_iris_model)
    result = predict(load(store), np.array([[1e6, 1e6], [-1e6, 3.0]]))
    assert set(result.labels) <= {"Not virginica", "virginica"} and len(result.labels) == 2
    assert np.allclose(result.probabilities.sum(axis=1), 1.0)


# --- the size of an answer is bounded before it is computed (issue 15.1) ------------------------------------


def test_the_seed_model_answers_the_full_10000_rows() -> None:
    check_answer_size(MAX_ROWS_PER_REQUEST, ["Not virginica", "virginica"], True, "Model_ml")


def test_an_answer_past_6_mb_is_a_413_saying_how_many_rows_fit(local_service, tmp_path: Path) -> None:
    # The worst a trained model may be: 100 classes, labels of 200 characters, some of them not ASCII.
    labels = [f"{i:03d}" + "é" * 197 for i in range(MAX_CLASSES)]
    csv_lines = [f"{i % 97 + (i // 97) * 0.01},{label}" for i, label in enumerate(labels * 6)]
    path = tmp_path / "store" / "data" / "wide.csv"
    path.parent.mkdir(parents=True)
    path.write_text("a,t\n" + "\n".join(csv_lines) + "\n", encoding="utf-8")
    request = {"data_key": "data/wide.csv", "target_column": "t", "candidates": {"knn": {"n_neighbors": [1]}}}
    assert local_service.train(request)["statusCode"] == 200

    too_many = local_service.predict(proxy_event("/predict", {"x_test": [[1.0]] * MAX_ROWS_PER_REQUEST}))
    message = body_of(too_many)["message"]
    assert too_many["statusCode"] == 413 and body_of(too_many)["error"] == "response_too_large"
    fitting = int(re.search(r"at most (\d+) rows fit", message).group(1))
    assert 0 < fitting < MAX_ROWS_PER_REQUEST

    served = local_service.predict(proxy_event("/predict", {"x_test": [[float(i % 97)] for i in range(fitting)]}))
    assert served["statusCode"] == 200 and body_of(served)["rows"] == fitting
    assert len(json.dumps(served).encode()) <= 6 * 1024 * 1024  # what Lambda would return, ASCII-escaped
    one_more = local_service.predict(proxy_event("/predict", {"x_test": [[1.0]] * (fitting + 1)}))
    assert one_more["statusCode"] == 413
