"""How the service's stores call AWS (S3 for objects, SQS for queued training jobs): one client configuration
and one reading of botocore's errors, so that a change to a timeout or to what an error means applies to both.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# Worst case for one call: 2 attempts x (1 s connect + 3 s read) + backoff, about 9 s:
# inside the inference timeout (30 s) and API Gateway's 29 s, so a fault becomes a 503, not a 504.
CONNECT_TIMEOUT_SECONDS = 1.0
READ_TIMEOUT_SECONDS = 3.0
MAX_ATTEMPTS = 2  # in all, the first included (botocore's `max_attempts` would count retries only)

NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
UNAVAILABLE_CODES = frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"})


def client_config() -> Config:
    """The botocore Config of every AWS client the stores use (read at each call, so tests may shorten it)."""
    return Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    )


class FailureKind(Enum):
    NOT_FOUND = "not_found"  # the thing asked for does not exist
    UNAVAILABLE = "unavailable"  # not reached, a server error, throttled: worth retrying later
    REFUSED = "refused"  # permissions, a missing bucket or queue: a deployment problem, not the client's


class AwsFailure(NamedTuple):
    """What a failed AWS call means, and the words a message needs to say what happened. (A NamedTuple: the
    inference function imports this at cold start, and a frozen dataclass costs ~0.5 ms more to build.)"""

    kind: FailureKind
    code: str  # AWS's error code; "" when AWS gave none or was not reached
    status: int  # AWS's HTTP status; 0 when it was not reached
    happened: str  # e.g. "answered SlowDown", "could not be reached: ConnectTimeoutError"

    @property
    def reason(self) -> str:
        """The error code, or the HTTP status when AWS gave no code."""
        return self.code or str(self.status)


def classify(exc: ClientError | BotoCoreError) -> AwsFailure:
    """botocore's exception as a failure the stores can name: AWS's answer (ClientError) or no answer."""
    if not isinstance(exc, ClientError):
        return AwsFailure(FailureKind.UNAVAILABLE, "", 0, f"could not be reached: {type(exc).__name__}")
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in NOT_FOUND_CODES:
        kind = FailureKind.NOT_FOUND
    elif status >= 500 or code in UNAVAILABLE_CODES or "Throttl" in code or "Unavailable" in code:
        kind = FailureKind.UNAVAILABLE
    else:
        kind = FailureKind.REFUSED
    return AwsFailure(kind, code, status, f"answered {code or status}")
