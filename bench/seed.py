"""The seed tutorial's way to answer a prediction, kept as the baseline: every call downloads the model and
the scaler from S3 into /tmp and unpickles them, then predicts. Imports only what the seed's image held."""

from __future__ import annotations

import tempfile
from typing import Any

import joblib
import numpy as np

SEED_MODEL_KEY, SEED_SCALER_KEY = "Model_ml", "scaler"  # the seed stored them under the request's names


def seed_predict(
    s3: Any, bucket: str, x_test: list[Any], model_key: str = SEED_MODEL_KEY, scaler_key: str = SEED_SCALER_KEY
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        s3.download_file(bucket, model_key, f"{folder}/model")
        s3.download_file(bucket, scaler_key, f"{folder}/scaler")
        model, scaler = joblib.load(f"{folder}/model"), joblib.load(f"{folder}/scaler")
    rows = np.array(x_test, dtype=float).reshape(-1, 2)
    labels = ["virginica" if label == 1 else "Not virginica" for label in model.predict(scaler.transform(rows))]
    return {"statusCode": 200, "result": labels[0] if len(labels) == 1 else labels}
