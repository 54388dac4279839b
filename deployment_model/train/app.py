"""Train function: POST /train fits the recipe (iris, or a CSV from the bucket) and publishes a version."""

from __future__ import annotations

import os
from contextvars import ContextVar
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit

from deployment_model.api.deadlines import API_GATEWAY_TIMEOUT_SECONDS, PUBLISH_MARGIN_SECONDS, training_budget
from deployment_model.api.schemas import TrainRequest, TrainResponse
from deployment_model.api.service import (
    ServiceApp,
    check_bucket,
    entry_point,
    logger,
    metrics,
    register_error,
    route_responses,
)
from deployment_model.ml.budget import Budget, TrainingTooLongError
from deployment_model.ml.datasets import Dataset, DataTooLargeError, check_csv_size, max_csv_bytes
from deployment_model.ml.report_build import build_report
from deployment_model.ml.training import TrainingError, csv_dataset, iris_dataset, resolve_grids, train_model
from deployment_model.storage.models import ModelStore, store_from_environment

register_error(TrainingError, HTTPStatus.BAD_REQUEST, "invalid_training_request")
register_error(DataTooLargeError, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "training_data_too_large")
register_error(TrainingTooLongError, HTTPStatus.UNPROCESSABLE_ENTITY, "training_too_long")
store = store_from_environment()
app = ServiceApp()
# This invocation's training budget, set by lambda_handler: per thread, as the local server serves in threads.
_budget: ContextVar[Budget | None] = ContextVar("training_budget", default=None)


@app.operation(
    "/train",
    summary="Train a model and publish it as a new version",
    responses=route_responses(TrainResponse, "The published version and how it scored", 400, 403, 404, 413, 422, 503),
)
def train(request: Annotated[TrainRequest, Body()]) -> TrainResponse:
    check_bucket(request.name_bucket)
    grids = resolve_grids(request.candidate_grids())
    dataset = load_dataset(store, request)
    budget = _budget.get() or Budget(API_GATEWAY_TIMEOUT_SECONDS - PUBLISH_MARGIN_SECONDS)
    trained = train_model(dataset, grids, budget=budget)
    summary = trained.summary()
    report = build_report(dataset, trained)
    metadata = store.publish(
        request.filename_model,
        request.filename_scaler,
        trained.model,
        trained.scaler,
        {**summary, "report": report.metadata},
        extra_artifacts=report.artifacts,
    )
    metrics.add_metric(name="TrainingSeconds", unit=MetricUnit.Seconds, value=trained.duration_seconds)
    logger.info(
        "model published",
        extra={"model_name": metadata["name"], "model_version": metadata["version"], "rows": trained.rows["total"]},
    )
    return TrainResponse(
        model_name=metadata["name"], model_version=metadata["version"], scaler_name=metadata["scaler_name"], **summary
    )


def load_dataset(models: ModelStore, request: TrainRequest) -> Dataset:
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
