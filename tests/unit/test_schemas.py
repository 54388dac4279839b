"""Request validation: what is accepted, and that anything else is refused with a reason (never a crash)."""

from __future__ import annotations

import json
import math
import re
from typing import get_args

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from deployment_model.api.grids import CANDIDATE_NAMES, CandidateGrids, KnnMetric
from deployment_model.api.schemas import (
    MAX_FEATURES_PER_ROW,
    MAX_ROWS_PER_REQUEST,
    PredictRequest,
    TooManyRowsError,
    TrainRequest,
    parse_rows,
)
from deployment_model.ml.budget import Budget, TrainingTooLongError
from deployment_model.ml.candidates import CANDIDATES, KNN_METRICS
from deployment_model.ml.training import TrainingError, iris_dataset, resolve_grids, train_model

finite = st.floats(allow_nan=False, allow_infinity=False, width=64) | st.integers(-(2**53), 2**53)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=20,
)


def test_one_row_is_a_single_row() -> None:
    rows = parse_rows([0.7, 1])
    assert rows.single_row and rows.matrix.tolist() == [[0.7, 1.0]]


def test_a_list_of_rows_keeps_order() -> None:
    rows = parse_rows([[0.7, 1], [2.0, 5.5]])
    assert not rows.single_row and rows.matrix.tolist() == [[0.7, 1.0], [2.0, 5.5]]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "non-empty list"),
        ("0.7,1", "non-empty list"),
        ([[]], "must not be empty"),
        ([[1, 2], [1]], "same number of values"),
        ([[1, 2], 3], "not a mix"),
        ([[1, 2], "ab"], "numbers only; found str"),
        ([1, [2, 3]], "numbers only; found list"),
        ([[[1, 2]]], "numbers only; found list"),
        ([True, 1], "numbers only; found bool"),
        (["1", 2], "numbers only; found str"),
        ([None, 2], "numbers only; found NoneType"),
        ([{"a": 1}], "numbers only; found dict"),
        ([1.0, math.inf], "finite numbers only; row 0"),
        ([[1.0, 2.0], [math.nan, 1.0]], "finite numbers only; row 1"),
        ([10**400, 1], "too large"),
    ],
)
def test_bad_rows_are_refused_with_a_reason(value, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rows(value)


def test_more_rows_than_allowed_is_its_own_error() -> None:
    with pytest.raises(TooManyRowsError, match=f"at most {MAX_ROWS_PER_REQUEST}"):
        parse_rows([[1.0, 2.0]] * (MAX_ROWS_PER_REQUEST + 1))
    assert parse_rows([[1.0, 2.0]] * MAX_ROWS_PER_REQUEST).matrix.shape == (MAX_ROWS_PER_REQUEST, 2)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8).flatmap(lambda width: st.lists(st.lists(finite, min_size=width, max_size=width), min_size=1)))
def test_any_rectangle_of_finite_numbers_is_accepted_as_is(rows: list[list[float]]) -> None:
    parsed = parse_rows(rows)
    assert parsed.matrix.shape == (len(rows), len(rows[0]))
    assert np.array_equal(parsed.matrix, np.array(rows, dtype=np.float64))


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_is_accepted_or_refused_cleanly(value) -> None:
    try:
        parsed = parse_rows(value)
    except (ValueError, TooManyRowsError):
        return
    assert parsed.matrix.ndim == 2 and np.isfinite(parsed.matrix).all()


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["x_test", "filename_model", "filename_scaler", "name_bucket", "model_version", "x"]),
        json_values,
    )
)
def test_any_predict_body_validates_or_raises_a_validation_error(body) -> None:
    text = json.dumps(body)  # what a client may send, big integers included
    try:
        payload = orjson.loads(text)  # what the handler does with it
    except orjson.JSONDecodeError:
        assert re.search(r"\d{19}|NaN|Infinity", text)  # what json.dumps writes and strict JSON is not
        return
    try:
        request = PredictRequest.model_validate(payload)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):  # each refusal names a field and a reason
            assert error["loc"] and error["msg"]
        return
    except TooManyRowsError:
        assert len(payload["x_test"]) > MAX_ROWS_PER_REQUEST
        return
    assert set(payload) <= set(PredictRequest.model_fields) and "x" not in payload
    rows = payload["x_test"] if request.x_test.single_row is False else [payload["x_test"]]
    assert request.x_test.matrix.tolist() == [[float(v) for v in row] for row in rows]
    assert all(getattr(request, name) == value for name, value in payload.items() if name != "x_test")


def test_the_seeds_requests_are_valid() -> None:
    train = TrainRequest.model_validate(
        {"filename_model": "Model_ml", "filename_scaler": "scaler", "name_bucket": "s3-bucket-model"}
    )
    assert (train.filename_model, train.filename_scaler, train.name_bucket) == ("Model_ml", "scaler", "s3-bucket-model")
    predict = PredictRequest.model_validate(
        {
            "x_test": [0.7, 1],
            "filename_model": "Model_ml",
            "filename_scaler": "scaler",
            "name_bucket": "s3-bucket-model",
        }
    )
    assert predict.x_test.single_row


def test_defaults_are_the_seeds_names() -> None:
    train = TrainRequest.model_validate({})
    assert (train.filename_model, train.filename_scaler) == ("Model_ml", "scaler")
    assert PredictRequest.model_validate({"x_test": [1, 2]}).filename_model == "Model_ml"


@pytest.mark.parametrize(
    "name", ["../Model_ml", "a/b", "/abs", "", ".hidden", "a..b", "x" * 129, "Model ml", "modèle", 5, None, ["a"]]
)
@pytest.mark.parametrize("field", ["filename_model", "filename_scaler"])
def test_names_that_could_leave_their_place_are_refused(field: str, name) -> None:
    with pytest.raises(ValidationError) as error:
        TrainRequest.model_validate({field: name})
    assert error.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize("name", ["Model_ml", "scaler", "m", "a.b-c_D9", "x" * 128])
def test_good_names_are_accepted(name: str) -> None:
    assert TrainRequest.model_validate({"filename_model": name, "filename_scaler": "other"}).filename_model == name


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data_key": "data/iris.csv"}, "data_key and target_column go together"),
        ({"target_column": "species"}, "data_key and target_column go together"),
        ({"feature_columns": ["a"]}, "feature_columns needs data_key"),
        ({"filename_model": "same", "filename_scaler": "same"}, "must differ from filename_model"),
        ({"data_key": "../x.csv", "target_column": "t"}, "data_key"),
        ({"candidates": ["svm"]}, "candidates"),
        ({"candidates": []}, "candidates"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_train_requests_are_refused(body, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainRequest.model_validate(body)


def test_candidates_as_names_or_with_grids() -> None:
    assert TrainRequest.model_validate({"candidates": ["knn", "random_forest"]}).candidate_grids() == {
        "knn": None,
        "random_forest": None,
    }
    grids = TrainRequest.model_validate({"candidates": {"knn": {"n_neighbors": [3, 5]}}}).candidate_grids()
    assert grids == {"knn": {"n_neighbors": [3, 5]}}


def test_model_version_must_look_like_a_version() -> None:
    with pytest.raises(ValidationError, match="model_version"):
        PredictRequest.model_validate({"x_test": [1, 2], "model_version": "latest/../../x"})
    pinned = PredictRequest.model_validate({"x_test": [1, 2], "model_version": "20261124T123456123456Z-1a2b3c4d"})
    assert pinned.model_version == "20261124T123456123456Z-1a2b3c4d"


# --- candidates: every tunable parameter typed, in step with the estimators (issues 9.5, 15.2) -------------


def test_every_candidates_grid_model_declares_exactly_its_tunable_parameters() -> None:
    models = {name: CandidateGrids.model_fields[name].annotation for name in CANDIDATE_NAMES}
    for name, candidate in CANDIDATES.items():
        grid_model = next(arg for arg in get_args(models[name]) if arg is not type(None))
        assert set(grid_model.model_fields) == candidate.tunable, name
    assert set(get_args(KnnMetric)) == set(KNN_METRICS)


def test_the_openapi_document_shows_each_parameters_allowed_values() -> None:
    schema = json.dumps(TrainRequest.model_json_schema())
    for words in ('"KnnGrid"', '"seuclidean"', '"minkowski"', '"n_estimators"', '"maximum": 500', '"drop"'):
        assert (words in schema) == (words != '"seuclidean"'), words


def test_candidates_keep_the_requests_order() -> None:
    grids = TrainRequest.model_validate({"candidates": {"sgd": None, "knn": {"n_neighbors": [3]}}}).candidate_grids()
    assert list(grids.items()) == [("sgd", None), ("knn", {"n_neighbors": [3]})]
    assert list(TrainRequest.model_validate({"candidates": ["random_forest", "knn"]}).candidate_grids()) == [
        "random_forest",
        "knn",
    ]


@pytest.mark.parametrize(
    ("grid", "accepted"),
    [
        ({"random_forest": {"n_estimators": [500]}}, True),
        ({"random_forest": {"n_estimators": [501]}}, False),
        ({"random_forest": {"max_depth": [100, None]}}, True),
        ({"random_forest": {"max_depth": [101]}}, False),
        ({"knn": {"n_neighbors": [1000]}}, True),
        ({"knn": {"n_neighbors": [1001]}}, False),
        ({"knn": {"p": [100]}}, True),
        ({"knn": {"p": [100.5]}}, False),
        ({"sgd": {"max_iter": [10_000]}}, True),
        ({"sgd": {"max_iter": [10_001]}}, False),
        ({"knn": {"n_neighbors": list(range(1, 21))}}, True),
        ({"knn": {"n_neighbors": list(range(1, 22))}}, False),
        ({"random_forest": {"max_features": [1, 0.5, "sqrt", None]}}, True),
        ({"random_forest": {"max_features": [0, 1.5, True]}}, False),
    ],
)
def test_grid_ceilings_hold_at_the_boundary(grid, accepted: bool) -> None:
    if accepted:
        TrainRequest.model_validate({"candidates": grid})
    else:
        with pytest.raises(ValidationError, match="candidates"):
            TrainRequest.model_validate({"candidates": grid})


def test_missing_values_is_drop_or_refuse() -> None:
    assert TrainRequest.model_validate({}).missing_values == "drop"
    with pytest.raises(ValidationError, match="missing_values"):
        TrainRequest.model_validate({"missing_values": "fill"})


@pytest.mark.parametrize(("width", "accepted"), [(MAX_FEATURES_PER_ROW, True), (MAX_FEATURES_PER_ROW + 1, False)])
def test_row_width_holds_at_the_boundary(width: int, accepted: bool) -> None:
    if accepted:
        assert parse_rows([[1.0] * width]).matrix.shape == (1, width)
    else:
        with pytest.raises(ValueError, match=f"at most {MAX_FEATURES_PER_ROW} values"):
            parse_rows([[1.0] * width])


GRID_VALUES = st.sampled_from(
    [
        True,
        False,
        None,
        -1,
        0,
        1,
        2,
        3,
        0.5,
        1.5,
        100,
        500,
        501,
        1e308,
        1e-308,
        "sqrt",
        "log2",
        "distance",
        "uniform",
        "minkowski",
        "manhattan",
        "seuclidean",
        "pyfunc",
        "l1",
        "l2",
        "elasticnet",
        "hinge",
        "log_loss",
        "balanced",
        "gini",
        "entropy",
        "constant",
        "optimal",
        "",
        "x",
    ]
)
PARAMETERS = sorted(set().union(*(c.tunable for c in CANDIDATES.values())))
candidate_requests = st.dictionaries(
    st.sampled_from(CANDIDATE_NAMES),
    st.none() | st.dictionaries(st.sampled_from(PARAMETERS), st.lists(GRID_VALUES, min_size=0, max_size=3), max_size=3),
    max_size=2,
)


@settings(max_examples=60, deadline=None)
@given(candidates=candidate_requests)
def test_any_grid_is_refused_in_words_or_trains(candidates) -> None:
    """Every tunable parameter, valid or not: a ValidationError or TrainingError naming it, or a trained model."""
    try:
        grids = TrainRequest.model_validate({"candidates": candidates}).candidate_grids()
    except ValidationError as refused:
        assert all(error["loc"][0] == "candidates" for error in refused.errors())
        return
    try:
        train_model(iris_dataset(), resolve_grids(grids), budget=Budget(10))
    except (TrainingError, TrainingTooLongError) as refused:
        assert "candidates" in str(refused) or "training" in str(refused)


@pytest.mark.parametrize(
    ("model", "body", "field", "words"),
    [
        (PredictRequest, {"x_test": [1], "model_version": "latest"}, "model_version", "omit model_version"),
        (TrainRequest, {"filename_model": "a b"}, "filename_model", "letters, digits"),
        (TrainRequest, {"filename_scaler": "x/../y"}, "filename_scaler", "without '..'"),
        (TrainRequest, {"data_key": "/etc/passwd", "target_column": "t"}, "data_key", "an object key of letters"),
    ],
)
def test_names_keys_and_versions_are_refused_in_words_not_regexes(model, body, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)
    (error,) = refused.value.errors()
    assert error["loc"] == (field,) and words in error["msg"] and "^[" not in error["msg"]
