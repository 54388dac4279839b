"""The SQS job queue reads AWS's errors as the S3 store does: the same answer is a retry-later (503) or a
deployment problem (502) on both, and both clients carry the same timeouts and retries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from deployment_model.storage import aws_calls
from deployment_model.storage.objects import S3ObjectStore, StoreAccessError, StoreError, StoreUnavailableError
from deployment_model.train.job_queue import QueueAccessError, QueueUnavailableError, SqsJobQueue
from tests.conftest import failing_aws


class Failing:
    """A botocore client whose every call raises the given exception, as botocore raises it."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def __getattr__(self, operation: str) -> Any:
        def call(**_: Any) -> Any:
            raise self.exc

        return call


def client_error(code: str, status: int, operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "..."}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


def queue_refusal(exc: Exception) -> StoreError:
    queue = SqsJobQueue("https://sqs.us-east-1.amazonaws.com/123456789012/q", None, 1, client=Failing(exc))
    with pytest.raises(StoreError) as refused:
        queue.send("job")
    return refused.value


def store_refusal(exc: Exception) -> StoreError:
    with pytest.raises(StoreError) as refused:
        S3ObjectStore("bucket", client=Failing(exc)).get("jobs/job.json")
    return refused.value


@pytest.mark.parametrize(
    ("code", "status", "store_error", "queue_error"),
    [
        ("AccessDenied", 403, StoreAccessError, QueueAccessError),
        ("KMS.AccessDeniedException", 400, StoreAccessError, QueueAccessError),
        ("ServiceUnavailable", 503, StoreUnavailableError, QueueUnavailableError),
        ("InternalError", 500, StoreUnavailableError, QueueUnavailableError),
        ("SlowDown", 503, StoreUnavailableError, QueueUnavailableError),
        ("ThrottlingException", 400, StoreUnavailableError, QueueUnavailableError),
        ("RequestTimeout", 400, StoreUnavailableError, QueueUnavailableError),
    ],
)
def test_the_queue_classifies_an_aws_error_as_the_s3_store_does(
    code: str, status: int, store_error: type[StoreError], queue_error: type[StoreError]
) -> None:
    by_store = store_refusal(client_error(code, status, "GetObject"))
    by_queue = queue_refusal(client_error(code, status, "SendMessage"))
    assert type(by_store) is store_error and type(by_queue) is queue_error
    assert issubclass(queue_error, store_error)  # the API answers both with the same status and code
    assert code in str(by_store) and code in str(by_queue)


@pytest.mark.parametrize(
    "exc", [EndpointConnectionError(endpoint_url="https://aws"), ConnectTimeoutError(endpoint_url="https://aws")]
)
def test_an_aws_that_cannot_be_reached_is_unavailable_for_both(exc: Exception) -> None:
    by_store, by_queue = store_refusal(exc), queue_refusal(exc)
    assert type(by_store) is StoreUnavailableError and type(by_queue) is QueueUnavailableError
    assert str(by_store).endswith(f"could not be reached: {type(exc).__name__}")
    assert str(by_queue) == f"the training job queue could not be reached: {type(exc).__name__}"


def test_a_missing_queue_is_a_deployment_problem_not_a_missing_job() -> None:
    refused = queue_refusal(client_error("AWS.SimpleQueueService.NonExistentQueue", 400, "SendMessage"))
    assert type(refused) is QueueAccessError
    assert str(refused) == "the training job queue refused the job: AWS.SimpleQueueService.NonExistentQueue"


def test_both_clients_carry_the_shared_timeouts_and_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws_calls, "CONNECT_TIMEOUT_SECONDS", 0.25)
    monkeypatch.setattr(aws_calls, "READ_TIMEOUT_SECONDS", 0.75)
    monkeypatch.setattr(aws_calls, "MAX_ATTEMPTS", 4)
    store, queue = (
        S3ObjectStore("bucket")._client.meta.config,
        SqsJobQueue("https://sqs/q", None, 2)._client.meta.config,
    )
    assert (store.connect_timeout, store.read_timeout) == (queue.connect_timeout, queue.read_timeout) == (0.25, 0.75)
    assert store.retries == queue.retries and store.retries["mode"] == "standard"


@pytest.fixture
def failing_endpoint() -> Iterator[tuple[str, list[str]]]:
    with failing_aws(500, "InternalError") as endpoint:
        yield endpoint


def test_a_failing_call_is_tried_twice_in_all_on_the_wire(failing_endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """README and the timeouts' worst case (2 x (1 s + 3 s) + backoff, inside the 10 s call limit) count 2 attempts
    in all: botocore's `max_attempts` counts retries only (2 was 3 attempts); `total_max_attempts` counts all."""
    endpoint, asked = failing_endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", endpoint)
    with pytest.raises(StoreUnavailableError):
        S3ObjectStore("bucket").get("models/m/latest.json")
    assert len(asked) == aws_calls.MAX_ATTEMPTS == 2
    asked.clear()
    with pytest.raises(QueueUnavailableError):
        SqsJobQueue(f"{endpoint}/123456789012/jobs", None, 1).send("job")
    assert len(asked) == 2
