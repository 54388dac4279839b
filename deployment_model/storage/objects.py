"""Whole objects by key, in S3 or in a local folder: the one small interface every other store builds on."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError


class StoreError(Exception):
    """Base of everything the store raises on purpose; the message is safe to show a client."""


class ObjectNotFoundError(StoreError):
    pass


class ModelNotFoundError(StoreError):
    pass


class StoreUnavailableError(StoreError):
    """Storage could not be reached or answered with a server error: worth retrying later."""


class StoreAccessError(StoreError):
    """Storage refused the request (permissions, missing bucket): a deployment problem, not the client's."""


class ArtifactIntegrityError(StoreError):
    """Stored bytes differ from what their metadata says was written: corruption or tampering."""


class IncompatibleModelError(StoreError):
    """The version was written by other library versions than the ones serving it."""


class ObjectStore(Protocol):
    """The one small interface both backends implement: whole objects by key."""

    location: str

    def get(self, key: str) -> bytes:
        """The object's bytes; ObjectNotFoundError if absent, StoreUnavailableError if unreachable."""
        ...

    def put(self, key: str, data: bytes) -> None:
        """Write the whole object; readers see the old object or the new one, never a mix."""
        ...


class DirectoryObjectStore:
    """Objects as files under a root folder: the default for local runs, survives restarts."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.location = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ObjectNotFoundError(f"key {key!r} is outside the store")
        return path

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFoundError(f"no object {key!r} in {self.location}") from None

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write aside then rename: a rename is atomic, so readers never see a partial file.
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as handle:
            handle.write(data)
        os.replace(handle.name, path)


class S3ObjectStore:
    """Objects in one S3 bucket. The endpoint comes from boto3's standard AWS_ENDPOINT_URL_S3."""

    # Worst case for one call: 2 attempts x (1 s connect + 3 s read) + backoff, about 9 s:
    # inside the inference timeout (30 s) and API Gateway's 29 s, so a fault becomes a 503, not a 504.
    CONNECT_TIMEOUT_SECONDS = 1.0
    READ_TIMEOUT_SECONDS = 3.0
    MAX_ATTEMPTS = 2

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self.location = f"s3://{bucket}"
        self._client = client or self._default_client()

    @classmethod
    def _default_client(cls) -> Any:
        config = Config(
            connect_timeout=cls.CONNECT_TIMEOUT_SECONDS,
            read_timeout=cls.READ_TIMEOUT_SECONDS,
            retries={"mode": "standard", "max_attempts": cls.MAX_ATTEMPTS},
        )
        return boto3.session.Session().client("s3", config=config)

    def get(self, key: str) -> bytes:
        with self._translate_errors(key):
            return self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def put(self, key: str, data: bytes) -> None:
        with self._translate_errors(key):
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data)

    @contextmanager
    def _translate_errors(self, key: str) -> Iterator[None]:
        """botocore's exceptions become the store's, so callers never see botocore."""
        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in {"NoSuchKey", "404", "NotFound"}:
                raise ObjectNotFoundError(f"no object {key!r} in {self.location}") from None
            if status >= 500 or code in {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"}:
                raise StoreUnavailableError(f"{self.location} answered {code or status}") from None
            raise StoreAccessError(f"{self.location} refused access to {key!r}: {code}") from None
        except BotoCoreError as exc:
            raise StoreUnavailableError(f"{self.location} could not be reached: {type(exc).__name__}") from None
