"""Talk to the service wherever it runs: in this process on the local store, at a URL, or a deployed stack by name.

Every command is an HTTP request to one of the service's routes. `InProcess` hands it to the local server's
gateway without a socket (the same routing, proxy event and answer as the server); `Http` sends it to a URL (with
the API key as `x-api-key`). `ServiceClient` names the routes once, so each command has one code path whatever
the target.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

from deployment_model.local import server
from deployment_model.local.routes import DEFAULT_TEMPLATE

API_KEY_ENV = "ML_SERVICE_API_KEY"
EMPTY_METRICS_WARNING = "No application metrics to publish"  # Powertools, after a call that added no metric
DEFAULT_TIMEOUT_SECONDS = 300.0
RETRIES = 3
RETRY_STATUSES = {429, 503}  # API Gateway's throttling, and the service's "storage unavailable, retry"
MAX_RETRY_WAIT_SECONDS = 30.0
# Routes a server may not serve yet (an older deployment): answered with these codes, or API Gateway's 403.
_ROUTE_MISSING_CODES = {"route_not_found", "method_not_allowed"}


class ClientError(Exception):
    """Something the person can fix or must know, said in one line (no traceback)."""


class ServiceError(ClientError):
    """The service answered an error: its status, its stable code and its message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def __str__(self) -> str:
        return self.message

    @property
    def route_missing(self) -> bool:
        """The target does not serve this route at all (not: the route said no)."""
        api_gateway_unknown_route = self.status == 403 and self.message == "Missing Authentication Token"
        return self.code in _ROUTE_MISSING_CODES or api_gateway_unknown_route


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            snippet = self.body[:200].decode("utf-8", "replace")
            raise ClientError(f"the service answered {self.status} with a body that is not JSON: {snippet!r}") from None


class Transport(Protocol):
    """Sends one request to the service; `target` is the path with its query string."""

    def send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Answer: ...


class InProcess:
    """The functions' handlers in this process, on the local store (or MODEL_BUCKET): no server, no network.

    Each request goes through the local server's gateway (server.LocalGateway) without a socket, so it is
    answered exactly as the local server answers it: the same routing, proxy events, refusals and headers.
    What the handlers print (EMF metrics) is swallowed: a command's output is its answer; their error logs go
    to stderr.
    """

    def __init__(self, store_dir: str | None, template: Path = DEFAULT_TEMPLATE) -> None:
        server.configure_environment(store_dir)
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")  # the answer says what went wrong
        self._gateway = server.LocalGateway(template, load=lambda function: _import_quietly(function, template))

    def send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", EMPTY_METRICS_WARNING, UserWarning)
            reply = self._gateway.answer(method, target, headers, body or b"")
        # What an HTTP client reads of the server's answer: names in lower case, the last value of a name.
        names = {name.lower(): str(value) for name, values in reply.headers.items() for value in values}
        return Answer(reply.status, names, b"" if method.upper() == "HEAD" else reply.body)


def _import_quietly(function: str, template: Path) -> server.Handler:
    with contextlib.redirect_stdout(sys.stderr):  # loggers created at import write where stdout is now
        return server.load_handler(function, template)


class Http:
    """The service at a URL: the local server, or a deployed stage (which wants its API key)."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ClientError(f"--url must be an http:// or https:// URL, e.g. http://127.0.0.1:3000; got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout

    def send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        all_headers = dict(headers)
        if self._api_key:
            all_headers["x-api-key"] = self._api_key
        request = urllib.request.Request(self.base_url + target, data=body, method=method, headers=all_headers)  # noqa: S310 - scheme checked in __init__
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return Answer(response.status, _lower(response.headers), response.read())
        except urllib.error.HTTPError as error:
            answer = Answer(error.code, _lower(error.headers), error.read())
            error.close()
            return answer
        except urllib.error.URLError as error:
            raise ClientError(f"cannot reach {self.base_url}: {error.reason}") from None
        except TimeoutError:
            raise ClientError(f"{self.base_url} did not answer within {self._timeout:g} s (--timeout)") from None
        except (OSError, http.client.HTTPException) as error:  # a connection reset, or an answer cut short
            raise ClientError(f"lost the connection to {self.base_url}: {error}") from None

    @property
    def sends_api_key(self) -> bool:
        return bool(self._api_key)


def _retry_after(value: str | None, attempt: int) -> float:
    """Seconds to wait: the server's Retry-After when it gives one (capped), else a doubling backoff."""
    try:
        return min(float(value), MAX_RETRY_WAIT_SECONDS) if value is not None else float(2 ** (attempt - 1))
    except ValueError:
        return float(2 ** (attempt - 1))


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _segment(value: str) -> str:
    return quote(value, safe="")


class ServiceClient:
    """The service's routes as methods returning their JSON answers; errors raise ServiceError."""

    def __init__(self, transport: Transport, sleep: Callable[[float], None] = time.sleep) -> None:
        self.transport = transport
        self.sleep = sleep

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, Any] | None = None,
        raw: bool = False,
        retry: bool = False,
    ) -> Any:
        """One call: JSON body out, JSON (or raw bytes) back, an error answer raised as ServiceError.

        `retry` (for calls that change nothing): a 429 or 503 is tried again after its Retry-After, a few times,
        so that a throttled or briefly unavailable moment does not stop a million-row prediction halfway.
        """
        params = {name: value for name, value in (query or {}).items() if value is not None}
        target = path + (f"?{urlencode(params)}" if params else "")
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in range(1, RETRIES + 2):
            answer = self.transport.send(method, target, data, headers)
            if not (retry and answer.status in RETRY_STATUSES and attempt <= RETRIES):
                break
            self.sleep(_retry_after(answer.headers.get("retry-after"), attempt))
        if answer.status >= 400:
            raise self._error(answer)
        return answer.body if raw else answer.json()

    def _error(self, answer: Answer) -> ServiceError:
        try:
            body = json.loads(answer.body)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            error = ServiceError(answer.status, str(body.get("error") or "http_error"), body["message"])
        else:
            # Not this service's JSON (another server at that URL, a proxy's page): summed up on one line.
            text = " ".join(answer.body[:400].decode("utf-8", "replace").split())[:200] or "no message"
            kind = answer.headers.get("content-type", "").split(";")[0].strip() or "no content type"
            where = f"{kind}, not an answer of this service: is the URL right?"
            error = ServiceError(answer.status, "http_error", f"HTTP {answer.status} ({where}): {text}")
        if answer.status == 504 and "error" not in (body or {}):
            # API Gateway's own timeout: the integration ran past its 29 s.
            error.message = f"{error.message} (HTTP 504): the call took longer than the API allows; train with --async"
        if answer.status == 403 and "error" not in (body or {}) and not error.route_missing:
            # API Gateway's own refusal ({"message": "Forbidden"}): a missing or wrong API key.
            sent = getattr(self.transport, "sends_api_key", False)
            hint = "the API key was refused" if sent else "this API needs an API key"
            error.message = f"{error.message} (HTTP 403): {hint}: pass --api-key, set {API_KEY_ENV}, or use --stack"
        return error

    # Training and jobs (issue 11)
    def train(self, request: dict[str, Any]) -> Any:
        return self.request("POST", "/train", body=request)

    def job(self, job_id: str) -> Any:
        return self.request("GET", f"/train/jobs/{_segment(job_id)}", retry=True)

    def jobs(self, limit: int | None = None, next_token: str | None = None) -> Any:
        return self.request("GET", "/train/jobs", query={"limit": limit, "next_token": next_token})

    # Prediction
    def predict(self, body: bytes | dict[str, Any]) -> Any:
        return self.request("POST", "/predict", body=body, retry=True)

    # The registry (issue 10) and reports (issue 14)
    def models(self, limit: int | None = None, next_token: str | None = None) -> Any:
        return self.request("GET", "/models", query={"limit": limit, "next_token": next_token})

    def model(self, name: str, limit: int | None = None, next_token: str | None = None) -> Any:
        return self.request("GET", f"/models/{_segment(name)}", query={"limit": limit, "next_token": next_token})

    def version(self, name: str, version: str) -> Any:
        return self.request("GET", f"/models/{_segment(name)}/versions/{_segment(version)}")

    def history(self, name: str) -> Any:
        return self.request("GET", f"/models/{_segment(name)}/history")

    def publish(self, name: str, version: str, reason: str | None = None, expected_version: str | None = None) -> Any:
        body = {"version": version, "reason": reason, "expected_version": expected_version}
        body = {key: value for key, value in body.items() if value is not None}
        return self.request("POST", f"/models/{_segment(name)}/publish", body=body)

    def export(self, name: str, version: str, publish: bool = False) -> Any:
        path = f"/models/{_segment(name)}/versions/{_segment(version)}/export"
        return self.request("POST", path, body={"publish": publish})

    def delete_version(self, name: str, version: str) -> Any:
        return self.request("DELETE", f"/models/{_segment(name)}/versions/{_segment(version)}")

    def delete_model(self, name: str) -> Any:
        return self.request("DELETE", f"/models/{_segment(name)}")

    def report(self, name: str, version: str, format: str = "html") -> bytes:
        path = f"/models/{_segment(name)}/versions/{_segment(version)}/report"
        return self.request("GET", path, query={"format": None if format == "html" else format}, raw=True)


@dataclass(frozen=True)
class StackTarget:
    """Where a deployed stack's API is, and its key (never printed: repr leaves it out)."""

    url: str
    api_key: str = field(repr=False)


def stack_target(stack_name: str, region: str | None = None) -> StackTarget:
    """Read the stack's ApiUrl and ApiKeyId outputs, then the key's value, with the caller's AWS credentials."""
    import boto3  # only this lookup needs AWS
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError as AwsClientError

    try:
        session = boto3.session.Session(region_name=region)
        stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
        outputs = {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])}
        missing = [name for name in ("ApiUrl", "ApiKeyId") if name not in outputs]
        if missing:
            raise ClientError(f"stack {stack_name!r} has no output {' or '.join(missing)}: is it this service's stack?")
        key = session.client("apigateway").get_api_key(apiKey=outputs["ApiKeyId"], includeValue=True)
    except AwsClientError as error:
        message = error.response.get("Error", {}).get("Message") or str(error)
        raise ClientError(f"cannot read stack {stack_name!r}: {message}") from None
    except BotoCoreError as error:  # no credentials, no region, endpoint unreachable
        raise ClientError(f"cannot read stack {stack_name!r}: {error}") from None
    return StackTarget(url=outputs["ApiUrl"], api_key=key["value"])
