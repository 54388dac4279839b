"""A command-line user's mistakes: each is one line on stderr naming what was wrong, and a non-zero exit;
never a traceback, a log line, or an exit 0 with nothing done."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from deployment_model.local.batches import read_feature_rows
from deployment_model.local.client import ClientError
from tests.unit.test_cli import run


@pytest.fixture
def trained(store: str, capsys: pytest.CaptureFixture[str]) -> str:
    """The store's folder, with a model trained in it."""
    code, _, err = run(capsys, "--store-dir", store, "--json", "train", "--candidates", "knn")
    assert code == 0, err
    return store


def assert_one_line_error(code: int, out: str, err: str, *words: str, exit_code: int = 1) -> None:
    assert code == exit_code and out == "", (code, out, err)
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize(
    "content",
    [
        "petal_width,petal_length\n",  # a header, no data rows
        "petal_width,petal_length\n\n\n",  # a header, then blank lines
        "petal_width,petal_length",  # a header without a newline
    ],
)
@pytest.mark.parametrize("output_format", ["csv", "json"])
def test_a_csv_with_a_header_and_no_rows_is_an_error_naming_the_file(
    trained: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, output_format: str
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text(content)
    output = tmp_path / "labels.out"
    code, out, err = run(
        capsys, "--store-dir", trained, "predict", "--csv", str(rows), "--format", output_format, "-o", str(output)
    )
    assert_one_line_error(code, out, err, str(rows), "no rows")
    assert not output.exists()  # nothing written: not even an empty file that looks like an answer


@pytest.mark.parametrize("content", ["", "\n", "\n\n\r\n  \n"])
def test_an_empty_or_blank_csv_is_an_error_naming_the_file(
    trained: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text(content)
    code, out, err = run(capsys, "--store-dir", trained, "predict", "--csv", str(rows))
    assert_one_line_error(code, out, err, str(rows), "no rows", "first line must name the feature columns")


def test_the_reader_refuses_a_header_without_rows_before_anything_is_sent() -> None:
    with pytest.raises(ClientError, match=r"^f\.csv has a header but no rows: add one row of values per line"):
        read_feature_rows(io.BytesIO(b"a,b\n\n"), "f.csv")


def test_stdin_is_named_as_such(trained: str, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"petal_width,petal_length\n")))
    code, out, err = run(capsys, "--store-dir", trained, "predict", "--csv", "-")
    assert_one_line_error(code, out, err, "standard input has a header but no rows")


@pytest.mark.parametrize("row", ["1,nan", "inf,2", "1e400,2", "-inf,1"])
def test_a_row_argument_that_is_not_a_finite_number_is_a_usage_error_naming_it(
    trained: str, capsys: pytest.CaptureFixture[str], row: str
) -> None:
    code, out, err = run(capsys, "--store-dir", trained, "predict", row)
    assert code == 2 and out == "" and "Traceback" not in err
    assert f"{row!r}: each row is comma-separated finite numbers" in err and "NoneType" not in err


@pytest.mark.parametrize("command", [["train", "--candidates", "sgd"], ["models", "list"], ["predict", "1,2"]])
def test_a_file_given_as_the_store_folder_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    not_a_folder = tmp_path / "rows.csv"
    not_a_folder.write_text("a,b\n")
    code, out, err = run(capsys, "--store-dir", str(not_a_folder), *command)
    assert_one_line_error(code, out, err, f"--store-dir {not_a_folder} is a file, not a folder")
    assert not_a_folder.read_text() == "a,b\n"


def test_a_missing_grids_file_is_one_plain_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "grids.json"
    code, out, err = run(capsys, "--store-dir", str(tmp_path / "store"), "train", "--grids", str(missing))
    assert_one_line_error(code, out, err)
    assert err == f"Error: cannot read --grids {missing}: No such file or directory\n"


def test_a_directory_given_as_a_grids_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    code, out, err = run(capsys, "--store-dir", str(tmp_path / "store"), "train", "--grids", str(tmp_path))
    assert code == 2 and out == "" and "is a directory" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["missing.csv", "."])
def test_a_missing_csv_or_a_directory_is_one_line(
    trained: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    path = tmp_path / name
    code, out, err = run(capsys, "--store-dir", trained, "predict", "--csv", str(path))
    assert_one_line_error(code, out, err, f"cannot read --csv {path}")


def test_a_csv_whose_header_does_not_name_the_models_features_says_which(
    trained: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("sepal_width,petal_length\n1,2\n")
    code, out, err = run(capsys, "--store-dir", trained, "predict", "--csv", str(rows))
    assert_one_line_error(code, out, err, "has no column 'petal_width'", "its header names sepal_width, petal_length")


def test_an_output_naming_the_input_csv_is_refused_before_the_input_is_touched(
    trained: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """-o rows.csv with --csv rows.csv would truncate the rows before they are read (silently, for a file
    larger than a read buffer): refused, whichever way the two paths spell the file."""
    rows = tmp_path / "rows.csv"
    content = "petal_width,petal_length\n" + "".join(f"{i % 3}.5,{i % 5}.25\n" for i in range(20_000))
    rows.write_text(content)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "--store-dir", trained, "predict", "--csv", str(rows), "-o", "./rows.csv")
    assert_one_line_error(code, out, err, "--output ./rows.csv is the --csv file", "choose another output file")
    assert rows.read_text() == content


def test_waiting_in_process_for_a_queued_job_is_refused_instead_of_polling_forever(
    store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process nothing runs queued jobs (as `train --wait` already says): `jobs show ID --wait` would poll
    a job that never starts."""
    code, job_id, err = run(capsys, "--store-dir", store, "train", "--async", "--candidates", "sgd")
    assert code == 0, err
    # The hint names a command that works: the job runs once a server serves this store.
    assert f"jobs show {job_id.strip()} --wait --url http://127.0.0.1:3000" in err and "serve" in err

    class NoSleeping:
        @staticmethod
        def sleep(seconds: float) -> None:
            raise AssertionError("polled a job that nothing runs")

    monkeypatch.setattr("deployment_model.local.cli.time", NoSleeping)
    code, out, err = run(capsys, "--store-dir", store, "jobs", "show", job_id.strip(), "--wait")
    assert code == 2 and out == "" and "--wait needs a running service" in err and "--url" in err
    code, out, _ = run(capsys, "--store-dir", store, "--json", "jobs", "show", job_id.strip())
    assert code == 0 and json.loads(out)["status"] == "queued"  # without --wait it is shown as it is


def test_an_error_page_from_something_else_than_the_service_is_one_line() -> None:
    """--url naming another web server (a typo, a proxy): its HTML error page is summed up on one line."""
    from deployment_model.local.client import Answer, ServiceClient

    page = b"<!DOCTYPE HTML>\n<html lang='en'>\n  <head><title>Error response</title></head>\n"
    page += b"  <body>404</body>\n</html>\n"

    class OtherServer:
        def send(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> Answer:
            return Answer(404, {"content-type": "text/html;charset=utf-8"}, page)

    with pytest.raises(ClientError) as refused:
        ServiceClient(OtherServer()).models()
    message = str(refused.value)
    assert "\n" not in message and message.startswith("HTTP 404 (text/html, not an answer of this service")
    assert "<!DOCTYPE HTML> <html lang='en'> <head><title>Error response</title></head>" in message
