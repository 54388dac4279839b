"""Queued training jobs on AWS: POST /train sends to SQS (moto), the train handler consumes SQS events.

Each delivery is the event Lambda's SQS event source sends (the shape of `sam local generate-event sqs
receive-message`, events/sqs_training_job.json), built from the message moto's SQS actually hands out, and
acknowledged as Lambda does: deleted unless the handler reports it in batchItemFailures. A failed message is
made visible again at once instead of after its visibility timeout, so nothing here sleeps.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from deployment_model.storage.objects import ObjectStore, StoreUnavailableError
from tests.conftest import SEED_BUCKET, Service, body_of, load_event, proxy_event, start_service

MAX_RECEIVE_COUNT = 2
RETENTION_SECONDS = 4 * 24 * 3600
FLOWERS = [(0.2, 1.4, "setosa"), (1.3, 4.0, "versicolor"), (2.1, 5.8, "virginica")] * 8


@dataclass
class Queues:
    client: Any
    url: str
    arn: str
    dlq_url: str


@pytest.fixture
def queues(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Queues:
    """The stack's queue and dead-letter queue, in moto (inside the s3 fixture's mock_aws)."""
    client = boto3.client("sqs", region_name="us-east-1")
    dlq_url = client.create_queue(QueueName="TrainingJobsDeadLetterQueue")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
    url = client.create_queue(QueueName="TrainingJobsQueue", Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    monkeypatch.setenv("TRAINING_JOBS_QUEUE_URL", url)
    monkeypatch.setenv("TRAINING_JOBS_MAX_RECEIVE_COUNT", str(MAX_RECEIVE_COUNT))
    monkeypatch.setenv("TRAINING_JOBS_QUEUE_RETENTION_SECONDS", str(RETENTION_SECONDS))
    return Queues(client, url, arn, dlq_url)


@pytest.fixture
def service(queues: Queues, monkeypatch: pytest.MonkeyPatch) -> Service:
    monkeypatch.setenv("MODEL_BUCKET", SEED_BUCKET)
    return start_service()


def submit(service: Service, body: dict[str, Any]) -> str:
    answer = service.train(proxy_event("/train", {**body, "async": True}))
    assert answer["statusCode"] == 202, answer["body"]
    return body_of(answer)["job_id"]


def receive(queues: Queues) -> dict[str, Any] | None:
    """One message as Lambda's poller receives it, or None if the queue has none visible."""
    answer = queues.client.receive_message(
        QueueUrl=queues.url, MaxNumberOfMessages=1, AttributeNames=["All"], MessageAttributeNames=["All"]
    )
    messages = answer.get("Messages", [])
    return messages[0] if messages else None


def sqs_event(queues: Queues, message: dict[str, Any]) -> dict[str, Any]:
    """The event source mapping's event for this message (events/sqs_training_job.json's shape)."""
    event = load_event("sqs_training_job.json")
    (record,) = event["Records"]
    attributes = message["Attributes"]
    record.update(
        messageId=message["MessageId"],
        receiptHandle=message["ReceiptHandle"],
        body=message["Body"],
        md5OfBody=message["MD5OfBody"],
        eventSourceARN=queues.arn,
        attributes={
            name: attributes[name]
            for name in ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")
        },
    )
    return event


def acknowledge(queues: Queues, message: dict[str, Any], answer: dict[str, Any]) -> bool:
    """What Lambda does with the handler's answer; True if the message was processed (deleted)."""
    failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
    if message["MessageId"] in failed:
        # Visible again now rather than after the visibility timeout.
        queues.client.change_message_visibility(
            QueueUrl=queues.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
        return False
    queues.client.delete_message(QueueUrl=queues.url, ReceiptHandle=message["ReceiptHandle"])
    return True


def deliver(service: Service, queues: Queues) -> tuple[dict[str, Any], bool]:
    message = receive(queues)
    assert message is not None, "no message in the queue"
    answer = service.train(sqs_event(queues, message))
    return answer, acknowledge(queues, message, answer)


def job(service: Service, job_id: str) -> dict[str, Any]:
    answer = service.predict(proxy_event(f"/train/jobs/{job_id}", method="GET"))
    assert answer["statusCode"] == 200, answer["body"]
    return body_of(answer)


def versions(s3: Any, model: str = "Model_ml") -> list[str]:
    listing = s3.list_objects_v2(Bucket=SEED_BUCKET, Prefix=f"models/{model}/versions/", Delimiter="/")
    return [p["Prefix"] for p in listing.get("CommonPrefixes", [])]


def put_csv(s3: Any, key: str, rows: list[tuple[Any, ...]], header: str = "petal_width,petal_length,species") -> None:
    text = header + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows)
    s3.put_object(Bucket=SEED_BUCKET, Key=key, Body=text.encode())


class Faulty:
    """An object store that fails some calls the way an unreachable S3 does, and passes the rest on."""

    def __init__(self, inner: ObjectStore, fails: Callable[[str, str], bool]) -> None:
        self.inner, self.fails, self.location = inner, fails, inner.location

    def __getattr__(self, method: str) -> Any:
        call = getattr(self.inner, method)
        if not callable(call):  # an attribute (tags_are_etags): passed on as it is
            return call

        def maybe_fail(key: str, *args: Any, **kwargs: Any) -> Any:
            if self.fails(method, key):
                raise StoreUnavailableError(f"{self.location} could not be reached: ConnectTimeoutError")
            return call(key, *args, **kwargs)

        return maybe_fail


# --- the happy path and its result -----------------------------------------------------------------------


def test_a_queued_job_is_delivered_by_sqs_and_trains_what_a_synchronous_call_would(
    service: Service, queues: Queues, s3: Any
) -> None:
    request = {"filename_model": "flowers", "data_key": "data/f.csv", "target_column": "species"}
    put_csv(s3, "data/f.csv", FLOWERS)
    job_id = submit(service, request)
    assert job(service, job_id)["status"] == "queued"
    answer, processed = deliver(service, queues)
    assert answer == {"batchItemFailures": []} and processed
    done = job(service, job_id)
    assert done["status"] == "succeeded" and done["error"] is None
    assert done["progress"] == {"candidates_done": 2, "candidates_total": 2}
    assert done["started_at"] <= done["finished_at"]
    synchronous = service.train(request)
    volatile = {"model_version", "duration_seconds", "statusCode"}
    assert {k: v for k, v in done["result"].items() if k not in volatile} == {
        k: v for k, v in synchronous.items() if k not in volatile
    }
    pinned = service.predict(
        {"filename_model": "flowers", "x_test": [2.1, 5.8], "model_version": done["result"]["model_version"]}
    )
    assert pinned["result"] == "virginica"


# --- nothing run twice -------------------------------------------------------------------------------------


def test_a_message_delivered_twice_trains_and_publishes_once(service: Service, queues: Queues, s3: Any) -> None:
    job_id = submit(service, {})
    message = receive(queues)
    assert message is not None
    event = sqs_event(queues, message)
    assert service.train(event) == {"batchItemFailures": []}
    assert service.train(copy.deepcopy(event)) == {"batchItemFailures": []}  # acknowledged, dropped
    assert len(versions(s3)) == 1
    assert job(service, job_id)["status"] == "succeeded"


def test_concurrent_deliveries_of_one_job_train_once(service: Service, queues: Queues, s3: Any) -> None:
    submit(service, {})
    message = receive(queues)
    assert message is not None
    event = sqs_event(queues, message)
    # Both deliveries read the queued record before either claims it: the conditional write decides.
    both_read = threading.Barrier(2, timeout=30)
    jobs = service.train_module.jobs
    inner = jobs.objects

    class ReadTogether:
        location = inner.location

        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

        def get_tagged(self, key: str) -> tuple[bytes, str]:
            found = inner.get_tagged(key)
            thread = threading.current_thread()
            if thread.name.startswith("delivery") and not getattr(thread, "has_read", False):
                thread.has_read = True  # type: ignore[attr-defined]
                both_read.wait()
            return found

    jobs.objects = ReadTogether()
    answers: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda: answers.append(service.train(copy.deepcopy(event))), name=f"delivery-{i}")
        for i in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [{"batchItemFailures": []}] * 2
    assert len(versions(s3)) == 1


# --- nothing lost ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "request_extra", "code", "named"),
    [
        ([(0.2, "wide", "setosa"), *FLOWERS], {}, "invalid_training_request", "not numeric: ['petal_length']"),
        ([(0.2, 1.4, "setosa")] * 12, {}, "invalid_training_request", "at least two classes; found ['setosa']"),
        (FLOWERS, {"candidates": {"knn": {"n_neighbors": [500]}}}, "invalid_training_request", "could not be fitted"),
    ],
    ids=["bad-csv-content", "one-class", "grid-that-cannot-fit"],
)
def test_a_job_that_cannot_train_ends_failed_naming_the_problem(
    service: Service, queues: Queues, s3: Any, rows: list[Any], request_extra: dict[str, Any], code: str, named: str
) -> None:
    put_csv(s3, "data/f.csv", rows)
    job_id = submit(service, {"data_key": "data/f.csv", "target_column": "species", **request_extra})
    answer, processed = deliver(service, queues)
    assert answer == {"batchItemFailures": []} and processed  # a failed job is an outcome, not a retry
    failed = job(service, job_id)
    assert failed["status"] == "failed" and failed["result"] is None
    assert failed["error"]["error"] == code and named in failed["error"]["message"]
    assert versions(s3) == []


def test_s3_down_while_training_ends_the_job_failed_naming_storage(service: Service, queues: Queues, s3: Any) -> None:
    put_csv(s3, "data/f.csv", FLOWERS)
    job_id = submit(service, {"data_key": "data/f.csv", "target_column": "species"})
    store = service.train_module.registry
    store.objects = Faulty(store.objects, lambda method, key: key == "data/f.csv")
    answer, _ = deliver(service, queues)
    assert answer == {"batchItemFailures": []}
    failed = job(service, job_id)
    assert failed["status"] == "failed"
    assert failed["error"] == {
        "error": "storage_unavailable",
        "message": "this service's bucket could not be reached: ConnectTimeoutError",
    }


def test_a_killed_worker_leaves_a_job_that_reads_failed_after_its_deadline(
    service: Service, queues: Queues, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = submit(service, {})

    def killed(*args: Any, **kwargs: Any) -> Any:
        raise SystemExit("Runtime exited: the function timed out")  # nothing after this runs, as in Lambda

    monkeypatch.setattr(service.train_module, "train_model", killed)
    message = receive(queues)
    assert message is not None
    with pytest.raises(SystemExit):
        service.train(sqs_event(queues, message))
    assert job(service, job_id)["status"] == "running"
    later = datetime.now(UTC) + timedelta(seconds=900 + 61)
    for module in (service.train_module, service.inference_module):
        monkeypatch.setattr(module.jobs, "clock", lambda: later)
    failed = job(service, job_id)
    assert failed["status"] == "failed" and failed["error"]["error"] == "job_timed_out"
    assert "timed out or ran out of memory" in failed["error"]["message"]
    # The message comes back after its visibility timeout: the job is not run again, and the record says failed.
    queues.client.change_message_visibility(
        QueueUrl=queues.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    monkeypatch.undo()
    monkeypatch.setattr(service.train_module.jobs, "clock", lambda: later)
    answer, processed = deliver(service, queues)
    assert answer == {"batchItemFailures": []} and processed
    stored = json.loads(s3.get_object(Bucket=SEED_BUCKET, Key=f"jobs/{job_id}.json")["Body"].read())
    assert stored["status"] == "failed" and stored["error"]["error"] == "job_timed_out"
    assert versions(s3) == []


# --- the dead-letter queue ---------------------------------------------------------------------------------


def dead_letters(queues: Queues) -> list[str]:
    answer = queues.client.receive_message(QueueUrl=queues.dlq_url, MaxNumberOfMessages=10)
    return [message["Body"] for message in answer.get("Messages", [])]


def test_a_message_that_exhausts_its_deliveries_goes_to_the_dlq_and_its_job_reads_failed(
    service: Service, queues: Queues, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = submit(service, {})
    jobs = service.train_module.jobs
    healthy = jobs.objects
    jobs.objects = Faulty(healthy, lambda method, key: True)  # S3 down for the worker, every delivery
    for _ in range(MAX_RECEIVE_COUNT):
        answer, processed = deliver(service, queues)
        assert not processed and len(answer["batchItemFailures"]) == 1
    assert receive(queues) is None  # moto moves it on the next receive, as SQS does
    assert dead_letters(queues) == [json.dumps({"job_id": job_id}).replace(" ", "")]
    # The worker could not write the record either; once the message can no longer exist, it reads failed.
    assert job(service, job_id)["status"] == "queued"
    after_retention = datetime.now(UTC) + timedelta(seconds=RETENTION_SECONDS + 1)
    monkeypatch.setattr(service.inference_module.jobs, "clock", lambda: after_retention)
    failed = job(service, job_id)
    assert failed["status"] == "failed" and failed["error"]["error"] == "job_expired"
    assert "dead-letter queue" in failed["error"]["message"]


def test_the_last_delivery_records_the_job_failed_and_a_redrive_runs_it_once(
    service: Service, queues: Queues, s3: Any
) -> None:
    job_id = submit(service, {})
    jobs = service.train_module.jobs
    healthy = jobs.objects
    claims = []

    def first_claim_fails(method: str, key: str) -> bool:  # one 503 on the claim's conditional write
        if method == "put":
            claims.append(key)
            return len(claims) == 1
        return False

    jobs.objects = Faulty(healthy, first_claim_fails)
    message = receive(queues)
    assert message is not None
    event = sqs_event(queues, message)
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(MAX_RECEIVE_COUNT)  # throttled before
    answer = service.train(event)
    assert [item["itemIdentifier"] for item in answer["batchItemFailures"]] == [message["MessageId"]]
    failed = job(service, job_id)
    assert failed["status"] == "failed" and failed["error"]["error"] == "job_undeliverable"
    assert "dead-letter queue" in failed["error"]["message"] and "could not be reached" in failed["error"]["message"]
    # An operator redrives it once storage is back: it never started, so it runs, once.
    queues.client.delete_message(QueueUrl=queues.url, ReceiptHandle=message["ReceiptHandle"])
    queues.client.send_message(QueueUrl=queues.url, MessageBody=message["Body"])
    answer, processed = deliver(service, queues)
    assert answer == {"batchItemFailures": []} and processed
    assert job(service, job_id)["status"] == "succeeded" and len(versions(s3)) == 1


def test_a_message_that_is_not_a_job_is_reported_failed_for_the_dlq(service: Service, queues: Queues) -> None:
    queues.client.send_message(QueueUrl=queues.url, MessageBody="hello from SQS!")
    answer, processed = deliver(service, queues)
    assert len(answer["batchItemFailures"]) == 1 and not processed


def test_the_committed_sqs_event_runs_through_the_handler(service: Service, queues: Queues) -> None:
    """events/sqs_training_job.json (for `sam local invoke -e`): an unknown job is acknowledged and dropped."""
    assert service.train(load_event("sqs_training_job.json")) == {"batchItemFailures": []}


@pytest.mark.parametrize(
    ("code", "http_status", "status", "error"),
    [
        ("InternalError", 500, 503, "queue_unavailable"),
        ("AWS.SimpleQueueService.NonExistentQueue", 400, 502, "storage_access_denied"),
    ],
)
def test_a_job_that_cannot_be_queued_is_refused_and_leaves_no_record(
    service: Service, queues: Queues, s3: Any, code: str, http_status: int, status: int, error: str
) -> None:
    from botocore.stub import Stubber

    with Stubber(service.train_module.job_queue._client) as stub:
        stub.add_client_error("send_message", service_error_code=code, http_status_code=http_status)
        answer = service.train(proxy_event("/train", {"async": True}))
    assert answer["statusCode"] == status and body_of(answer)["error"] == error
    assert "job queue" in body_of(answer)["message"]
    assert s3.list_objects_v2(Bucket=SEED_BUCKET, Prefix="jobs/").get("KeyCount") == 0
    assert receive(queues) is None


def test_a_progress_write_whose_answer_was_lost_does_not_lose_the_outcome(
    service: Service, queues: Queues, s3: Any
) -> None:
    job_id = submit(service, {})
    jobs = service.train_module.jobs
    inner = jobs.objects
    writes: list[str] = []

    class AnswerLost:
        """The second write (the first progress) reaches S3, but its answer times out."""

        location = inner.location

        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

        def put(self, key: str, data: bytes, **conditions: Any) -> str:
            tag = inner.put(key, data, **conditions)
            writes.append(key)
            if len(writes) == 2:
                raise StoreUnavailableError(f"{inner.location} could not be reached: ReadTimeoutError")
            return tag

    jobs.objects = AnswerLost()
    answer, processed = deliver(service, queues)
    assert answer == {"batchItemFailures": []} and processed
    done = job(service, job_id)
    assert done["status"] == "succeeded" and done["result"]["model_version"]
