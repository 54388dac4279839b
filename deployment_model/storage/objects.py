"""Whole objects by key, in S3 or in a local folder: the one small interface every other store builds on."""

from __future__ import annotations

import contextvars
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from deployment_model.storage.aws_calls import FailureKind, classify, client_config
from deployment_model.storage.s3_client import s3_client


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


class PreconditionFailedError(StoreError):
    """A conditional write lost: the object was created or changed by someone else since it was read."""


@dataclass(frozen=True)
class Listing:
    """One page of a listing, in lexicographic order (as S3 lists)."""

    keys: list[str]
    prefixes: list[str]  # "folders" one level down, each ending with the delimiter (only with a delimiter)
    next_start_after: str | None  # pass back as start_after for the next page; None on the last page


# Placed after a common prefix, this sorts after every key under it: the next page starts past that "folder".
_AFTER_EVERYTHING = "\U0010ffff"


def _page(entries: list[tuple[str, bool]], limit: int, truncated: bool) -> Listing:
    """entries: sorted (name, is_prefix); truncated: whether more entries follow these."""
    page = entries[:limit]
    more = truncated or len(entries) > limit
    next_start_after = None
    if more and page:
        last, is_prefix = page[-1]
        next_start_after = last + _AFTER_EVERYTHING if is_prefix else last
    return Listing(
        keys=[name for name, is_prefix in page if not is_prefix],
        prefixes=[name for name, is_prefix in page if is_prefix],
        next_start_after=next_start_after,
    )


class ObjectStore(Protocol):
    """The one small interface both backends implement: whole objects by key, written whole or not at all."""

    location: str
    # Whether get_tagged's tags are S3 ETags (what S3 shows a user for the object), not only opaque version tags.
    tags_are_etags: bool

    def get(self, key: str) -> bytes:
        """The object's bytes; ObjectNotFoundError if absent, StoreUnavailableError if unreachable."""
        ...

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and an opaque tag that changes whenever the object does (for `put(if_match=)`)."""
        ...

    def size(self, key: str) -> int:
        """The object's size in bytes, without reading it (to refuse what is too large to read)."""
        ...

    def put(self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None) -> str:
        """Write the whole object and return its new tag; readers see the old object or the new one.

        if_none_match: only if no object has this key. if_match: only if the object's tag is still this one.
        A condition that does not hold raises PreconditionFailedError and writes nothing.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object; an absent object is not an error."""
        ...

    def list_objects(
        self, prefix: str, *, start_after: str | None = None, limit: int = 1000, delimiter: str | None = None
    ) -> Listing:
        """At most `limit` keys (and, with a delimiter, prefixes one level down) after start_after, in order."""
        ...


def _tag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


T = TypeVar("T")


PARALLEL_READS = 8


def read_in_parallel(function: Callable[[str], T], items: list[str]) -> list[T]:
    """Independent small reads at once (S3 latency adds up otherwise); results in the items' order."""
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(PARALLEL_READS, len(items))) as pool:
        contexts = [contextvars.copy_context() for _ in items]  # each read keeps the request's deadline
        return list(pool.map(lambda pair: pair[0].run(function, pair[1]), zip(contexts, items, strict=True)))


def read_or_not_found(objects: ObjectStore, read: Callable[[str], T], key: str) -> T:
    """read(key), where a refusal of a key that does not exist is ObjectNotFoundError. S3 answers a read of a
    missing key 403, not 404, to a role that may not list it unconditionally (the inference role may list only
    under models/ and jobs/): a refused read asks the listing whether the key exists."""
    try:
        return read(key)
    except StoreAccessError:
        if key not in objects.list_objects(key, limit=1).keys:
            raise ObjectNotFoundError(f"no object {key!r} in {objects.location}") from None
        raise


class DirectoryObjectStore:
    """Objects as files under a root folder: the default for local runs, survives restarts.

    Conditional writes and deletes hold an exclusive lock on one lock file in the root, so that check-then-write
    is atomic across the threads and processes sharing the folder (a local server and a CLI, say).
    """

    _LOCK_FILE = ".lock"
    _TEMP_PREFIX = ".tmp-"
    tags_are_etags = False  # sha256 of the bytes: nothing S3 would show

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.location = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ObjectNotFoundError(f"key {key!r} is outside the store")
        return path

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFoundError(f"no object {key!r} in {self.location}") from None

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        data = self.get(key)
        return data, _tag(data)

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFoundError(f"no object {key!r} in {self.location}")
        return path.stat().st_size

    def put(self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None) -> str:
        path = self._path(key)
        if not if_none_match and if_match is None:
            self._write(path, data)
            return _tag(data)
        with self._locked():
            try:
                current: str | None = _tag(path.read_bytes())
            except (FileNotFoundError, NotADirectoryError):
                current = None
            if if_none_match and current is not None:
                raise PreconditionFailedError(f"object {key!r} already exists")
            if if_match is not None and current != if_match:
                raise PreconditionFailedError(f"object {key!r} changed since it was read")
            self._write(path, data)
        return _tag(data)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._locked():
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError):
                return
            # Empty folders left behind would list as prefixes that S3 would not show.
            for parent in path.parents:
                if parent == self.root:
                    break
                try:
                    parent.rmdir()
                except OSError:  # not empty (or already gone)
                    break

    def list_objects(
        self, prefix: str, *, start_after: str | None = None, limit: int = 1000, delimiter: str | None = None
    ) -> Listing:
        folder_key, _, _ = prefix.rpartition("/")
        try:
            folder = self._path(folder_key) if folder_key else self.root
        except ObjectNotFoundError:
            return Listing([], [], None)
        after = start_after or ""
        entries: set[tuple[str, bool]] = set()
        for key in self._keys_under(folder):
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                if key > after:
                    entries.add((common, True))
            elif key > after:
                entries.add((key, False))
        return _page(sorted(entries), limit, truncated=False)

    def _keys_under(self, folder: Path) -> Iterator[str]:
        for directory, _, files in os.walk(folder):
            for name in files:
                if name.startswith(self._TEMP_PREFIX) or name == self._LOCK_FILE:
                    continue
                yield (Path(directory) / name).relative_to(self.root).as_posix()

    def _write(self, path: Path, data: bytes) -> None:
        # Write aside then rename: a rename is atomic, so readers never see a partial file.
        for attempt in range(2):
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with tempfile.NamedTemporaryFile(dir=path.parent, prefix=self._TEMP_PREFIX, delete=False) as handle:
                    handle.write(data)
                break
            except FileNotFoundError:  # a delete pruned the empty folder in between: make it again
                if attempt:
                    raise
        os.replace(handle.name, path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / self._LOCK_FILE, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class S3ObjectStore:
    """Objects in one S3 bucket. The endpoint comes from the SDK's standard AWS_ENDPOINT_URL_S3."""

    tags_are_etags = True

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self.location = "this service's bucket"  # errors reach clients: never the bucket's (generated) name
        self._client = client or s3_client(client_config())

    def get(self, key: str) -> bytes:
        return self.get_tagged(key)[0]

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        with self._translate_errors(key):
            answer = self._client.get_object(Bucket=self.bucket, Key=key)
            return answer["Body"].read(), answer["ETag"]

    def size(self, key: str) -> int:
        with self._translate_errors(key):
            return int(self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def put(self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None) -> str:
        conditions: dict[str, str] = {}
        if if_none_match:
            conditions["IfNoneMatch"] = "*"
        if if_match is not None:
            conditions["IfMatch"] = if_match
        with self._translate_errors(key, conditional=bool(conditions)):
            return self._client.put_object(Bucket=self.bucket, Key=key, Body=data, **conditions)["ETag"]

    def delete(self, key: str) -> None:
        with self._translate_errors(key):
            self._client.delete_object(Bucket=self.bucket, Key=key)

    def list_objects(
        self, prefix: str, *, start_after: str | None = None, limit: int = 1000, delimiter: str | None = None
    ) -> Listing:
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": limit}
        if start_after:
            request["StartAfter"] = start_after
        if delimiter:
            request["Delimiter"] = delimiter
        with self._translate_errors(prefix):
            answer = self._client.list_objects_v2(**request)
        entries = [(item["Key"], False) for item in answer.get("Contents", [])]
        entries += [(item["Prefix"], True) for item in answer.get("CommonPrefixes", [])]
        return _page(sorted(entries), limit, truncated=bool(answer.get("IsTruncated")))

    @contextmanager
    def _translate_errors(self, key: str, conditional: bool = False) -> Iterator[None]:
        """botocore's exceptions become the store's, so callers never see botocore."""
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            failure = classify(exc)
            # 412: the condition did not hold; 409: a concurrent conditional write to the same key won;
            # 404 on a conditional write: If-Match named an object that no longer exists.
            if conditional and (failure.status in {409, 412} or failure.kind is FailureKind.NOT_FOUND):
                raise PreconditionFailedError(f"object {key!r} changed since it was read ({failure.reason})") from None
            if failure.kind is FailureKind.NOT_FOUND:
                raise ObjectNotFoundError(f"no object {key!r} in {self.location}") from None
            if failure.kind is FailureKind.UNAVAILABLE:
                raise StoreUnavailableError(f"{self.location} {failure.happened}") from None
            raise StoreAccessError(f"{self.location} refused access to {key!r}: {failure.reason}") from None
