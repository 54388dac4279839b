"""Inference function: POST /predict (and the seed's /inference) labels rows with a cached model.

It serves each version's ONNX graph with onnxruntime: no scikit-learn, scipy or joblib in this image, and
nothing unpickled. A version trained before ONNX answers 409 with how to convert it.
"""

from __future__ import annotations

import os
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
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
from deployment_model.ml.onnx_model import (
    ONNX_KIND,
    OnnxModel,
    OnnxModelError,
    OnnxUnavailableError,
    UnsupportedOpsetError,
    load_onnx_model,
    require_onnx,
)
from deployment_model.ml.prediction import Prediction, ResponseTooLargeError
from deployment_model.storage.model_cache import ModelCache
from deployment_model.storage.models import store_from_environment
from deployment_model.storage.objects import ArtifactIntegrityError, IncompatibleModelError


class NotExportedError(IncompatibleModelError):
    """A version with no ONNX artifact (trained before ONNX): the message says how to convert it."""


register_error(NotExportedError, HTTPStatus.CONFLICT, "model_not_exported")
store = store_from_environment()


def load_onnx_version(name: str, version: str, metadata_sha256: str | None) -> OnnxModel:
    """What this function serves of a version: its metadata and its ONNX graph, both digest-checked."""
    metadata = store.load_metadata(name, version, metadata_sha256)
    try:
        require_onnx(metadata)
        return load_onnx_model(store.artifact_bytes(metadata, ONNX_KIND), metadata)
    except OnnxUnavailableError as exc:
        raise NotExportedError(str(exc)) from None
    except UnsupportedOpsetError as exc:
        raise IncompatibleModelError(str(exc)) from None
    except OnnxModelError as exc:
        raise ArtifactIntegrityError(str(exc)) from None


def _record_load(loaded: OnnxModel, seconds: float) -> None:
    metrics.add_metric(name="ModelLoadSeconds", unit=MetricUnit.Seconds, value=seconds)


cache = ModelCache(
    store,
    ttl_seconds=float(os.environ.get("MODEL_CACHE_TTL_SECONDS", "60")),
    logger=logger,
    on_load=_record_load,
    load=load_onnx_version,
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
    prediction = loaded.predict(rows)
    metrics.add_metric(name="PredictedRows", unit=MetricUnit.Count, value=len(rows))
    return _prediction_response(loaded, prediction, request.x_test.single_row)


def _prediction_response(loaded: OnnxModel, prediction: Prediction, single_row: bool) -> dict[str, Any]:
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
