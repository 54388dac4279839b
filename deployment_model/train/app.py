"""Train function: POST /train fits the recipe (iris, or a CSV from the bucket) and stores a version, published
if the request's rule allows; and the registry's write routes (publish, delete)."""

from __future__ import annotations

import os
from contextvars import ContextVar
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.metrics import MetricUnit

from deployment_model.api.deadlines import API_GATEWAY_TIMEOUT_SECONDS, PUBLISH_MARGIN_SECONDS, training_budget
from deployment_model.api.registry_schemas import DeletedModel, DeletedVersion, PublishRequest, PublishResponse
from deployment_model.api.schemas import Name, TrainRequest, TrainResponse, Version
from deployment_model.api.service import (
    ServiceApp,
    check_bucket,
    entry_point,
    logger,
    metrics,
    register_error,
    route_responses,
)
from deployment_model.ml.artifacts import MODEL_KINDS, load_model, model_artifacts, model_metadata
from deployment_model.ml.budget import Budget, TrainingTooLongError
from deployment_model.ml.datasets import Dataset, DataTooLargeError, check_csv_size, max_csv_bytes
from deployment_model.ml.report_build import build_report
from deployment_model.ml.training import TrainingError, csv_dataset, iris_dataset, resolve_grids, train_model
from deployment_model.storage.publishing import publish_trained_version
from deployment_model.storage.registry import ANY_VERSION, ModelRegistry, registry_from_environment

register_error(TrainingError, HTTPStatus.BAD_REQUEST, "invalid_training_request")
register_error(DataTooLargeError, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "training_data_too_large")
register_error(TrainingTooLongError, HTTPStatus.UNPROCESSABLE_ENTITY, "training_too_long")
registry = registry_from_environment()
app = ServiceApp()
# This invocation's training budget, set by lambda_handler: per thread, as the local server serves in threads.
_budget: ContextVar[Budget | None] = ContextVar("training_budget", default=None)
ModelName = Annotated[Name, Path(description="The model's name.")]
ModelVersion = Annotated[Version, Path(description="A version id.")]


def _request_id() -> str | None:
    return logger.get_current_keys().get("function_request_id")


@app.operation(
    "/train",
    summary="Train a model, store it as a new version, and publish it if the rule allows",
    responses=route_responses(
        TrainResponse, "The stored version, how it scored, whether it was published", 400, 403, 404, 409, 413, 422, 503
    ),
)
def train(request: Annotated[TrainRequest, Body()]) -> TrainResponse:
    check_bucket(request.name_bucket)
    grids = resolve_grids(request.candidate_grids())
    dataset = load_dataset(registry, request)
    budget = _budget.get() or Budget(API_GATEWAY_TIMEOUT_SECONDS - PUBLISH_MARGIN_SECONDS)
    trained = train_model(dataset, grids, budget=budget)
    summary = trained.summary()
    name, scaler_name = request.filename_model, request.filename_scaler
    report = build_report(dataset, trained)
    metadata = registry.create_version(
        name,
        {**model_artifacts(name, scaler_name, trained.model, trained.scaler), **report.artifacts},
        {**model_metadata(summary, scaler_name), "report": report.metadata},
    )
    decision = publish_trained_version(registry, metadata, request.publish, request.min_f1_macro, _request_id())
    metrics.add_metric(name="TrainingSeconds", unit=MetricUnit.Seconds, value=trained.duration_seconds)
    logger.info(
        "model published" if decision.published else "model stored, not published",
        extra={"model_name": name, "model_version": metadata["version"], "published": decision.published},
    )
    return TrainResponse(
        model_name=name,
        model_version=metadata["version"],
        scaler_name=scaler_name,
        published=decision.published,
        publish_reason=decision.reason,
        **summary,
    )


@app.post(
    "/models/<name>/publish",
    summary="Publish a stored version (promote or roll back), after checking it loads",
    responses=route_responses(PublishResponse, "The published version and the one it replaced", 400, 404, 409, 503),
)
def publish_version(name: ModelName, request: Annotated[PublishRequest, Body()]) -> PublishResponse:
    load_model(registry.load(name, request.version, MODEL_KINDS))  # digests and library versions, before traffic
    expected = ANY_VERSION if request.expected_version is None else request.expected_version
    result = registry.publish(
        name, request.version, reason=request.reason, request_id=_request_id(), expected_version=expected
    )
    logger.info("model published", extra={"model_name": name, "model_version": result.published_version})
    return PublishResponse(
        name=name, published_version=result.published_version, previous_version=result.previous_version
    )


@app.delete(
    "/models/<name>/versions/<version>",
    summary="Delete a version that is not the published one",
    responses=route_responses(DeletedVersion, "The deleted version", 400, 404, 409, 503),
)
def delete_version(name: ModelName, version: ModelVersion) -> DeletedVersion:
    registry.delete_version(name, version)
    return DeletedVersion(deleted=version)


@app.delete(
    "/models/<name>",
    summary="Delete a model: every version, its published pointer and its history",
    responses=route_responses(DeletedModel, "How many versions were deleted", 400, 404, 503),
)
def delete_model(name: ModelName) -> DeletedModel:
    return DeletedModel(deleted_versions=registry.delete_model(name))


def load_dataset(models: ModelRegistry, request: TrainRequest) -> Dataset:
    """The request's data: iris, or its CSV, whose size is checked before a byte of it is read."""
    if not (request.data_key and request.target_column):
        return iris_dataset()
    limit = max_csv_bytes(int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or 1024))
    check_csv_size(models.data_size(request.data_key), limit, request.data_key)
    data, etag = models.read_data_tagged(request.data_key)
    check_csv_size(len(data), limit, request.data_key)  # replaced since its size was read
    return csv_dataset(
        data,
        request.target_column,
        request.feature_columns,
        source=request.data_key,
        missing_values=request.missing_values,
        etag=etag,
    )


_handle = entry_point(app, direct_path="/train")


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """The function's handler: the route gets this invocation's training budget (Lambda's context stays here)."""
    token = _budget.set(training_budget(event, context))
    try:
        return _handle(event, context)
    finally:
        _budget.reset(token)
