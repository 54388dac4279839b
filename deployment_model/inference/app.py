"""Inference function: POST /predict (and the seed's /inference) labels rows with a cached model."""

from __future__ import annotations

import os
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.metrics import MetricUnit

from deployment_model.api.drift_metrics import record_drift
from deployment_model.api.report_page import REPORT_ROUTE_DOCS, report_response
from deployment_model.api.schemas import PredictRequest, PredictResponse
from deployment_model.api.service import (
    ApiError,
    ServiceApp,
    check_bucket,
    entry_point,
    logger,
    metrics,
    register_error,
    route_responses,
)
from deployment_model.ml.prediction import Prediction, ResponseTooLargeError, predict
from deployment_model.storage.model_cache import ModelCache
from deployment_model.storage.models import LoadedModel, store_from_environment


def _record_load(loaded: LoadedModel, seconds: float) -> None:
    metrics.add_metric(name="ModelLoadSeconds", unit=MetricUnit.Seconds, value=seconds)


cache = ModelCache(
    store_from_environment(),
    ttl_seconds=float(os.environ.get("MODEL_CACHE_TTL_SECONDS", "60")),
    logger=logger,
    on_load=_record_load,
)
app = ServiceApp()
register_error(ResponseTooLargeError, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "response_too_large")
_PREDICT_DOCS = {
    "summary": "Label one row or a batch of rows",
    "responses": route_responses(
        PredictResponse, "Labels, class indexes and probabilities", 400, 403, 404, 409, 413, 503
    ),
}


@app.operation("/predict", **_PREDICT_DOCS)
@app.operation("/inference", **_PREDICT_DOCS, description="The seed tutorial's path; the same as /predict.")
def predict_route(request: Annotated[PredictRequest, Body()]) -> dict[str, Any]:
    check_bucket(request.name_bucket)
    loaded = cache.get(request.filename_model, request.model_version)
    trained_with = loaded.metadata["scaler_name"]
    if request.filename_scaler not in (None, trained_with):
        raise ApiError(
            HTTPStatus.NOT_FOUND,
            "model_not_found",
            f"model {loaded.name!r} version {loaded.version} was trained with scaler {trained_with!r}, "
            f"not {request.filename_scaler!r}: a model is only served with its own scaler",
        )
    rows = request.x_test.matrix
    prediction = predict(loaded, rows)
    out_of_range = record_drift(loaded, rows)
    metrics.add_metric(name="PredictedRows", unit=MetricUnit.Count, value=len(rows))
    response = _prediction_response(loaded, prediction, request.x_test.single_row)
    if request.explain_drift:
        response["out_of_range"] = out_of_range
    return response


@app.get("/models/<name>/versions/<version>/report", **REPORT_ROUTE_DOCS)
def report_route(
    name: str,
    version: str,
    format: Annotated[str | None, Query(description="html (default) or json")] = None,
) -> Response[str]:
    return report_response(cache.store, name, version, format)


def _prediction_response(loaded: LoadedModel, prediction: Prediction, single_row: bool) -> dict[str, Any]:
    """The PredictResponse fields, with numpy arrays left as they are: orjson serializes them in one pass."""
    first = 0 if single_row else slice(None)
    probabilities = prediction.probabilities
    return {
        "result": prediction.labels[first],
        "prediction": prediction.classes[first],
        "probabilities": None if probabilities is None else probabilities[first],
        "labels": loaded.labels,
        "model_name": loaded.name,
        "model_version": loaded.version,
        "rows": len(prediction.labels),
    }


lambda_handler = entry_point(app, direct_path="/predict")
