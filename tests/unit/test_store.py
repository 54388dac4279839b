"""The model registry's storage contract, passed by both backends: S3 (moto) and a local directory.

Every line of defence is tested on its own: digests, then names and keys computed (never read) from metadata.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import orjson
import pytest

from deployment_model.ml import artifacts as artifacts_module
from deployment_model.ml.artifacts import (
    MODEL_KINDS,
    BrokenVersionError,
    IncompatibleVersionError,
    load_model,
    model_artifacts,
    model_metadata,
)
from deployment_model.storage.objects import (
    ArtifactIntegrityError,
    DirectoryObjectStore,
    Listing,
    ModelNotFoundError,
    ObjectNotFoundError,
    S3ObjectStore,
    StoreAccessError,
    StoreUnavailableError,
)
from deployment_model.storage.registry import ModelNameConflictError, ModelRegistry

BUCKET = "contract-bucket"


class RecordingObjects:
    """Wraps a backend and records every call, to check write order and count requests."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.location, self.tags_are_etags = inner, inner.location, inner.tags_are_etags
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def _record(self, op: str, key: str) -> None:
        with self._lock:
            self.calls.append((op, key))

    def get(self, key: str) -> bytes:
        self._record("get", key)
        return self.inner.get(key)

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        self._record("get", key)
        return self.inner.get_tagged(key)

    def size(self, key: str) -> int:
        self._record("size", key)
        return self.inner.size(key)

    def put(self, key: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None) -> str:
        self._record("put", key)
        return self.inner.put(key, data, if_none_match=if_none_match, if_match=if_match)

    def delete(self, key: str) -> None:
        self._record("delete", key)
        self.inner.delete(key)

    def list_objects(
        self, prefix: str, *, start_after: str | None = None, limit: int = 1000, delimiter: str | None = None
    ) -> Listing:
        self._record("list", prefix)
        return self.inner.list_objects(prefix, start_after=start_after, limit=limit, delimiter=delimiter)


def store_version(registry: ModelRegistry, trained, name: str = "Model_ml", scaler: str = "scaler") -> dict[str, Any]:
    """What the train function writes: the version (not yet published)."""
    return registry.create_version(
        name, model_artifacts(name, scaler, trained.model, trained.scaler), model_metadata(trained.summary(), scaler)
    )


def publish(registry: ModelRegistry, trained, name: str = "Model_ml", scaler: str = "scaler") -> dict[str, Any]:
    metadata = store_version(registry, trained, name, scaler)
    registry.publish(name, metadata["version"], action="train")
    return metadata


def load(registry: ModelRegistry, name: str = "Model_ml", version: str | None = None):
    return load_model(registry.load(name, version, MODEL_KINDS))


def forge(objects: RecordingObjects, registry: ModelRegistry, metadata: Any, version: str | None = None) -> None:
    """Rewrite a version's metadata AND its record to match: past the digest line, to test the next one."""
    name, version = "Model_ml", version or metadata["version"]
    data = orjson.dumps(metadata)
    objects.put(f"models/{name}/versions/{version}/metadata.json", data)
    record_key = registry._record_key(name, version)
    record = orjson.loads(objects.get(record_key))
    objects.put(record_key, orjson.dumps({**record, "metadata_sha256": hashlib.sha256(data).hexdigest()}))


def test_a_published_version_loads_with_its_metadata(objects: RecordingObjects, trained_iris_model) -> None:
    registry = ModelRegistry(objects)
    metadata = publish(registry, trained_iris_model)
    loaded = load(registry)
    assert loaded.version == metadata["version"]
    rows = loaded.scaler.transform(np.array([[0.7, 1.0], [2.0, 5.5]]))
    assert loaded.model.predict(rows).tolist() == [0, 1]
    assert loaded.feature_names == ["petal_width", "petal_length"]
    assert loaded.labels == ["Not virginica", "virginica"]
    for key in ("created_at", "metrics", "params", "rows", "scaler_name"):
        assert key in metadata
    assert set(metadata["runtime"]) == {"python", "scikit-learn", "numpy", "joblib"}
    for kind in MODEL_KINDS:
        entry = metadata["artifacts"][kind]
        assert hashlib.sha256(objects.get(entry["key"])).hexdigest() == entry["sha256"]


def test_artifacts_are_kept_by_kind_under_the_names_the_request_gives(
    objects: RecordingObjects, trained_iris_model
) -> None:
    metadata = store_version(ModelRegistry(objects), trained_iris_model, name="Iris", scaler="iris")
    prefix = f"models/Iris/versions/{metadata['version']}/"
    assert metadata["artifacts"]["model"]["key"] == prefix + "model/Iris.joblib"
    assert metadata["artifacts"]["scaler"]["key"] == prefix + "scaler/iris.joblib"


def test_model_and_scaler_never_share_a_name(objects: RecordingObjects, trained_iris_model) -> None:
    with pytest.raises(ValueError, match="must differ"):
        store_version(ModelRegistry(objects), trained_iris_model, name="same", scaler="same")
    assert objects.calls == []


def test_the_record_is_written_after_the_version_and_the_pointer_last(
    objects: RecordingObjects, trained_iris_model
) -> None:
    publish(ModelRegistry(objects), trained_iris_model)
    puts = [key for op, key in objects.calls if op == "put"]
    assert puts.index(next(k for k in puts if k.endswith("metadata.json"))) > max(
        puts.index(k) for k in puts if k.endswith(".joblib")
    ), puts
    record = next(k for k in puts if "/records/" in k)
    assert puts.index(record) > puts.index(next(k for k in puts if k.endswith("metadata.json")))
    assert puts.index("models/Model_ml/latest.json") > puts.index(record)


def test_every_run_is_a_new_version_and_old_ones_stay(objects: RecordingObjects, trained_iris_model) -> None:
    registry = ModelRegistry(objects)
    first, second = publish(registry, trained_iris_model), publish(registry, trained_iris_model)
    assert first["version"] != second["version"]
    assert registry.published("Model_ml").version == second["version"]
    assert load(registry, version=first["version"]).version == first["version"]


def test_a_run_that_dies_before_its_record_is_never_listed_published_or_served(
    objects: RecordingObjects, trained_iris_model
) -> None:
    registry = ModelRegistry(objects)
    good = publish(registry, trained_iris_model)

    class DiesOnRecord(RecordingObjects):
        def put(self, key: str, data: bytes, **conditions: Any) -> str:
            if "/records/" in key:
                raise TimeoutError("Lambda timed out")
            return super().put(key, data, **conditions)

    with pytest.raises(TimeoutError):
        store_version(ModelRegistry(DiesOnRecord(objects)), trained_iris_model)
    assert load(registry).version == good["version"]
    _, page = registry.list_versions("Model_ml")
    assert [v["version"] for v in page.items] == [good["version"]]


def test_unknown_model_and_version_are_not_found(objects: RecordingObjects, trained_iris_model) -> None:
    registry = ModelRegistry(objects)
    with pytest.raises(ModelNotFoundError, match="has not been trained"):
        registry.load("nobody")
    publish(registry, trained_iris_model)
    with pytest.raises(ModelNotFoundError, match="no version"):
        registry.load("Model_ml", "20200101T000000000000Z-00000000")


class _Exploit:
    """Unpickling this would create a file: proof that unverified bytes were unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("kind", ["model", "scaler"])
@pytest.mark.parametrize("which", ["latest", "pinned"])
def test_a_tampered_artifact_is_refused_before_unpickling(
    objects: RecordingObjects, trained_iris_model, kind: str, which: str, tmp_path: Path
) -> None:
    registry = ModelRegistry(objects)
    metadata = publish(registry, trained_iris_model)
    marker = tmp_path / "unpickled"
    objects.put(metadata["artifacts"][kind]["key"], pickle.dumps(_Exploit(str(marker))))
    version = metadata["version"] if which == "pinned" else None
    with pytest.raises(ArtifactIntegrityError, match=f"version {metadata['version']}: {kind} artifact sha256"):
        load(registry, version=version)
    assert not marker.exists()


@pytest.mark.parametrize("which", ["latest", "pinned"])
@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda m: {**m, "labels": m["labels"][::-1]}, id="reversed-labels"),
        pytest.param(lambda m: {**m, "runtime": {**m["runtime"], "scikit-learn": "0.24.2"}}, id="rewritten-runtime"),
    ],
)
def test_one_write_to_any_versions_metadata_is_refused(
    objects: RecordingObjects, trained_iris_model, which, tamper
) -> None:
    registry = ModelRegistry(objects)
    older = publish(registry, trained_iris_model)
    newer = publish(registry, trained_iris_model)
    target = older if which == "pinned" else newer
    objects.put(f"models/Model_ml/versions/{target['version']}/metadata.json", orjson.dumps(tamper(target)))
    with pytest.raises(ArtifactIntegrityError, match="metadata sha256 mismatch"):
        load(registry, version=older["version"] if which == "pinned" else None)


def test_metadata_naming_another_model_or_version_is_refused(objects: RecordingObjects, trained_iris_model) -> None:
    registry = ModelRegistry(objects)
    older, newer = publish(registry, trained_iris_model), publish(registry, trained_iris_model)
    forge(objects, registry, {**older, "version": newer["version"]}, older["version"])
    with pytest.raises(ArtifactIntegrityError, match="names another model or version"):
        load(registry, version=older["version"])
    forge(objects, registry, {**older, "name": "Other"}, older["version"])
    with pytest.raises(ArtifactIntegrityError, match="names another model or version"):
        load(registry, version=older["version"])


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(lambda v, w: {"key": f"models/Model_ml/versions/{v}/../{w}/model/Model_ml.joblib"}, id="dot-dot"),
        pytest.param(lambda v, w: {"key": f"models/Model_ml/versions/{w}/model/Model_ml.joblib"}, id="other-version"),
        pytest.param(lambda v, w: {"key": "data/upload.joblib", "file": None}, id="data-prefix"),
        pytest.param(lambda v, w: {"file": "../../../data/upload.joblib"}, id="dot-dot-file"),
    ],
)
def test_an_artifact_key_outside_its_version_folder_is_refused(
    objects: RecordingObjects, trained_iris_model, entry
) -> None:
    registry = ModelRegistry(objects)
    older, newer = publish(registry, trained_iris_model), publish(registry, trained_iris_model)
    objects.put("data/upload.joblib", objects.get(newer["artifacts"]["model"]["key"]))
    model_entry = {**older["artifacts"]["model"], **newer["artifacts"]["model"]}
    model_entry.update(entry(older["version"], newer["version"]))
    model_entry = {k: v for k, v in model_entry.items() if v is not None}
    forge(objects, registry, {**older, "artifacts": {**older["artifacts"], "model": model_entry}})
    with pytest.raises(ArtifactIntegrityError, match=r"model artifact (lies outside its version folder|has no valid)"):
        load(registry, version=older["version"])


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda m: {k: v for k, v in m.items() if k != "labels"}, id="no-labels"),
        pytest.param(lambda m: {**m, "labels": ["only one"]}, id="one-label"),
        pytest.param(lambda m: {**m, "labels": [1, 2]}, id="labels-not-strings"),
        pytest.param(lambda m: {**m, "feature_names": "petal_width"}, id="features-not-a-list"),
        pytest.param(lambda m: {**m, "scaler_name": None}, id="no-scaler-name"),
        pytest.param(lambda m: {**m, "labels": ["a", "b", "c"]}, id="labels-not-the-classes"),
    ],
)
def test_broken_metadata_is_a_conflict_not_a_crash(objects: RecordingObjects, trained_iris_model, broken) -> None:
    registry = ModelRegistry(objects)
    metadata = publish(registry, trained_iris_model)
    forge(objects, registry, broken(metadata))
    with pytest.raises(BrokenVersionError):
        load(registry, version=metadata["version"])


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda m: {**m, "artifacts": "none"}, id="artifacts-not-a-mapping"),
        pytest.param(lambda m: {**m, "artifacts": {"model": {"sha256": 5}}}, id="digest-not-a-string"),
        pytest.param(lambda m: [m], id="not-an-object"),
    ],
)
def test_broken_artifact_lists_are_integrity_errors(objects: RecordingObjects, trained_iris_model, broken) -> None:
    registry = ModelRegistry(objects)
    metadata = publish(registry, trained_iris_model)
    forge(objects, registry, broken(metadata), metadata["version"])
    with pytest.raises(ArtifactIntegrityError):
        load(registry, version=metadata["version"])


@pytest.mark.parametrize("pointer", [b"not json", b"[1]", b'{"version": "../x"}', b'{"version": 3}'])
def test_a_malformed_pointer_is_an_integrity_error_not_not_found(
    objects: RecordingObjects, trained_iris_model, pointer: bytes
) -> None:
    registry = ModelRegistry(objects)
    publish(registry, trained_iris_model)
    objects.put("models/Model_ml/latest.json", pointer)
    with pytest.raises(ArtifactIntegrityError, match="pointer"):
        registry.load("Model_ml")


def test_other_scikit_learn_versions_are_refused(
    objects: RecordingObjects, trained_iris_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = ModelRegistry(objects)
    publish(registry, trained_iris_model)
    serving = {**artifacts_module.runtime_versions(), "scikit-learn": "0.24.2"}
    monkeypatch.setattr(artifacts_module, "runtime_versions", lambda: serving)
    with pytest.raises(IncompatibleVersionError, match=r"trained with scikit-learn .* \(serving 0\.24\.2\)"):
        load(registry)


@pytest.mark.parametrize(
    "key",
    [
        "models/Model_ml/latest.json",
        "data/../models/Model_ml/latest.json",
        "./models/Model_ml/latest.json",
        "data/./../models/Model_ml/latest.json",
        "../outside.csv",
        "data/../../outside.csv",
        "/abs",
        "data//x.csv",
    ],
)
def test_training_data_cannot_be_read_from_the_models_prefix_or_outside(
    objects: RecordingObjects, trained_iris_model, key: str, tmp_path: Path
) -> None:
    registry = ModelRegistry(objects)
    publish(registry, trained_iris_model)  # the store HOLDS what the keys aim at: absence cannot pass for refusal
    (tmp_path / "outside.csv").write_text("a,b\n1,2\n")
    with contextlib.suppress(ObjectNotFoundError):  # S3 takes the key literally; a folder refuses to leave its root
        objects.put(key, b"secret")
    objects.put("data/x.csv", b"a,b\n1,2\n")
    assert registry.read_data("data/x.csv") == b"a,b\n1,2\n"
    assert objects.get("models/Model_ml/latest.json")
    objects.calls.clear()
    with pytest.raises(ObjectNotFoundError, match="not a readable data key"):
        registry.read_data(key)
    assert objects.calls == []  # refused before any read


def test_directory_store_never_leaves_its_root(tmp_path: Path) -> None:
    objects = DirectoryObjectStore(tmp_path / "root")
    (tmp_path / "secret").write_text("x")
    with pytest.raises(ObjectNotFoundError):
        objects.get("../secret")


def test_directory_writes_are_atomic_renames(tmp_path: Path) -> None:
    objects = DirectoryObjectStore(tmp_path)
    objects.put("a/b.bin", b"1" * 10)
    objects.put("a/b.bin", b"2" * 10)
    assert objects.get("a/b.bin") == b"2" * 10
    assert os.listdir(tmp_path / "a") == ["b.bin"]  # no temporary files left behind


def quick_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        config=boto3.session.Config(connect_timeout=0.5, read_timeout=0.5, retries={"max_attempts": 1}),
    )


def test_unreachable_s3_is_unavailable_not_a_crash() -> None:
    with socket.socket() as s:  # a port nothing listens on once this socket closes
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(StoreUnavailableError, match="could not be reached"):
        S3ObjectStore(BUCKET, client=quick_client(endpoint)).get("models/x/latest.json")


@pytest.fixture
def bare_500_server() -> Iterator[str]:
    """Answers every request 500 with an empty body: no S3 error code to go by."""

    class Bare500(BaseHTTPRequestHandler):
        def _fail(self) -> None:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _fail

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Bare500)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_bare_500_from_s3_is_unavailable(bare_500_server: str) -> None:
    registry = ModelRegistry(S3ObjectStore(BUCKET, client=quick_client(bare_500_server)))
    with pytest.raises(StoreUnavailableError):
        registry.published("Model_ml")
    with pytest.raises(StoreUnavailableError):
        registry.list_models()


# --- case-insensitive disks (macOS, Windows): names differing only by case must not lose data ----------


def case_insensitive_path(self: DirectoryObjectStore, key: str) -> Path:
    """Resolve a key as a case-insensitive, case-preserving disk does: an existing entry of any case is reused."""
    path = self.root
    for part in key.split("/"):
        if path.is_dir():
            part = next((entry.name for entry in path.iterdir() if entry.name.lower() == part.lower()), part)
        path = path / part
    path = path.resolve()
    if not path.is_relative_to(self.root) or path == self.root:
        raise ObjectNotFoundError(f"key {key!r} is outside the store")
    return path


@pytest.fixture
def case_insensitive_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DirectoryObjectStore, "_path", case_insensitive_path)


def test_the_simulated_disk_folds_case(case_insensitive_disk: None, tmp_path: Path) -> None:
    objects = DirectoryObjectStore(tmp_path)
    objects.put("models/Iris/a", b"1")
    assert objects.get("MODELS/iris/A") == b"1"


def test_a_model_and_its_scaler_differing_by_case_both_survive(case_insensitive_disk: None, local_service) -> None:
    trained = local_service.train({"filename_model": "Iris", "filename_scaler": "iris"})
    assert trained["statusCode"] == 200
    answer = local_service.predict({"x_test": [2.0, 5.5], "filename_model": "Iris"})
    assert answer["statusCode"] == 200 and answer["result"] == "virginica", answer


def test_models_differing_only_by_case_are_refused_not_merged(case_insensitive_disk: None, local_service) -> None:
    first = local_service.train({"filename_model": "flowers"})["model_version"]
    clash = local_service.train({"filename_model": "Flowers", "candidates": ["sgd"]})
    assert clash["statusCode"] == 409 and "flowers" in clash["message"], clash
    assert local_service.predict({"x_test": [1, 2], "filename_model": "flowers"})["model_version"] == first
    registry = local_service.train_module.registry
    for write in (lambda: registry.delete_model("FLOWERS"), lambda: registry.delete_version("Flowers", first)):
        with pytest.raises(ModelNameConflictError):  # on this disk they would reach flowers' files
            write()
    assert local_service.predict({"x_test": [1, 2], "filename_model": "flowers"})["model_version"] == first


def test_the_rule_holds_on_any_disk(objects: RecordingObjects, trained_iris_model) -> None:
    registry = ModelRegistry(objects)
    store_version(registry, trained_iris_model, name="flowers")
    with pytest.raises(ModelNameConflictError, match="differs from the existing model 'flowers' only by case"):
        store_version(registry, trained_iris_model, name="Flowers")
    store_version(registry, trained_iris_model, name="flowers2")  # names differing by more than case are fine


class ForbidsMissingKeys(RecordingObjects):
    """S3 as a role without an unconditional s3:ListBucket sees it: a read of a missing key is a 403."""

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        try:
            return super().get_tagged(key)
        except ObjectNotFoundError:
            raise StoreAccessError(f"s3://bucket refused access to {key!r}: AccessDenied") from None

    def get(self, key: str) -> bytes:
        return self.get_tagged(key)[0]


def test_a_missing_key_is_not_found_even_where_s3_answers_403(objects: RecordingObjects, trained_iris_model) -> None:
    publish(ModelRegistry(objects), trained_iris_model)
    registry = ModelRegistry(ForbidsMissingKeys(objects.inner))
    with pytest.raises(ModelNotFoundError, match="has not been trained"):
        registry.published("unknown")
    with pytest.raises(ModelNotFoundError, match="no version"):
        registry.load("Model_ml", "20200101T000000000000Z-00000000")
    assert load(registry).name == "Model_ml"
