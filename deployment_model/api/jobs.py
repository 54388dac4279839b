"""Training jobs over HTTP: POST /train's asynchronous answer (202 + Location), and the routes that read jobs.

`POST /train` runs synchronously unless the body says `"async": true` or the request carries the standard
header `Prefer: respond-async` (RFC 7240). Then the request is validated as always, recorded as a queued job
(storage/jobs.py), sent to the job queue (train/job_queue.py) and answered 202 at once; the train function's
worker (train/job_runner.py) runs it. `GET /train/jobs/{job_id}` and `GET /train/jobs` read the records.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import Field

from deployment_model.api.events import header_values
from deployment_model.api.schemas import ResponseModel
from deployment_model.api.service import (
    Answered,
    ApiError,
    ServiceApp,
    current_event,
    register_error,
    route_responses,
)
from deployment_model.storage.jobs import JOB_ID_PATTERN, Job, JobNotFoundError, JobStore

JOBS_PATH = "/train/jobs"
ASYNC_PREFERENCE = "respond-async"
DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 100

register_error(JobNotFoundError, HTTPStatus.NOT_FOUND, "job_not_found")

JobStatus = Literal["queued", "running", "succeeded", "failed"]


class JobProgress(ResponseModel):
    candidates_done: int
    candidates_total: int


class JobError(ResponseModel):
    error: str = Field(description="A stable code: the train route's (e.g. invalid_training_request) or job_*.")
    message: str


class JobAccepted(ResponseModel):
    job_id: str
    status: Literal["queued"] = "queued"
    status_url: str = Field(description="Where to GET the job's status (also in the Location header).")


class _JobState(ResponseModel):
    job_id: str
    status: JobStatus
    submitted_at: str
    started_at: str | None
    finished_at: str | None
    progress: JobProgress
    error: JobError | None = Field(description="Why it failed, once failed.")


class JobResponse(_JobState):
    request: dict[str, Any] = Field(description="The train request as accepted, defaults filled in.")
    result: dict[str, Any] | None = Field(description="What a synchronous POST /train answers, once succeeded.")


class JobSummary(_JobState):
    model_name: str | None = Field(description="The request's filename_model.")
    model_version: str | None = Field(description="The version it trained, once succeeded.")


class JobList(ResponseModel):
    jobs: list[JobSummary] = Field(description="Newest first.")
    next_token: str | None = Field(description="Pass as next_token for the next (older) page; null on the last.")


def prefers_async(event: Mapping[str, Any]) -> bool:
    """Whether a `Prefer` header asks for respond-async (RFC 7240: comma-separated, parameters after ';')."""
    for value in header_values(event, "prefer"):
        for preference in value.split(","):
            token = preference.split(";", 1)[0].split("=", 1)[0].strip().lower()
            if token == ASYNC_PREFERENCE:
                return True
    return False


def status_url(event: Mapping[str, Any], job_id: str) -> str:
    """The absolute URL of the job's status, as the client reached this API (stage or base path included)."""
    path = f"{JOBS_PATH}/{job_id}"
    hosts = header_values(event, "host")
    if not hosts:
        return path  # a direct invocation: no URL was involved
    proto = (header_values(event, "x-forwarded-proto") or ["http"])[0]
    request_path = str(event.get("path") or "")
    full_path = str((event.get("requestContext") or {}).get("path") or "")
    base = full_path[: -len(request_path)] if request_path and full_path.endswith(request_path) else ""
    return f"{proto}://{hosts[0]}{base}{path}"


def accepted(job_id: str) -> Answered:
    """The 202 answer to a queued train request: the job id, and where to read its status."""
    event = current_event.get()
    url = status_url(event, job_id)
    headers = {"Location": url}
    if prefers_async(event):
        headers["Preference-Applied"] = ASYNC_PREFERENCE
    return Answered(HTTPStatus.ACCEPTED, JobAccepted(job_id=job_id, status_url=url), headers)


def _state(job: Job) -> dict[str, Any]:
    return {name: getattr(job, name) for name in _JobState.model_fields}


def job_response(job: Job, now: datetime) -> JobResponse:
    """The job as GET /train/jobs/{job_id} shows it: past its deadline, an unfinished job reads failed."""
    seen = job.as_seen(now)
    return JobResponse(**_state(seen), request=seen.request, result=seen.result)


def job_summary(job: Job, now: datetime) -> JobSummary:
    seen = job.as_seen(now)
    model_version = (seen.result or {}).get("model_version")
    return JobSummary(**_state(seen), model_name=seen.request.get("filename_model"), model_version=model_version)


def register_job_routes(app: ServiceApp, jobs: JobStore) -> None:
    """GET /train/jobs/{job_id} and GET /train/jobs on this app (read-only: they never write a record)."""

    @app.get(
        f"{JOBS_PATH}/<job_id>",
        summary="A training job's status, progress and outcome",
        responses=route_responses(JobResponse, "The job; result once succeeded, error once failed", 400, 404, 503),
    )
    def get_job(job_id: str) -> JobResponse:
        return job_response(jobs.get(job_id), jobs.clock())

    @app.get(
        JOBS_PATH,
        summary="The most recent training jobs, newest first",
        responses=route_responses(JobList, "A page of jobs, newest first", 400, 503),
    )
    def list_jobs(
        limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT, description="Jobs per page.")] = DEFAULT_LIST_LIMIT,
        next_token: Annotated[str | None, Query(max_length=64, description="From the previous page.")] = None,
    ) -> JobList:
        if next_token is not None and not JOB_ID_PATTERN.match(next_token):
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "invalid_request",
                "next_token is not a token this API gave: pass back the next_token of a previous page",
            )
        found, token = jobs.list(limit, next_token)
        now = jobs.clock()
        return JobList(jobs=[job_summary(job, now) for job in found], next_token=token)
