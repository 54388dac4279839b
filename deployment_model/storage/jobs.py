"""Training job records: one JSON object per job under `jobs/`, in the same bucket (or folder) as the models.

    jobs/<job_id>.json     {"job_id", "status", "submitted_at", ..., "deadline"}

A job id is `<13 digits>-<32 hex>`: the digits count down with the submission time (so S3's ascending listing
gives the newest job first) and the hex is 128 random bits (so an id cannot be guessed).

Every change of state is a conditional write on the tag last read (S3's If-Match / If-None-Match, or the
directory store's lock), so two workers delivered the same job cannot both claim it. The states:

    queued --claim--> running --finish--> succeeded | failed
    queued, or failed before it ever started (undeliverable) --claim--> running   (a redrive may run it)

A record carries a deadline. Once it has passed, a `running` job (its worker was killed: Lambda timeout or
out of memory) and a `queued` job (its message expired or was dead-lettered) read `failed`: nothing stays
`running` or `queued` forever, even when nobody is left to write the record.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson

from deployment_model.storage.objects import (
    ObjectNotFoundError,
    ObjectStore,
    PreconditionFailedError,
    StoreError,
    read_in_parallel,
    read_or_not_found,
)

JOBS_PREFIX = "jobs/"
JOB_ID_PATTERN = re.compile(r"^\d{13}-[0-9a-f]{32}$")
_LAST_MILLISECOND = 9_999_999_999_999  # the year 2286: 13 digits keep the ids' order lexicographic

Status = Literal["queued", "running", "succeeded", "failed"]
Clock = Callable[[], datetime]

# Error codes a job can end with besides those of the train route (invalid_training_request, ...).
TIMED_OUT = "job_timed_out"
EXPIRED = "job_expired"
UNDELIVERABLE = "job_undeliverable"


class JobNotFoundError(StoreError):
    """No job has this id (or the id is not one this service could have made)."""


def new_job_id(now: datetime) -> str:
    countdown = _LAST_MILLISECOND - int(now.timestamp() * 1000)
    return f"{countdown:013d}-{secrets.token_hex(16)}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@dataclass(frozen=True)
class Job:
    """A job record as stored. `as_seen(now)` is what clients are shown."""

    job_id: str
    status: Status
    submitted_at: str
    request: dict[str, Any]
    progress: dict[str, int]
    started_at: str | None = None
    finished_at: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    deadline: str | None = None  # ISO time after which a queued or running job reads failed
    attempts: int = 0  # how many times a worker claimed it (more than one only after a redrive)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # unknown fields, kept as written

    @classmethod
    def from_json(cls, data: bytes) -> Job:
        raw = orjson.loads(data)
        known = {name for name in cls.__dataclass_fields__ if name != "extra"}
        extra = {k: v for k, v in raw.items() if k not in known}
        return cls(**{k: v for k, v in raw.items() if k in known}, extra=extra)

    def to_json(self) -> bytes:
        fields = asdict(self)
        return orjson.dumps({**fields.pop("extra"), **fields}, option=orjson.OPT_SORT_KEYS)

    @property
    def deadline_at(self) -> datetime | None:
        return None if self.deadline is None else datetime.fromisoformat(self.deadline)

    def overdue(self, now: datetime) -> bool:
        deadline = self.deadline_at
        return self.status in ("queued", "running") and deadline is not None and now > deadline

    def claimable(self) -> bool:
        """Never started: queued, or failed without ever running (a dead-lettered job an operator redrives)."""
        return self.status == "queued" or (self.status == "failed" and self.started_at is None)

    def as_seen(self, now: datetime) -> Job:
        """The job as a client should see it: past its deadline, an unfinished job has failed."""
        if not self.overdue(now):
            return self
        if self.status == "running":
            error = {
                "error": TIMED_OUT,
                "message": (
                    f"the training stopped without recording a result by its deadline {self.deadline}: its "
                    "worker timed out or ran out of memory (or could not reach storage to record the outcome); "
                    "retry with a smaller grid or data, or more memory"
                ),
            }
        else:
            error = {
                "error": EXPIRED,
                "message": (
                    f"the job was not started by {self.deadline}: its queue message expired or went to the "
                    "dead-letter queue; submit it again"
                ),
            }
        return replace(self, status="failed", finished_at=self.deadline, error=error)


@dataclass(frozen=True)
class Claim:
    """A job this worker holds: the record it last wrote and that write's tag (for the next If-Match)."""

    job: Job
    tag: str


class JobStore:
    """Job records on an ObjectStore: create, claim, progress, finish, read, list."""

    def __init__(self, objects: ObjectStore, clock: Clock = _utc_now) -> None:
        self.objects = objects
        self.clock = clock

    @staticmethod
    def key(job_id: str) -> str:
        return f"{JOBS_PREFIX}{job_id}.json"

    def create(self, request: dict[str, Any], candidates_total: int, max_wait: timedelta | None) -> Job:
        """Record a new queued job; max_wait: how long its queue message can live (None: for ever)."""
        now = self.clock()
        job = Job(
            job_id=new_job_id(now),
            status="queued",
            submitted_at=now.isoformat(),
            request=request,
            progress={"candidates_done": 0, "candidates_total": candidates_total},
            deadline=_iso(None if max_wait is None else now + max_wait),
        )
        self.objects.put(self.key(job.job_id), job.to_json(), if_none_match=True)
        return job

    def get(self, job_id: str) -> Job:
        """The stored record (not adjusted for its deadline: see `Job.as_seen`)."""
        return self._read(job_id)[0]

    def _get_or_none(self, job_id: str) -> Job | None:
        try:
            return self.get(job_id)
        except JobNotFoundError:  # deleted between the listing and the read
            return None

    def _read(self, job_id: str) -> tuple[Job, str]:
        if not JOB_ID_PATTERN.match(job_id):
            raise JobNotFoundError(f"no job {job_id!r}: a job id looks like 0123456789012-<32 hex digits>")
        try:
            data, tag = read_or_not_found(self.objects, self.objects.get_tagged, self.key(job_id))
        except ObjectNotFoundError:
            raise JobNotFoundError(f"no job {job_id!r}") from None
        return Job.from_json(data), tag

    def delete(self, job_id: str) -> None:
        """Forget a job that was never announced (its message could not be sent)."""
        self.objects.delete(self.key(job_id))

    def claim(self, job_id: str, deadline: datetime) -> Claim | Job:
        """Take a job to run it: a Claim if this caller won it, else the job as it stands (not to be run).

        A running job past its deadline is recorded failed on the way (its worker is gone).
        """
        job, tag = self._read(job_id)
        now = self.clock()
        if not job.claimable():
            if job.status == "running" and job.overdue(now):
                seen = job.as_seen(now)
                self._write_if(seen, tag)
                return seen
            return job
        running = replace(
            job,
            status="running",
            started_at=now.isoformat(),
            finished_at=None,
            error=None,
            deadline=deadline.isoformat(),
            attempts=job.attempts + 1,
        )
        try:
            new_tag = self.objects.put(self.key(job_id), running.to_json(), if_match=tag)
        except PreconditionFailedError:  # another delivery claimed it first
            return self.get(job_id)
        return Claim(running, new_tag)

    def reclaim(self, claim: Claim) -> Claim | None:
        """The claim with the record's current tag, if the record is still this claim's run (a write whose
        answer was lost may have landed); None if someone else has moved the job on."""
        job, tag = self._read(claim.job.job_id)
        same_run = job.status == "running" and (job.started_at, job.attempts) == (
            claim.job.started_at,
            claim.job.attempts,
        )
        return Claim(job, tag) if same_run else None

    def progress(self, claim: Claim, candidates_done: int, candidates_total: int) -> Claim:
        progress = {"candidates_done": candidates_done, "candidates_total": candidates_total}
        return self._update(claim, replace(claim.job, progress=progress))

    def succeed(self, claim: Claim, result: dict[str, Any]) -> Claim:
        total = claim.job.progress.get("candidates_total", 0)
        done = replace(
            claim.job,
            status="succeeded",
            finished_at=self.clock().isoformat(),
            result=result,
            progress={"candidates_done": total, "candidates_total": total},
        )
        return self._update(claim, done)

    def fail(self, claim: Claim, code: str, message: str) -> Claim:
        failed = replace(
            claim.job, status="failed", finished_at=self.clock().isoformat(), error={"error": code, "message": message}
        )
        return self._update(claim, failed)

    def fail_undelivered(self, job_id: str, message: str) -> None:
        """Record that a job's message is being given up on before it ever ran (it goes to the DLQ)."""
        job, tag = self._read(job_id)
        if job.claimable():
            failed = replace(
                job,
                status="failed",
                finished_at=self.clock().isoformat(),
                error={"error": UNDELIVERABLE, "message": message},
            )
            self._write_if(failed, tag)

    def _update(self, claim: Claim, job: Job) -> Claim:
        return Claim(job, self.objects.put(self.key(job.job_id), job.to_json(), if_match=claim.tag))

    def _write_if(self, job: Job, tag: str) -> None:
        with contextlib.suppress(PreconditionFailedError):  # someone else moved it on first: theirs stands
            self.objects.put(self.key(job.job_id), job.to_json(), if_match=tag)

    def list(self, limit: int, after: str | None = None) -> tuple[list[Job], str | None]:
        """Newest first: at most `limit` jobs submitted before job `after`, and the token of the next page."""
        if after is not None and not JOB_ID_PATTERN.match(after):
            raise ValueError("next_token is not a token this service gave: pass back the next_token of a listing")
        start_after = self.key(after) if after else None
        listing = self.objects.list_objects(JOBS_PREFIX, start_after=start_after, limit=limit, delimiter="/")
        ids = [key[len(JOBS_PREFIX) :].removesuffix(".json") for key in listing.keys]
        found = read_in_parallel(self._get_or_none, [job_id for job_id in ids if JOB_ID_PATTERN.match(job_id)])
        jobs = [job for job in found if job is not None]
        next_token = None
        if listing.next_start_after is not None and listing.keys:
            next_token = listing.keys[-1][len(JOBS_PREFIX) :].removesuffix(".json")
        return jobs, next_token

    def unfinished(self) -> Iterator[Job]:
        """Every queued or running job, oldest first (a local worker resumes them when it starts)."""
        pending: list[Job] = []
        after = None
        while True:
            jobs, after = self.list(1000, after)
            pending += [job for job in jobs if job.status in ("queued", "running")]
            if after is None:
                break
        yield from reversed(pending)
