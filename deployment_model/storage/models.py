"""Model storage: immutable versions published by a pointer written last.

Layout, the same in S3 and in a local directory:

    models/<name>/versions/<version>/<name>.joblib      the classifier
    models/<name>/versions/<version>/<scaler>.joblib    the scaler fitted in the same run
    models/<name>/versions/<version>/report*.{json,png} the training report, when trained with one
    models/<name>/versions/<version>/metadata.json      sha256 of each artifact, library versions, metrics, ...
    models/<name>/latest.json                           {"version", "metadata_sha256"}: written LAST

A reader follows pointer -> metadata (digest checked) -> artifacts (digests checked) -> unpickle, so it
never serves a half-written run, never pairs a model with another run's scaler, and never unpickles bytes
this service did not write.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import re
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import joblib
import numpy
import orjson
import sklearn

from deployment_model.storage.objects import (
    ArtifactIntegrityError,
    DirectoryObjectStore,
    IncompatibleModelError,
    ModelNotFoundError,
    ObjectNotFoundError,
    ObjectStore,
    S3ObjectStore,
)

MODELS_PREFIX = "models/"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
VERSION_PATTERN = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{8}$")
DATA_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/=+-]{0,1023}$")


@dataclass(frozen=True)
class LoadedModel:
    """A verified, unpickled model version: the classifier, its own scaler, and their metadata."""

    name: str
    version: str
    model: Any
    scaler: Any
    metadata: dict[str, Any]

    # Derived once per loaded version (cached), not on every prediction.
    @cached_property
    def feature_names(self) -> list[str]:
        return list(self.metadata["feature_names"])

    @cached_property
    def labels(self) -> list[str]:
        return list(self.metadata["labels"])

    @cached_property
    def label_array(self) -> numpy.ndarray:
        """The labels as an array, so a batch of class indexes maps to labels in one numpy operation."""
        return numpy.asarray(self.labels, dtype=object)


def runtime_versions() -> dict[str, str]:
    """The library versions an artifact depends on; a pickle is only safe to load under the same ones."""
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "joblib": joblib.__version__,
    }


def new_version_id(now: datetime | None = None) -> str:
    """Sortable by time, unique across concurrent trainings: 20261124T123456123456Z-1a2b3c4d."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(4)}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dump(obj: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


class ModelStore:
    """Versioned models on top of an ObjectStore; the versioning rules live here once for both backends."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    @staticmethod
    def _version_prefix(name: str, version: str) -> str:
        return f"{MODELS_PREFIX}{name}/versions/{version}/"

    @staticmethod
    def _pointer_key(name: str) -> str:
        return f"{MODELS_PREFIX}{name}/latest.json"

    def publish(
        self,
        name: str,
        scaler_name: str,
        model: Any,
        scaler: Any,
        details: Mapping[str, Any],
        extra_artifacts: Mapping[str, tuple[str, bytes]] | None = None,
    ) -> dict[str, Any]:
        """Write a new immutable version, then point `latest` at it. Returns the version's metadata.

        extra_artifacts: {kind: (filename, bytes)} stored in the version's folder with their digests (the
        training report); read back with read_artifacts.
        """
        _check_name(name, "filename_model")
        _check_name(scaler_name, "filename_scaler")
        if scaler_name == name:
            raise ValueError("the scaler's name must differ from the model's: they are two artifacts")
        version = new_version_id()
        prefix = self._version_prefix(name, version)
        contents = {
            "model": (f"{prefix}{name}.joblib", _dump(model)),
            "scaler": (f"{prefix}{scaler_name}.joblib", _dump(scaler)),
        }
        for kind, (filename, data) in (extra_artifacts or {}).items():
            reserved = filename == "metadata.json" or filename.endswith(".joblib")  # the model's own files
            if kind in contents or reserved or not NAME_PATTERN.match(filename) or ".." in filename:
                raise ValueError(f"extra artifact {kind!r} ({filename!r}) needs its own kind and file name")
            contents[kind] = (f"{prefix}{filename}", data)
        artifacts = {
            kind: {"key": key, "sha256": _sha256(data), "bytes": len(data)} for kind, (key, data) in contents.items()
        }
        metadata = {
            **details,
            "name": name,
            "version": version,
            "scaler_name": scaler_name,
            "created_at": datetime.now(UTC).isoformat(),
            "artifacts": artifacts,
            "runtime": runtime_versions(),
        }
        metadata_bytes = orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)
        for key, data in contents.values():
            self.objects.put(key, data)
        self.objects.put(f"{prefix}metadata.json", metadata_bytes)
        pointer = {"version": version, "metadata_sha256": _sha256(metadata_bytes)}
        self.objects.put(self._pointer_key(name), orjson.dumps(pointer))  # last: this publishes the version
        return orjson.loads(metadata_bytes)

    def latest_pointer(self, name: str) -> dict[str, str]:
        """The small object read to learn whether a newer version was published."""
        _check_name(name, "filename_model")
        try:
            pointer = orjson.loads(self.objects.get(self._pointer_key(name)))
        except ObjectNotFoundError:
            raise ModelNotFoundError(f"model {name!r} has not been trained yet") from None
        except orjson.JSONDecodeError:
            raise ArtifactIntegrityError(f"model {name!r}: its latest-version pointer is not valid JSON") from None
        if not isinstance(pointer, dict) or not VERSION_PATTERN.match(str(pointer.get("version", ""))):
            raise ArtifactIntegrityError(f"model {name!r}: its latest-version pointer is malformed")
        return pointer

    def load(self, name: str, version: str | None = None, metadata_sha256: str | None = None) -> LoadedModel:
        """Load a version (the published one when None), verifying every digest before unpickling.

        metadata_sha256 comes from the pointer; a caller that already read the pointer passes it on.
        """
        if version is None:
            pointer = self.latest_pointer(name)
            version, metadata_sha256 = pointer["version"], pointer.get("metadata_sha256")
        metadata = self.load_metadata(name, version, metadata_sha256)
        _check_compatible(metadata)
        model = self._load_artifact(metadata, "model")
        scaler = self._load_artifact(metadata, "scaler")
        return LoadedModel(name=name, version=version, model=model, scaler=scaler, metadata=metadata)

    def load_metadata(self, name: str, version: str, expected_sha256: str | None = None) -> dict[str, Any]:
        _check_name(name, "filename_model")
        if not VERSION_PATTERN.match(version):
            raise ModelNotFoundError(f"model {name!r} has no version {version!r}")
        try:
            raw = self.objects.get(f"{self._version_prefix(name, version)}metadata.json")
        except ObjectNotFoundError:
            raise ModelNotFoundError(f"model {name!r} has no version {version!r}") from None
        if expected_sha256 is not None and _sha256(raw) != expected_sha256:
            raise ArtifactIntegrityError(f"model {name!r} version {version}: metadata sha256 mismatch")
        try:
            metadata = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ArtifactIntegrityError(f"model {name!r} version {version}: metadata is not valid JSON") from None
        if metadata.get("name") != name or metadata.get("version") != version:
            raise ArtifactIntegrityError(f"model {name!r} version {version}: metadata names another model")
        return metadata

    def read_artifacts(self, name: str, version: str, kinds: Collection[str]) -> dict[str, bytes]:
        """Some of a version's artifacts as verified bytes (digests checked); kinds the version lacks are left out."""
        metadata = self.load_metadata(name, version)
        return {kind: self._read_artifact(metadata, kind) for kind in kinds if kind in metadata.get("artifacts", {})}

    def _load_artifact(self, metadata: dict[str, Any], kind: str) -> Any:
        return joblib.load(io.BytesIO(self._read_artifact(metadata, kind)))

    def _read_artifact(self, metadata: dict[str, Any], kind: str) -> bytes:
        entry = metadata["artifacts"][kind]
        where = f"model {metadata['name']!r} version {metadata['version']}"
        prefix = self._version_prefix(metadata["name"], metadata["version"])
        if not str(entry["key"]).startswith(prefix):
            raise ArtifactIntegrityError(f"{where}: {kind} artifact lies outside its version folder")
        try:
            data = self.objects.get(entry["key"])
        except ObjectNotFoundError:
            raise ArtifactIntegrityError(f"{where}: {kind} artifact is missing") from None
        if _sha256(data) != entry["sha256"]:
            raise ArtifactIntegrityError(f"{where}: {kind} artifact sha256 mismatch; refusing to read it")
        return data

    def read_data(self, key: str) -> bytes:
        """A user's training data, from the same bucket but never from the models' own prefix."""
        _check_data_key(key)
        return self.objects.get(key)

    def read_data_tagged(self, key: str) -> tuple[bytes, str | None]:
        """The training data and its S3 ETag (None on a local store, whose tags are not ETags)."""
        _check_data_key(key)
        data, tag = self.objects.get_tagged(key)
        return data, tag if isinstance(self.objects, S3ObjectStore) else None

    def data_size(self, key: str) -> int:
        """The training data's size, read before the data itself so a file too large is never read."""
        _check_data_key(key)
        return self.objects.size(key)


def _check_data_key(key: str) -> None:
    if not DATA_KEY_PATTERN.match(key) or ".." in key or "//" in key or key.startswith(MODELS_PREFIX):
        raise ObjectNotFoundError(f"data_key {key!r} is not a readable data key")


def _check_name(name: str, field: str) -> None:
    if not NAME_PATTERN.match(name) or ".." in name:
        raise ModelNotFoundError(f"{field} {name!r} is not a valid name")


def _check_compatible(metadata: dict[str, Any]) -> None:
    trained_with = metadata.get("runtime", {}).get("scikit-learn")
    serving = runtime_versions()["scikit-learn"]
    if trained_with != serving:
        raise IncompatibleModelError(
            f"model {metadata['name']!r} version {metadata['version']} was trained with scikit-learn "
            f"{trained_with} (serving {serving}); retrain it or pin a version trained with the serving libraries"
        )


def store_from_environment(environ: Mapping[str, str] | None = None) -> ModelStore:
    """MODEL_STORE_DIR picks a local folder; otherwise MODEL_BUCKET picks the S3 bucket."""
    environ = os.environ if environ is None else environ
    if environ.get("MODEL_STORE_DIR"):
        return ModelStore(DirectoryObjectStore(environ["MODEL_STORE_DIR"]))
    if environ.get("MODEL_BUCKET"):
        return ModelStore(S3ObjectStore(environ["MODEL_BUCKET"]))
    raise RuntimeError("set MODEL_BUCKET (S3) or MODEL_STORE_DIR (a local folder) to say where models live")
