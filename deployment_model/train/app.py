"""Train function: POST /train fits the recipe (iris, or a CSV from the bucket) and publishes a version."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit

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
from deployment_model.ml.report_build import build_report
from deployment_model.ml.training import TrainingError, csv_dataset, iris_dataset, resolve_grids, train_model
from deployment_model.storage.models import store_from_environment

register_error(TrainingError, HTTPStatus.BAD_REQUEST, "invalid_training_request")
store = store_from_environment()
app = ServiceApp()


@app.operation(
    "/train",
    summary="Train a model and publish it as a new version",
    responses=route_responses(TrainResponse, "The published version and how it scored", 400, 403, 404, 503),
)
def train(request: Annotated[TrainRequest, Body()]) -> TrainResponse:
    check_bucket(request.name_bucket)
    grids = resolve_grids(request.candidate_grids())
    if request.data_key and request.target_column:
        data = store.read_data(request.data_key)
        dataset = csv_dataset(data, request.target_column, request.feature_columns, source=request.data_key)
    else:
        dataset = iris_dataset()
    trained = train_model(dataset, grids)
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


lambda_handler = entry_point(app, direct_path="/train")
