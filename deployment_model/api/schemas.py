"""Request and response models of the HTTP API: the contract clients rely on, and the OpenAPI document.

Field names keep the seed tutorial's JSON working unchanged: filename_model, filename_scaler, name_bucket,
x_test, and the responses' message / result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import chain
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator

from deployment_model.api.grids import CandidateName, Candidates
from deployment_model.ml.limits import MAX_FEATURES_PER_ROW, MAX_ROWS_PER_REQUEST
from deployment_model.storage.registry import DATA_KEY_PATTERN, NAME_PATTERN, VERSION_PATTERN

__all__ = ["MAX_FEATURES_PER_ROW", "MAX_ROWS_PER_REQUEST", "CandidateName"]

DEFAULT_MODEL_NAME = "Model_ml"
DEFAULT_SCALER_NAME = "scaler"


class TooManyRowsError(Exception):
    """More rows than one request may carry: answered 413, not 400 (the request is fine, just too big)."""

    def __init__(self, rows: int) -> None:
        super().__init__(f"x_test has {rows} rows; at most {MAX_ROWS_PER_REQUEST} per request: split the batch")


@dataclass(frozen=True, repr=False)
class FeatureRows:
    """x_test as a float64 matrix, remembering whether the client sent one flat row."""

    matrix: np.ndarray
    single_row: bool

    def __repr__(self) -> str:
        # Shape only: libraries format request models into debug messages, even when debug logging is off,
        # and printing the values would cost time on every call and put feature values in logs.
        rows, columns = self.matrix.shape
        return f"FeatureRows({rows} rows x {columns} features)"


_NUMBER_TYPES = {int, float}


def parse_rows(value: Any) -> FeatureRows:
    """Validate x_test in bulk: C-level passes over the values and numpy checks, no Python loop per value."""
    if not isinstance(value, list) or not value:
        raise ValueError("x_test must be a non-empty list: one row [f1, f2, ...] or rows [[f1, f2, ...], ...]")
    if type(value[0]) is list:  # rows; a number among them has no len(), a string's characters are refused below
        if len(value) > MAX_ROWS_PER_REQUEST:
            raise TooManyRowsError(len(value))
        try:
            widths = set(map(len, value))
        except TypeError:
            raise ValueError("x_test must be one row of numbers or a list of rows of numbers, not a mix") from None
        if len(widths) != 1:
            raise ValueError("x_test rows must all have the same number of values")
        rows, width, single_row = len(value), widths.pop(), False
        flat = list(chain.from_iterable(value))  # one flat list converts to numpy far faster than nested ones
    else:  # one row: a list among its values is refused below
        rows, width, single_row, flat = 1, len(value), True, value
    if width == 0:
        raise ValueError("x_test rows must not be empty")
    if width > MAX_FEATURES_PER_ROW:
        raise ValueError(f"x_test rows may have at most {MAX_FEATURES_PER_ROW} values")
    value_types = set(map(type, flat))
    if not value_types <= _NUMBER_TYPES:
        found = sorted(t.__name__ for t in value_types - _NUMBER_TYPES)
        raise ValueError(f"x_test rows must hold numbers only; found {', '.join(found)}")
    try:
        matrix = np.fromiter(flat, dtype=np.float64, count=len(flat)).reshape(rows, width)
    except OverflowError:
        raise ValueError("x_test holds a number too large for a 64-bit float") from None
    finite = np.isfinite(matrix)
    if not finite.all():
        row = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise ValueError(f"x_test must hold finite numbers only; row {row} does not")
    return FeatureRows(matrix, single_row)


def _matching(pattern: re.Pattern[str], words: str) -> AfterValidator:
    """A pattern check whose error says in words what is accepted (pydantic's own would print the regex)."""

    def check(value: str) -> str:
        if not pattern.match(value) or ".." in value:
            raise ValueError(words)
        return value

    return AfterValidator(check)


Name = Annotated[
    str,
    Field(max_length=128, strict=True, json_schema_extra={"pattern": NAME_PATTERN.pattern}),
    _matching(
        NAME_PATTERN,
        "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit, not ending with '.', "
        "without '..'",
    ),
]
DataKey = Annotated[
    str,
    Field(max_length=1024, strict=True, json_schema_extra={"pattern": DATA_KEY_PATTERN.pattern}),
    _matching(
        DATA_KEY_PATTERN,
        "must be an object key of letters, digits, '.', '_', '/', '=', '+' or '-', starting with a letter or digit, "
        "without '..'",
    ),
]
_VERSION_FIELD = Field(strict=True, json_schema_extra={"pattern": VERSION_PATTERN.pattern})
_VERSION_EXAMPLE = "20261124T123456123456Z-1a2b3c4d"
Version = Annotated[
    str,
    _VERSION_FIELD,
    _matching(VERSION_PATTERN, f"must be a version id such as {_VERSION_EXAMPLE} (a train response's model_version)"),
]
PinnedVersion = Annotated[  # predict's model_version, where leaving it out means the latest
    str,
    _VERSION_FIELD,
    _matching(
        VERSION_PATTERN, f"must be a published version such as {_VERSION_EXAMPLE}; omit model_version for the latest"
    ),
]
ColumnName = Annotated[str, Field(min_length=1, max_length=256, strict=True)]

_ROW_SCHEMA = {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": MAX_FEATURES_PER_ROW}
Rows = Annotated[
    FeatureRows,
    PlainValidator(parse_rows),
    WithJsonSchema(
        {
            "description": "One row of features (result is one label) or a list of rows (result is a list).",
            "oneOf": [_ROW_SCHEMA, {"type": "array", "items": _ROW_SCHEMA, "minItems": 1}],
        }
    ),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name_bucket: str | None = Field(
        default=None,
        max_length=255,
        description="Optional, kept for the seed's JSON: must be the stack's own bucket (MODEL_BUCKET).",
    )


class PredictRequest(_Request):
    x_test: Rows
    filename_model: Name = Field(default=DEFAULT_MODEL_NAME, description="Which model to ask.")
    filename_scaler: Name | None = Field(
        default=None, description="Must name the scaler trained with the model; omitted: that scaler."
    )
    model_version: PinnedVersion | None = Field(default=None, description="Pin a published version; omitted: latest.")
    explain_drift: bool = Field(
        default=False, strict=True, description="Also answer out_of_range: per row, outside the training range?"
    )


class TrainRequest(_Request):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # built at first use: train only

    filename_model: Name = Field(default=DEFAULT_MODEL_NAME, description="Name to publish the model under.")
    filename_scaler: Name = Field(default=DEFAULT_SCALER_NAME, description="Name of the scaler artifact.")
    data_key: DataKey | None = Field(
        default=None, description="A CSV object in the stack's bucket; omitted: the seed's iris recipe."
    )
    target_column: ColumnName | None = None
    feature_columns: Annotated[list[ColumnName], Field(min_length=1, max_length=MAX_FEATURES_PER_ROW)] | None = None
    candidates: Candidates | None = Field(
        default=None,
        description="Estimators to search: a list of names (default grids), or an object of name: grid (null: "
        "the default grid); a grid replaces the default grid. Omitted: knn and sgd with the seed's grids.",
    )
    missing_values: Literal["drop", "refuse"] = Field(
        default="drop",
        description="CSV rows with an empty (or NA) cell in a used column: drop them (the response counts them) "
        "or refuse the CSV.",
    )
    publish: Literal["always", "if_better", "never"] = Field(
        default="always",
        description="Publish the new version: always (the seed's behaviour), if_better (its held-out f1_macro is at "
        "least the published version's, on the same features) or never (store it only).",
    )
    min_f1_macro: Annotated[float, Field(ge=0, le=1, strict=True)] | None = Field(
        default=None, description="Publish only if the held-out f1_macro is at least this (0-1)."
    )
    async_: bool = Field(
        default=False,
        strict=True,
        alias="async",
        description="Queue the training as a job and answer 202 at once (as does the header Prefer: respond-async).",
    )

    @model_validator(mode="after")
    def _fields_agree(self) -> TrainRequest:
        if self.filename_scaler == self.filename_model:
            raise ValueError("filename_scaler must differ from filename_model: they name two artifacts")
        if (self.data_key is None) != (self.target_column is None):
            raise ValueError("data_key and target_column go together: give both, or neither for the iris recipe")
        if self.feature_columns is not None and self.data_key is None:
            raise ValueError("feature_columns needs data_key")
        return self

    def candidate_grids(self) -> dict[str, dict[str, list[Any]] | None] | None:
        """name -> grid (None: the default grid) in the request's order; None: the seed's candidates."""
        return None if self.candidates is None else self.candidates.grids()


class ResponseModel(BaseModel):
    """A response's shape, declared for the OpenAPI document. Built at first use (`defer_build`), so a cold
    start, which answers with plain dicts, never pays for building it."""

    model_config = ConfigDict(defer_build=True)


class Metrics(ResponseModel):
    f1_macro: float
    accuracy: float


class RowCounts(ResponseModel):
    total: int = Field(description="Rows trained and tested on.")
    train: int
    test: int
    dropped: int = Field(default=0, description="CSV rows left out for an empty (or NA) cell in a used column.")
    dropped_reason: str | None = Field(default=None, description="Which columns and the first line, when any.")


class TrainResponse(ResponseModel):
    message: str = "Train successfully"
    model_name: str
    model_version: str
    scaler_name: str
    candidate: str
    estimator: str
    params: dict[str, Any]
    metrics: Metrics
    candidate_scores: dict[str, float] = Field(description="Held-out f1_macro of each candidate's best fit.")
    rows: RowCounts
    feature_names: list[str]
    labels: list[str]
    training_data: str
    training_data_sha256: str = Field(description='sha256 of the CSV bytes (of "iris" for the seed\'s recipe).')
    training_data_etag: str | None = Field(description="The CSV object's S3 ETag; null for iris or a local store.")
    duration_seconds: float
    published: bool = Field(description="Whether this version is now the published one.")
    publish_reason: str = Field(description="Why it was or was not published, in words.")


class PredictResponse(ResponseModel):
    result: str | list[str] = Field(description="Label per row; a single label when x_test was one row.")
    prediction: int | list[int] = Field(description="Class index per row, into `labels`.")
    probabilities: list[float] | list[list[float]] | None = Field(
        description="Probability of each label per row, where the estimator has them; else null."
    )
    labels: list[str]
    model_name: str
    model_version: str
    rows: int
    out_of_range: list[bool] | None = Field(
        default=None,
        description="Only with explain_drift: per row, whether a feature lies outside the version's training range "
        "(README, Observability); null for versions trained before drift statistics were recorded.",
    )


class ErrorDetail(ResponseModel):
    field: str
    message: str


class ErrorResponse(ResponseModel):
    error: str = Field(description="A stable code, e.g. invalid_request, model_not_found.")
    message: str = Field(description="What is wrong, naming the field or resource.")
    details: list[ErrorDetail] | None = None


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # built at first use: train only

    publish: bool = Field(
        default=False, strict=True, description="Also publish the converted version (make it what /predict serves)."
    )


class ExportResponse(ResponseModel):
    model_name: str
    model_version: str = Field(description="The new version: the same model and scaler, plus its ONNX graph.")
    derived_from: str = Field(description="The version it was converted from.")
    published: bool
