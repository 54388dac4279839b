"""Every version as trusted as the latest (issue 15.5), through the handlers: one write to the bucket
never changes what a pinned or latest predict answers; it is refused (409) instead."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Service


def version_dir(service_store: Path, name: str, version: str) -> Path:
    return service_store / "models" / name / "versions" / version


def rewrite_metadata(path: Path, change: Any) -> None:
    metadata = json.loads(path.read_text())
    change(metadata)
    path.write_text(json.dumps(metadata))


@pytest.fixture
def two_versions(local_service: Service) -> tuple[str, str]:
    old = local_service.train({})["model_version"]
    new = local_service.train({"candidates": ["knn"]})["model_version"]
    return old, new


def store_root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.mark.parametrize("which", ["pinned", "latest"])
@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda m: m.__setitem__("labels", m["labels"][::-1]), id="reversed-labels"),
        pytest.param(lambda m: m["runtime"].__setitem__("scikit-learn", "9.9.9"), id="rewritten-runtime"),
    ],
)
def test_one_write_to_a_versions_metadata_is_refused(
    local_service: Service, two_versions: tuple[str, str], tmp_path: Path, which: str, tamper: Any
) -> None:
    old, new = two_versions
    target = old if which == "pinned" else new
    rewrite_metadata(version_dir(store_root(tmp_path), "Model_ml", target) / "metadata.json", tamper)
    request: dict[str, Any] = {"x_test": [[0.7, 1], [2.0, 5.5]]}
    if which == "pinned":
        request["model_version"] = old
    answer = local_service.predict(request)
    assert answer["statusCode"] == 409, answer
    assert answer["error"] == "model_integrity_error" and target in answer["message"]


def test_an_artifact_key_escaping_its_version_folder_is_refused(
    local_service: Service, two_versions: tuple[str, str], tmp_path: Path
) -> None:
    old, new = two_versions
    root = store_root(tmp_path)
    new_model = next(p for p in version_dir(root, "Model_ml", new).rglob("*.joblib") if "scaler" not in p.name)
    escaping = f"models/Model_ml/versions/{old}/../{new}/{new_model.relative_to(version_dir(root, 'Model_ml', new))}"
    digest = hashlib.sha256(new_model.read_bytes()).hexdigest()

    def point_elsewhere(metadata: dict[str, Any]) -> None:
        metadata["artifacts"]["model"].update(key=escaping, sha256=digest, file=new_model.name)

    rewrite_metadata(version_dir(root, "Model_ml", old) / "metadata.json", point_elsewhere)
    answer = local_service.predict({"x_test": [0.7, 1], "model_version": old})
    assert answer["statusCode"] == 409 and answer["error"] == "model_integrity_error", answer


@pytest.mark.parametrize("pointer", ['{"version": "../../x"}', "not json", '{"version": null}'])
def test_a_malformed_pointer_is_a_conflict_not_an_unknown_model(
    local_service: Service, two_versions: tuple[str, str], tmp_path: Path, pointer: str
) -> None:
    (store_root(tmp_path) / "models" / "Model_ml" / "latest.json").write_text(pointer)
    answer = local_service.predict({"x_test": [0.7, 1]})
    assert answer["statusCode"] == 409 and answer["error"] == "model_integrity_error", answer
    assert "pointer" in answer["message"]


@pytest.mark.parametrize(
    ("broken", "error"),
    [
        pytest.param(lambda m: m.pop("labels"), "model_integrity_error", id="missing-labels"),
        pytest.param(lambda m: m.__setitem__("labels", ["one"]), "model_integrity_error", id="too-few-labels"),
        pytest.param(
            lambda m: m.__setitem__("feature_names", {"a": 1}), "model_integrity_error", id="features-of-the-wrong-type"
        ),
        pytest.param(
            lambda m: m.__setitem__("artifacts", None), "model_integrity_error", id="artifacts-of-the-wrong-type"
        ),
        # The inference function serves the ONNX graph (scaler included): without it, the version cannot be served.
        pytest.param(lambda m: m["artifacts"].pop("onnx"), "model_not_exported", id="missing-onnx"),
    ],
)
def test_broken_metadata_answers_409_not_500(
    local_service: Service, two_versions: tuple[str, str], tmp_path: Path, broken: Any, error: str
) -> None:
    """Past the digest line (the record is forged to match), a broken version is still refused, as a 409."""
    old, _ = two_versions
    path = version_dir(store_root(tmp_path), "Model_ml", old) / "metadata.json"
    rewrite_metadata(path, broken)
    registry = local_service.train_module.registry
    record_key = registry._record_key("Model_ml", old)
    record = json.loads(registry.objects.get(record_key))
    record["metadata_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    registry.objects.put(record_key, json.dumps(record).encode())
    answer = local_service.predict({"x_test": [0.7, 1], "model_version": old})
    assert answer["statusCode"] == 409 and answer["error"] == error, answer
