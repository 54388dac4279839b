"""Load while publishing: 8 clients send 2,000+ predicts to the local server while 5 trainings publish new
versions of the same model. Zero errors, and every answer is exactly what the version it names predicts.

Each training uses the iris data at another scale, so each run's scaler differs: an answer computed with one
run's model and another run's scaler would not match its version's offline prediction.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris

from deployment_model.ml.artifacts import load_model
from deployment_model.ml.prediction import predict
from deployment_model.storage.objects import DirectoryObjectStore
from deployment_model.storage.registry import ModelRegistry
from tests.integration.conftest import running_local_server

CLIENTS = 8
REQUESTS_PER_CLIENT = 250
TRAININGS = 5
CANDIDATES = [["knn"], ["logistic_regression"], ["random_forest"], ["knn", "sgd"], ["logistic_regression"]]
ROWS = np.random.default_rng(7).uniform([0.1, 1.0], [2.5, 6.9], size=(40, 2)).round(2).tolist()
DEADLINE_SECONDS = 300


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    rows: list[list[float]]
    seconds: float


def write_scaled_iris(store_dir: Path, scale: float) -> str:
    iris = load_iris(as_frame=True).frame
    lines = ["petal_width,petal_length,species"]
    for width, length, target in zip(iris["petal width (cm)"], iris["petal length (cm)"], iris["target"], strict=True):
        lines.append(f"{width * scale},{length * scale},{['setosa', 'versicolor', 'virginica'][target]}")
    key = f"data/iris-x{scale:g}.csv"
    (store_dir / key).parent.mkdir(parents=True, exist_ok=True)
    (store_dir / key).write_text("\n".join(lines) + "\n")
    return key


def client(base_url: str, index: int, trainings_done: threading.Event, answers: list[Answer]) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    deadline = time.monotonic() + DEADLINE_SECONDS
    sent = 0
    while (sent < REQUESTS_PER_CLIENT or not trainings_done.is_set()) and time.monotonic() < deadline:
        rows = [ROWS[(index * 7 + sent + k) % len(ROWS)] for k in range(1 + sent % 3)]
        payload = json.dumps({"x_test": rows, "filename_model": "iris"})
        started = time.perf_counter()
        connection.request("POST", "/predict", payload, {"Content-Type": "application/json"})
        response = connection.getresponse()
        body = json.loads(response.read())
        answers.append(Answer(response.status, body, rows, time.perf_counter() - started))
        sent += 1
    connection.close()


def test_predicts_during_publishing_are_never_wrong_or_mixed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_dir = tmp_path / "store"
    keys = [write_scaled_iris(store_dir, scale) for scale in (1, 2, 3, 5, 8, 13)]
    answers: list[Answer] = []
    trainings_done = threading.Event()
    env = {"MODEL_CACHE_TTL_SECONDS": "0", "POWERTOOLS_LOG_LEVEL": "CRITICAL"}  # every predict seeks a newer version
    with running_local_server(store_dir, env=env) as server:
        first = {"filename_model": "iris", "data_key": keys[0], "target_column": "species"}
        published = [server.service.train(first)]
        assert published[0]["statusCode"] == 200
        threads = [
            threading.Thread(target=client, args=(server.base_url, i, trainings_done, answers)) for i in range(CLIENTS)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for key, candidates in zip(keys[1:], CANDIDATES, strict=True):
            body = {"filename_model": "iris", "data_key": key, "target_column": "species", "candidates": candidates}
            status, _, trained = server.post("/train", body)
            assert status == 200, trained
            published.append(trained)
        trainings_done.set()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started

    errors = [a for a in answers if a.status != 200]
    versions = {p["model_version"] for p in published}
    seen = {a.body.get("model_version") for a in answers}
    latencies = sorted(a.seconds for a in answers)
    with capsys.disabled():  # the figures belong in the test run's output
        print(
            f"\nload: {len(answers)} predicts from {CLIENTS} clients during {TRAININGS} publications "
            f"in {elapsed:.1f} s; "
            f"errors {len(errors)}; p50 {statistics.median(latencies) * 1e3:.1f} ms, "
            f"p99 {latencies[int(len(latencies) * 0.99)] * 1e3:.1f} ms; "
            f"versions answering {len(seen)}/{len(versions)}"
        )
    assert len(answers) >= CLIENTS * REQUESTS_PER_CLIENT and len(published) == TRAININGS + 1
    assert errors == []
    assert seen <= versions and len(seen) >= 2

    registry = ModelRegistry(DirectoryObjectStore(store_dir))
    offline = {version: load_model(registry.load("iris", version)) for version in seen}
    for answer in answers:
        expected = predict(offline[answer.body["model_version"]], np.array(answer.rows))
        assert answer.body["result"] == expected.labels
        if expected.probabilities is not None:
            # served from the ONNX graph: scikit-learn's within the tolerance every export is verified to
            assert np.abs(np.array(answer.body["probabilities"]) - expected.probabilities).max() <= 1e-4
