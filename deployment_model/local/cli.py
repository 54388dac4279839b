"""`python -m deployment_model`: train, predict and manage models, locally or on a deployed stack.

The same commands reach three targets: the local store in this process (the default: the functions' handlers
are called directly, no server needed), a URL (`--url`, e.g. the local server or a deployed stage, with
`--api-key` or ML_SERVICE_API_KEY), or a deployed stack by name (`--stack`, which reads the URL and the
API key with your AWS credentials). Options may come before or after the command.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from deployment_model.local import views
from deployment_model.local.batches import CountingReader, batches, max_rows_per_request, read_feature_rows
from deployment_model.local.client import (
    API_KEY_ENV,
    DEFAULT_TIMEOUT_SECONDS,
    EMPTY_METRICS_WARNING,
    ClientError,
    Http,
    InProcess,
    ServiceClient,
    ServiceError,
    stack_target,
)
from deployment_model.local.docs_page import DOCS_PATH
from deployment_model.local.predictions import CsvPredictions, JsonPredictions, PredictionWriter, predict_batches
from deployment_model.local.server import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_STORE_DIR, OPENAPI_PATH

PROG = "python -m deployment_model"
_SETTINGS = "deployment_model.settings"
_FINISHED = ("succeeded", "failed")
LOCAL_CACHE_TTL_SECONDS = 1


@dataclass(frozen=True)
class Settings:
    """Where the commands go and how they print, from options given before or after the command."""

    store_dir: str | None = None
    url: str | None = None
    api_key: str | None = None
    stack: str | None = None
    region: str | None = None
    json: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @property
    def remote(self) -> bool:
        return bool(self.url or self.stack)


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Keep a target option wherever it was given; the one nearest the command wins."""
    if value is not None and value is not False and param.name:
        ctx.find_root().meta.setdefault(_SETTINGS, {})[param.name] = value


_TARGET_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--store-dir",), {"metavar": "DIR", "help": f"Local model folder (default {DEFAULT_STORE_DIR})."}),
    (("--url",), {"metavar": "URL", "help": "The service at this URL, e.g. http://127.0.0.1:3000 or a stage's URL."}),
    (("--api-key",), {"metavar": "KEY", "help": f"API key sent as x-api-key (default: ${API_KEY_ENV})."}),
    (("--stack",), {"metavar": "NAME", "help": "A deployed stack: its URL and API key are read with boto3."}),
    (("--region",), {"metavar": "REGION", "help": "The stack's region (default: your AWS configuration)."}),
    (("--json", "json"), {"is_flag": True, "default": None, "help": "Print JSON (for pipes and scripts)."}),
    (
        ("--timeout",),
        {"type": click.FloatRange(min=1), "help": f"Seconds per HTTP request (default {DEFAULT_TIMEOUT_SECONDS:g})."},
    ),
]


def target_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The target and output options, accepted by the program and by every command (before or after it)."""
    for names, extra in reversed(_TARGET_OPTIONS):
        function = click.option(*names, expose_value=False, callback=_remember, **extra)(function)
    return function


def page_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """--limit and --next-token, for a command that lists one page at a time."""
    function = click.option("--next-token", help="The page after the one that printed this token.")(function)
    return click.option("--limit", type=click.IntRange(1, 100), help="At most this many, newest first.")(function)


def settings(ctx: click.Context) -> Settings:
    given = ctx.find_root().meta.get(_SETTINGS, {})
    return Settings(**given)


def _client(ctx: click.Context) -> ServiceClient:
    """The one client every command uses, whichever target the options name."""
    options = settings(ctx)
    if options.url and options.stack:
        raise click.UsageError("--url and --stack name two targets: give one")
    if options.remote and options.store_dir:
        raise click.UsageError("--store-dir is the local store; it does not go with --url or --stack")
    if options.stack:
        target = stack_target(options.stack, options.region)
        return ServiceClient(Http(target.url, options.api_key or target.api_key, options.timeout))
    if options.url:
        return ServiceClient(Http(options.url, options.api_key or os.environ.get(API_KEY_ENV), options.timeout))
    if options.api_key or options.region:
        raise click.UsageError("--api-key and --region go with --url or --stack")
    return ServiceClient(InProcess(_store_dir(options.store_dir)))


def _store_dir(path: str | None) -> str | None:
    """The local store's folder as given, refused when it names a file (the store would fail on its first write)."""
    if path is not None and os.path.exists(path) and not os.path.isdir(path):
        raise ClientError(f"--store-dir {path} is a file, not a folder: name a folder (it is created if missing)")
    return path


def _console(err: bool = False) -> Console:
    console = Console(stderr=err, highlight=False, soft_wrap=False)
    if not console.is_terminal:  # a file or a pipe has no width: do not fold ids into an 80-column box
        console.width = max(console.width, 160)
    return console


def _emit(ctx: click.Context, data: Any, view: Callable[[Console, Any], None] | str | None) -> None:
    """The answer as JSON for a pipe (--json); for a person, a readable view of it, a line saying what was done,
    or nothing (None: an error line says it)."""
    if settings(ctx).json:
        click.echo(json.dumps(data, indent=2))
    elif isinstance(view, str):
        click.echo(view)
    elif view is not None:
        view(_console(), data)


class _Cli(click.Group):
    """A group whose user-facing errors print one line (click's `Error: ...`) and exit 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClientError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=_Cli, help=__doc__, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@target_options
def cli() -> None:
    pass


# ---------------------------------------------------------------- train


def _split(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def _names(values: Sequence[str]) -> list[str] | None:
    """Names given comma-separated, the option repeated, or both: in the order given, each once."""
    names = _split(",".join(values))
    return list(dict.fromkeys(names)) if names else None


def _grids(path: Path) -> dict[str, Any]:
    try:
        grids = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ClientError(f"cannot read --grids {path}: {reason}") from None
    except json.JSONDecodeError as error:
        raise ClientError(f"--grids {path} is not valid JSON: {error}") from None
    if not isinstance(grids, dict):
        raise ClientError(f'--grids {path} must hold a JSON object: {{"knn": {{"n_neighbors": [3, 5]}}, ...}}')
    return grids


@cli.command()
@click.option("--model", "--filename-model", "filename_model", help="Name to publish the model under.")
@click.option("--scaler", "--filename-scaler", "filename_scaler", help="Name of the scaler artifact.")
@click.option("--data-key", help="A CSV in the store (locally: a path under the store folder); omitted: iris.")
@click.option("--target-column", help="The CSV column to predict (with --data-key).")
@click.option("--feature-columns", metavar="A,B,...", help="Comma-separated feature columns; omitted: all others.")
@click.option(
    "--candidates",
    metavar="NAMES",
    multiple=True,
    help="Comma-separated, or the option repeated: knn,sgd,logistic_regression,random_forest.",
)
@click.option(
    "--grids",
    type=click.Path(path_type=Path, dir_okay=False),
    help="JSON file: {candidate: grid or null}; replaces the default grids.",
)
@click.option("--publish", type=click.Choice(["always", "if_better", "never"]), help="When the new version goes live.")
@click.option("--min-f1-macro", type=click.FloatRange(0, 1), help="Publish only at this held-out f1_macro or better.")
@click.option("--missing-values", type=click.Choice(["drop", "refuse"]), help="Rows with empty cells: drop or refuse.")
@click.option("--name-bucket", help="The seed's field: the stack's own bucket, if given at all.")
@click.option("--async", "run_async", is_flag=True, help="Queue a training job and print its id.")
@click.option("--wait", is_flag=True, help="Queue a job and show its progress until it ends (implies --async).")
@click.option("--poll-seconds", type=click.FloatRange(min=0), default=2.0, hidden=True)
@target_options
@click.pass_context
def train(
    ctx: click.Context, grids: Path | None, run_async: bool, wait: bool, poll_seconds: float, **fields: Any
) -> None:
    """Train a model and publish it as a new version (every field of POST /train)."""
    if grids and fields["candidates"]:
        raise click.UsageError("--candidates and --grids both choose the candidates: give one")
    request = {
        **fields,
        "feature_columns": _split(fields["feature_columns"]),
        "candidates": _grids(grids) if grids else _names(fields["candidates"]),
    }
    request = {name: value for name, value in request.items() if value is not None}
    if run_async or wait:
        request["async"] = True
    if wait and not settings(ctx).remote:
        raise click.UsageError(_NO_JOB_WORKER)
    client = _client(ctx)
    answer = client.train(request)
    if "job_id" not in answer:  # answered synchronously
        _emit(ctx, answer, views.show_training)
        return
    if not wait:
        _emit(ctx, answer, functools.partial(_show_queued, remote=settings(ctx).remote))
        return
    _finish_job(ctx, _wait_for_job(client, answer["job_id"], poll_seconds), result_only=True)


def _show_queued(_: Console, answer: dict[str, Any], remote: bool) -> None:
    """A queued job for a person: its id alone on stdout (a script can capture it), how to follow it on stderr."""
    click.echo(answer["job_id"])
    follow = f"{PROG} jobs show {answer['job_id']} --wait"
    if not remote:  # in-process nothing runs it: a server on this store will
        follow = f"`{PROG} serve`, then {follow} --url http://127.0.0.1:{DEFAULT_PORT}"
    click.echo(f"queued; follow it with: {follow}", err=True)


# ---------------------------------------------------------------- jobs


_NO_JOB_WORKER = (
    "--wait needs a running service: in-process, nothing runs queued jobs. "
    f"Start `{PROG} serve` and add --url http://127.0.0.1:{DEFAULT_PORT}"
)


def _wait_for_job(client: ServiceClient, job_id: str, poll_seconds: float) -> dict[str, Any]:
    """Poll the job until it ends, with a progress bar over its candidates on a terminal."""
    with _progress(TextColumn("job {task.fields[job]} {task.description}"), MofNCompleteColumn()) as progress:
        task = progress.add_task("queued", total=None, job=job_id[:12])
        while True:
            job = client.job(job_id)
            done = job.get("progress") or {}
            progress.update(
                task,
                description=f"{job['status']} (candidates)",
                completed=done.get("candidates_done") or 0,
                total=done.get("candidates_total") or None,
            )
            if job["status"] in _FINISHED:
                return job
            time.sleep(poll_seconds)


def _finish_job(ctx: click.Context, job: dict[str, Any], result_only: bool = False) -> None:
    if job["status"] == "failed":
        _emit(ctx, job, None)  # a script gets the job's record; everyone, the error below
        message = (job.get("error") or {}).get("message") or "no reason given"
        raise ClientError(f"job {job['job_id']} failed: {message}")
    if result_only and job.get("result"):
        _emit(ctx, job["result"], views.show_training)
    else:
        _emit(ctx, job, views.show_job)


@cli.group(cls=_Cli)
@target_options
def jobs() -> None:
    """Training jobs queued with `train --async`."""


@jobs.command("list")
@page_options
@target_options
@click.pass_context
def jobs_list(ctx: click.Context, limit: int | None, next_token: str | None) -> None:
    """The most recent training jobs."""
    _emit(ctx, _client(ctx).jobs(limit, next_token), views.show_jobs)


@jobs.command("show")
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="Show progress until the job ends.")
@click.option("--poll-seconds", type=click.FloatRange(min=0), default=2.0, hidden=True)
@target_options
@click.pass_context
def jobs_show(ctx: click.Context, job_id: str, wait: bool, poll_seconds: float) -> None:
    """One job: its status, progress and result (or error)."""
    client = _client(ctx)
    job = client.job(job_id)
    if wait and job["status"] not in _FINISHED and not settings(ctx).remote:
        raise click.UsageError(_NO_JOB_WORKER)  # it would never start: say so instead of polling forever
    if wait:
        job = _wait_for_job(client, job_id, poll_seconds)
        _finish_job(ctx, job)
    else:
        _emit(ctx, job, views.show_job)


# ---------------------------------------------------------------- predict


def _parse_row(text: str) -> list[float]:
    if text.startswith("--"):
        raise click.NoSuchOption(text)
    try:
        row = [float(value) for value in text.split(",")]
    except ValueError:
        row = []
    if not row or not all(map(math.isfinite, row)):  # nan, inf, 1e400: JSON has no such numbers
        raise click.BadParameter(f"{text!r}: each row is comma-separated finite numbers, e.g. 0.7,1", param_hint="ROWS")
    return row


def _progress(*columns: Any) -> Progress:
    """A progress bar on stderr, only when stderr is a terminal (a pipe or a log file gets none)."""
    console = _console(err=True)
    return Progress(*columns, BarColumn(), TimeElapsedColumn(), console=console, disable=not console.is_terminal)


def _csv_inputs(client: ServiceClient, model: str | None, version: str | None) -> tuple[list[str] | None, str | None]:
    """The feature names and version a CSV is labelled with: the CSV's columns are picked and ordered by the
    version's feature names, and the whole file asks that one version. (None, version) if the target has no
    registry routes to say: the CSV's columns are then sent as they are.
    """
    from deployment_model.api.schemas import DEFAULT_MODEL_NAME  # what the service assumes when no model is named

    name = model or DEFAULT_MODEL_NAME
    try:
        if version is None:
            version = client.model(name, limit=1).get("published_version")
            if version is None:
                return None, None
        return client.version(name, version).get("feature_names"), version
    except ServiceError as error:
        if error.route_missing:
            return None, version
        raise


@contextlib.contextmanager
def _open_csv(path: str) -> Iterator[tuple[BinaryIO, int | None]]:
    if path == "-":
        yield sys.stdin.buffer, None
        return
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as error:
        raise ClientError(f"cannot read --csv {path}: {error.strerror}") from None
    with handle:
        yield handle, os.fstat(handle.fileno()).st_size


def _same_file(path: str, other: str | None) -> bool:
    """Whether two paths name one existing file (however they are spelled); '-' is a stream, never a file."""
    if other is None or "-" in (path, other):
        return False
    try:
        return os.path.samefile(path, other)
    except OSError:  # either does not exist (yet): opening it says what is wrong
        return False


@contextlib.contextmanager
def _open_output(path: str | None) -> Iterator[TextIO]:
    if path in (None, "-"):
        yield sys.stdout
        return
    try:
        handle = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as error:
        raise ClientError(f"cannot write --output {path}: {error.strerror}") from None
    with handle:
        yield handle


@cli.command(context_settings={"ignore_unknown_options": True})  # a row may start with a minus: -1.5,2
@click.argument("rows", nargs=-1)
@click.option(
    "--csv", "csv_path", metavar="FILE", help="Rows from a CSV file ('-' for stdin); its header names the features."
)
@click.option(
    "--columns",
    metavar="A,B,...",
    help="The CSV's feature columns, in the model's order (default: the model's own feature names, else every column).",
)
@click.option("--model", "--filename-model", "model", help="Which model (default Model_ml).")
@click.option("--model-version", help="Pin a version (default: the published one, then pinned for the whole file).")
@click.option("--scaler", "--filename-scaler", "scaler", help="Must name the model's own scaler, if given.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    help="Default: a table on a terminal, csv for --csv, else json.",
)
@click.option("--output", "-o", metavar="FILE", help="Write predictions here (default stdout).")
@click.option("--batch-rows", type=click.IntRange(min=1), help="Rows per request (default: the service's limit).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@target_options
@click.pass_context
def predict(
    ctx: click.Context,
    rows: Sequence[str],
    csv_path: str | None,
    columns: str | None,
    model: str | None,
    model_version: str | None,
    scaler: str | None,
    output_format: str | None,
    output: str | None,
    batch_rows: int | None,
    progress: bool | None,
) -> None:
    """Label rows given as arguments (0.7,1 2.0,5.5) or every row of a CSV file, in batches.

    A CSV streams through in batches under the service's per-request limits, so a file of any size works;
    every batch asks the version the first one was answered with.
    """
    if bool(rows) == bool(csv_path):
        raise click.UsageError("give rows as arguments (e.g. 0.7,1 2.0,5.5) or --csv FILE, not both and not neither")
    output_format = output_format or (
        "json"
        if settings(ctx).json
        else "csv"
        if csv_path
        else "table"
        if output is None and sys.stdout.isatty()
        else "json"
    )
    if output_format == "table" and csv_path:
        raise click.UsageError("--format table is for rows given as arguments; a CSV's predictions are csv or json")
    if csv_path and _same_file(csv_path, output):  # writing would empty the rows before they are read
        raise ClientError(f"--output {output} is the --csv file: choose another output file")
    client = _client(ctx)
    max_rows = batch_rows or max_rows_per_request()
    if rows:
        parsed = [_parse_row(row) for row in rows]
        if output_format == "table":
            answers = list(predict_batches(client, batches(parsed, max_rows), model, model_version, scaler))
            merged = {**answers[0], "result": [label for a in answers for label in a["result"]]}
            if answers[0].get("probabilities") is not None:
                merged["probabilities"] = [p for a in answers for p in a["probabilities"]]
            views.show_predictions(_console(), parsed, merged)
            return
        _write_predictions(client, batches(parsed, max_rows), output_format, output, model, model_version, scaler)
        return
    assert csv_path is not None  # noqa: S101 - checked above
    names, model_version = _csv_inputs(client, model, model_version)
    names = _split(columns) or names
    with _open_csv(csv_path) as (handle, size):
        bar = _progress(TextColumn("{task.fields[rows]:,} rows"))
        if progress is not None:
            bar.disable = not progress
        with bar:
            task = bar.add_task("predict", total=size, rows=0)
            counted = CountingReader(handle, lambda n: bar.advance(task, n))
            source = read_feature_rows(counted, "standard input" if csv_path == "-" else csv_path, names)
            done = {"rows": 0}

            def count(labelled: int) -> None:
                done["rows"] += labelled
                bar.update(task, rows=done["rows"])

            groups = batches(source.rows, max_rows)
            _write_predictions(client, groups, output_format, output, model, model_version, scaler, on_batch=count)


def _write_predictions(
    client: ServiceClient,
    groups: Iterator[Any],
    output_format: str,
    output: str | None,
    model: str | None,
    version: str | None,
    scaler: str | None,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    written = 0
    with _open_output(output) as out:
        writer: PredictionWriter = CsvPredictions(out) if output_format == "csv" else JsonPredictions(out)
        try:
            for answer in predict_batches(client, groups, model, version, scaler, on_batch):
                writer.write(answer)
                written += answer["rows"]
        except ClientError as error:
            if isinstance(error, ServiceError) and error.code == "response_too_large":  # say how, in CLI terms
                error = ClientError(f"{error}: pass --batch-rows with at most that many rows")
            if written:  # say what the partial output holds
                raise ClientError(f"stopped after {written:,} rows were written: {error}") from None
            raise error from None
        writer.close()


# ---------------------------------------------------------------- models


@cli.group(cls=_Cli)
@target_options
def models() -> None:
    """Published models and their versions: list, inspect, publish (or roll back), delete."""


@models.command("list")
@page_options
@target_options
@click.pass_context
def models_list(ctx: click.Context, limit: int | None, next_token: str | None) -> None:
    """Every model, with its published version."""
    _emit(ctx, _client(ctx).models(limit, next_token), views.show_models)


@models.command("show")
@click.argument("name")
@click.argument("version", required=False)
@page_options
@target_options
@click.pass_context
def models_show(ctx: click.Context, name: str, version: str | None, limit: int | None, next_token: str | None) -> None:
    """A model's versions (newest first), or one version's metadata."""
    client = _client(ctx)
    if version:
        _emit(ctx, client.version(name, version), views.show_version)
    else:
        _emit(ctx, client.model(name, limit, next_token), views.show_model)


@models.command("history")
@click.argument("name")
@target_options
@click.pass_context
def models_history(ctx: click.Context, name: str) -> None:
    """Every change of the published version: train, publish, rollback."""
    _emit(ctx, _client(ctx).history(name), views.show_history)


@models.command("publish")
@click.argument("name")
@click.argument("version")
@click.option("--reason", help="Why; kept in the history.")
@click.option("--expected-version", help="Publish only if this version is the published one now.")
@target_options
@click.pass_context
def models_publish(
    ctx: click.Context, name: str, version: str, reason: str | None, expected_version: str | None
) -> None:
    """Make VERSION the one /predict serves (an older one: a rollback)."""
    answer = _client(ctx).publish(name, version, reason, expected_version)
    _emit(ctx, answer, f"{name}: published {answer.get('published_version')} (was {answer.get('previous_version')})")


@models.command("export")
@click.argument("name")
@click.argument("version")
@click.option("--publish", is_flag=True, help="Also publish the converted version.")
@target_options
@click.pass_context
def models_export(ctx: click.Context, name: str, version: str, publish: bool) -> None:
    """Convert a version trained before ONNX serving into a new version the inference function serves."""
    answer = _client(ctx).export(name, version, publish)
    state = "published" if answer.get("published") else "stored, not published"
    _emit(ctx, answer, f"{name}: version {answer.get('model_version')} derived from {version} ({state})")


@models.command("delete")
@click.argument("name")
@click.argument("version", required=False)
@click.option("--yes", is_flag=True, help="Do not ask before deleting a whole model.")
@target_options
@click.pass_context
def models_delete(ctx: click.Context, name: str, version: str | None, yes: bool) -> None:
    """Delete one version (not the published one), or a whole model with every version and its history."""
    client = _client(ctx)
    if version:
        answer = client.delete_version(name, version)
        message = f"{name}: deleted version {answer.get('deleted')}"
    else:
        if not yes:
            if not sys.stdin.isatty():
                raise click.UsageError(f"deleting every version of {name} needs --yes when not asked on a terminal")
            click.confirm(f"Delete model {name}: every version, the published pointer and the history?", abort=True)
        answer = client.delete_model(name)
        message = f"{name}: deleted {answer.get('deleted_versions')} versions"
    _emit(ctx, answer, message)


# ---------------------------------------------------------------- report, serve, openapi


@cli.command()
@click.argument("name")
@click.argument("version")
@click.option("--format", "report_format", type=click.Choice(["html", "json"]), default="html", show_default=True)
@click.option("--output", "-o", metavar="FILE", help="Default: NAME-VERSION-report.html (or .json); '-' for stdout.")
@target_options
@click.pass_context
def report(ctx: click.Context, name: str, version: str, report_format: str, output: str | None) -> None:
    """Save a version's training report (HTML with its pictures, or the numbers as JSON)."""
    data = _client(ctx).report(name, version, report_format)
    if output == "-":
        click.echo(data.decode("utf-8"), nl=False)
        return
    path = Path(output or f"{name}-{version}-report.{report_format}")
    try:
        path.write_bytes(data)
    except OSError as error:
        raise ClientError(f"cannot write {path}: {error.strerror}") from None
    click.echo(f"saved the report of {name} {version} to {path}", err=settings(ctx).json)


@cli.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Bind address (loopback only by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True)
@target_options
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the API on this machine, as API Gateway would (models in the local store)."""
    from deployment_model.local.server import configure_environment, make_server

    options = settings(ctx)
    if options.remote:
        raise click.UsageError("serve runs the service here; --url and --stack name a service elsewhere")
    configure_environment(_store_dir(options.store_dir))
    # A retrain here should answer at once, not after the deployed default of 60 s: re-read the pointer each second.
    os.environ.setdefault("MODEL_CACHE_TTL_SECONDS", str(LOCAL_CACHE_TTL_SECONDS))
    try:
        server = make_server(host, port)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ClientError(
                f"port {port} on {host} is already in use: stop what runs there, or pick another port "
                f"(--port {port + 1}; with make: make run PORT={port + 1})"
            ) from None
        raise ClientError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    where = "loopback only" if host in ("127.0.0.1", "localhost", "::1") else "EXPOSED beyond this machine"
    store = os.environ.get("MODEL_STORE_DIR") or f"s3://{os.environ['MODEL_BUCKET']}"
    click.echo(f"Serving on http://{host}:{server.server_port} ({where}); models in {store}")
    click.echo(f"OpenAPI at {OPENAPI_PATH}, try it in a browser at {DOCS_PATH}; stop with Ctrl-C")
    try:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):  # EMF lines: no CloudWatch here
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@cli.command()
@target_options
@click.pass_context
def openapi(ctx: click.Context) -> None:
    """Print the OpenAPI document of both functions' routes (generated from this code)."""
    from deployment_model.local.server import configure_environment, openapi_document

    configure_environment(settings(ctx).store_dir)  # the handlers open their store when imported
    click.echo(json.dumps(openapi_document(), indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0, 1 for an error, 2 for a usage error)."""
    warnings.filterwarnings("ignore", EMPTY_METRICS_WARNING, UserWarning)
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name=PROG, standalone_mode=True)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
    return 0
