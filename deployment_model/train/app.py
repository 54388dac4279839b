"""Train function: POST /train fits the recipe (iris, or a CSV from the bucket) and publishes a version."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit

from deployment_model.api.schemas import ExportRequest, ExportResponse, TrainRequest, TrainResponse
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
from deployment_model.ml.onnx_artifact import OnnxConversionError, onnx_artifact_for_version, onnx_artifact_of
from deployment_model.ml.onnx_model import ONNX_KIND
from deployment_model.ml.training import TrainingError, csv_dataset, iris_dataset, resolve_grids, train_model
from deployment_model.storage.models import store_from_environment

register_error(TrainingError, HTTPStatus.BAD_REQUEST, "invalid_training_request")
register_error(OnnxConversionError, HTTPStatus.UNPROCESSABLE_ENTITY, "model_not_servable")
store = store_from_environment()
app = ServiceApp()


@app.operation(
    "/train",
    summary="Train a model and publish it as a new version",
    responses=route_responses(TrainResponse, "The published version and how it scored", 400, 403, 404, 422, 503),
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
    onnx = onnx_artifact_of(trained)  # exported and verified against scikit-learn, or a 422 and nothing published
    summary = trained.summary()
    metadata = store.publish(
        request.filename_model,
        request.filename_scaler,
        trained.model,
        trained.scaler,
        {**summary, ONNX_KIND: onnx.details},
        extra_artifacts={ONNX_KIND: (f"{request.filename_model}.onnx", onnx.data)},
    )
    metrics.add_metric(name="TrainingSeconds", unit=MetricUnit.Seconds, value=trained.duration_seconds)
    logger.info(
        "model published",
        extra={"model_name": metadata["name"], "model_version": metadata["version"], "rows": trained.rows["total"]},
    )
    return TrainResponse(
        model_name=metadata["name"], model_version=metadata["version"], scaler_name=metadata["scaler_name"], **summary
    )


@app.post(
    "/models/<name>/versions/<version>/export",
    summary="Convert a version trained before ONNX into a new version the inference function can serve",
    responses=route_responses(ExportResponse, "The new version and the one it derives from", 400, 404, 409, 422, 503),
)
def export_version(name: str, version: str, request: Annotated[ExportRequest | None, Body()] = None) -> ExportResponse:
    publish = request is not None and request.publish
    loaded = store.load(name, version)  # the joblib artifacts, digests and scikit-learn version checked
    if ONNX_KIND in loaded.metadata["artifacts"]:
        raise ApiError(
            HTTPStatus.CONFLICT,
            "already_exported",
            f"model {name!r} version {version} already has an ONNX artifact: it is served as it is",
        )
    onnx = onnx_artifact_for_version(loaded.scaler, loaded.model, loaded.metadata)  # verified, or a 422
    metadata = store.publish(
        name,
        loaded.metadata["scaler_name"],
        loaded.model,
        loaded.scaler,
        {**loaded.metadata, "derived_from": version, ONNX_KIND: onnx.details},
        extra_artifacts={ONNX_KIND: (f"{name}.onnx", onnx.data)},
        move_pointer=publish,
    )
    logger.info("model exported", extra={"model_name": name, "model_version": metadata["version"], "from": version})
    return ExportResponse(model_name=name, model_version=metadata["version"], derived_from=version, published=publish)


lambda_handler = entry_point(app, direct_path="/train")
