"""Train function: POST /train fits the recipe (iris, or a CSV from the bucket) and publishes a version.

With `"async": true` (or `Prefer: respond-async`) the request is queued as a job instead, and this same
function runs it when the job queue delivers it (an SQS event on AWS, the local server's worker locally).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit

from deployment_model.api.deadlines import API_GATEWAY_TIMEOUT_SECONDS, PUBLISH_MARGIN_SECONDS, training_budget
from deployment_model.api.jobs import JobAccepted, accepted, prefers_async
from deployment_model.api.schemas import TrainRequest, TrainResponse
from deployment_model.api.service import (
    Answered,
    ServiceApp,
    check_bucket,
    current_event,
    entry_point,
    logger,
    metrics,
    register_error,
    route_responses,
)
from deployment_model.ml.budget import Budget, TrainingTooLongError
from deployment_model.ml.datasets import Dataset, DataTooLargeError, check_csv_size, max_csv_bytes
from deployment_model.ml.training import TrainingError, csv_dataset, iris_dataset, resolve_grids, train_model
from deployment_model.storage.jobs import JobStore
from deployment_model.storage.models import ModelStore, store_from_environment
from deployment_model.train.job_queue import QueueUnavailableError, queue_from_environment, submit
from deployment_model.train.job_runner import JobRunner, ProgressCallback, sqs_handler

register_error(TrainingError, HTTPStatus.BAD_REQUEST, "invalid_training_request")
register_error(DataTooLargeError, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "training_data_too_large")
register_error(TrainingTooLongError, HTTPStatus.UNPROCESSABLE_ENTITY, "training_too_long")
register_error(QueueUnavailableError, HTTPStatus.SERVICE_UNAVAILABLE, "queue_unavailable")
store = store_from_environment()
jobs = JobStore(store.objects)
job_queue = queue_from_environment()
app = ServiceApp()
# This invocation's training budget, set by lambda_handler: per thread, as the local server serves in threads.
_budget: ContextVar[Budget | None] = ContextVar("training_budget", default=None)
_TRAIN_RESPONSES = route_responses(
    TrainResponse, "The published version and how it scored", 400, 403, 404, 413, 422, 503
)
_TRAIN_RESPONSES[202] = {
    "description": "Queued as a job (async): GET the status_url (also in the Location header) for its outcome.",
    "content": {"application/json": {"model": JobAccepted}},
}


@app.operation(
    "/train",
    summary="Train a model and publish it as a new version (or queue it as a job)",
    responses=_TRAIN_RESPONSES,
)
def train(request: Annotated[TrainRequest, Body()]) -> TrainResponse | Answered:
    if request.async_ or prefers_async(current_event.get()):
        grids = check_before_queuing(request)
        return accepted(submit(jobs, job_queue, as_accepted(request), candidates_total=len(grids)).job_id)
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
        check_data_size(store, request.data_key)
    return grids


def train_flow(request: TrainRequest, on_candidate_done: ProgressCallback | None = None) -> TrainResponse:
    """The whole training, the same for POST /train and for a queued job."""
    check_bucket(request.name_bucket)
    grids = resolve_grids(request.candidate_grids())
    dataset = load_dataset(store, request)
    budget = _budget.get() or Budget(API_GATEWAY_TIMEOUT_SECONDS - PUBLISH_MARGIN_SECONDS)
    trained = train_model(dataset, grids, budget=budget, on_candidate_done=on_candidate_done)
    summary = trained.summary()
    metadata = store.publish(request.filename_model, request.filename_scaler, trained.model, trained.scaler, summary)
    metrics.add_metric(name="TrainingSeconds", unit=MetricUnit.Seconds, value=trained.duration_seconds)
    logger.info(
        "model published",
        extra={"model_name": metadata["name"], "model_version": metadata["version"], "rows": trained.rows["total"]},
    )
    return TrainResponse(
        model_name=metadata["name"], model_version=metadata["version"], scaler_name=metadata["scaler_name"], **summary
    )


def check_data_size(models: ModelStore, data_key: str) -> int:
    """The CSV exists and is not too large for this function's memory (checked before a byte of it is read);
    returns the limit."""
    limit = max_csv_bytes(int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or 1024))
    check_csv_size(models.data_size(data_key), limit, data_key)
    return limit


def load_dataset(models: ModelStore, request: TrainRequest) -> Dataset:
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
