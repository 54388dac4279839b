"""The model store contract, passed by both backends: S3 (moto) and a local directory."""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import orjson
import pytest
from moto import mock_aws

from deployment_model.ml.training import iris_dataset, train_model
from deployment_model.storage import models as store_module
from deployment_model.storage.models import ModelStore
from deployment_model.storage.objects import (
    ArtifactIntegrityError,
    DirectoryObjectStore,
    IncompatibleModelError,
    ModelNotFoundError,
    ObjectNotFoundError,
    S3ObjectStore,
    StoreUnavailableError,
)

BUCKET = "contract-bucket"


class RecordingObjects:
    """Wraps a backend and records every call, to check write order and count reads."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.location, self.calls = inner, inner.location, []

    def get(self, key: str) -> bytes:
        self.calls.append(("get", key))
        return self.inner.get(key)

    def put(self, key: str, data: bytes) -> None:
        self.calls.append(("put", key))
        self.inner.put(key, data)


@pytest.fixture(params=["s3", "directory"])
def objects(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordingObjects]:
    if request.param == "directory":
        yield RecordingObjects(DirectoryObjectStore(tmp_path / "store"))
        return
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield RecordingObjects(S3ObjectStore(BUCKET, client=client))


@pytest.fixture(scope="module")
def trained():
    return train_model(iris_dataset())


def publish(store: ModelStore, trained, name: str = "Model_ml", scaler: str = "scaler") -> dict[str, Any]:
    return store.publish(name, scaler, trained.model, trained.scaler, trained.summary())


def test_missing_object_is_not_found(objects: RecordingObjects) -> None:
    with pytest.raises(ObjectNotFoundError):
        objects.get("models/none/latest.json")


def test_put_then_get_round_trips_bytes(objects: RecordingObjects) -> None:
    objects.put("data/x.csv", b"a,b\n1,2\n")
    assert objects.get("data/x.csv") == b"a,b\n1,2\n"


def test_published_version_loads_with_its_metadata(objects: RecordingObjects, trained) -> None:
    store = ModelStore(objects)
    metadata = publish(store, trained)
    loaded = store.load("Model_ml")
    assert loaded.version == metadata["version"]
    rows = loaded.scaler.transform(np.array([[0.7, 1.0], [2.0, 5.5]]))
    assert loaded.model.predict(rows).tolist() == [0, 1]
    assert loaded.feature_names == ["petal_width", "petal_length"]
    assert loaded.labels == ["Not virginica", "virginica"]
    for key in ("created_at", "metrics", "params", "rows", "scaler_name"):
        assert key in metadata
    assert set(metadata["runtime"]) == {"python", "scikit-learn", "numpy", "joblib"}
    for kind in ("model", "scaler"):
        entry = metadata["artifacts"][kind]
        assert hashlib.sha256(objects.get(entry["key"])).hexdigest() == entry["sha256"]


def test_artifacts_are_saved_under_the_names_the_request_gives(objects: RecordingObjects, trained) -> None:
    metadata = publish(ModelStore(objects), trained, name="Model_ml", scaler="scaler")
    prefix = f"models/Model_ml/versions/{metadata['version']}/"
    assert metadata["artifacts"]["model"]["key"] == prefix + "Model_ml.joblib"
    assert metadata["artifacts"]["scaler"]["key"] == prefix + "scaler.joblib"


def test_model_and_scaler_never_share_a_key(objects: RecordingObjects, trained) -> None:
    with pytest.raises(ValueError, match="must differ"):
        publish(ModelStore(objects), trained, name="same", scaler="same")
    assert objects.calls == []


def test_the_pointer_is_written_last(objects: RecordingObjects, trained) -> None:
    publish(ModelStore(objects), trained)
    puts = [key for op, key in objects.calls if op == "put"]
    assert len(puts) == 4
    assert puts[-1] == "models/Model_ml/latest.json"
    assert puts[-2].endswith("/metadata.json")


def test_every_run_is_a_new_version_and_old_ones_stay(objects: RecordingObjects, trained) -> None:
    store = ModelStore(objects)
    first, second = publish(store, trained), publish(store, trained)
    assert first["version"] != second["version"]
    assert store.latest_pointer("Model_ml")["version"] == second["version"]
    assert store.load("Model_ml", first["version"]).version == first["version"]


def test_a_run_that_dies_before_the_pointer_is_never_served(objects: RecordingObjects, trained) -> None:
    store = ModelStore(objects)
    good = publish(store, trained)

    class DiesOnPointer(RecordingObjects):
        def put(self, key: str, data: bytes) -> None:
            if key.endswith("latest.json"):
                raise TimeoutError("Lambda timed out")
            super().put(key, data)

    with pytest.raises(TimeoutError):
        publish(ModelStore(DiesOnPointer(objects)), trained)
    assert store.load("Model_ml").version == good["version"]


def test_unknown_model_and_version_are_not_found(objects: RecordingObjects, trained) -> None:
    store = ModelStore(objects)
    with pytest.raises(ModelNotFoundError, match="has not been trained"):
        store.load("nobody")
    publish(store, trained)
    with pytest.raises(ModelNotFoundError, match="no version"):
        store.load("Model_ml", "20200101T000000000000Z-00000000")


class _Exploit:
    """Unpickling this would create a file: proof that unverified bytes were unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("kind", ["model", "scaler"])
def test_tampered_artifact_is_refused_before_unpickling(
    objects: RecordingObjects, trained, kind: str, tmp_path: Path
) -> None:
    store = ModelStore(objects)
    metadata = publish(store, trained)
    marker = tmp_path / "unpickled"
    objects.put(metadata["artifacts"][kind]["key"], pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(ArtifactIntegrityError, match=f"version {metadata['version']}: {kind} artifact sha256"):
        store.load("Model_ml")
    assert not marker.exists()


def test_tampered_metadata_is_refused(objects: RecordingObjects, trained) -> None:
    store = ModelStore(objects)
    metadata = publish(store, trained)
    key = f"models/Model_ml/versions/{metadata['version']}/metadata.json"
    forged = {
        **metadata,
        "artifacts": {**metadata["artifacts"], "model": {**metadata["artifacts"]["model"], "sha256": "0" * 64}},
    }
    objects.put(key, orjson.dumps(forged))
    with pytest.raises(ArtifactIntegrityError, match="metadata sha256 mismatch"):
        store.load("Model_ml")


def test_other_scikit_learn_versions_are_refused(
    objects: RecordingObjects, trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ModelStore(objects)
    publish(store, trained)
    serving = {**store_module.runtime_versions(), "scikit-learn": "0.24.2"}
    monkeypatch.setattr(store_module, "runtime_versions", lambda: serving)
    with pytest.raises(IncompatibleModelError, match=r"trained with scikit-learn .* \(serving 0\.24\.2\)"):
        store.load("Model_ml")


@pytest.mark.parametrize("key", ["models/Model_ml/latest.json", "../etc/passwd", "data/../models/x", "/abs", "a//b"])
def test_training_data_cannot_be_read_from_the_models_prefix_or_outside(objects: RecordingObjects, key: str) -> None:
    with pytest.raises(ObjectNotFoundError):
        ModelStore(objects).read_data(key)


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


def test_unreachable_s3_is_unavailable_not_a_crash() -> None:
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",  # discard port: nothing listens
        config=boto3.session.Config(connect_timeout=0.5, read_timeout=0.5, retries={"max_attempts": 1}),
    )
    with pytest.raises(StoreUnavailableError, match="could not be reached"):
        S3ObjectStore(BUCKET, client=client).get("models/x/latest.json")


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
