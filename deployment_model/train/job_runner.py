"""Runs queued training jobs: claim the record, train, record the outcome. One code path for every queue:
the SQS event source on AWS (`sqs_handler`), the local server's worker thread (local/worker.py).

Delivery is at least once, so a job is claimed with a conditional write first: of two deliveries of one job,
one wins the claim and trains; the other (or any later one, of a running or finished job) is acknowledged and
dropped. A job is never run a second time once it has started.

What can go wrong, and what the client then reads:
- the training fails (bad CSV content, a grid that cannot fit, S3 down while training): the job ends `failed`
  with the same error code and message a synchronous POST /train would have answered;
- the worker is killed (timeout, out of memory): the record's deadline passes and the job reads `failed`;
- the record cannot be read or written (S3 down): the message is retried by the queue; on its last allowed
  delivery the job is recorded `failed` if the record can be written, and the message goes to the
  dead-letter queue (if even that write fails, the queued job's own deadline makes it read `failed`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, Literal

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from deployment_model.api.service import answer_for, logger, validation_answer
from deployment_model.storage.jobs import Claim, JobNotFoundError, JobStore
from deployment_model.storage.objects import PreconditionFailedError, StoreError
from deployment_model.train.job_queue import job_id_of

ProgressCallback = Callable[[int, int], None]  # (candidates done, candidates in all)
Execute = Callable[[dict[str, Any], ProgressCallback], dict[str, Any]]  # stored request -> train response
Outcome = Literal["succeeded", "failed", "dropped"]

# After the function's own timeout, how long to wait before calling a running job dead.
DEADLINE_GRACE = timedelta(seconds=60)


class JobRunner:
    """Runs one delivered job to its end, or drops a delivery that must not run."""

    def __init__(self, jobs: JobStore, execute: Execute, max_receive_count: int) -> None:
        self.jobs = jobs
        self.execute = execute
        self.max_receive_count = max_receive_count

    def process(self, job_id: str, context: LambdaContext, receive_count: int = 1) -> Outcome:
        """Run the job if this delivery claims it. Raises when the record cannot be read or written: the
        queue then delivers the message again (on the last delivery, the job is first recorded failed)."""
        try:
            return self._process(job_id, context)
        except Exception as exc:
            logger.exception("job delivery failed", extra={"job_id": job_id, "receive_count": receive_count})
            if receive_count >= self.max_receive_count:
                self._give_up(job_id, receive_count, exc)
            raise

    def _process(self, job_id: str, context: LambdaContext) -> Outcome:
        remaining = timedelta(milliseconds=context.get_remaining_time_in_millis())
        try:
            claimed = self.jobs.claim(job_id, deadline=self.jobs.clock() + remaining + DEADLINE_GRACE)
        except JobNotFoundError:
            logger.warning("message for an unknown job dropped", extra={"job_id": job_id})
            return "dropped"
        if not isinstance(claimed, Claim):
            logger.info("delivery dropped: the job is not queued", extra={"job_id": job_id, "status": claimed.status})
            return "dropped"
        logger.info("job started", extra={"job_id": job_id, "attempt": claimed.job.attempts})
        holder = [claimed]

        def on_candidate_done(done: int, total: int) -> None:
            try:
                holder[0] = self.jobs.progress(holder[0], done, total)
            except StoreError as exc:  # progress is for people watching; the training goes on
                logger.warning("job progress not recorded", extra={"job_id": job_id, "reason": str(exc)})

        try:
            result = self.execute(claimed.job.request, on_candidate_done)
        except Exception as exc:
            code, message = describe_failure(exc, context.aws_request_id)
            logger.info("job failed", extra={"job_id": job_id, "error": code})
            return self._record(holder[0], lambda held: self.jobs.fail(held, code, message), "failed")
        logger.info("job succeeded", extra={"job_id": job_id, "model_version": result.get("model_version")})
        return self._record(holder[0], lambda held: self.jobs.succeed(held, result), "succeeded")

    def _record(self, held: Claim, write: Callable[[Claim], Claim], outcome: Outcome) -> Outcome:
        """Write the outcome. If the record's tag moved (a progress write whose answer was lost), but it is
        still this run, write on the current tag; if someone else moved the job on, theirs stands."""
        try:
            write(held)
        except PreconditionFailedError:
            current = self.jobs.reclaim(held)
            if current is None:
                logger.warning("job outcome not recorded: the job was moved on meanwhile")
                return outcome
            write(replace(held, tag=current.tag))
        return outcome

    def _give_up(self, job_id: str, receive_count: int, exc: Exception) -> None:
        message = (
            f"gave up after {receive_count} deliveries (the last failed with: {exc}); "
            "the message is in the dead-letter queue"
        )
        logger.error("job message dead-lettered", extra={"job_id": job_id, "reason": str(exc)})
        try:
            self.jobs.fail_undelivered(job_id, message)
        except Exception as write_error:  # storage still down: the queued job's deadline makes it read failed
            logger.error("dead-lettered job not recorded", extra={"job_id": job_id, "reason": str(write_error)})


def describe_failure(exc: Exception, request_id: str) -> tuple[str, str]:
    """The error code and message a synchronous POST /train would have answered for this exception."""
    if isinstance(exc, ValidationError):
        _, body, _ = validation_answer(exc.errors(include_url=False, include_input=False))
    else:
        _, body, _ = answer_for(exc, request_id)
    return str(body["error"]), str(body["message"])


def sqs_handler(runner: JobRunner) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The answer to an SQS event source mapping's event: each record a job, failures reported per record."""
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        def record_handler(record: SQSRecord) -> Outcome:
            receive_count = int(record.attributes.approximate_receive_count or 1)
            return runner.process(job_id_of(record.body), context, receive_count)

        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return handle
