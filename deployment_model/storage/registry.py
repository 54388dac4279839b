"""The model registry: immutable versions, a published pointer moved by conditional writes, and its history.

Layout, the same in S3 and in a local directory (bytes and JSON only; no scikit-learn here):

    models/<name>/versions/<version>/<kind>/<file>   an artifact ("model", "scaler", ...), by kind
    models/<name>/versions/<version>/metadata.json   sha256 of each artifact, and what the run recorded
    models/<name>/records/<newest-first id>.json     the version's record: metadata sha256 + listing fields
    models/<name>/latest.json                        the pointer: version, metadata sha256, the event that set it
    models/<name>/history/<newest-first seq>.json    one event per change of the published version
    models/<name>/registry.json                      marks a model whose versions all have records

Only the train function writes. A version's record is written last, so a version without one is incomplete
and never listed, published or served. Every read of a version checks its metadata against the digest in
the pointer or its record, and every artifact against the digest in the metadata, before a byte is used; an
artifact's key is computed from name, version and kind, never read from metadata.

Publishing is a compare-and-swap of the pointer (If-Match / If-None-Match) that carries its own history
event: the event is also written to history/ (create-only) before the next swap, so trainings and publishes
racing on a model never lose an event and the pointer always names the version of the newest one.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import posixpath
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final, TypeVar

import orjson

from deployment_model.storage.deadline import TimeBoundObjectStore
from deployment_model.storage.jobs import JOBS_PREFIX
from deployment_model.storage.objects import (
    ArtifactIntegrityError,
    DirectoryObjectStore,
    Listing,
    ModelNotFoundError,
    ObjectNotFoundError,
    ObjectStore,
    PreconditionFailedError,
    S3ObjectStore,
    StoreError,
    read_in_parallel,
    read_or_not_found,
)

MODELS_PREFIX = "models/"
# Not ending with '.': a name is also the start of its artifact's file name (`name.joblib`).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9_-])?$")
VERSION_PATTERN = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{8}$")
DATA_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/=+-]{0,1023}$")
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
FILE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
# What a version listing shows of each version; copied into its record so a listing reads one object per version.
LISTED_FIELDS = (
    "created_at",
    "candidate",
    "estimator",
    "params",
    "metrics",
    "rows",
    "training_data",
    "feature_names",
    "labels",
)
EVENT_FIELDS = ("version", "previous_version", "at", "action", "reason", "request_id")
REGISTRY_FORMAT = 2
_HISTORY_SEQ_SPAN = 10**12  # history keys count down from here, so that listing order is newest first
_PUBLISH_ATTEMPTS = 20

T = TypeVar("T")


class InvalidRegistryRequestError(ValueError):
    """A malformed name, version or page token from a client: answered 400."""


class PublishConflictError(StoreError):
    """The published version is not the one the caller expected (or kept changing): answered 409."""


class VersionPublishedError(StoreError):
    """The version is the published one and cannot be deleted: answered 409."""


class ModelNameConflictError(StoreError):
    """Another model's name differs only by case: on case-insensitive disks the two would overwrite each other."""


class _Unset(Enum):
    ANY = "any"


ANY_VERSION: Final = _Unset.ANY  # publish whatever is published now (no optimistic-concurrency check)


@dataclass(frozen=True)
class Pointer:
    """The published version of a model, as `latest.json` says."""

    version: str
    metadata_sha256: str
    published_at: str | None
    seq: int  # how many history events the registry has recorded (0: published before the registry existed)
    event: dict[str, Any] | None  # the event that set this pointer; None for a pointer from before the registry
    tag: str  # the object's tag, for the next compare-and-swap


@dataclass(frozen=True)
class StoredVersion:
    """A version's metadata and the artifact bytes asked for, each checked against its recorded sha256."""

    name: str
    version: str
    metadata: dict[str, Any]
    artifacts: dict[str, bytes]


@dataclass(frozen=True)
class ModelSummary:
    name: str
    published_version: str | None
    published_at: str | None
    versions: int


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_token: str | None


@dataclass(frozen=True)
class PublishResult:
    name: str
    published_version: str
    previous_version: str | None
    event: dict[str, Any] | None  # None when the version was already the published one (nothing changed)


def new_version_id(now: datetime | None = None) -> str:
    """Sortable by time, unique across concurrent trainings: 20261124T123456123456Z-1a2b3c4d."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(4)}"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def _newest_first(version: str) -> str:
    """The version id with its time digits complemented: lexicographic order becomes newest first."""
    stamp, _, suffix = version.partition("-")
    return "".join(str(9 - int(c)) if c.isdigit() else c for c in stamp) + "-" + suffix


def check_name(name: Any, field: str = "name") -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or ".." in name:
        raise InvalidRegistryRequestError(
            f"{field} {name!r} is not a valid name: 1-128 letters, digits, '.', '_', '-', "
            "starting with a letter or digit, not ending with '.', without '..'"
        )
    return name


def check_version(version: Any, field: str = "version") -> str:
    if not isinstance(version, str) or not VERSION_PATTERN.match(version):
        raise InvalidRegistryRequestError(
            f"{field} {version!r} is not a version id like 20261124T123456123456Z-1a2b3c4d"
        )
    return version


class ModelRegistry:
    """Model versions on top of an ObjectStore; the rules live here once for both backends."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    # --- keys ------------------------------------------------------------------------------------------

    @staticmethod
    def _model_prefix(name: str) -> str:
        return f"{MODELS_PREFIX}{name}/"

    def _pointer_key(self, name: str) -> str:
        return f"{self._model_prefix(name)}latest.json"

    def _format_key(self, name: str) -> str:
        return f"{self._model_prefix(name)}registry.json"

    def _versions_prefix(self, name: str) -> str:
        return f"{self._model_prefix(name)}versions/"

    def _version_prefix(self, name: str, version: str) -> str:
        return f"{self._versions_prefix(name)}{version}/"

    def _metadata_key(self, name: str, version: str) -> str:
        return f"{self._version_prefix(name, version)}metadata.json"

    def _records_prefix(self, name: str) -> str:
        return f"{self._model_prefix(name)}records/"

    def _record_key(self, name: str, version: str) -> str:
        return f"{self._records_prefix(name)}{_newest_first(version)}.json"

    def _history_prefix(self, name: str) -> str:
        return f"{self._model_prefix(name)}history/"

    def _history_key(self, name: str, seq: int) -> str:
        return f"{self._history_prefix(name)}{_HISTORY_SEQ_SPAN - seq:012d}.json"

    def artifact_key(self, name: str, version: str, kind: str, entry: Mapping[str, Any]) -> str:
        """Where a version's artifact of this kind lives: computed from name, version and kind, never from
        metadata. A metadata `key` is only compared with it (versions from before the registry kept their
        artifacts directly in the version folder, under the file name their key ends with)."""
        where = f"model {name!r} version {version}"
        prefix = self._version_prefix(name, version)
        if not KIND_PATTERN.match(kind):
            raise ArtifactIntegrityError(f"{where}: artifact kind {kind!r} is not a valid kind")
        recorded_key = entry.get("key")
        file = entry.get("file")
        if file is None and isinstance(recorded_key, str):  # a version written before the registry
            normalised = posixpath.normpath(recorded_key)
            if normalised != recorded_key or posixpath.dirname(normalised) + "/" != prefix:
                raise ArtifactIntegrityError(f"{where}: {kind} artifact lies outside its version folder")
            file, relative = posixpath.basename(normalised), posixpath.basename(normalised)
        else:
            relative = f"{kind}/{file}"
        if not isinstance(file, str) or not FILE_PATTERN.match(file) or ".." in file:
            raise ArtifactIntegrityError(f"{where}: {kind} artifact has no valid file name")
        key = prefix + relative
        if recorded_key is not None and recorded_key != key:
            raise ArtifactIntegrityError(f"{where}: {kind} artifact lies outside its version folder")
        return key

    # --- reading ---------------------------------------------------------------------------------------

    def _get(self, key: str) -> bytes:
        return self._read(self.objects.get, key)

    def _get_tagged(self, key: str) -> tuple[bytes, str]:
        return self._read(self.objects.get_tagged, key)

    def _read(self, read: Callable[[str], T], key: str) -> T:
        return read_or_not_found(self.objects, read, key)

    def published(self, name: str) -> Pointer:
        """The published version (the small object a warm function re-reads once per TTL)."""
        pointer = self._pointer_or_none(check_name(name))
        if pointer is None:
            if self._has_any_object(name):
                raise ModelNotFoundError(f"model {name!r} has no published version; publish one of its versions")
            raise ModelNotFoundError(f"model {name!r} has not been trained yet")
        return pointer

    def published_or_none(self, name: str) -> Pointer | None:
        return self._pointer_or_none(check_name(name))

    def _pointer_or_none(self, name: str) -> Pointer | None:
        try:
            raw, tag = self._get_tagged(self._pointer_key(name))
        except ObjectNotFoundError:
            return None
        try:
            pointer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ArtifactIntegrityError(f"model {name!r}: its published-version pointer is not valid JSON") from None
        if (
            not isinstance(pointer, dict)
            or not isinstance(pointer.get("version"), str)
            or not VERSION_PATTERN.match(pointer["version"])
            or not isinstance(pointer.get("metadata_sha256"), str)
            or not isinstance(pointer.get("seq", 0), int)
            or not isinstance(pointer.get("event"), dict | None)
        ):
            raise ArtifactIntegrityError(f"model {name!r}: its published-version pointer is malformed")
        return Pointer(
            version=pointer["version"],
            metadata_sha256=pointer["metadata_sha256"],
            published_at=pointer.get("published_at"),
            seq=pointer.get("seq", 0),
            event=pointer.get("event"),
            tag=tag,
        )

    def _exists(self, key: str) -> bool:
        try:
            self._get(key)
        except ObjectNotFoundError:
            return False
        return True

    def _record(self, name: str, version: str) -> dict[str, Any] | None:
        try:
            raw = self._get(self._record_key(name, version))
        except ObjectNotFoundError:
            return None
        return self._parse_record(name, version, raw)

    @staticmethod
    def _parse_record(name: str, version: str | None, raw: bytes) -> dict[str, Any]:
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            record = None
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("version"), str)
            or not VERSION_PATTERN.match(record["version"])
            or (version is not None and record["version"] != version)
            or not isinstance(record.get("metadata_sha256"), str)
        ):
            raise ArtifactIntegrityError(f"model {name!r} version {version}: its registry record is malformed")
        return record

    def _expected_metadata_sha256(self, name: str, version: str) -> str | None:
        """The digest the train function recorded for this version; None only for a model from before the
        registry that has not been written to since (its published version is still checked by the pointer)."""
        record = self._record(name, version)
        if record is not None:
            return record["metadata_sha256"]
        if self._exists(self._format_key(name)):
            raise ModelNotFoundError(f"model {name!r} has no version {version!r}")
        pointer = self._pointer_or_none(name)
        if pointer is not None and pointer.version == version:
            return pointer.metadata_sha256
        return None

    def get_version(self, name: str, version: str, metadata_sha256: str | None = None) -> dict[str, Any]:
        """A version's metadata, checked against its recorded digest."""
        check_name(name)
        check_version(version)
        expected = metadata_sha256 or self._expected_metadata_sha256(name, version)
        where = f"model {name!r} version {version}"
        try:
            raw = self._get(self._metadata_key(name, version))
        except ObjectNotFoundError:
            if expected is not None:
                raise ArtifactIntegrityError(f"{where}: its metadata is missing") from None
            raise ModelNotFoundError(f"model {name!r} has no version {version!r}") from None
        if expected is not None and _sha256(raw) != expected:
            raise ArtifactIntegrityError(f"{where}: metadata sha256 mismatch (changed after training)")
        try:
            metadata = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ArtifactIntegrityError(f"{where}: metadata is not valid JSON") from None
        if not isinstance(metadata, dict) or metadata.get("name") != name or metadata.get("version") != version:
            raise ArtifactIntegrityError(f"{where}: metadata names another model or version")
        artifacts = metadata.get("artifacts")
        if not isinstance(artifacts, dict) or not all(
            isinstance(e, dict) and isinstance(e.get("sha256"), str) and SHA256_PATTERN.match(e["sha256"])
            for e in artifacts.values()
        ):
            raise ArtifactIntegrityError(f"{where}: metadata lists no valid artifacts")
        return metadata

    def load(
        self,
        name: str,
        version: str | None = None,
        kinds: Iterable[str] = ("model", "scaler"),
        metadata_sha256: str | None = None,
    ) -> StoredVersion:
        """A version (the published one when None) with the artifacts of the kinds asked for, every digest
        checked before the bytes are returned. metadata_sha256: from a pointer the caller already read."""
        if version is None:
            pointer = self.published(name)
            version, metadata_sha256 = pointer.version, pointer.metadata_sha256
        metadata = self.get_version(name, version, metadata_sha256)
        artifacts = {kind: self._artifact(name, version, metadata, kind) for kind in kinds}
        return StoredVersion(name=name, version=version, metadata=metadata, artifacts=artifacts)

    def read_artifact(self, name: str, version: str, kind: str) -> bytes:
        """One artifact of a version (a report, say), digest-checked like every other."""
        return self.load(name, version, kinds=(kind,)).artifacts[kind]

    def artifact_of(self, stored: StoredVersion, kind: str) -> bytes:
        """One artifact of a version already loaded: its metadata, checked then, names the artifact and its
        digest, so it is not read again (each read is a storage round trip, on every cold start)."""
        return self._artifact(stored.name, stored.version, stored.metadata, kind)

    def _artifact(self, name: str, version: str, metadata: dict[str, Any], kind: str) -> bytes:
        where = f"model {name!r} version {version}"
        entry = metadata["artifacts"].get(kind)
        if entry is None:
            raise ArtifactIntegrityError(f"{where} has no {kind} artifact")
        key = self.artifact_key(name, version, kind, entry)
        try:
            data = self._get(key)
        except ObjectNotFoundError:
            raise ArtifactIntegrityError(f"{where}: {kind} artifact is missing") from None
        if _sha256(data) != entry["sha256"]:
            raise ArtifactIntegrityError(f"{where}: {kind} artifact sha256 mismatch; refusing to use it")
        return data

    def read_data(self, key: str) -> bytes:
        """A user's training data, from the same bucket but never from the models' own prefix."""
        return self._get(_check_data_key(key))

    def read_data_tagged(self, key: str) -> tuple[bytes, str | None]:
        """The training data and its S3 ETag (None on a local store, whose tags are not ETags)."""
        data, tag = self._get_tagged(_check_data_key(key))
        return data, tag if self.objects.tags_are_etags else None

    def data_size(self, key: str) -> int:
        """The training data's size, read before the data itself so a file too large is never read."""
        return self.objects.size(_check_data_key(key))

    # --- listing ---------------------------------------------------------------------------------------

    def list_models(self, limit: int = 50, next_token: str | None = None) -> Page:
        """Models by name, with their published version and how many versions each has."""
        start_after = _decode_token(next_token, MODELS_PREFIX)
        listing = self.objects.list_objects(MODELS_PREFIX, start_after=start_after, limit=limit, delimiter="/")
        names = [p[len(MODELS_PREFIX) : -1] for p in listing.prefixes]
        names = [n for n in names if NAME_PATTERN.match(n) and ".." not in n]
        summaries = read_in_parallel(self._summary, names)
        return Page(summaries, _encode_token(listing.next_start_after))

    def _summary(self, name: str) -> ModelSummary:
        pointer = self._pointer_or_none(name)
        return ModelSummary(
            name=name,
            published_version=pointer.version if pointer else None,
            published_at=_published_at(pointer),
            versions=self._count_versions(name),
        )

    def _count_versions(self, name: str) -> int:
        if self._exists(self._format_key(name)):
            return sum(len(page.keys) for page in self._pages(self._records_prefix(name)))
        return len(self._legacy_versions(name))

    def _pages(self, prefix: str, delimiter: str | None = None) -> Iterator[Any]:
        start_after = None
        while True:
            listing = self.objects.list_objects(prefix, start_after=start_after, delimiter=delimiter)
            yield listing
            if listing.next_start_after is None:
                return
            start_after = listing.next_start_after

    def _legacy_versions(self, name: str) -> list[str]:
        """Version folders, newest first (for models whose versions have no records yet)."""
        prefix = self._versions_prefix(name)
        found = [p[len(prefix) : -1] for page in self._pages(prefix, "/") for p in page.prefixes]
        return sorted((v for v in found if VERSION_PATTERN.match(v)), reverse=True)

    def list_versions(self, name: str, limit: int = 20, next_token: str | None = None) -> tuple[Pointer | None, Page]:
        """A model's versions, newest first, each with the fields of LISTED_FIELDS: one read per version."""
        check_name(name)
        pointer = self._pointer_or_none(name)
        if self._exists(self._format_key(name)):
            prefix = self._records_prefix(name)
            start_after = _decode_token(next_token, prefix)
            listing = self.objects.list_objects(prefix, start_after=start_after, limit=limit)
            keys = [k for k in listing.keys if k.endswith(".json")]
            records = read_in_parallel(lambda key: self._parse_record(name, None, self._get(key)), keys)
            token = _encode_token(listing.next_start_after)
        else:
            prefix = self._versions_prefix(name)
            versions = self._legacy_versions(name)
            after = _decode_token(next_token, prefix)
            if after is not None:
                versions = [v for v in versions if self._version_prefix(name, v) < after]
            page, more = versions[:limit], len(versions) > limit
            records = [r for r in read_in_parallel(lambda v: self._legacy_record(name, v), page) if r is not None]
            token = _encode_token(self._version_prefix(name, page[-1])) if more else None
        if pointer is None and not records and next_token is None and not self._has_any_object(name):
            raise ModelNotFoundError(f"model {name!r} does not exist")
        versions_listed = [_listed(record, pointer) for record in records]
        return pointer, Page(versions_listed, token)

    def _legacy_record(self, name: str, version: str) -> dict[str, Any] | None:
        """What a record would hold, read from a pre-registry version's metadata (None if incomplete)."""
        try:
            raw = self._get(self._metadata_key(name, version))
            metadata = orjson.loads(raw)
        except (ObjectNotFoundError, orjson.JSONDecodeError):
            return None
        if not isinstance(metadata, dict) or metadata.get("name") != name or metadata.get("version") != version:
            return None
        return _record_of(metadata, _sha256(raw))

    def _has_any_object(self, name: str) -> bool:
        return bool(self.objects.list_objects(self._model_prefix(name), limit=1).keys)

    def history(self, name: str, limit: int = 50, next_token: str | None = None) -> Page:
        """Changes of the published version, newest first."""
        check_name(name)
        pointer = self._pointer_or_none(name)
        prefix = self._history_prefix(name)
        start_after = _decode_token(next_token, prefix)
        pending = None  # the pointer's own event, when no writer has copied it to history/ yet
        materialised = pointer is None or pointer.event is None or self._exists(self._history_key(name, pointer.seq))
        if next_token is None and not materialised:
            pending = pointer.event
        if pending is not None and limit == 1:
            listing = Listing([], [], prefix if pointer is not None and pointer.seq > 1 else None)
        else:
            listing = self.objects.list_objects(prefix, start_after=start_after, limit=limit - (pending is not None))
        events = read_in_parallel(lambda key: _parse_event(name, self._get(key)), listing.keys)
        if pending is not None:
            events.insert(0, {field: pending.get(field) for field in EVENT_FIELDS})
        if pointer is None and not events and next_token is None and not self._has_any_object(name):
            raise ModelNotFoundError(f"model {name!r} does not exist")
        return Page(events, _encode_token(listing.next_start_after))

    # --- writing (the train function only) --------------------------------------------------------------

    def create_version(
        self, name: str, artifacts: Mapping[str, tuple[str, bytes]], metadata: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Write a new immutable version (not published): artifacts, metadata, then its record. Returns the
        metadata as written. artifacts: {kind: (file name, bytes)}."""
        check_name(name)
        self._refuse_case_twins(name)
        self.adopt_legacy_versions(name)
        version = new_version_id()
        entries: dict[str, dict[str, Any]] = {}
        contents: list[tuple[str, bytes]] = []
        for kind, (file, data) in artifacts.items():
            entry = {"file": file, "sha256": _sha256(data), "bytes": len(data)}
            try:
                key = self.artifact_key(name, version, kind, entry)
            except ArtifactIntegrityError:
                raise ValueError(f"artifact {kind!r} -> {file!r}: not a valid kind and file name") from None
            contents.append((key, data))
            entries[kind] = {**entry, "key": key}
        written = {**metadata, "name": name, "version": version, "created_at": _now(), "artifacts": entries}
        metadata_bytes = _json(written)
        for key, data in contents:
            self.objects.put(key, data)
        self.objects.put(self._metadata_key(name, version), metadata_bytes)
        written = orjson.loads(metadata_bytes)
        record = _record_of(written, _sha256(metadata_bytes))
        self.objects.put(self._record_key(name, version), _json(record), if_none_match=True)  # last: now it exists
        return written

    def _refuse_case_twins(self, name: str) -> None:
        """Names that differ only by case would share files on case-insensitive disks (macOS, Windows): a
        write under one would change or delete the other's files. Checked before every write."""
        folded = name.casefold()
        for page in self._pages(MODELS_PREFIX, "/"):
            for prefix in page.prefixes:
                other = prefix[len(MODELS_PREFIX) : -1]
                if other != name and other.casefold() == folded:
                    raise ModelNameConflictError(
                        f"model {name!r} differs from the existing model {other!r} only by case; names must differ "
                        "by more than case (they would share files on case-insensitive disks): use another name"
                    )

    def adopt_legacy_versions(self, name: str) -> None:
        """Give a record to each version written before the registry (trusting its metadata as it is now,
        except where the pointer's digest says otherwise), then mark the model; idempotent."""
        if self._exists(self._format_key(name)):
            return
        pointer = self._pointer_or_none(name)
        for version in self._legacy_versions(name):
            record = self._legacy_record(name, version)
            if record is None:
                continue
            if (
                pointer is not None
                and pointer.version == version
                and record["metadata_sha256"] != pointer.metadata_sha256
            ):
                continue  # tampered since it was published: no record, so it is never served
            with contextlib.suppress(PreconditionFailedError):
                self.objects.put(self._record_key(name, version), _json(record), if_none_match=True)
        with contextlib.suppress(PreconditionFailedError):
            self.objects.put(self._format_key(name), _json({"format": REGISTRY_FORMAT}), if_none_match=True)

    def publish(
        self,
        name: str,
        version: str,
        *,
        reason: str | None = None,
        request_id: str | None = None,
        expected_version: str | _Unset | None = ANY_VERSION,
        action: str | None = None,
    ) -> PublishResult:
        """Make `version` the published one: a compare-and-swap of the pointer, retried if another writer
        moved it first (unless expected_version says what must be published now)."""
        check_name(name)
        check_version(version)
        self._refuse_case_twins(name)
        self.adopt_legacy_versions(name)
        record = self._record(name, version)
        if record is None:
            raise ModelNotFoundError(f"model {name!r} has no version {version!r}")
        for _ in range(_PUBLISH_ATTEMPTS):
            pointer = self._pointer_or_none(name)
            current = pointer.version if pointer else None
            if expected_version is not ANY_VERSION and expected_version != current:
                raise PublishConflictError(
                    f"model {name!r}: expected_version is {expected_version!r} but {current!r} is published now; "
                    "read the model again and decide"
                )
            if current == version:
                return PublishResult(name, version, version, None)
            if pointer is not None:
                self._copy_event_to_history(name, pointer)
            seq = pointer.seq + 1 if pointer else 1
            event = {
                "version": version,
                "previous_version": current,
                "at": _now(),
                "action": action or ("rollback" if current is not None and version < current else "publish"),
                "reason": reason,
                "request_id": request_id,
            }
            body = {
                "version": version,
                "metadata_sha256": record["metadata_sha256"],
                "published_at": event["at"],
                "seq": seq,
                "event": event,
            }
            if self._record(name, version) is None:  # deleted while we were deciding
                raise ModelNotFoundError(f"model {name!r} has no version {version!r}")
            try:
                if pointer is None:
                    tag = self.objects.put(self._pointer_key(name), _json(body), if_none_match=True)
                else:
                    tag = self.objects.put(self._pointer_key(name), _json(body), if_match=pointer.tag)
            except PreconditionFailedError:
                continue
            written = Pointer(version, record["metadata_sha256"], event["at"], seq, event, tag)
            with contextlib.suppress(StoreError):  # the event is in the pointer; the next writer copies it
                self._copy_event_to_history(name, written)
            return PublishResult(name, version, current, event)
        raise PublishConflictError(f"model {name!r}: the published version kept changing; retry")

    def _copy_event_to_history(self, name: str, pointer: Pointer) -> None:
        if pointer.event is None:
            return
        with contextlib.suppress(PreconditionFailedError):  # already there
            self.objects.put(self._history_key(name, pointer.seq), _json(pointer.event), if_none_match=True)

    def delete_version(self, name: str, version: str) -> None:
        """Delete an unpublished version: its record first (so nothing lists, publishes or serves it), then
        its files. The published version is refused."""
        check_name(name)
        check_version(version)
        self._refuse_case_twins(name)
        self.adopt_legacy_versions(name)
        pointer = self._pointer_or_none(name)
        if pointer is not None and pointer.version == version:
            raise VersionPublishedError(
                f"model {name!r} version {version} is the published version; publish another one first"
            )
        record_key = self._record_key(name, version)
        try:
            record = self._get(record_key)
        except ObjectNotFoundError:
            raise ModelNotFoundError(f"model {name!r} has no version {version!r}") from None
        self.objects.delete(record_key)
        pointer = self._pointer_or_none(name)
        if pointer is not None and pointer.version == version:  # a publish won the race: keep the version
            self.objects.put(record_key, record)
            raise VersionPublishedError(f"model {name!r} version {version} was just published; publish another first")
        for page in self._pages(self._version_prefix(name, version)):
            for key in page.keys:
                self.objects.delete(key)

    def delete_model(self, name: str) -> int:
        """Delete every version, the pointer, the history and the records. Returns how many versions."""
        check_name(name)
        self._refuse_case_twins(name)
        if not self._has_any_object(name):
            raise ModelNotFoundError(f"model {name!r} does not exist")
        versions = self._count_versions(name)
        self.objects.delete(self._pointer_key(name))  # first: from now on nothing serves it
        keys = [key for page in self._pages(self._model_prefix(name)) for key in page.keys]
        for key in keys:
            self.objects.delete(key)
        return versions

    # --- helpers -----------------------------------------------------------------------------------------


def _record_of(metadata: Mapping[str, Any], metadata_sha256: str) -> dict[str, Any]:
    return {
        "version": metadata["version"],
        "metadata_sha256": metadata_sha256,
        **{field: metadata.get(field) for field in LISTED_FIELDS},
    }


def _listed(record: Mapping[str, Any], pointer: Pointer | None) -> dict[str, Any]:
    return {
        "version": record["version"],
        "published": pointer is not None and pointer.version == record["version"],
        **{field: record.get(field) for field in LISTED_FIELDS},
    }


def _published_at(pointer: Pointer | None) -> str | None:
    return pointer.published_at if pointer else None


def _parse_event(name: str, raw: bytes) -> dict[str, Any]:
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        event = None
    if not isinstance(event, dict):
        raise ArtifactIntegrityError(f"model {name!r}: a history event is malformed")
    return {field: event.get(field) for field in EVENT_FIELDS}


def _check_data_key(key: str) -> str:
    """A data key, normalised before any check: never under the service's own prefixes, never outside the bucket."""
    normalised = posixpath.normpath(key) if isinstance(key, str) else ""
    if (
        not DATA_KEY_PATTERN.match(normalised)
        or normalised != key
        or ".." in key
        or "//" in key
        or normalised.startswith((MODELS_PREFIX, JOBS_PREFIX))
    ):
        raise ObjectNotFoundError(f"data_key {key!r} is not a readable data key")
    return key


def _encode_token(start_after: str | None) -> str | None:
    if start_after is None:
        return None
    return base64.urlsafe_b64encode(start_after.encode()).decode()


def _decode_token(token: str | None, prefix: str) -> str | None:
    """A page token this registry gave out for this listing; anything else is the client's mistake (400)."""
    if token is None:
        return None
    try:
        start_after = base64.urlsafe_b64decode(token.encode("ascii")).decode()
    except (binascii.Error, UnicodeError, ValueError):
        start_after = ""
    if not start_after.startswith(prefix):
        raise InvalidRegistryRequestError("next_token is not a token this listing gave out; omit it to start over")
    return start_after


def registry_from_environment(environ: Mapping[str, str] | None = None) -> ModelRegistry:
    """MODEL_STORE_DIR picks a local folder; otherwise MODEL_BUCKET picks the S3 bucket (each call time-bound)."""
    environ = os.environ if environ is None else environ
    if environ.get("MODEL_STORE_DIR"):
        return ModelRegistry(DirectoryObjectStore(environ["MODEL_STORE_DIR"]))
    if environ.get("MODEL_BUCKET"):
        return ModelRegistry(TimeBoundObjectStore(S3ObjectStore(environ["MODEL_BUCKET"])))
    raise RuntimeError("set MODEL_BUCKET (S3) or MODEL_STORE_DIR (a local folder) to say where models live")
