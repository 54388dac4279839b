"""Predictions from a loaded version: labels, classes, probabilities, and rows the model cannot take."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deployment_model.ml.prediction import InvalidRowsError, predict
from deployment_model.ml.training import iris_dataset, resolve_grids, train_model
from deployment_model.storage.objects import DirectoryObjectStore
from deployment_model.storage.registry import ModelRegistry
from tests.unit.test_store import RecordingObjects, load
from tests.unit.test_store import publish as publish_version


@pytest.fixture(scope="module")
def trained():
    return train_model(iris_dataset())


@pytest.fixture
def objects(tmp_path: Path) -> RecordingObjects:
    return RecordingObjects(DirectoryObjectStore(tmp_path))


def publish(store: ModelRegistry, trained) -> str:
    return publish_version(store, trained)["version"]


def test_predict_gives_labels_classes_and_probabilities(objects, trained) -> None:
    store = ModelRegistry(objects)
    publish(store, trained)
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


def test_rows_of_the_wrong_width_name_the_expected_features(objects, trained) -> None:
    store = ModelRegistry(objects)
    publish(store, trained)
    with pytest.raises(InvalidRowsError, match=r"must have 2 values \(petal_width, petal_length\).*got 3"):
        predict(load(store), np.ones((1, 3)))


@pytest.mark.parametrize("row", [[0.001, -5.69e190], [1e155, 1.0], [1e300, 1e300]])
def test_values_beyond_what_the_model_can_compute_are_refused(objects, trained, row) -> None:
    store = ModelRegistry(objects)
    publish(store, trained)
    with pytest.raises(InvalidRowsError, match="row 1 has values too large"):
        predict(load(store), np.array([[0.7, 1.0], row]))


def test_large_but_computable_values_still_predict(objects, trained) -> None:
    store = ModelRegistry(objects)
    publish(store, trained)
    result = predict(load(store), np.array([[1e100, 1e100], [-1e100, 3.0]]))
    assert set(result.labels) <= {"Not virginica", "virginica"} and len(result.labels) == 2
    assert np.allclose(result.probabilities.sum(axis=1), 1.0)
