"""Each image would start and answer through the real Lambda runtime interface (the closest to sam local invoke).

AWS's Runtime Interface Emulator (shipped inside the aws-sam-cli wheel) runs `python -m awslambdaric <CMD>`
in a folder that holds exactly what the Dockerfile copies, with only the function's pinned requirements on
the path, against moto's S3 server on loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SEED_BUCKET, load_event
from tests.stack.conftest import TOOLS, tool
from tests.stack.images import ROOT, assemble_task_root, parse_dockerfile, requirements_site

INVOKE_PATH = "/2015-03-31/functions/function/invocations"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def emulator() -> Path:
    tool("sam", "sam")  # the tools venv must exist
    arch = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
    (path,) = (TOOLS / "sam" / "lib").glob(f"python*/site-packages/samcli/local/rapid/aws-lambda-rie-{arch}")
    return path


class RunningImage:
    def __init__(self, function: str, tmp: Path, environment: dict[str, str]) -> None:
        plan = parse_dockerfile(ROOT / "deployment_model" / function / "Dockerfile")
        self.site = requirements_site(plan)
        self.task_root = assemble_task_root(plan, tmp / function)
        self.port = free_port()
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": f"{self.task_root}{os.pathsep}{self.site}",
            "LAMBDA_TASK_ROOT": str(self.task_root),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_METRICS_DISABLED": "true",
            **environment,
        }
        # -S: no site-packages of this venv, so only the task root and the function's requirements import.
        command = [sys.executable, "-S", "-m", "awslambdaric", plan.handler]
        address = f"127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(emulator()), "--runtime-interface-emulator-address", address, *command],
            cwd=self.task_root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_until_listening()
        except Exception:
            self.stop()
            raise

    def _wait_until_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(self.process.stdout.read().decode())
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)  # polling for the port, not waiting for work to finish
        raise TimeoutError("the emulator did not listen")

    def invoke(self, event: Any) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{INVOKE_PATH}", data=json.dumps(event).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - loopback
            return json.loads(response.read())

    def stop(self) -> str:
        self.process.terminate()
        output, _ = self.process.communicate(timeout=10)
        return output.decode(errors="replace")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    import boto3
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as patch:  # module-scoped: before the per-test fake credentials
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            patch.setenv(name, "testing")
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=SEED_BUCKET)
    try:
        yield endpoint
    finally:
        moto.stop()


@contextlib.contextmanager
def running(function: str, tmp: Path, s3_endpoint: str) -> Iterator[RunningImage]:
    """One emulator at a time: its internal runtime API always listens on 127.0.0.1:9001."""
    image = RunningImage(function, tmp, {"MODEL_BUCKET": SEED_BUCKET, "AWS_ENDPOINT_URL_S3": s3_endpoint})
    try:
        yield image
    finally:
        output = image.stop()
        print(f"--- {function} emulator output ---\n{output[-3000:]}")


def test_train_then_predict_through_both_images(tmp_path: Path, s3_endpoint: str) -> None:
    with running("train", tmp_path, s3_endpoint) as train:
        answer = train.invoke(load_event("train.json"))
        assert answer["statusCode"] == 200 and answer["message"] == "Train successfully"
    with running("inference", tmp_path, s3_endpoint) as inference:
        assert inference.invoke(load_event("predict.json"))["result"] == "Not virginica"
        proxied = inference.invoke(load_event("api_inference_base64.json"))
        assert proxied["statusCode"] == 200
        assert json.loads(proxied["body"])["result"] == ["Not virginica", "virginica", "Not virginica", "virginica"]
        assert inference.invoke({"x_test": [1, 2], "name_bucket": "elsewhere"})["statusCode"] == 403
        path = f"/models/Model_ml/versions/{answer['model_version']}/report"  # drawn by train, served here
        report_event = {**load_event("api_predict.json"), "httpMethod": "GET", "path": path, "resource": path}
        page = inference.invoke({**report_event, "body": None})
        assert page["statusCode"] == 200 and page["body"].count('src="data:image/png;base64,') == 2


TRAINING_ONLY = ("pandas", "sklearn", "scipy", "joblib", "threadpoolctl", "skl2onnx", "onnx")


def installed(site: Path, module: str) -> bool:
    return (site / module).is_dir() or (site / f"{module}.py").is_file()


def test_the_inference_image_carries_no_training_library_and_no_training_code(tmp_path: Path) -> None:
    train_plan = parse_dockerfile(ROOT / "deployment_model" / "train" / "Dockerfile")
    inference_plan = parse_dockerfile(ROOT / "deployment_model" / "inference" / "Dockerfile")
    for library in (*TRAINING_ONLY, "onnxruntime"):
        assert installed(requirements_site(train_plan), library), library
    assert installed(requirements_site(inference_plan), "onnxruntime")
    present = [library for library in TRAINING_ONLY if installed(requirements_site(inference_plan), library)]
    assert present == []  # the test above proves the image starts and answers without them
    package = assemble_task_root(inference_plan, tmp_path) / "deployment_model"
    copied = {p.relative_to(package).as_posix() for p in package.rglob("*.py")}
    assert {
        "api/service.py",
        "storage/registry.py",
        "ml/prediction.py",
        "ml/onnx_model.py",
        "inference/app.py",
    } <= copied
    assert not {"ml/training.py", "ml/onnx_export.py", "ml/onnx_verify.py", "ml/onnx_artifact.py"} & copied
    assert not any(p.startswith(("local/", "train/")) for p in copied)
    # The report page and drift check are served; the report is drawn (matplotlib) only at training.
    assert {"ml/drift.py", "ml/report.py", "api/report_page.py"} <= copied
    assert not {"ml/report_images.py", "ml/report_build.py"} & copied


def test_the_train_image_runs_a_queued_job_from_an_sqs_event_once(tmp_path: Path, s3_endpoint: str) -> None:
    """POST /train async through the image sends to SQS (moto); the SQS event Lambda would then send runs it."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="TrainingJobsQueue")["QueueUrl"]
    environment = {
        "MODEL_BUCKET": SEED_BUCKET,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_ENDPOINT_URL_SQS": s3_endpoint,
        "TRAINING_JOBS_QUEUE_URL": queue_url,
        "TRAINING_JOBS_MAX_RECEIVE_COUNT": "5",
    }
    image = RunningImage("train", tmp_path, environment)
    try:
        request = load_event("api_train.json")
        request["body"] = json.dumps({"filename_model": "queued_in_image", "async": True})
        accepted = image.invoke(request)
        assert accepted["statusCode"] == 202, accepted
        job_id = json.loads(accepted["body"])["job_id"]
        (message,) = sqs.receive_message(QueueUrl=queue_url, AttributeNames=["All"])["Messages"]
        event = load_event("sqs_training_job.json")
        event["Records"][0].update(
            messageId=message["MessageId"],
            receiptHandle=message["ReceiptHandle"],
            body=message["Body"],
            md5OfBody=message["MD5OfBody"],
        )
        assert image.invoke(event) == {"batchItemFailures": []}
        assert image.invoke(event) == {"batchItemFailures": []}  # delivered again: acknowledged, not re-run
    finally:
        print(f"--- train emulator output ---\n{image.stop()[-3000:]}")
    record = json.loads(s3.get_object(Bucket=SEED_BUCKET, Key=f"jobs/{job_id}.json")["Body"].read())
    assert record["status"] == "succeeded" and record["attempts"] == 1
    assert record["result"]["model_name"] == "queued_in_image"
    listing = s3.list_objects_v2(Bucket=SEED_BUCKET, Prefix="models/queued_in_image/versions/", Delimiter="/")
    assert len(listing["CommonPrefixes"]) == 1


def test_neither_image_carries_the_command_lines_libraries() -> None:
    """click and rich are the [cli] extra's, installed by `make run`: no Lambda image pays for them."""
    for function in ("train", "inference"):
        site = requirements_site(parse_dockerfile(ROOT / "deployment_model" / function / "Dockerfile"))
        assert installed(site, "aws_lambda_powertools"), function  # the site is the image's packages
        assert [library for library in ("click", "rich") if installed(site, library)] == [], function
