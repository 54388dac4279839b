"""Input drift per request: out-of-range rows flagged against the answering version's training statistics."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest

from deployment_model.ml.drift import DRIFT_STD_THRESHOLD, DriftBounds, feature_stats
from deployment_model.ml.onnx_export import export_onnx
from deployment_model.ml.onnx_model import OnnxModelError, load_onnx_model
from deployment_model.ml.training import iris_dataset, train_model
from tests.conftest import Service
from tests.unit.test_report import store_without_report

STATS = {"min": [0.0, 10.0], "max": [1.0, 20.0], "mean": [0.5, 15.0], "std": [0.1, 5.0]}


def emitted_metrics(output: str) -> list[dict[str, Any]]:
    """The EMF documents a handler printed (one JSON object per line, with an _aws key)."""
    documents = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [d for d in documents if "_aws" in d]


def test_a_value_is_out_of_range_only_past_both_the_training_range_and_the_std_threshold() -> None:
    bounds = DriftBounds.from_stats(STATS)
    # feature 0: range [0, 1] is wider than mean +- 3 std = [0.2, 0.8]; feature 1: 15 +- 15 = [0, 30] is wider.
    rows = np.array(
        [
            [0.5, 15.0],  # typical
            [1.0, 20.0],  # the training extremes themselves
            [1.01, 15.0],  # past max, and past mean + 3 std: out
            [-0.01, 15.0],  # below min: out
            [0.5, 25.0],  # past max 20 but within 3 std of 15: in
            [0.5, 30.5],  # past both: out
        ]
    )
    assert bounds.out_of_range(rows).tolist() == [False, False, True, True, False, True]


def test_the_threshold_is_the_documented_number_of_standard_deviations() -> None:
    assert DRIFT_STD_THRESHOLD == 3.0
    bounds = DriftBounds.from_stats(STATS)
    assert bounds.high[1] == pytest.approx(15.0 + DRIFT_STD_THRESHOLD * 5.0)


def test_statistics_come_from_the_training_split_and_bounds_are_derived_once_per_loaded_version() -> None:
    trained = train_model(iris_dataset())
    assert trained.split is not None
    stats = feature_stats(trained.split.x_train)
    assert stats["min"] == trained.split.x_train.min(axis=0).tolist()
    data = export_onnx(trained.scaler, trained.model, 2)
    metadata = {"name": "m", "version": "v", "labels": trained.labels, "feature_names": trained.feature_names}
    served = load_onnx_model(data, {**metadata, "report": {"feature_stats": stats}})
    expected = DriftBounds.from_stats(stats)
    assert served.drift_bounds is not None  # derived at load, kept with the model the cache holds
    assert np.array_equal(served.drift_bounds.low, expected.low) and np.array_equal(
        served.drift_bounds.high, expected.high
    )
    assert load_onnx_model(data, metadata).drift_bounds is None  # an old version: no statistics


@pytest.mark.parametrize(
    "stats",
    [
        {"min": [0.0, 1.0]},  # fields missing
        {"min": "x", "max": 1, "mean": None, "std": [1]},  # not numbers
        {"min": [0.0], "max": [1.0], "mean": [0.5], "std": [0.1]},  # one feature, for a two-feature model
    ],
    ids=["missing", "not-numbers", "one-feature"],
)
def test_unusable_drift_statistics_make_the_version_unservable_not_a_500(stats: dict[str, Any]) -> None:
    """A version whose recorded statistics are broken is refused at load (409 model_integrity_error), not a
    500 on every prediction."""
    trained = train_model(iris_dataset())
    data = export_onnx(trained.scaler, trained.model, 2)
    metadata = {"name": "m", "version": "v", "labels": trained.labels, "feature_names": trained.feature_names}
    with pytest.raises(OnnxModelError, match="drift statistics"):
        load_onnx_model(data, {**metadata, "report": {"feature_stats": stats}})


def test_predict_flags_rows_only_when_asked_and_otherwise_answers_as_before(local_service: Service) -> None:
    local_service.train({})
    rows = [[0.7, 1.0], [25.0, 60.0], [2.0, 5.5], [-5.0, 3.0]]
    plain = local_service.predict({"x_test": rows})
    assert "out_of_range" not in plain
    assert set(plain) == {
        "statusCode",
        "result",
        "prediction",
        "probabilities",
        "labels",
        "model_name",
        "model_version",
        "rows",
    }
    explained = local_service.predict({"x_test": rows, "explain_drift": True})
    assert explained["out_of_range"] == [False, True, False, True]
    assert {k: v for k, v in explained.items() if k != "out_of_range"} == plain
    single = local_service.predict({"x_test": [25.0, 60.0], "explain_drift": True})
    assert single["result"] == "virginica" and single["out_of_range"] == [True]


def test_explain_drift_must_be_a_boolean(local_service: Service) -> None:
    local_service.train({})
    answer = local_service.predict({"x_test": [1, 2], "explain_drift": "yes"})
    assert answer["statusCode"] == 400 and "explain_drift" in answer["message"]


def test_out_of_range_rows_are_published_beside_predicted_rows_with_the_version(
    local_service: Service, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    version = local_service.train({})["model_version"]
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    logger, logs = local_service.inference_module.logger, io.StringIO()
    level, stream = logger.log_level, logger.registered_handler.setStream(logs)
    logger.setLevel("INFO")
    capsys.readouterr()
    try:
        local_service.predict({"x_test": [[0.7, 1.0], [25.0, 60.0], [30.0, 1.0]]})
    finally:
        logger.setLevel(level)
        logger.registered_handler.setStream(stream)
    output = capsys.readouterr().out
    (document,) = [d for d in emitted_metrics(output) if "PredictedRows" in d]
    assert document["OutOfRangeRows"] == [2.0] and document["PredictedRows"] == [3.0]
    assert document["model_version"] == f"Model_ml/{version}"
    (definition,) = document["_aws"]["CloudWatchMetrics"]
    assert definition["Namespace"] == "MlService" and {"OutOfRangeRows", "PredictedRows"} <= {
        m["Name"] for m in definition["Metrics"]
    }
    logged = [json.loads(line) for line in logs.getvalue().splitlines() if "rows outside the training range" in line]
    assert [(log["model_version"], log["out_of_range_rows"]) for log in logged] == [(version, 2)]
    local_service.predict({"x_test": [[0.7, 1.0]]})
    (in_range,) = [d for d in emitted_metrics(capsys.readouterr().out) if "PredictedRows" in d]
    assert "OutOfRangeRows" not in in_range and "model_version" not in in_range  # counted as 0 by the dashboard


def test_versions_trained_before_drift_statistics_answer_null_and_publish_no_count(
    local_service: Service, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store_without_report(local_service, "Old")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    capsys.readouterr()
    answer = local_service.predict({"x_test": [[25.0, 60.0]], "filename_model": "Old", "explain_drift": True})
    assert answer["statusCode"] == 200 and answer["out_of_range"] is None
    (document,) = [d for d in emitted_metrics(capsys.readouterr().out) if "PredictedRows" in d]
    assert "OutOfRangeRows" not in document


def test_metrics_are_per_invocation_even_while_publishing_is_disabled(local_service: Service) -> None:
    """The local server disables publishing; values must still not pile up across requests (nor leak memory)."""
    local_service.train({})
    for _ in range(3):
        local_service.predict({"x_test": [[25.0, 60.0]]})
    assert local_service.inference_module.metrics.metric_set == {}
