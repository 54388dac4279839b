"""The training report: stored beside each version (digest-checked), served as HTML or JSON by inference."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import pytest
from PIL import Image

from deployment_model.ml.artifacts import model_artifacts, model_metadata
from deployment_model.ml.onnx_artifact import onnx_artifact_of
from deployment_model.ml.onnx_model import ONNX_KIND
from deployment_model.ml.report_images import HEIGHT_PX, WIDTH_PX
from deployment_model.ml.training import TEST_SIZE, iris_dataset, train_model
from tests.conftest import ROOT, SEED_BUCKET, Service, proxy_event

FLOWERS = [(0.2, 1.4, 5.1, "setosa"), (1.3, 4.0, 6.0, "versicolor"), (2.1, 5.8, 6.9, "virginica")]


def get_report(service: Service, version: str, query: str = "", name: str = "Model_ml") -> dict[str, Any]:
    path = f"/models/{name}/versions/{version}/report"
    answer = service.predict(proxy_event(path, method="GET", query=parse_qs(query, keep_blank_values=True)))
    answer["headers_lower"] = {k.lower(): v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()}
    return answer


def report_json(service: Service, version: str, name: str = "Model_ml") -> dict[str, Any]:
    answer = get_report(service, version, "format=json", name)
    assert answer["statusCode"] == 200, answer["body"]
    assert answer["headers_lower"]["content-type"] == "application/json"
    body = json.loads(answer["body"])
    assert body["model_name"] == name and body["model_version"] == version
    return body["report"]


def page_images(page: str) -> dict[str, Image.Image]:
    """The page's inline pictures, decoded, by alt text."""
    found = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page)
    return {alt: Image.open(io.BytesIO(base64.b64decode(data))) for alt, data in found}


def store_without_report(service: Service, name: str) -> dict[str, Any]:
    """A version as trainings stored it before reports (model, scaler, ONNX; no report), published."""
    trained = train_model(iris_dataset())
    registry = service.train_module.registry
    onnx = onnx_artifact_of(trained)
    artifacts = {
        **model_artifacts(name, "scaler", trained.model, trained.scaler),
        ONNX_KIND: (f"{name}.onnx", onnx.data),
    }
    metadata = registry.create_version(
        name, artifacts, {**model_metadata(trained.summary(), "scaler"), ONNX_KIND: onnx.details}
    )
    registry.publish(name, metadata["version"])
    return metadata


def csv_flowers(rows: list[tuple[Any, ...]]) -> bytes:
    return (
        "petal_width,petal_length,sepal_length,species\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)
    ).encode()


def test_the_report_states_how_the_published_version_scores_on_held_out_rows(local_service: Service) -> None:
    trained = local_service.train({})
    report = report_json(local_service, trained["model_version"])
    held_out = report["held_out"]
    matrix = np.array(held_out["confusion_matrix"])
    assert matrix.shape == (2, 2) and matrix.sum() == trained["rows"]["test"] == held_out["rows"]
    assert held_out["metrics"] == trained["metrics"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(trained["metrics"]["accuracy"])
    for i, per_class in enumerate(held_out["per_class"]):
        assert per_class["label"] == trained["labels"][i]
        assert per_class["support"] == matrix[i].sum()
        assert per_class["recall"] == pytest.approx(matrix[i, i] / matrix[i].sum())
        assert per_class["precision"] == pytest.approx(matrix[i, i] / matrix[:, i].sum())
    assert np.mean([c["f1"] for c in held_out["per_class"]]) == pytest.approx(trained["metrics"]["f1_macro"])


def test_the_report_lists_every_candidates_cross_validation_and_held_out_scores(local_service: Service) -> None:
    trained = local_service.train({"candidates": ["knn", "sgd", "logistic_regression"]})
    candidates = report_json(local_service, trained["model_version"])["candidates"]
    assert {c["name"]: c["held_out_f1_macro"] for c in candidates} == trained["candidate_scores"]
    assert [c["name"] for c in candidates if c["chosen"]] == [trained["candidate"]]
    assert all(0 < c["cv_f1_macro"] <= 1 for c in candidates)


def test_the_report_fingerprints_and_describes_the_training_data(local_service: Service) -> None:
    trained = local_service.train({})
    report = report_json(local_service, trained["model_version"])
    assert report["training_data"]["sha256"] == hashlib.sha256(b"iris").hexdigest()
    assert report["training_data"]["rows"] == trained["rows"]
    stats = {s["feature"]: s for s in report["feature_stats"]}
    assert list(stats) == trained["feature_names"]
    width = stats["petal_width"]
    assert width["count"] == trained["rows"]["train"] == round(150 * (1 - TEST_SIZE))
    all_widths = iris_dataset().features[:, 0]
    assert all_widths.min() <= width["min"] <= width["p05"] <= width["p25"] <= width["p50"] <= width["p75"]
    assert width["p75"] <= width["p95"] <= width["max"] <= all_widths.max()
    assert width["std"] > 0 and width["min"] < width["mean"] < width["max"]


def test_a_csv_report_fingerprints_its_bytes_and_has_no_decision_regions_past_two_features(
    s3_service: Service, s3: Any
) -> None:
    data = csv_flowers([(w + i / 100, l, s, label) for i in range(6) for w, l, s, label in FLOWERS])  # noqa: E741
    s3.put_object(Bucket=SEED_BUCKET, Key="data/flowers.csv", Body=data)
    trained = s3_service.train({"data_key": "data/flowers.csv", "target_column": "species"})
    version = trained["model_version"]
    report = report_json(s3_service, version)
    assert report["training_data"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert np.array(report["held_out"]["confusion_matrix"]).shape == (3, 3)
    images = page_images(get_report(s3_service, version)["body"])
    assert list(images) == ["Confusion matrix on the held-out split"]  # three features: no plane to draw


def test_the_page_shows_both_pictures_as_decodable_pngs_of_the_expected_size(local_service: Service) -> None:
    version = local_service.train({})["model_version"]
    answer = get_report(local_service, version)
    assert answer["statusCode"] == 200
    headers = answer["headers_lower"]
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert (
        "img-src data:" in headers["content-security-policy"]
        and "default-src 'none'" in headers["content-security-policy"]
    )
    images = page_images(answer["body"])
    assert set(images) == {"Confusion matrix on the held-out split", "Decision regions, with the training points"}
    for image in images.values():
        image.load()  # decodes every pixel: a truncated PNG raises here
        assert image.format == "PNG" and image.size == (WIDTH_PX, HEIGHT_PX)
    sizes = [len(base64.b64decode(d)) for d in re.findall(r'base64,([^"]+)"', answer["body"])]
    assert all(5_000 < size < 100_000 for size in sizes), sizes  # tens of KB


def test_the_decision_regions_picture_shows_both_classes(local_service: Service) -> None:
    version = local_service.train({})["model_version"]
    image = page_images(get_report(local_service, version)["body"])["Decision regions, with the training points"]
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    # tab10's first two colours, lightened by the regions' transparency, both cover a good part of the plane.
    blue_ish = (pixels[:, 2] > pixels[:, 0] + 30).mean()
    orange_ish = (pixels[:, 0] > pixels[:, 2] + 30).mean()
    assert blue_ish > 0.15 and orange_ish > 0.1


def test_names_from_a_users_csv_are_escaped_on_the_page(s3_service: Service, s3: Any) -> None:
    rows = [(w + i / 100, l, s, f"<script>alert({label!r})</script>") for i in range(6) for w, l, s, label in FLOWERS]  # noqa: E741
    s3.put_object(Bucket=SEED_BUCKET, Key="data/evil.csv", Body=csv_flowers(rows))
    version = s3_service.train({"data_key": "data/evil.csv", "target_column": "species"})["model_version"]
    page = get_report(s3_service, version)["body"]
    assert "<script" not in page and "&lt;script&gt;alert(" in page


def test_a_version_trained_before_reports_existed_answers_404_saying_why(local_service: Service) -> None:
    metadata = store_without_report(local_service, "Model_ml")
    for query in ("", "format=json"):
        answer = get_report(local_service, metadata["version"], query)
        body = json.loads(answer["body"])
        assert answer["statusCode"] == 404 and body["error"] == "report_not_found"
        assert "trained before reports existed" in body["message"]


def test_unknown_versions_models_and_formats_are_4xx_naming_the_problem(local_service: Service) -> None:
    version = local_service.train({})["model_version"]
    unknown = get_report(local_service, "20200101T000000000000Z-00000000")
    assert unknown["statusCode"] == 404 and "has no version" in json.loads(unknown["body"])["message"]
    assert get_report(local_service, version, name="Nobody")["statusCode"] == 404
    for bad_name, bad_version, field in (("bad..name", version, "name"), ("Model_ml", "not-a-version", "version")):
        answer = get_report(local_service, bad_version, name=bad_name)
        assert answer["statusCode"] == 400 and f"{field}: " in json.loads(answer["body"])["message"]
    bad = get_report(local_service, version, "format=pdf")
    assert bad["statusCode"] == 400 and "format" in json.loads(bad["body"])["message"]


def test_a_tampered_report_artifact_is_refused_not_served(local_service: Service, tmp_path: Path) -> None:
    version = local_service.train({})["model_version"]
    (picture,) = (tmp_path / "store").rglob("report-confusion-matrix.png")
    picture.write_bytes(picture.read_bytes()[:-10])
    answer = get_report(local_service, version)
    assert answer["statusCode"] == 409 and "sha256 mismatch" in json.loads(answer["body"])["message"]


def test_the_report_is_recorded_in_the_versions_metadata_with_digests(local_service: Service, tmp_path: Path) -> None:
    version = local_service.train({})["model_version"]
    (metadata_file,) = (tmp_path / "store").rglob(f"{version}/metadata.json")
    metadata = json.loads(metadata_file.read_text())
    kinds = metadata["report"]["kinds"]
    assert kinds == ["report", "report_confusion_matrix", "report_decision_regions"]
    for kind in kinds:
        entry = metadata["artifacts"][kind]
        data = (tmp_path / "store" / entry["key"]).read_bytes()
        assert entry["key"].startswith(f"models/Model_ml/versions/{version}/report")
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]


def test_the_inference_function_serves_reports_without_matplotlib() -> None:
    code = (
        "import sys, deployment_model.inference.app; "
        "print(sorted(m for m in ('matplotlib', 'PIL') if m in sys.modules))"
    )
    environment = {"MODEL_STORE_DIR": "/nonexistent-store", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True)
    assert result.stdout.strip() == "[]"
    requirements = (ROOT / "deployment_model" / "inference" / "requirements.txt").read_text().lower()
    assert "matplotlib" not in requirements and "pillow" not in requirements
    assert "matplotlib==" in (ROOT / "deployment_model" / "train" / "requirements.txt").read_text()


def test_big_training_data_still_gives_a_small_picture_of_the_expected_size() -> None:
    from deployment_model.ml.datasets import Dataset
    from deployment_model.ml.report_images import MAX_POINTS_DRAWN, decision_regions_png

    rng = np.random.default_rng(0)
    features = rng.normal(size=(20_000, 2))
    target = (features[:, 0] + features[:, 1] > 0).astype(np.int64)
    dataset = Dataset(features, target, ["a", "b"], ["no", "yes"], "synthetic", sha256="0" * 64)
    trained = train_model(dataset, {"logistic_regression": {"C": [1.0]}})
    assert trained.split is not None and len(trained.split.y_train) > MAX_POINTS_DRAWN
    picture = decision_regions_png(trained)
    assert picture is not None and len(picture) < 100_000
    image = Image.open(io.BytesIO(picture))
    image.load()
    assert image.size == (WIDTH_PX, HEIGHT_PX)


def test_many_classes_keep_the_page_small_and_the_matrix_in_the_json(s3_service: Service, s3: Any) -> None:
    from deployment_model.api.report_page import MAX_CLASSES_IN_TABLE

    classes = MAX_CLASSES_IN_TABLE + 5
    rng = np.random.default_rng(0)
    lines = [f"{c + rng.normal(0, 0.1):.3f},{rng.normal():.3f},c{c:02d}\n" for c in range(classes) for _ in range(8)]
    s3.put_object(Bucket=SEED_BUCKET, Key="data/many.csv", Body=("x,y,kind\n" + "".join(lines)).encode())
    request = {
        "data_key": "data/many.csv",
        "target_column": "kind",
        "candidates": {"logistic_regression": {"C": [10.0]}},
    }
    version = s3_service.train(request)["model_version"]
    assert np.array(report_json(s3_service, version)["held_out"]["confusion_matrix"]).shape == (classes, classes)
    page = get_report(s3_service, version)["body"]
    assert "held_out.confusion_matrix." not in page and f"confusion matrix of {classes} classes" in page
    assert len(page) < 200_000 and len(page_images(page)) == 2
