"""Confinement and hygiene: no request reaches outside the stack's bucket and the model's own keys; logs hold
no bodies, feature values or credentials; the local server stays on loopback unless told otherwise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployment_model.local.server import DEFAULT_HOST, make_server
from tests.conftest import ROOT, SEED_BUCKET, Service

OTHER_BUCKET = "someone-elses-bucket"
MODEL_KEY = re.compile(  # the registry's layout (README, "A model version")
    r"^models/[A-Za-z0-9][A-Za-z0-9._-]{0,127}/(latest\.json|registry\.json|history/\d{12}\.json"
    r"|records/\d{8}T\d{12}Z-[0-9a-f]{8}\.json"
    r"|versions/\d{8}T\d{12}Z-[0-9a-f]{8}/(metadata\.json|[a-z][a-z0-9_-]*/[A-Za-z0-9][A-Za-z0-9._-]*))$"
)
HOSTILE_NAMES = ["../other", "a/../../b", "/etc/passwd", "..", ".", "", "x" * 200, "models/x", "a\\b", "%2e%2e", "\x00"]
HOSTILE_KEYS = ["../x.csv", "/abs.csv", f"s3://{OTHER_BUCKET}/x.csv", "models/Model_ml/latest.json", "a//b.csv"]
hostile_text = st.sampled_from(HOSTILE_NAMES) | st.text(max_size=40)


def keys_of(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.fixture
def other_bucket(s3: Any) -> Any:
    s3.create_bucket(Bucket=OTHER_BUCKET)
    s3.put_object(Bucket=OTHER_BUCKET, Key="x.csv", Body=b"a,b\n1,2\n")
    s3.put_object(Bucket=SEED_BUCKET, Key="data/ok.csv", Body=b"a,b,t\n" + b"1,2,x\n3,4,y\n" * 10)
    return s3


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    model=hostile_text,
    scaler=hostile_text | st.just("Model_ml"),
    key=st.sampled_from(HOSTILE_KEYS) | st.text(max_size=30),
)
def test_no_request_reaches_outside_the_buckets_model_keys(
    s3_service: Service, other_bucket: Any, model: str, scaler: str, key: str
) -> None:
    for event in (
        {"filename_model": model, "filename_scaler": scaler, "candidates": ["sgd"]},
        {"filename_model": "m", "data_key": key, "target_column": "t", "candidates": ["sgd"]},
        {"filename_model": model, "name_bucket": OTHER_BUCKET},
    ):
        assert s3_service.train(event)["statusCode"] in {200, 400, 403, 404}
    for event in (
        {"x_test": [1, 2], "filename_model": model, "filename_scaler": scaler},
        {"x_test": [1, 2], "name_bucket": model},
    ):
        answer = s3_service.predict(event)
        assert answer["statusCode"] in {200, 400, 403, 404}, answer
    assert keys_of(other_bucket, OTHER_BUCKET) == ["x.csv"]
    for stored in keys_of(other_bucket, SEED_BUCKET):
        assert stored == "data/ok.csv" or MODEL_KEY.match(stored), stored


def test_the_local_store_never_writes_outside_its_folder(local_service: Service, tmp_path: Path) -> None:
    before = set(tmp_path.parent.iterdir())
    for name in HOSTILE_NAMES:
        local_service.train({"filename_model": name, "filename_scaler": name})
        local_service.train({"data_key": name or "x", "target_column": "t"})
    assert set(tmp_path.parent.iterdir()) == before
    written = [p.relative_to(tmp_path / "store").as_posix() for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert all(MODEL_KEY.match(key) for key in written), written


def test_logs_hold_no_bodies_feature_values_or_credentials(tmp_path: Path) -> None:
    script = """
from deployment_model.local.server import LocalContext
from deployment_model.train.app import lambda_handler as train
from deployment_model.inference.app import lambda_handler as predict
ctx = LocalContext("f")
train({"filename_model": "Model_ml"}, ctx)
predict({"x_test": [[1.234567, 7.654321]]}, ctx)
predict({"x_test": [[9.876543]]}, ctx)
predict({"x_test": [1, 2], "filename_model": "BODY-MARKER-404"}, ctx)
predict({"x_test": [1, 2], "name_bucket": "BODY-MARKER-403"}, ctx)
predict({"httpMethod": "POST", "path": "/predict", "body": '{"x_test": "BODY-MARKER-400"}'}, ctx)
form = {"Content-Type": "application/x-www-form-urlencoded"}
body = '{"x_test": [[1.234567, "BODY-MARKER-STR"]]}'
predict({"httpMethod": "POST", "path": "/predict/", "headers": form, "body": body}, ctx)
predict({"httpMethod": "post", "path": "/BODY-MARKER-PATH", "body": '{"BODY-MARKER-KEY": 1}'}, ctx)
from tests.things_app import lambda_handler as things
things({"httpMethod": "GET", "path": "/things/a", "queryStringParameters": {"limit": "BODY-MARKER-Q"}}, ctx)
things({"httpMethod": "POST", "path": "/things/a/resize", "body": '{"size": "BODY-MARKER-SIZE"}'}, ctx)
things({"httpMethod": "GET", "path": "/things/bug"}, ctx)
"""
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"  # noqa: S105 - a fake, to prove it never appears
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MODEL_STORE_DIR": str(tmp_path / "store"),
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
        "AWS_SECRET_ACCESS_KEY": secret,
    }
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert '"model published"' in output and '"model loaded"' in output  # the logs are there...
    for leaked in ("1.234567", "7.654321", "9.876543", "BODY-MARKER", secret):  # ...but not what clients sent
        assert leaked not in output, leaked


def test_the_local_server_listens_on_loopback_by_default(local_service: Service) -> None:
    server = make_server(port=0, quiet=True)
    try:
        assert DEFAULT_HOST == "127.0.0.1" and server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()
