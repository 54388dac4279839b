"""Train function: POST /train fits the recipe (iris, or a CSV from the bucket) and stores a version, published
if the request's rule allows; and the registry's write routes (publish, delete).

With `"async": true` (or `Prefer: respond-async`) the request is queued as a job instead, and this same
function runs it when the job queue delivers it (an SQS event on AWS, the local server's worker locally).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.metrics import MetricUnit

from deployment_model.api.deadlines import API_GATEWAY_TIMEOUT_SECONDS, PUBLISH_MARGIN_SECONDS, training_budget
from deployment_model.api.jobs import JobAccepted, accepted, prefers_async
from deployment_model.api.registry_schemas import DeletedModel, DeletedVersion, PublishRequest, PublishResponse
from deployment_model.api.schemas import ExportRequest, ExportResponse, Name, TrainRequest, TrainResponse, Version
from deployment_model.api.service import (
    Answered,
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
from deployment_model.ml.artifacts import MODEL_KINDS, load_model, model_artifacts, model_metadata
from deployment_model.ml.budget import Budget, TrainingTooLongError
from deployment_model.ml.datasets import Dataset, DataTooLargeError, check_csv_size, max_csv_bytes
from deployment_model.ml.onnx_artifact import OnnxConversionError, onnx_artifact_for_version, onnx_artifact_of
from deployment_model.ml.onnx_model import ONNX_KIND, OnnxModelError, OnnxUnavailableError, load_stored_version
from deployment_model.ml.report_build import build_report
from deployment_model.ml.training import TrainingError, csv_dataset, iris_dataset, resolve_grids, train_model
from deployment_model.storage.jobs import JobStore
from deployment_model.storage.publishing import publish_trained_version
from deployment_model.storage.registry import ANY_VERSION, ModelRegistry, registry_from_environment
from deployment_model.train.job_queue import QueueUnavailableError, queue_from_environment, submit
from deployment_model.train.job_runner import JobRunner, ProgressCallback, sqs_handler

register_error(TrainingError, HTTPStatus.BAD_REQUEST, "invalid_training_request")
register_error(DataTooLargeError, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "training_data_too_large")
register_error(TrainingTooLongError, HTTPStatus.UNPROCESSABLE_ENTITY, "training_too_long")
register_error(QueueUnavailableError, HTTPStatus.SERVICE_UNAVAILABLE, "queue_unavailable")
register_error(OnnxConversionError, HTTPStatus.UNPROCESSABLE_ENTITY, "model_not_servable")
register_error(OnnxUnavailableError, HTTPStatus.CONFLICT, "model_not_exported")
register_error(OnnxModelError, HTTPStatus.CONFLICT, "model_integrity_error")
registry = registry_from_environment()
jobs = JobStore(registry.objects)
job_queue = queue_from_environment()
app = ServiceApp()
# This invocation's training budget, set by lambda_handler: per thread, as the local server serves in threads.
_budget: ContextVar[Budget | None] = ContextVar("training_budget", default=None)
ModelName = Annotated[Name, Path(description="The model's name.")]
ModelVersion = Annotated[Version, Path(description="A version id.")]
_TRAIN_RESPONSES = route_responses(
    TrainResponse, "The stored version, how it scored, whether it was published", 400, 403, 404, 409, 413, 422, 503
)
_TRAIN_RESPONSES[202] = {
    "description": "Queued as a job (async): GET the status_url (also in the Location header) for its outcome.",
    "content": {"application/json": {"model": JobAccepted}},
}


def _request_id() -> str | None:
    return logger.get_current_keys().get("function_request_id")


@app.operation(
    "/train",
    summary="Train a model, store it as a new version, and publish it if the rule allows (or queue it as a job)",
    responses=_TRAIN_RESPONSES,
)
def train(request: Annotated[TrainRequest, Body()]) -> TrainResponse | Answered:
    if request.async_ or prefers_async(current_event.get()):
        grids = check_before_queuing(request)
        queued = request.model_copy(update={"async_": True})  # as recorded: asked by the body or the header
        return accepted(submit(jobs, job_queue, as_accepted(queued), candidates_total=len(grids)).job_id)
    return train_flow(request)


def as_accepted(request: TrainRequest) -> dict[str, Any]:
    """The request to record: every field, defaults filled in, and what the client sent exactly as sent (a
    grid's parameters left out stay left out), so validating it again gives the same request."""
    sent = request.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return {**request.model_dump(mode="json", by_alias=True), **sent}


def check_before_queuing(request: TrainRequest) -> dict[str, Any]:
    """What a synchronous train refuses before any fitting, so a queued job is refused at once too."""
    check_bucket(request.name_bucket)
    grids = resolve_grids(request.candidate_grids())
    if request.data_key and request.target_column:
        check_data_size(registry, request.data_key)
    return grids


def train_flow(request: TrainRequest, on_candidate_done: ProgressCallback | None = None) -> TrainResponse:
    """The whole training, the same for POST /train and for a queued job."""
    check_bucket(request.name_bucket)
    grids = resolve_grids(request.candidate_grids())
    dataset = load_dataset(registry, request)
    budget = _budget.get() or Budget(API_GATEWAY_TIMEOUT_SECONDS - PUBLISH_MARGIN_SECONDS)
    trained = train_model(dataset, grids, budget=budget, on_candidate_done=on_candidate_done)
    onnx = onnx_artifact_of(trained)  # exported and verified against scikit-learn, or a 422 and nothing stored
    summary = trained.summary()
    name, scaler_name = request.filename_model, request.filename_scaler
    report = build_report(dataset, trained)
    artifacts = model_artifacts(name, scaler_name, trained.model, trained.scaler)  # joblib: the system of record
    artifacts[ONNX_KIND] = (f"{name}.onnx", onnx.data)  # what the inference function serves
    metadata = registry.create_version(
        name,
        {**artifacts, **report.artifacts},
        {**model_metadata(summary, scaler_name), ONNX_KIND: onnx.details, "report": report.metadata},
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
    responses=route_responses(
        PublishResponse, "The published version and the one it replaced", 400, 404, 409, 413, 503
    ),
)
def publish_version(name: ModelName, request: Annotated[PublishRequest, Body()]) -> PublishResponse:
    stored = registry.load(name, request.version, MODEL_KINDS)
    load_model(stored)  # digests and library versions, before traffic
    load_stored_version(stored, registry.artifact_of)  # and what serving loads
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
    responses=route_responses(DeletedModel, "How many versions were deleted", 400, 404, 409, 503),
)
def delete_model(name: ModelName) -> DeletedModel:
    return DeletedModel(deleted_versions=registry.delete_model(name))


@app.post(
    "/models/<name>/versions/<version>/export",
    summary="Convert a version trained before ONNX into a new version the inference function can serve",
    responses=route_responses(
        ExportResponse, "The new version and the one it derives from", 400, 404, 409, 413, 422, 503
    ),
)
def export_version(
    name: ModelName, version: ModelVersion, request: Annotated[ExportRequest | None, Body()] = None
) -> ExportResponse:
    publish = request is not None and request.publish
    loaded = load_model(registry.load(name, version, MODEL_KINDS))  # digests and scikit-learn version checked
    if ONNX_KIND in loaded.metadata["artifacts"]:
        raise ApiError(
            HTTPStatus.CONFLICT,
            "already_exported",
            f"model {name!r} version {version} already has an ONNX artifact: it is served as it is",
        )
    onnx = onnx_artifact_for_version(loaded.scaler, loaded.model, loaded.metadata)  # verified, or a 422
    scaler_name = loaded.metadata["scaler_name"]
    artifacts = model_artifacts(name, scaler_name, loaded.model, loaded.scaler)
    artifacts[ONNX_KIND] = (f"{name}.onnx", onnx.data)
    recorded = {k: v for k, v in loaded.metadata.items() if k not in ("name", "version", "created_at", "artifacts")}
    details = {**model_metadata(recorded, scaler_name), "derived_from": version, ONNX_KIND: onnx.details}
    metadata = registry.create_version(name, artifacts, details)
    if publish:
        reason = f"exported from version {version} to serve it through ONNX"
        new = metadata["version"]
        registry.publish(name, new, reason=reason, request_id=_request_id(), expected_version=ANY_VERSION)
    logger.info("model exported", extra={"model_name": name, "model_version": metadata["version"], "from": version})
    return ExportResponse(model_name=name, model_version=metadata["version"], derived_from=version, published=publish)


def check_data_size(models: ModelRegistry, data_key: str) -> int:
    """The CSV exists and is not too large for this function's memory (checked before a byte of it is read);
    returns the limit."""
    limit = max_csv_bytes(int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or 1024))
    check_csv_size(models.data_size(data_key), limit, data_key)
    return limit


def load_dataset(models: ModelRegistry, request: TrainRequest) -> Dataset:
    """The request's data: iris, or its CSV, whose size is checked before a byte of it is read."""
    if not (request.data_key and request.target_column):
        return iris_dataset()
    limit = check_data_size(models, request.data_key)
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


def run_job(request: dict[str, Any], on_candidate_done: ProgressCallback) -> dict[str, Any]:
    """A queued job: the stored request, through the same flow; its result is what POST /train answers."""
    return train_flow(TrainRequest.model_validate(request), on_candidate_done).model_dump(mode="json")


job_runner = JobRunner(jobs, run_job, max_receive_count=job_queue.max_receive_count)
_handle = entry_point(app, direct_path="/train", sqs_handler=sqs_handler(job_runner))


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """The function's handler: the route gets this invocation's training budget (Lambda's context stays here).

    A queued job (an SQS event) gets the function's remaining time; a request through API Gateway, its 29 s."""
    token = _budget.set(training_budget(event, context))
    try:
        return _handle(event, context)
    finally:
        _budget.reset(token)
