"""The issues' "Done when" walkthroughs, run as a user runs them: over HTTP against the local server, and the
inference path in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Client

ROWS = {"x_test": [[0.7, 1], [2.0, 5.5]]}


@pytest.fixture(autouse=True)
def every_call_reads_the_pointer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_CACHE_TTL_SECONDS", "0")


def test_registry_walkthrough_train_three_roll_back_delete(local_server: Client) -> None:
    """Issue 10: three versions (the second unpublished), a rollback with a reason, the history, deletions."""
    versions = []
    for request in ({}, {"publish": "never"}, {}):
        status, _, trained = local_server.post("/train", request)
        assert status == 200
        versions.append(trained["model_version"])
    first, second, third = versions

    status, _, listing = local_server.request("GET", "/models/Model_ml")
    assert status == 200 and listing["published_version"] == third
    assert [v["version"] for v in listing["versions"]] == [third, second, first]
    assert [v["published"] for v in listing["versions"]] == [True, False, False]

    status, _, published = local_server.post("/models/Model_ml/publish", {"version": first, "reason": "v3 drifted"})
    assert (status, published["published_version"], published["previous_version"]) == (200, first, third)
    status, _, answer = local_server.post("/predict", ROWS)
    assert status == 200 and answer["model_version"] == first

    status, _, history = local_server.request("GET", "/models/Model_ml/history")
    assert [e["action"] for e in history["events"]] == ["rollback", "train", "train"]
    assert history["events"][0]["reason"] == "v3 drifted" and history["events"][0]["version"] == first

    status, _, deleted = local_server.request("DELETE", f"/models/Model_ml/versions/{second}")
    assert (status, deleted) == (200, {"deleted": second})
    status, _, refused = local_server.request("DELETE", f"/models/Model_ml/versions/{first}")
    assert status == 409 and refused["error"] == "version_published"
    status, _, listing = local_server.request("GET", "/models")
    assert listing["models"][0]["versions"] == 2


def test_the_served_inference_path_never_imports_scikit_learn(tmp_path: Path) -> None:
    """Issue 12: predict, v2 infer and the registry's read routes in a fresh inference process."""
    store = tmp_path / "store"
    env = {**os.environ, "MODEL_STORE_DIR": str(store), "PYTHONPATH": os.getcwd()}
    train = (
        "from deployment_model.train.app import lambda_handler as h\n"
        "from deployment_model.local.server import LocalContext\n"
        "print(h({}, LocalContext(function_name='train'))['statusCode'])\n"
    )
    trained = subprocess.run([sys.executable, "-c", train], env=env, capture_output=True, text=True)
    assert trained.stdout.strip().splitlines()[-1] == "200"  # Powertools logs to stdout too: the last line
    serve = (
        "import json, sys\n"
        "from deployment_model.inference.app import lambda_handler as h\n"
        "from deployment_model.local.server import LocalContext\n"
        "c = LocalContext(function_name='inference')\n"
        "codes = [h({'x_test': [[0.7, 1]]}, c)['statusCode']]\n"
        "infer = {'inputs': [{'name': 'x', 'shape': [1, 2], 'datatype': 'FP64', 'data': [0.7, 1]}]}\n"
        "for method, path, body in [('POST', '/v2/models/Model_ml/infer', infer), ('GET', '/models', None),\n"
        "                           ('GET', '/models/Model_ml/history', None)]:\n"
        "    event = {'httpMethod': method, 'path': path, 'body': body and json.dumps(body)}\n"
        "    codes.append(h(event, c)['statusCode'])\n"
        "loaded = sorted(m for m in ('sklearn', 'scipy', 'joblib', 'pandas') if m in sys.modules)\n"
        "print(json.dumps([codes, loaded]))\n"
    )
    done = subprocess.run([sys.executable, "-c", serve], env=env, capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "[[200, 200, 200, 200], []]"
