"""The job record contract, passed by both backends (S3 through moto, and a local directory)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from deployment_model.storage.jobs import (
    EXPIRED,
    JOB_ID_PATTERN,
    TIMED_OUT,
    UNDELIVERABLE,
    Claim,
    Job,
    JobNotFoundError,
    JobStore,
    new_job_id,
)
from deployment_model.storage.objects import ObjectStore
from tests.unit.test_store import ForbidsMissingKeys

BUCKET = "jobs-contract"
REQUEST = {"filename_model": "m", "candidates": ["knn"]}


class Clock:
    """A clock a test moves by hand: deadlines pass without sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def jobs(objects: ObjectStore, clock: Clock) -> JobStore:
    return JobStore(objects, clock=clock)


def claim(jobs: JobStore, job_id: str, minutes: float = 16) -> Claim:
    claimed = jobs.claim(job_id, deadline=jobs.clock() + timedelta(minutes=minutes))
    assert isinstance(claimed, Claim)
    return claimed


def test_a_job_is_created_queued_under_jobs_with_an_unguessable_id(jobs: JobStore, objects: ObjectStore) -> None:
    job = jobs.create(REQUEST, candidates_total=1, max_wait=None)
    other = jobs.create(REQUEST, candidates_total=1, max_wait=None)
    assert JOB_ID_PATTERN.match(job.job_id)
    random_part = job.job_id.split("-")[1]
    assert len(random_part) * 4 >= 128 and random_part != other.job_id.split("-")[1]
    assert objects.list_objects("jobs/").keys == sorted([f"jobs/{job.job_id}.json", f"jobs/{other.job_id}.json"])
    stored = jobs.get(job.job_id)
    assert stored.status == "queued" and stored.request == REQUEST
    assert stored.progress == {"candidates_done": 0, "candidates_total": 1}
    assert stored.started_at is None and stored.result is None and stored.error is None


@pytest.mark.parametrize("job_id", ["nope", "../models/x/latest", "8204349264432-" + "0" * 32])
def test_an_unknown_or_malformed_id_is_not_found(jobs: JobStore, job_id: str) -> None:
    with pytest.raises(JobNotFoundError):
        jobs.get(job_id)


def test_a_job_runs_through_its_states(jobs: JobStore, clock: Clock) -> None:
    job = jobs.create(REQUEST, candidates_total=2, max_wait=None)
    clock.advance(seconds=5)
    held = claim(jobs, job.job_id)
    assert held.job.status == "running" and held.job.started_at == clock.now.isoformat()
    held = jobs.progress(held, 1, 2)
    assert jobs.get(job.job_id).progress == {"candidates_done": 1, "candidates_total": 2}
    clock.advance(seconds=5)
    jobs.succeed(held, {"model_version": "v"})
    done = jobs.get(job.job_id)
    assert done.status == "succeeded" and done.result == {"model_version": "v"}
    assert done.finished_at == clock.now.isoformat() and done.progress["candidates_done"] == 2


def test_a_job_is_claimed_once_whoever_asks_again(jobs: JobStore) -> None:
    job = jobs.create(REQUEST, candidates_total=1, max_wait=None)
    held = claim(jobs, job.job_id)
    again = jobs.claim(job.job_id, deadline=jobs.clock() + timedelta(minutes=16))
    assert isinstance(again, Job) and again.status == "running"  # a second delivery of a running job
    jobs.fail(held, "invalid_training_request", "bad")
    after = jobs.claim(job.job_id, deadline=jobs.clock() + timedelta(minutes=16))
    assert isinstance(after, Job) and after.status == "failed"  # and of a finished one
    assert jobs.get(job.job_id).attempts == 1


def test_concurrent_claims_of_one_job_have_one_winner(jobs: JobStore) -> None:
    job = jobs.create(REQUEST, candidates_total=1, max_wait=None)
    racers = 8
    start = threading.Barrier(racers)
    outcomes: list[Claim | Job] = []
    lock = threading.Lock()

    def race() -> None:
        start.wait()
        outcome = jobs.claim(job.job_id, deadline=jobs.clock() + timedelta(minutes=16))
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(isinstance(o, Claim) for o in outcomes) == 1
    assert jobs.get(job.job_id).attempts == 1


def test_a_running_job_past_its_deadline_reads_failed_timed_out(jobs: JobStore, clock: Clock) -> None:
    job = jobs.create(REQUEST, candidates_total=1, max_wait=None)
    claim(jobs, job.job_id, minutes=16)
    clock.advance(minutes=15)
    assert jobs.get(job.job_id).as_seen(clock.now).status == "running"
    clock.advance(minutes=2)
    seen = jobs.get(job.job_id).as_seen(clock.now)
    assert seen.status == "failed" and seen.error is not None and seen.error["error"] == TIMED_OUT
    assert "timed out or ran out of memory" in seen.error["message"]
    # A redelivery of it is dropped, and records what readers were already told.
    dropped = jobs.claim(job.job_id, deadline=clock.now + timedelta(minutes=16))
    assert isinstance(dropped, Job) and jobs.get(job.job_id).status == "failed"
    assert jobs.get(job.job_id).error == seen.error


def test_a_queued_job_whose_message_cannot_be_alive_reads_failed(jobs: JobStore, clock: Clock) -> None:
    job = jobs.create(REQUEST, candidates_total=1, max_wait=timedelta(days=4))
    clock.advance(days=3)
    assert jobs.get(job.job_id).as_seen(clock.now).status == "queued"
    clock.advance(days=2)
    seen = jobs.get(job.job_id).as_seen(clock.now)
    assert seen.status == "failed" and seen.error is not None and seen.error["error"] == EXPIRED
    assert "dead-letter queue" in seen.error["message"]


def test_an_undeliverable_job_is_failed_and_a_redrive_may_still_run_it_once(jobs: JobStore) -> None:
    job = jobs.create(REQUEST, candidates_total=1, max_wait=None)
    jobs.fail_undelivered(job.job_id, "gave up after 5 deliveries")
    failed = jobs.get(job.job_id)
    assert failed.status == "failed"
    assert failed.error == {"error": UNDELIVERABLE, "message": "gave up after 5 deliveries"}
    held = claim(jobs, job.job_id)  # it never started: an operator's redrive runs it
    jobs.succeed(held, {})
    jobs.fail_undelivered(job.job_id, "late")  # a job that ran is never marked undeliverable
    assert jobs.get(job.job_id).status == "succeeded"


def test_listing_is_newest_first_in_pages(jobs: JobStore, clock: Clock) -> None:
    created = []
    for _ in range(7):
        created.append(jobs.create(REQUEST, candidates_total=1, max_wait=None).job_id)
        clock.advance(seconds=1)
    seen: list[str] = []
    token = None
    for _ in range(10):
        page, token = jobs.list(3, token)
        assert len(page) <= 3
        seen += [job.job_id for job in page]
        if token is None:
            break
    assert seen == created[::-1]
    with pytest.raises(ValueError, match="next_token"):
        jobs.list(3, "../models/")


def test_unfinished_jobs_are_found_oldest_first(jobs: JobStore, clock: Clock) -> None:
    first = jobs.create(REQUEST, candidates_total=1, max_wait=None)
    clock.advance(seconds=1)
    finished = jobs.create(REQUEST, candidates_total=1, max_wait=None)
    jobs.succeed(claim(jobs, finished.job_id), {})
    clock.advance(seconds=1)
    last = jobs.create(REQUEST, candidates_total=1, max_wait=None)
    assert [job.job_id for job in jobs.unfinished()] == [first.job_id, last.job_id]


def test_a_record_keeps_fields_it_does_not_know(jobs: JobStore, objects: ObjectStore) -> None:
    job = jobs.create(REQUEST, candidates_total=1, max_wait=None)
    key = jobs.key(job.job_id)
    objects.put(key, objects.get(key)[:-1] + b',"added_later":1}')
    jobs.succeed(claim(jobs, job.job_id), {})
    assert b'"added_later":1' in objects.get(key)


def test_an_unknown_job_is_not_found_even_where_s3_answers_403(objects: ObjectStore) -> None:
    """The inference role may not list the bucket unconditionally: S3 answers a read of a missing key 403, which
    must still be a 404 job_not_found (as for models), not a 502 about permissions."""
    forbidding = JobStore(ForbidsMissingKeys(objects))
    with pytest.raises(JobNotFoundError, match="no job"):
        forbidding.get(new_job_id(datetime(2026, 1, 1, tzinfo=UTC)))
    job = JobStore(objects).create({"filename_model": "m"}, candidates_total=1, max_wait=None)
    assert forbidding.get(job.job_id).job_id == job.job_id
