"""Every allow-listed estimator's numeric edges: finite rows are served correctly or refused as 400, never a 500.

The limits are computed at training (metadata `input_limits`) and checked with numpy only, so the ONNX path
can rely on them without scikit-learn.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.neighbors import KNeighborsClassifier

from deployment_model.ml.input_limits import (
    FLOAT32_MAX,
    FLOAT64_MAX,
    UnusableModelError,
    check_rows,
    max_scaled_magnitude,
    within,
)
from deployment_model.ml.prediction import InvalidRowsError, predict
from deployment_model.ml.training import iris_dataset, resolve_grids, train_model
from tests.conftest import ROOT, Service, body_of, proxy_event

# Every estimator, and the settings that move its edges (KNN's p and metric, SGD's losses).
MODELS = {
    "knn": {"knn": None},
    "knn_p100_distance": {"knn": {"p": [100.0], "weights": ["distance"]}},
    "knn_p20_distance": {"knn": {"p": [20.0], "weights": ["distance"]}},
    "knn_p3_distance": {"knn": {"p": [3.0], "weights": ["distance"]}},
    "knn_manhattan": {"knn": {"metric": ["manhattan"], "weights": ["distance"]}},
    "knn_chebyshev": {"knn": {"metric": ["chebyshev"], "weights": ["distance"]}},
    "sgd": {"sgd": None},
    "sgd_log_loss": {"sgd": {"loss": ["log_loss"]}},
    "sgd_modified_huber": {"sgd": {"loss": ["modified_huber"]}},
    "logistic_regression": {"logistic_regression": {"C": [10.0]}},
    "random_forest": {"random_forest": {"n_estimators": [20], "max_depth": [3]}},
}


@dataclass
class Loaded:
    """What prediction reads from a loaded version, built straight from a training run."""

    name: str
    model: Any
    scaler: Any
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        return self.metadata["feature_names"]

    @property
    def labels(self) -> list[str]:
        return self.metadata["labels"]

    @cached_property
    def label_array(self) -> np.ndarray:
        return np.asarray(self.labels, dtype=object)


@pytest.fixture(scope="module")
def loaded_models() -> dict[str, Loaded]:
    models = {}
    for name, grids in MODELS.items():
        trained = train_model(iris_dataset(), resolve_grids(grids))
        models[name] = Loaded(name, trained.model, trained.scaler, trained.summary())
    return models


def served_correctly(loaded: Loaded, rows: np.ndarray) -> bool:
    """Served: labels from the model's labels and, where there are probabilities, finite ones summing to 1."""
    result = predict(loaded, rows)
    assert set(result.labels) <= set(loaded.labels)
    if result.probabilities is not None:
        assert np.isfinite(result.probabilities).all()
        assert np.allclose(result.probabilities.sum(axis=1), 1.0)
    return True


EDGES = [1e5, 1e20, 1e39, 3.4e38, 1e149, 1e150, 1e154, 1e300, FLOAT64_MAX, 5e-324]
finite = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(EDGES + [-v for v in EDGES] + [0.0, 1.0, 5.0]),
)


@pytest.mark.parametrize("name", sorted(MODELS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(finite, min_size=2, max_size=2), min_size=1, max_size=4))
def test_any_finite_row_is_served_or_refused_as_invalid(loaded_models, name: str, rows: list[list[float]]) -> None:
    try:
        served_correctly(loaded_models[name], np.array(rows, dtype=np.float64))
    except InvalidRowsError as refused:
        assert "is outside what model" in str(refused)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_values_at_the_limits_are_served(loaded_models, name: str) -> None:
    loaded = loaded_models[name]
    limits = loaded.metadata["input_limits"]
    low, high = np.array(limits["min"]), np.array(limits["max"])
    assert low.shape == high.shape == (2,) and (low < high).all()
    corners = np.array([[low[0], low[1]], [high[0], high[1]], [low[0], high[1]], [high[0], low[1]]])
    assert served_correctly(loaded, corners)
    just_outside = np.nextafter(high, np.inf)
    with pytest.raises(InvalidRowsError) as refused:
        predict(loaded, np.array([[just_outside[0], 1.0]]))
    # The value and the limit it passes read as different numbers: neither is rounded into the other.
    assert str(refused.value).startswith(
        f"x_test row 0, feature 'petal_width' (column 0, both counted from 0): {float(just_outside[0])!r} is outside"
    )
    assert f"to {float(high[0])!r} for that feature" in str(refused.value)


def test_random_forest_limits_are_float32s() -> None:
    trained = train_model(iris_dataset(), resolve_grids(MODELS["random_forest"]))
    assert trained.input_limits["scaled_magnitude"] <= FLOAT32_MAX
    assert "32-bit" in trained.input_limits["reason"]


def test_knn_limits_follow_p() -> None:
    def overflow_bound(p: float) -> float:  # before the cap where every distance ties (KNN_TIE_MAGNITUDE)
        trained = train_model(iris_dataset(), resolve_grids({"knn": {"p": [p]}}))
        return max_scaled_magnitude("knn", trained.model, trained.model._fit_X)[0]

    magnitudes = {p: overflow_bound(p) for p in (1.0, 3.0, 20.0, 100.0)}
    assert magnitudes[1.0] > magnitudes[3.0] > magnitudes[20.0] > magnitudes[100.0] > 100


@pytest.mark.parametrize(
    ("grids", "row"),
    [
        ({"random_forest": None}, [1e39, 1]),
        ({"knn": {"p": [100], "weights": ["distance"]}}, [1e5, 1e5]),
        ({"knn": {"p": [20], "weights": ["distance"]}}, [1e20, 0]),
        ({"knn": {"p": [3], "weights": ["distance"]}}, [1e149, -1e149]),
        ({"logistic_regression": None}, [1e308, -1e308]),
        ({"sgd": {"loss": ["log_loss"]}}, [1.7e308, 1.7e308]),
    ],
)
def test_the_reported_500s_are_400s_naming_the_range(local_service: Service, grids: Any, row: list[float]) -> None:
    assert local_service.train({"candidates": grids})["statusCode"] == 200
    answer = local_service.predict(proxy_event("/predict", {"x_test": row}))
    body = body_of(answer)
    assert answer["statusCode"] == 400, body
    where = "x_test row 0, feature 'petal_width' (column 0, both counted from 0)"
    assert body["message"].startswith(f"{where}: {row[0]!r} is outside")
    assert "is outside what model 'Model_ml' can compute with" in body["message"]


def test_the_refusal_names_the_row_the_feature_and_the_offending_value_not_an_index_as_a_value() -> None:
    """The second row's second feature is out: the message says which, and quotes the value as sent."""
    limits = {"min": [0.0, -5.0], "max": [10.0, 5.0], "reason": "a test range"}
    rows = np.array([[1.0, 0.0], [2.0, 1e39]])
    with pytest.raises(InvalidRowsError) as refused:
        check_rows(limits, rows, ["sepal_width", "petal_width"], "flowers")
    assert str(refused.value) == (
        "x_test row 1, feature 'petal_width' (column 1, both counted from 0): 1e+39 is outside what model "
        "'flowers' can compute with: it accepts -5.0 to 5.0 for that feature (a test range)"
    )


def test_a_knn_power_that_overflows_on_its_own_training_data_is_unusable() -> None:
    # |z| of 1e4 takes ~400,000 standardized rows to reach; here the scaled training matrix is given directly.
    scaled = np.array([[0.0], [1e4], [-1e4], [1.0]])
    knn = KNeighborsClassifier(n_neighbors=1, p=100.0).fit(scaled, [0, 1, 0, 1])
    with pytest.raises(UnusableModelError, match="choose a smaller p"):
        max_scaled_magnitude("knn", knn, scaled)
    assert max_scaled_magnitude("knn", knn, scaled[[0, 3]])[0] > 100


def test_checking_rows_needs_numpy_only() -> None:
    code = (
        "import sys, numpy; from deployment_model.ml import input_limits; "
        "input_limits.check_rows({'min': [0.0], 'max': [1.0]}, numpy.ones((1, 1)), ['a'], 'm'); "
        "assert 'sklearn' not in sys.modules and 'pandas' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(st.integers(1, 600), st.integers(1, 6)).flatmap(
        lambda shape: st.tuples(
            arrays(np.float64, shape, elements=st.sampled_from([-2.0, -1.0, 0.0, 0.5, 1.0, 2.0])),
            arrays(np.float64, shape[1], elements=st.sampled_from([-1.0, 0.0, 0.5])),
            arrays(np.float64, shape[1], elements=st.sampled_from([0.5, 1.0, 1.5])),
        )
    )
)
def test_the_fast_bounds_check_agrees_with_comparing_every_value(case) -> None:
    """`within` (column extremes) spares predictions the per-value pass: it must judge every matrix as that pass
    does, values on a bound included."""
    rows, low, high = case  # up to 600 rows: both ways of judging (few rows, and a batch's column extremes)
    assert within(rows, low, high) == (not ((rows < low) | (rows > high)).any())
