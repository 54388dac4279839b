"""Where queued training jobs wait: SQS on AWS, an in-process queue locally. One interface, two adapters.

A message carries only the job id; the request itself lives in the job record (storage/jobs.py), so a message
stays tiny whatever the request holds, and a worker always reads the request the service accepted.
"""

from __future__ import annotations

import hashlib
import os
import queue
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Protocol

import boto3
import orjson
from botocore.exceptions import BotoCoreError, ClientError

from deployment_model.storage.aws_calls import FailureKind, classify, client_config
from deployment_model.storage.jobs import Job, JobStore
from deployment_model.storage.objects import StoreAccessError, StoreUnavailableError


class QueueUnavailableError(StoreUnavailableError):
    """The job queue could not be reached: worth retrying later."""


class QueueAccessError(StoreAccessError):
    """The job queue refused the request (permissions, missing queue): a deployment problem."""


class InvalidMessageError(ValueError):
    """A message that is not a job message of this service."""


def message_body(job_id: str) -> str:
    return orjson.dumps({"job_id": job_id}).decode()


def job_id_of(body: str) -> str:
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidMessageError("the message body is not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("job_id"), str):
        raise InvalidMessageError('the message body is not {"job_id": "..."}')
    return message["job_id"]


def sqs_event(job_id: str, receive_count: int = 1) -> dict[str, Any]:
    """The event Lambda's SQS event source sends for one job message (for a worker that is not Lambda's)."""
    body = message_body(job_id)
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "local",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": str(int(time.time() * 1000)),
                    "SenderId": "local",
                    "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:local:000000000000:TrainingJobsQueue",
                "awsRegion": "local",
            }
        ]
    }


class JobQueue(Protocol):
    """The send side, which the train route uses; the receive side differs (Lambda's event source, a thread)."""

    max_wait: timedelta | None  # how long a message can wait before the queue drops it; None: for ever
    max_receive_count: int  # deliveries before the message goes to the dead-letter queue

    def send(self, job_id: str) -> None: ...


class SqsJobQueue:
    """The stack's SQS queue; Lambda's event source mapping delivers its messages to the train function."""

    def __init__(self, url: str, max_wait: timedelta | None, max_receive_count: int, client: Any = None) -> None:
        self.url = url
        self.max_wait = max_wait
        self.max_receive_count = max_receive_count
        self._client = client or boto3.session.Session().client("sqs", config=client_config())

    def send(self, job_id: str) -> None:
        """Errors are read as the S3 store reads them (storage/aws_calls.py); a missing queue is refused too."""
        try:
            self._client.send_message(QueueUrl=self.url, MessageBody=message_body(job_id))
        except (ClientError, BotoCoreError) as exc:
            failure = classify(exc)
            if failure.kind is FailureKind.UNAVAILABLE:
                raise QueueUnavailableError(f"the training job queue {failure.happened}") from None
            raise QueueAccessError(f"the training job queue refused the job: {failure.reason}") from None


class InProcessJobQueue:
    """Jobs for a worker thread in the same process (the local server). Nothing is lost when the process
    stops: the records say which jobs are still queued, and the worker queues them again when it starts."""

    max_wait = None
    max_receive_count = 1  # no redelivery: a job that cannot be run is recorded failed at once

    def __init__(self) -> None:
        self._queue: queue.Queue[str] = queue.Queue()

    def send(self, job_id: str) -> None:
        self._queue.put(job_id)

    def receive(self, timeout: float | None = None) -> str | None:
        """The next job id, waiting up to timeout seconds (None: until one comes); None if none came,
        "" if woken (both "" and a job id must be acknowledged with `done`)."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def done(self) -> None:
        """The job last received has been handled (run, dropped or failed)."""
        self._queue.task_done()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every job sent has been handled; False if timeout seconds passed first."""
        with self._queue.all_tasks_done:
            return self._queue.all_tasks_done.wait_for(lambda: self._queue.unfinished_tasks == 0, timeout)

    def wake(self) -> None:
        """Let a waiting receive return "" at once (a worker that is stopping)."""
        self._queue.put("")


def queue_from_environment(environ: Mapping[str, str] | None = None) -> SqsJobQueue | InProcessJobQueue:
    """TRAINING_JOBS_QUEUE_URL names the stack's SQS queue; without it, jobs run in this process."""
    environ = os.environ if environ is None else environ
    url = environ.get("TRAINING_JOBS_QUEUE_URL")
    if not url:
        return InProcessJobQueue()
    retention = environ.get("TRAINING_JOBS_QUEUE_RETENTION_SECONDS")
    return SqsJobQueue(
        url,
        max_wait=timedelta(seconds=int(retention)) if retention else None,
        max_receive_count=int(environ.get("TRAINING_JOBS_MAX_RECEIVE_COUNT") or 1),
    )


def submit(jobs: JobStore, queue: JobQueue, request: dict[str, Any], candidates_total: int) -> Job:
    """Record the job, then queue it. A job whose message cannot be sent is removed (the client gets the error):
    the record comes first, so a worker never receives a job it cannot read."""
    job = jobs.create(request, candidates_total, max_wait=queue.max_wait)
    try:
        queue.send(job.job_id)
    except Exception:
        jobs.delete(job.job_id)
        raise
    return job
