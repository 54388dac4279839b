"""Inference function: POST /predict (and the seed's /inference) labels rows with a cached model.

The same predictions are served over the Open Inference Protocol (KServe v2) under /v2, by an adapter
(api/v2.py) in front of predict_route.
"""

from __future__ import annotations

import os
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.metrics import MetricUnit

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
from deployment_model.api.v2 import (
    ModelMetadata,
    ModelReady,
    OpenInferenceProtocol,
    ServerLive,
    ServerMetadata,
    ServerReady,
    infer_docs,
    route_docs,
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
    metrics.add_metric(name="PredictedRows", unit=MetricUnit.Count, value=len(rows))
    return _prediction_response(loaded, prediction, request.x_test.single_row)


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


v2 = OpenInferenceProtocol(predict=predict_route, load=cache.get, request_id=lambda: app.lambda_context.aws_request_id)
_MODEL_ERRORS = (400, 404, 409, 503)
ModelName = Annotated[str, Path(description="The model's name (filename_model).", examples=["Model_ml"])]
ModelVersion = Annotated[str, Path(description="A published version, as /train answered it.")]


@app.get("/v2/health/live", **route_docs("Server liveness (Open Inference Protocol)", ServerLive))
def v2_server_live() -> Response[str]:
    return v2.server_live()


@app.get("/v2/health/ready", **route_docs("Server readiness (Open Inference Protocol)", ServerReady))
def v2_server_ready() -> Response[str]:
    return v2.server_ready()


@app.get("/v2", **route_docs("Server metadata (Open Inference Protocol)", ServerMetadata))
def v2_server_metadata() -> Response[str]:
    return v2.server_metadata()


@app.get("/v2/models/<name>", **route_docs("Model metadata: input and output tensors", ModelMetadata, *_MODEL_ERRORS))
def v2_model_metadata(name: ModelName) -> Response[str]:
    return v2.model_metadata(name)


@app.get(
    "/v2/models/<name>/versions/<version>",
    **route_docs("Metadata of a model version: input and output tensors", ModelMetadata, *_MODEL_ERRORS),
)
def v2_model_version_metadata(name: ModelName, version: ModelVersion) -> Response[str]:
    return v2.model_metadata(name, version)


@app.get("/v2/models/<name>/ready", **route_docs("Model readiness (loads it)", ModelReady, *_MODEL_ERRORS))
def v2_model_ready(name: ModelName) -> Response[str]:
    return v2.model_ready(name)


@app.get(
    "/v2/models/<name>/versions/<version>/ready",
    **route_docs("Readiness of a model version (loads it)", ModelReady, *_MODEL_ERRORS),
)
def v2_model_version_ready(name: ModelName, version: ModelVersion) -> Response[str]:
    return v2.model_ready(name, version)


@app.post("/v2/models/<name>/infer", **infer_docs("Infer with the latest version (Open Inference Protocol)"))
def v2_infer(name: ModelName) -> Response[str]:
    return v2.infer(app.current_event.raw_event, name)


@app.post(
    "/v2/models/<name>/versions/<version>/infer",
    **infer_docs("Infer with a pinned version (Open Inference Protocol)"),
)
def v2_version_infer(name: ModelName, version: ModelVersion) -> Response[str]:
    return v2.infer(app.current_event.raw_event, name, version)


lambda_handler = entry_point(app, direct_path="/predict")
