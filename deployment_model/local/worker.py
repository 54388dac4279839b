"""The local server's job worker: runs queued training jobs on a background thread, one at a time.

It is the local stand-in for the SQS event source mapping: the same JobRunner as the train function's SQS
handler, fed from the in-process queue instead of SQS. Job records live in the directory store, so a job
queued when the server stopped is still `queued` there; the worker queues such jobs again when it starts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import ModuleType

from aws_lambda_powertools.utilities.typing import LambdaContext

from deployment_model.api.service import logger
from deployment_model.storage.jobs import JobStore
from deployment_model.train.job_queue import InProcessJobQueue
from deployment_model.train.job_runner import JobRunner, Outcome


class LocalWorker:
    """Drains an in-process job queue with a JobRunner. `run_next` handles one job in the caller's thread."""

    def __init__(
        self, queue: InProcessJobQueue, runner: JobRunner, jobs: JobStore, context: Callable[[], LambdaContext]
    ) -> None:
        self.queue = queue
        self.runner = runner
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

    def run_next(self, timeout: float | None = 0) -> Outcome | None:
        """Handle the next queued job, waiting up to timeout seconds for one; None if there was none."""
        job_id = self.queue.receive(timeout)
        if job_id is None:
            return None
        try:
            return self.runner.process(job_id, self.context()) if job_id else None
        except Exception:  # already logged and recorded by the runner; the worker carries on
            return None
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
    return LocalWorker(train_module.job_queue, train_module.job_runner, train_module.jobs, context).start()
