"""The local server's job worker: runs queued training jobs on a background thread, one at a time.

It is the local stand-in for Lambda's SQS event source mapping: it hands each job to the train function's own
lambda_handler as the SQS event Lambda would send, so a job runs exactly as on AWS (the same budget, the same
runner), fed from the in-process queue instead of SQS. Job records live in the directory store, so a job
queued when the server stopped is still `queued` there; the worker queues such jobs again when it starts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from deployment_model.api.service import logger
from deployment_model.storage.jobs import JobStore
from deployment_model.train.job_queue import InProcessJobQueue, sqs_event

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


class LocalWorker:
    """Drains an in-process job queue into the train handler. `run_next` handles one job in the caller's thread."""

    def __init__(
        self, queue: InProcessJobQueue, handler: Handler, jobs: JobStore, context: Callable[[], LambdaContext]
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.jobs = jobs
        self.context = context
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def resume(self) -> int:
        """Queue again every job the store still has unfinished (oldest first); returns how many."""
        count = 0
        for job in self.jobs.unfinished():
            self.queue.send(job.job_id)
            count += 1
        return count

    def run_next(self, timeout: float | None = 0) -> bool:
        """Handle the next queued job, waiting up to timeout seconds for one; False if there was none.

        A job that fails is recorded failed by the runner (locally there is no redelivery)."""
        job_id = self.queue.receive(timeout)
        if job_id is None:
            return False
        try:
            if job_id:
                self.handler(sqs_event(job_id), self.context())
            return bool(job_id)
        finally:
            self.queue.done()

    def start(self) -> LocalWorker:
        resumed = self.resume()
        if resumed:
            logger.info("queued jobs resumed", extra={"jobs": resumed})
        self._thread = threading.Thread(target=self._loop, name="local-job-worker", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.run_next(timeout=None)

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop taking jobs; the rest stay queued in the store for next time. Waits up to timeout seconds for
        the job running now: one the process cuts off when it exits reads failed once its deadline passes."""
        self._stopping.set()
        self.queue.wake()
        if self._thread is not None:
            self._thread.join(timeout)


def start_worker(train_module: ModuleType, context: Callable[[], LambdaContext]) -> LocalWorker | None:
    """The worker for the train function's in-process queue (None when it sends jobs to SQS instead)."""
    if not isinstance(train_module.job_queue, InProcessJobQueue):
        return None
    return LocalWorker(train_module.job_queue, train_module.lambda_handler, train_module.jobs, context).start()
