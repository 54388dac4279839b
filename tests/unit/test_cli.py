"""The command line in-process (the handlers called directly on a local store), its CSV streaming, and the
stack lookup against moto's CloudFormation and API Gateway."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from deployment_model.local.batches import CountingReader, batches, read_feature_rows
from deployment_model.local.cli import main
from deployment_model.local.client import ClientError, stack_target
from tests.conftest import ROOT


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def trained(store: str, capsys: pytest.CaptureFixture[str]) -> dict:
    code, out, _ = run(capsys, "--store-dir", store, "--json", "train", "--candidates", "knn")
    assert code == 0
    return json.loads(out)


def test_train_then_predict_in_process(trained: dict, store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert trained["candidate"] == "knn"
    code, out, err = run(capsys, "--store-dir", store, "predict", "--json", "0.7,1", "2.0,5.5")
    assert code == 0, err
    answer = json.loads(out)
    assert [p["label"] for p in answer["predictions"]] == ["Not virginica", "virginica"]
    assert answer["model_version"] == trained["model_version"]
    assert answer["rows"] == 2
    assert err == ""  # no metric lines, no warnings, no logs


def test_table_output_names_the_labels(trained: dict, store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "predict", "--format", "table", "0.7,1", "2.0,5.5", "--store-dir", store)
    assert code == 0
    assert "Not virginica" in out and "virginica" in out and trained["model_version"] in out


def test_options_work_before_and_after_the_command(trained: dict, store: str, capsys) -> None:
    before = run(capsys, "--store-dir", store, "--json", "predict", "0.7,1")
    after = run(capsys, "predict", "0.7,1", "--json", "--store-dir", store)
    assert before[0] == after[0] == 0
    assert json.loads(before[1]) == json.loads(after[1])


def test_rows_may_start_with_a_minus(trained: dict, store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--store-dir", store, "predict", "--json", "-1.5,2", "0.5,-2")
    assert code == 0, err
    assert json.loads(out)["rows"] == 2


def test_custom_grids_from_a_json_file(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grids = tmp_path / "grids.json"
    grids.write_text(json.dumps({"logistic_regression": {"C": [0.5]}}))
    code, out, err = run(capsys, "--store-dir", store, "--json", "train", "--grids", str(grids), "--model", "Lr")
    assert code == 0, err
    result = json.loads(out)
    assert (result["model_name"], result["candidate"], result["params"]["C"]) == ("Lr", "logistic_regression", 0.5)


@pytest.mark.parametrize(
    ("content", "says"),
    [("{not json", "is not valid JSON"), ("[1, 2]", "must hold a JSON object")],
)
def test_a_bad_grids_file_is_one_line(store: str, tmp_path: Path, capsys, content: str, says: str) -> None:
    grids = tmp_path / "grids.json"
    grids.write_text(content)
    code, out, err = run(capsys, "--store-dir", store, "train", "--grids", str(grids))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and says in err


def test_service_errors_are_one_line_with_its_message(trained: dict, store: str, capsys) -> None:
    code, out, err = run(capsys, "--store-dir", store, "predict", "1,2,3")
    assert (code, out) == (1, "")
    assert err == "Error: x_test rows must have 2 values (petal_width, petal_length) for model 'Model_ml'; got 3\n"
    code, _, err = run(capsys, "--store-dir", store, "predict", "--model", "Nope", "1,2")
    assert code == 1 and err.startswith("Error: ") and "Nope" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "a,b"],
        ["predict"],
        ["--url", "http://127.0.0.1:1", "--stack", "s", "predict", "1,2"],
        ["--url", "ftp://example.com", "predict", "1,2"],
        ["train", "--candidates", "knn", "--grids", "g.json"],
        ["serve", "--url", "http://127.0.0.1:1"],
        ["predict", "--modle", "x", "1,2"],
        ["train", "--wait"],  # in-process nothing runs queued jobs: it would wait forever
    ],
)
def test_user_mistakes_exit_non_zero_without_a_traceback(argv: list[str], capsys) -> None:
    code, out, err = run(capsys, *argv)
    assert code in (1, 2) and out == ""
    assert "Traceback" not in err and "Error" in err


def test_an_unreachable_url_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--url", "http://127.0.0.1:9", "predict", "1,2")
    assert code == 1 and err.startswith("Error: cannot reach http://127.0.0.1:9") and err.count("\n") == 1


def test_predict_a_csv_in_process(trained: dict, store: str, tmp_path: Path, capsys) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("petal_length,petal_width,other\n1,0.7,x\n5.5,2.0,y\n")
    out_file = tmp_path / "out.csv"
    argv = ["--store-dir", store, "predict", "--csv", str(rows), "--columns", "petal_width,petal_length"]
    code, _, err = run(capsys, *argv, "-o", str(out_file))
    assert code == 0, err
    lines = out_file.read_text().splitlines()
    assert lines[0] == "label,class_index,probability_Not virginica,probability_virginica"
    assert [line.split(",")[0] for line in lines[1:]] == ["Not virginica", "virginica"]


def test_a_bad_csv_cell_names_its_line_and_column(trained: dict, store: str, tmp_path: Path, capsys) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("petal_width,petal_length\n1,2\n3,oops\n")
    code, _, err = run(capsys, "--store-dir", store, "predict", "--csv", str(rows))
    assert code == 1
    assert err == f"Error: {rows} line 3, column 'petal_length': 'oops' is not a number\n"


# ---- streaming: batches under the limits, the file read as it is sent


def test_batches_respect_the_row_and_byte_limits_in_order() -> None:
    rows = [[float(i), float(i) / 3] for i in range(2_345)]
    by_rows = list(batches(rows, max_rows=1_000))
    assert [b.rows for b in by_rows] == [1_000, 1_000, 345]
    assert [r for b in by_rows for r in json.loads(b.x_test)] == rows
    by_bytes = list(batches(rows, max_rows=10_000, max_bytes=4_096))
    assert all(len(b.x_test) <= 4_096 for b in by_bytes)
    assert [r for b in by_bytes for r in json.loads(b.x_test)] == rows


def test_a_batch_never_exceeds_the_services_row_limit() -> None:
    with pytest.raises(ClientError, match="1 to 10000 rows"):
        next(batches([[1.0]], max_rows=10_001))


def test_batches_pull_rows_only_as_they_are_needed() -> None:
    pulled = 0

    def rows():
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield [float(i)]

    stream = batches(rows(), max_rows=10_000)
    first = next(stream)
    assert first.rows == 10_000
    assert pulled <= 10_001  # the 1,000,000 rows are not read ahead


def test_the_csv_reader_is_lazy(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as out:
        out.write("a,b\n")
        out.writelines(f"{i},{i * 0.5}\n" for i in range(200_000))
    size = path.stat().st_size
    read = 0

    def count(n: int) -> None:
        nonlocal read
        read += n

    with path.open("rb") as handle:
        source = read_feature_rows(CountingReader(handle, count), "big.csv")
        assert next(source.rows) == [0.0, 0.0]
        assert read < 64 * 1024 < size  # a buffer's worth, not the file
        assert sum(1 for _ in source.rows) == 199_999
        assert read == size


def test_a_csv_without_the_named_column_says_which(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="has no column 'c'; its header names a, b"):
        read_feature_rows(io.BytesIO(b"a,b\n1,2\n"), "f.csv", ["a", "c"])


# ---- the stack lookup against moto


STACK_TEMPLATE = {
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    "Outputs": {
        "ApiUrl": {"Value": "https://abc123.execute-api.eu-west-1.amazonaws.com/Prod/"},
        "ApiKeyId": {"Value": "KEY_ID"},
    },
}


def create_stack(name: str, region: str, key_value: str, outputs: bool = True) -> None:
    key = boto3.client("apigateway", region_name=region).create_api_key(name="k", enabled=True, value=key_value)
    template = json.loads(json.dumps(STACK_TEMPLATE).replace("KEY_ID", key["id"]))
    if not outputs:
        template.pop("Outputs")
    boto3.client("cloudformation", region_name=region).create_stack(StackName=name, TemplateBody=json.dumps(template))


@mock_aws
def test_the_stack_lookup_reads_the_url_and_the_keys_value() -> None:
    create_stack("ml", "eu-west-1", "a-secret-api-key-value")
    target = stack_target("ml", "eu-west-1")
    assert target.url == "https://abc123.execute-api.eu-west-1.amazonaws.com/Prod/"
    assert target.api_key == "a-secret-api-key-value"
    assert "a-secret-api-key-value" not in repr(target)


@mock_aws
def test_an_unknown_stack_or_one_without_outputs_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--stack", "nope", "--region", "eu-west-1", "models", "list")
    assert code == 1 and err.startswith("Error: cannot read stack 'nope'") and err.count("\n") == 1
    create_stack("other", "eu-west-1", "a-secret-api-key-value", outputs=False)
    with pytest.raises(ClientError, match="has no output ApiUrl or ApiKeyId"):
        stack_target("other", "eu-west-1")


# ---- a real process: what a person sees on their terminal


def cli_process(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("POWERTOOLS_LOG_LEVEL", None)
    env.pop("POWERTOOLS_METRICS_DISABLED", None)
    return subprocess.run(
        [sys.executable, "-m", "deployment_model", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_cli_run_prints_only_what_was_asked(tmp_path: Path) -> None:
    trained = cli_process("train", "--json", "--candidates", "knn", cwd=tmp_path)
    assert trained.returncode == 0 and trained.stderr == ""
    assert json.loads(trained.stdout)["model_name"] == "Model_ml"
    assert (tmp_path / ".model-store").is_dir()  # the default store, as before
    failed = cli_process("predict", "1,2,3", cwd=tmp_path)
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.startswith("Error: x_test rows must have 2 values")
    assert failed.stderr.count("\n") == 1  # no metric JSON, no UserWarning, no traceback


def test_openapi_prints_the_committed_document(tmp_path: Path) -> None:
    printed = cli_process("openapi", cwd=tmp_path)  # what `make openapi` runs, in a fresh process
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == json.loads((ROOT / "docs" / "openapi.json").read_text())
