"""Inference function: POST /predict (and the seed's /inference) labels rows with a cached model; the
registry's read routes (list models, show a model or a version, history) and the job status routes, under its
read-only role.

The same predictions are served over the Open Inference Protocol (KServe v2) under /v2, by an adapter
(api/v2.py) in front of predict_route.

Each version's ONNX graph is served with onnxruntime: no scikit-learn, scipy or joblib in this image, and
nothing unpickled. A version trained before ONNX answers 409 with how to convert it.
"""

from __future__ import annotations

import os
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.metrics import MetricUnit

from deployment_model.api.drift_metrics import record_drift
from deployment_model.api.jobs import register_job_routes
from deployment_model.api.registry_schemas import History, ModelDetail, ModelsPage, VersionDetail
from deployment_model.api.report_page import REPORT_ROUTE_DOCS, report_response
from deployment_model.api.schemas import Name, PredictRequest, PredictResponse, Version
from deployment_model.api.service import (
    ApiError,
    ServiceApp,
    check_bucket,
    current_event,
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
    protocol_error,
    route_docs,
)
from deployment_model.ml.onnx_model import (
    OnnxModel,
    OnnxModelError,
    OnnxUnavailableError,
    UnsupportedOpsetError,
    load_stored_version,
)
from deployment_model.ml.prediction import Prediction, ResponseTooLargeError
from deployment_model.storage.jobs import JobStore
from deployment_model.storage.model_cache import ModelCache
from deployment_model.storage.registry import StoredVersion, registry_from_environment


def _record_load(loaded: OnnxModel, seconds: float) -> None:
    metrics.add_metric(name="ModelLoadSeconds", unit=MetricUnit.Seconds, value=seconds)


def _load(stored: StoredVersion) -> OnnxModel:
    return load_stored_version(stored, registry.artifact_of)


registry = registry_from_environment()
cache = ModelCache(
    registry,
    _load,
    ttl_seconds=float(os.environ.get("MODEL_CACHE_TTL_SECONDS", "60")),
    kinds=(),  # the metadata first: a version without an ONNX graph is a 409 saying how to convert it
    load_errors=(OnnxModelError, OnnxUnavailableError),
    logger=logger,
    on_load=_record_load,
)
app = ServiceApp()
register_error(ResponseTooLargeError, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "response_too_large")
register_error(OnnxUnavailableError, HTTPStatus.CONFLICT, "model_not_exported")
register_error(UnsupportedOpsetError, HTTPStatus.CONFLICT, "model_incompatible")
register_error(OnnxModelError, HTTPStatus.CONFLICT, "model_integrity_error")
ModelName = Annotated[Name, Path(description="The model's name.")]
ModelVersion = Annotated[Version, Path(description="A version id.")]
NextToken = Annotated[
    str | None, Query(max_length=2048, description="The next_token of the previous page; omitted: the first page.")
]
# Job status routes are read-only, like everything this function does (see README, Training jobs).
jobs = JobStore(registry.objects)
register_job_routes(app, jobs)
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
    out_of_range = record_drift(loaded, rows)
    metrics.add_metric(name="PredictedRows", unit=MetricUnit.Count, value=len(rows))
    response = _prediction_response(loaded, prediction, request.x_test.single_row)
    if request.explain_drift:
        response["out_of_range"] = out_of_range
    return response


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


@app.get(
    "/models",
    summary="List the models, each with its published version and how many versions it has",
    responses=route_responses(ModelsPage, "One page of models, by name", 400, 503),
)
def list_models(
    limit: Annotated[int, Query(ge=1, le=100, description="Models per page (1-100).")] = 50,
    next_token: NextToken = None,
) -> ModelsPage:
    page = registry.list_models(limit=limit, next_token=next_token)
    return ModelsPage.model_validate({"models": [vars(item) for item in page.items], "next_token": page.next_token})


@app.get(
    "/models/<name>",
    summary="Show a model: its published version and its versions (newest first) with their metrics",
    responses=route_responses(ModelDetail, "The model and one page of its versions", 400, 404, 409, 503),
)
def show_model(
    name: ModelName,
    limit: Annotated[int, Query(ge=1, le=100, description="Versions per page (1-100).")] = 20,
    next_token: NextToken = None,
) -> ModelDetail:
    pointer, page = registry.list_versions(name, limit=limit, next_token=next_token)
    return ModelDetail.model_validate(
        {
            "name": name,
            "published_version": pointer.version if pointer else None,
            "published_at": pointer.published_at if pointer else None,
            "versions": page.items,
            "next_token": page.next_token,
        }
    )


@app.get(
    "/models/<name>/versions/<version>",
    summary="A version's metadata as recorded at training, and whether it is published",
    responses=route_responses(VersionDetail, "The version's metadata", 400, 404, 409, 503),
)
def show_version(name: ModelName, version: ModelVersion) -> VersionDetail:
    metadata = registry.get_version(name, version)
    pointer = registry.published_or_none(name)
    return VersionDetail.model_validate({**metadata, "published": pointer is not None and pointer.version == version})


@app.get(
    "/models/<name>/history",
    summary="Every change of the published version, newest first: who moved it, when, and why",
    responses=route_responses(History, "The model's history", 400, 404, 409, 503),
)
def model_history(
    name: ModelName,
    limit: Annotated[int, Query(ge=1, le=100, description="Events per page (1-100).")] = 50,
    next_token: NextToken = None,
) -> History:
    page = registry.history(name, limit=limit, next_token=next_token)
    return History.model_validate({"name": name, "events": page.items, "next_token": page.next_token})


@app.get("/models/<name>/versions/<version>/report", **REPORT_ROUTE_DOCS)
def version_report(
    name: ModelName,
    version: ModelVersion,
    format: Annotated[str | None, Query(description="html (default) or json")] = None,
) -> Response[str]:
    return report_response(registry, name, version, format)


v2 = OpenInferenceProtocol(predict=predict_route, load=cache.get)
# Path values checked by the adapter, so that a bad name is answered in the protocol's own error shape.
app.error_shapes["/v2"] = protocol_error  # every error under /v2, even before its route runs
V2ModelName = Annotated[str, Path(description="The model's name (filename_model).", examples=["Model_ml"])]
V2ModelVersion = Annotated[str, Path(description="A published version, as /train answered it.")]
_MODEL_ERRORS = (400, 404, 409, 503)


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
def v2_model_metadata(name: V2ModelName) -> Response[str]:
    return v2.model_metadata(name)


@app.get(
    "/v2/models/<name>/versions/<version>",
    **route_docs("Metadata of a model version: input and output tensors", ModelMetadata, *_MODEL_ERRORS),
)
def v2_model_version_metadata(name: V2ModelName, version: V2ModelVersion) -> Response[str]:
    return v2.model_metadata(name, version)


@app.get("/v2/models/<name>/ready", **route_docs("Model readiness (loads it)", ModelReady, *_MODEL_ERRORS))
def v2_model_ready(name: V2ModelName) -> Response[str]:
    return v2.model_ready(name)


@app.get(
    "/v2/models/<name>/versions/<version>/ready",
    **route_docs("Readiness of a model version (loads it)", ModelReady, *_MODEL_ERRORS),
)
def v2_model_version_ready(name: V2ModelName, version: V2ModelVersion) -> Response[str]:
    return v2.model_ready(name, version)


# Infer takes the short path /predict takes (api/service.py): no Powertools middleware per request.
@app.short_path(
    "POST", "/v2/models/<name>/infer", **infer_docs("Infer with the latest version (Open Inference Protocol)")
)
def v2_infer(name: V2ModelName) -> Response[str]:
    return v2.infer(current_event.get(), name)


@app.short_path(
    "POST",
    "/v2/models/<name>/versions/<version>/infer",
    **infer_docs("Infer with a pinned version (Open Inference Protocol)"),
)
def v2_version_infer(name: V2ModelName, version: V2ModelVersion) -> Response[str]:
    return v2.infer(current_event.get(), name, version)


lambda_handler = entry_point(app, direct_path="/predict")
