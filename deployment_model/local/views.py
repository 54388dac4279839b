"""How the command line shows the service's answers on a terminal: readable tables (rich).

Each view takes the JSON the service answered, exactly as `--json` prints it, so a terminal and a pipe see
the same facts. Fields a server does not send (an older deployment) are shown as blanks, never an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{key}={_text(item)}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value)
    return str(value)


def _table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for index, column in enumerate(columns):  # ids and versions are copied from here: never cut with an ellipsis
        table.add_column(column, overflow="fold", no_wrap=index == 0)
    for row in rows:
        table.add_row(*(_text(cell) for cell in row))
    return table


def _fields(data: dict[str, Any], names: Sequence[tuple[str, str]], title: str | None = None) -> Table:
    """A two-column table of the named fields that are present."""
    table = Table(show_header=False, title=title, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, label in names:
        if key in data:
            table.add_row(label, _text(data[key]))
    return table


def _next_page(console: Console, answer: dict[str, Any]) -> None:
    if answer.get("next_token"):
        console.print(f"More: --next-token {answer['next_token']}")


def show_training(console: Console, result: dict[str, Any]) -> None:
    metrics = result.get("metrics") or {}
    rows = result.get("rows") or {}
    summary = {
        **result,
        "f1_macro": metrics.get("f1_macro"),
        "accuracy": metrics.get("accuracy"),
        "row_counts": f"{rows.get('total')} ({rows.get('train')} train, {rows.get('test')} test"
        + (f", {rows['dropped']} dropped)" if rows.get("dropped") else ")"),
    }
    console.print(
        _fields(
            summary,
            [
                ("model_name", "model"),
                ("model_version", "version"),
                ("published", "published"),
                ("publish_reason", "why"),
                ("candidate", "candidate"),
                ("estimator", "estimator"),
                ("params", "params"),
                ("f1_macro", "f1_macro (held out)"),
                ("accuracy", "accuracy (held out)"),
                ("row_counts", "rows"),
                ("feature_names", "features"),
                ("labels", "labels"),
                ("training_data", "data"),
                ("duration_seconds", "seconds"),
            ],
        )
    )
    scores = result.get("candidate_scores") or {}
    if scores:
        console.print(_table(["candidate", "f1_macro (held out)"], sorted(scores.items(), key=lambda kv: -kv[1])))


def show_predictions(console: Console, rows: Sequence[Sequence[float]], answer: dict[str, Any]) -> None:
    labels = answer["result"] if isinstance(answer["result"], list) else [answer["result"]]
    probabilities = answer.get("probabilities")
    if probabilities is not None and not isinstance(probabilities[0], list):
        probabilities = [probabilities]
    table = Table("row", "label", "probability", title=f"{answer['model_name']} {answer['model_version']}")
    for index, (row, label) in enumerate(zip(rows, labels, strict=True)):
        probability = "" if probabilities is None else f"{max(probabilities[index]):.3f}"
        table.add_row(", ".join(f"{value:g}" for value in row), label, probability)
    console.print(table)


def show_job(console: Console, job: dict[str, Any]) -> None:
    progress = job.get("progress") or {}
    error = job.get("error") or {}
    summary = {
        **job,
        "model": (job.get("request") or {}).get("filename_model"),
        "progress_text": f"{progress.get('candidates_done')}/{progress.get('candidates_total')} candidates"
        if progress
        else None,
        "error_text": error.get("message"),
    }
    names = [
        ("job_id", "job"),
        ("status", "status"),
        ("model", "model"),
        ("progress_text", "progress"),
        ("submitted_at", "submitted"),
        ("started_at", "started"),
        ("finished_at", "finished"),
        ("error_text", "error"),
    ]
    console.print(_fields({key: value for key, value in summary.items() if value is not None}, names))
    if job.get("result"):
        show_training(console, job["result"])


def show_jobs(console: Console, answer: dict[str, Any]) -> None:
    rows = [
        (
            job.get("job_id"),
            job.get("status"),
            job.get("model_name"),
            job.get("submitted_at"),
            job.get("finished_at"),
            job.get("model_version"),
        )
        for job in answer.get("jobs", [])
    ]
    console.print(_table(["job", "status", "model", "submitted", "finished", "version"], rows))
    _next_page(console, answer)


def show_models(console: Console, answer: dict[str, Any]) -> None:
    rows = [
        (model.get("name"), model.get("published_version"), model.get("published_at"), model.get("versions"))
        for model in answer.get("models", [])
    ]
    console.print(_table(["model", "published version", "published at", "versions"], rows))
    _next_page(console, answer)


def show_model(console: Console, answer: dict[str, Any]) -> None:
    rows = [
        (
            "*" if version.get("published") else "",
            version.get("version"),
            version.get("created_at"),
            version.get("candidate"),
            (version.get("metrics") or {}).get("f1_macro"),
            (version.get("metrics") or {}).get("accuracy"),
            (version.get("rows") or {}).get("total"),
            version.get("training_data"),
        )
        for version in answer.get("versions", [])
    ]
    title = f"{answer.get('name')}: published {answer.get('published_version') or 'none'}"
    columns = ["", "version", "created", "candidate", "f1_macro", "accuracy", "rows", "data"]
    console.print(_table(columns, rows, title=title))
    _next_page(console, answer)


def show_version(console: Console, metadata: dict[str, Any]) -> None:
    show_training(console, {"model_name": metadata.get("name"), "model_version": metadata.get("version"), **metadata})


def show_history(console: Console, answer: dict[str, Any]) -> None:
    rows = [
        (event.get("at"), event.get("action"), event.get("version"), event.get("previous_version"), event.get("reason"))
        for event in answer.get("events", [])
    ]
    console.print(_table(["at", "action", "version", "previous", "reason"], rows, title=answer.get("name")))
