"""GET /models/{name}/versions/{version}/report: a version's training report as an HTML page or JSON.

The page is one self-contained document: the pictures are inline data URIs, so API Gateway needs no binary
media types and the page needs nothing but itself (its Content-Security-Policy allows nothing else).
Every number on it carries `data-path`, the place of the same number in the JSON answer.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson
from aws_lambda_powertools.event_handler import Response, content_types

from deployment_model.api.schemas import ErrorResponse
from deployment_model.api.service import ApiError, route_responses
from deployment_model.ml.report import FEATURE_STATISTICS, IMAGE_KINDS, REPORT_KIND
from deployment_model.storage.registry import ModelRegistry

FORMATS = ("html", "json")
MAX_CLASSES_IN_TABLE = 30  # a class-by-class table grows with the square: past this the page would be megabytes
IMAGE_CAPTIONS = {
    "report_confusion_matrix": "Confusion matrix on the held-out split",
    "report_decision_regions": "Decision regions, with the training points",
}
REPORT_ROUTE_DOCS: dict[str, Any] = {
    "summary": "A version's training report: an HTML page, or its numbers with ?format=json",
    "responses": {
        **route_responses(ErrorResponse, "", 400, 404, 409, 503),
        200: {
            "description": "The report: a self-contained HTML page, or with format=json the numbers",
            "content": {
                "text/html": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            },
        },
    },
}
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, max-age=3600",  # a version and its report never change
}


@dataclass(frozen=True)
class VersionReport:
    name: str
    version: str
    numbers: dict[str, Any]
    images: dict[str, bytes]  # kind -> PNG


def load_report(registry: ModelRegistry, name: str, version: str) -> VersionReport:
    """The report's verified artifacts: the one place that knows where reports are stored."""
    stored = registry.load(name, version, ())  # the metadata, checked once; each artifact read once below
    kinds = [kind for kind in (REPORT_KIND, *IMAGE_KINDS) if kind in stored.metadata["artifacts"]]
    if REPORT_KIND not in kinds:
        raise ApiError(
            HTTPStatus.NOT_FOUND,
            "report_not_found",
            f"model {name!r} version {version} has no training report: it was trained before reports existed; "
            "train the model again to get a version with one",
        )
    artifacts = {kind: registry.artifact_of(stored, kind) for kind in kinds}  # every digest checked
    try:
        numbers = orjson.loads(artifacts.pop(REPORT_KIND))
    except orjson.JSONDecodeError:
        raise ApiError(
            HTTPStatus.CONFLICT, "model_integrity_error", f"model {name!r} version {version}: report is not JSON"
        ) from None
    return VersionReport(name=name, version=version, numbers=numbers, images=artifacts)


def report_response(registry: ModelRegistry, name: str, version: str, format: str | None) -> Response:
    """The route's answer: the HTML page, or the numbers with ?format=json (name and version are checked by
    the route's parameter types)."""
    chosen = "html" if format is None else format
    if chosen not in FORMATS:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            "invalid_request",
            f"query parameter format must be one of {', '.join(FORMATS)}; got {chosen!r}",
        )
    report = load_report(registry, name, version)
    if chosen == "json":
        body = {"model_name": report.name, "model_version": report.version, "report": report.numbers}
        return Response(200, content_types.APPLICATION_JSON, body=orjson.dumps(body).decode())
    return Response(200, "text/html; charset=utf-8", body=render_page(report), headers=_PAGE_HEADERS)


def _text(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any, path: str) -> str:
    """A table cell for a number, 4 decimals for floats, tagged with its JSON path."""
    shown = "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
    return f'<td class="num" data-path="{_text(path)}">{shown}</td>'


def _table(headers: Iterable[str], rows: Iterable[str], caption: str) -> str:
    head = "".join(f"<th>{_text(h)}</th>" for h in headers)
    body = "".join(f"<tr>{row}</tr>" for row in rows)
    return f"<table><caption>{_text(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_page(report: VersionReport) -> str:
    n = report.numbers
    labels, held_out = n["labels"], n["held_out"]
    data = n["training_data"]
    chosen = n["chosen"]
    summary = (
        f"<p>Trained on <code>{_text(data['source'])}</code> (sha256 <code>{_text(data['sha256'])}</code>): "
        f"{data['rows']['total']} rows, {data['rows']['train']} to train, {data['rows']['test']} held out. "
        f"Chosen: <b>{_text(chosen['candidate'])}</b> ({_text(chosen['estimator'])}) with "
        f"<code>{_text(orjson.dumps(chosen['params']).decode())}</code>.</p>"
    )
    metrics = _table(
        ["metric", "value"],
        [f"<th>{_text(k)}</th>{_number(v, f'held_out.metrics.{k}')}" for k, v in held_out["metrics"].items()],
        "Held-out metrics",
    )
    confusion = (
        _table(
            ["true \\ predicted", *labels],
            [
                f"<th>{_text(labels[i])}</th>"
                + "".join(_number(v, f"held_out.confusion_matrix.{i}.{j}") for j, v in enumerate(row))
                for i, row in enumerate(held_out["confusion_matrix"])
            ],
            "Confusion matrix (held-out split)",
        )
        if len(labels) <= MAX_CLASSES_IN_TABLE
        else f"<p>The confusion matrix of {len(labels)} classes is in the picture and in ?format=json.</p>"
    )
    per_class = _table(
        ["class", "precision", "recall", "f1", "support"],
        [
            f"<th>{_text(c['label'])}</th>"
            + "".join(_number(c[k], f"held_out.per_class.{i}.{k}") for k in ("precision", "recall", "f1", "support"))
            for i, c in enumerate(held_out["per_class"])
        ],
        "Per class (held-out split)",
    )
    candidates = _table(
        ["candidate", "best cross-validation f1_macro", "held-out f1_macro", "chosen"],
        [
            f"<th>{_text(c['name'])}</th>"
            + _number(c["cv_f1_macro"], f"candidates.{i}.cv_f1_macro")
            + _number(c["held_out_f1_macro"], f"candidates.{i}.held_out_f1_macro")
            + f"<td>{'yes' if c['chosen'] else ''}</td>"
            for i, c in enumerate(n["candidates"])
        ],
        "Candidates",
    )
    stat_keys = [k for k in FEATURE_STATISTICS if n["feature_stats"] and k in n["feature_stats"][0]]
    features = _table(
        ["feature", *stat_keys],
        [
            f"<th>{_text(f['feature'])}</th>" + "".join(_number(f[k], f"feature_stats.{i}.{k}") for k in stat_keys)
            for i, f in enumerate(n["feature_stats"])
        ],
        "Training data, per feature (training split)",
    )
    drift = n["drift"]
    drift_note = (
        f"<p>Input drift: a prediction row counts as out of range when a feature lies outside the training "
        f"[min, max] above and more than {_text(drift['std_threshold'])} standard deviations from its mean.</p>"
    )
    figures = "".join(
        f'<figure><img alt="{_text(IMAGE_CAPTIONS[kind])}" src="data:image/png;base64,'
        f'{base64.b64encode(report.images[kind]).decode()}"><figcaption>{_text(IMAGE_CAPTIONS[kind])}</figcaption>'
        "</figure>"
        for kind in IMAGE_KINDS
        if kind in report.images
    )
    title = f"Training report: {report.name} {report.version}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_text(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_text(title)}</h1>{summary}<div class='figures'>{figures}</div>"
        f"{metrics}{confusion}{per_class}{candidates}{features}{drift_note}</body></html>"
    )


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1.5em 0}caption{text-align:left;font-weight:bold;padding:.3em 0}"
    "th,td{border:1px solid #ccc;padding:.3em .6em}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".figures{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}figcaption{font-size:.9em;color:#555}"
)
