"""Training data: the seed's iris recipe or a user's CSV, checked against what the service can serve.

Everything refused here is refused *before* any fitting and names the column, what was wrong and what is
accepted. A model is never trained on data that serving could not answer for (too many features, labels too
long to return, too many classes to return probabilities for).
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.datasets import load_iris

from deployment_model.ml.candidates import TrainingError
from deployment_model.ml.limits import MAX_CLASSES, MAX_FEATURES_PER_ROW, MAX_LABEL_LENGTH, MIN_ROWS_PER_CLASS

SEED_FEATURES = ("petal_width", "petal_length")
SEED_LABELS = ("Not virginica", "virginica")
IRIS_MARKER = b"iris"  # what training_data_sha256 fingerprints for the seed's recipe

MissingValues = Literal["drop", "refuse"]

# pandas parsing a CSV of mostly empty cells takes about 11x the file's size (measured: 76 MB -> 850 MB);
# the limit keeps the parse, the float matrix and the fits within the function's memory.
CSV_MEMORY_FACTOR = 20


class DataTooLargeError(TrainingError):
    """The CSV is larger than this function's memory can parse: answered 413."""


@dataclass(frozen=True)
class Dataset:
    """Features as a float matrix, the target as class indexes into `labels`, and where they came from."""

    features: np.ndarray
    target: np.ndarray
    feature_names: list[str]
    labels: list[str]
    source: str
    sha256: str  # of the CSV bytes, or of IRIS_MARKER
    etag: str | None = None  # the object store's tag (S3 ETag) when the caller knows it
    dropped_rows: int = 0
    dropped_reason: str | None = None


def iris_dataset() -> Dataset:
    """The seed's data: iris petal width and length, 1 = virginica, 0 = anything else."""
    iris = load_iris()
    features = iris.data[:, [3, 2]]  # petal width (cm), petal length (cm): the seed's order
    target = (iris.target == 2).astype(np.int64)
    sha256 = hashlib.sha256(IRIS_MARKER).hexdigest()
    return Dataset(features, target, list(SEED_FEATURES), list(SEED_LABELS), "iris", sha256)


def max_csv_bytes(memory_mb: int) -> int:
    """The largest CSV a function with this much memory parses safely."""
    return memory_mb * 1024 * 1024 // CSV_MEMORY_FACTOR


def check_csv_size(size: int, limit: int, source: str) -> None:
    """Refuse a CSV before reading or parsing it when it is larger than the limit."""
    if size > limit:
        raise DataTooLargeError(
            f"data_key {source!r} is {size:,} bytes; this function parses CSV files of at most {limit:,} bytes "
            f"(1/{CSV_MEMORY_FACTOR} of its memory): split the data, or deploy the train function with more memory"
        )


def csv_dataset(
    data: bytes,
    target_column: str,
    feature_columns: Sequence[str] | None,
    source: str,
    *,
    missing_values: MissingValues = "drop",
    etag: str | None = None,
) -> Dataset:
    """A user's CSV: numeric feature columns and any target column; labels are the target's values."""
    try:
        frame = pd.read_csv(io.BytesIO(data))
    except pd.errors.EmptyDataError:
        raise TrainingError(f"data_key {source!r} is empty: it needs a header line and rows") from None
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TrainingError(f"data_key {source!r} is not a readable CSV file: {exc}") from None
    names = _columns(frame, target_column, feature_columns, source)
    if frame.empty:
        raise TrainingError(f"data_key {source!r} has a header but no rows: add rows of data below it")
    frame = frame[[*names, target_column]]
    incomplete = frame.isna().any(axis=1)
    dropped, reason = int(incomplete.sum()), None
    if dropped:
        columns = [str(name) for name in frame.columns[frame.isna().any(axis=0)]]
        first = int(np.flatnonzero(incomplete.to_numpy())[0]) + 2  # a line number: 1-based, after the header
        reason = f"{dropped} rows have an empty (or NA) cell in column(s) {columns}, first on line {first}"
        if missing_values == "refuse":
            raise TrainingError(
                f'data_key {source!r}: {reason}; fill them in, or send missing_values: "drop" to train '
                "without those rows"
            )
        frame = frame[~incomplete]
        if frame.empty:
            raise TrainingError(f"data_key {source!r} has no rows left: {reason}")
    non_numeric = [name for name in names if not pd.api.types.is_numeric_dtype(frame[name])]
    if non_numeric:
        raise TrainingError(
            f"feature columns must hold numbers only; not numeric: {non_numeric} "
            "(choose numeric columns with feature_columns)"
        )
    features = frame[names].to_numpy(dtype=np.float64)
    if not np.isfinite(features).all():
        raise TrainingError("feature columns must hold finite numbers only (no inf, no values beyond 1.8e308)")
    codes, uniques = pd.factorize(frame[target_column], sort=True)
    labels = [str(value) for value in uniques]
    check_labels(labels, target_column)
    check_enough_rows(codes, labels)
    sha256 = hashlib.sha256(data).hexdigest()
    return Dataset(
        features, codes.astype(np.int64), [str(n) for n in names], labels, source, sha256, etag, dropped, reason
    )


def _columns(frame: pd.DataFrame, target_column: str, feature_columns: Sequence[str] | None, source: str) -> list[str]:
    """The feature columns to learn from, checked: present, distinct, not the target, not too many to serve."""
    if target_column not in frame.columns:
        shown = [str(c) for c in frame.columns[:20]]
        more = f" and {len(frame.columns) - 20} more" if len(frame.columns) > 20 else ""
        raise TrainingError(f"target_column {target_column!r} is not a column of {source!r}; columns: {shown}{more}")
    if feature_columns:
        repeated = sorted(name for name, count in Counter(feature_columns).items() if count > 1)
        if repeated:
            raise TrainingError(f"feature_columns lists {repeated} more than once; name each column once")
        if target_column in feature_columns:
            raise TrainingError(
                f"feature_columns includes the target_column {target_column!r}: a model cannot learn the answer "
                "from itself; leave it out of feature_columns"
            )
    names = list(feature_columns) if feature_columns else [c for c in frame.columns if c != target_column]
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise TrainingError(f"feature_columns {missing[:20]} are not columns of {source!r}")
    if not names:
        raise TrainingError(f"{source!r} has no feature column besides the target {target_column!r}")
    if len(names) > MAX_FEATURES_PER_ROW:
        raise TrainingError(
            f"{source!r} has {len(names)} feature columns; a predict row may carry at most {MAX_FEATURES_PER_ROW} "
            "values, so at most that many features: choose some with feature_columns"
        )
    return names


def check_labels(labels: list[str], target_column: str) -> None:
    """Labels every predict answer must carry: bounded in number and length (a 6 MB answer holds them)."""
    if len(labels) > MAX_CLASSES:
        raise TrainingError(
            f"target_column {target_column!r} has {len(labels)} distinct values; at most {MAX_CLASSES} classes "
            "(every predict answer carries a probability per class): is it the right column?"
        )
    long = [label for label in labels if len(label) > MAX_LABEL_LENGTH]
    if long:
        raise TrainingError(
            f"target_column {target_column!r} has {len(long)} values longer than {MAX_LABEL_LENGTH} characters "
            f"(the longest: {max(map(len, long))}); every predicted row repeats its label: use shorter labels"
        )


def check_enough_rows(target: np.ndarray, labels: list[str]) -> None:
    if len(labels) < 2:
        raise TrainingError(f"the target needs at least two classes; found {labels}")
    counts = np.bincount(target, minlength=len(labels))
    scarce = [labels[i] for i, count in enumerate(counts) if count < MIN_ROWS_PER_CLASS]
    if scarce:
        raise TrainingError(
            f"each class needs at least {MIN_ROWS_PER_CLASS} rows; too few rows of {scarce[:20]}"
            + (f" and {len(scarce) - 20} more classes" if len(scarce) > 20 else "")
        )
