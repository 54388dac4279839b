"""The handlers against moto's S3 server over a real socket: boto3's own transport and endpoint setting."""

from __future__ import annotations

from typing import Any

from tests.conftest import SEED_BUCKET, load_event, start_service


def test_train_and_predict_through_an_s3_compatible_endpoint(moto_server: Any, monkeypatch) -> None:
    monkeypatch.setenv("MODEL_BUCKET", SEED_BUCKET)
    service = start_service()
    trained = service.train(load_event("train.json"))
    assert trained["statusCode"] == 200
    answer = service.predict(load_event("predict_batch.json"))
    assert answer["result"] == ["Not virginica", "virginica", "Not virginica", "virginica"]

    version = trained["model_version"]
    keys = {o["Key"] for o in moto_server.list_objects_v2(Bucket=SEED_BUCKET)["Contents"]}
    stamp, _, suffix = version.partition("-")  # a record's key counts down from its version's time
    record = "".join(str(9 - int(c)) if c.isdigit() else c for c in stamp) + "-" + suffix
    assert keys == {
        "models/Model_ml/latest.json",
        "models/Model_ml/registry.json",
        "models/Model_ml/history/999999999999.json",
        f"models/Model_ml/records/{record}.json",
        f"models/Model_ml/versions/{version}/model/Model_ml.joblib",
        f"models/Model_ml/versions/{version}/scaler/scaler.joblib",
        f"models/Model_ml/versions/{version}/onnx/Model_ml.onnx",
        f"models/Model_ml/versions/{version}/metadata.json",
        f"models/Model_ml/versions/{version}/report/report.json",
        f"models/Model_ml/versions/{version}/report_confusion_matrix/report-confusion-matrix.png",
        f"models/Model_ml/versions/{version}/report_decision_regions/report-decision-regions.png",
    }
