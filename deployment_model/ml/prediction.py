"""Predictions from a loaded model version: its own scaler, then its classifier, in one pass.

Before any arithmetic, two checks on what the answer would need: every value within the model's
`input_limits` (ml/input_limits.py), and an answer that fits Lambda's 6 MB response limit. Both serving paths
run the same checks (`check_request`): scikit-learn here (the reference, and what training verifies against),
ONNX in ml/onnx_model.py (what the inference function serves).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from deployment_model.ml.input_limits import InvalidRowsError, check_rows
from deployment_model.ml.limits import LAMBDA_PAYLOAD_BYTES

__all__ = ["InvalidRowsError", "Prediction", "ResponseTooLargeError", "check_answer_size", "predict"]

# Versions trained before input_limits were recorded: |scaled value| must stay below this. Beyond about 1e16
# standard deviations every distance to the training points rounds to the same float64 and a KNN label is
# arbitrary (in scikit-learn and ONNX alike); 1e12 keeps four orders of magnitude of margin.
MAX_SCALED_MAGNITUDE = 1e12

# Room left under Lambda's 6 MB for the response envelope and headers.
MAX_RESPONSE_BYTES = LAMBDA_PAYLOAD_BYTES - 64 * 1024
# The longest JSON a probability takes (e.g. 0.00012345678901234567 or 1.2345678901234567e-300), plus a comma.
PROBABILITY_BYTES = 25


class ResponseTooLargeError(Exception):
    """The answer to this many rows would exceed Lambda's response limit: answered 413 with how many rows fit."""


@dataclass(frozen=True)
class Prediction:
    classes: np.ndarray  # class index per row, into labels
    labels: list[str]  # label per row
    probabilities: np.ndarray | None  # rows x classes, when the estimator has predict_proba


@lru_cache(maxsize=64)
def _label_bytes(labels: tuple[str, ...]) -> tuple[int, int]:
    """The longest and the total worst-case bytes of the labels in a response: JSON in a JSON string (API
    Gateway's body), ASCII-escaped. Cached: a model's labels do not change between calls."""
    sizes = [len(json.dumps(json.dumps(label))) for label in labels]
    return max(sizes), sum(sizes)


def check_answer_size(rows: int, labels: Sequence[str], probabilities: bool, model: str) -> None:
    """Refuse, before computing anything, an answer larger than Lambda can return; say how many rows fit."""
    longest, total = _label_bytes(tuple(labels))
    fixed = 4096 + total + len(labels)  # names, version, the labels list, punctuation
    per_row = longest + 1 + len(str(len(labels))) + 1
    if probabilities:
        per_row += 2 + PROBABILITY_BYTES * len(labels)
    fitting = max(0, (MAX_RESPONSE_BYTES - fixed) // per_row)
    if rows > fitting:
        raise ResponseTooLargeError(
            f"the answer to {rows} rows of model {model!r} ({len(labels)} classes, labels up to "
            f"{max(map(len, labels))} characters) would exceed Lambda's 6 MB response limit; at most {fitting} "
            "rows fit in one request: split the batch"
        )


def predict(loaded: Any, rows: np.ndarray) -> Prediction:
    """Scale with the run's own scaler, then classify; one pass gives both labels and probabilities.

    `loaded` is a LoadedModel (ml/artifacts.py): name, feature_names, labels, label_array, metadata, scaler, model.
    """
    limits = check_request(loaded, rows, hasattr(loaded.model, "predict_proba"))
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow becomes inf, refused just below
        scaled = loaded.scaler.transform(rows)
    if not limits:
        check_magnitude(scaled, loaded.name)
    classes, probabilities = classify(loaded.model, scaled)
    labels = loaded.label_array[classes].tolist()
    return Prediction(classes=classes, labels=labels, probabilities=probabilities)


def check_request(served: Any, rows: np.ndarray, has_probabilities: bool) -> dict[str, Any] | None:
    """The checks before any arithmetic, on either path: width, answer size, input limits (returned, if any).

    `served` has name, feature_names, labels and metadata (a LoadedModel or an OnnxModel).
    """
    expected = len(served.feature_names)
    if rows.shape[1] != expected:
        raise InvalidRowsError(
            f"x_test rows must have {expected} values ({', '.join(served.feature_names)}) for model "
            f"{served.name!r}; got {rows.shape[1]}"
        )
    check_answer_size(len(rows), served.labels, has_probabilities, served.name)
    limits = served.metadata.get("input_limits")
    if limits:
        check_rows(limits, rows, served.feature_names, served.name)
    return limits


def check_magnitude(scaled: np.ndarray, model_name: str) -> None:
    """For versions without input_limits: refuse scaled rows too far from the training data to label."""
    too_large = ~(np.abs(scaled) < MAX_SCALED_MAGNITUDE).all(axis=1)
    if too_large.any():
        raise InvalidRowsError(
            f"x_test row {int(np.flatnonzero(too_large)[0])} has values too large for model {model_name!r} "
            f"(more than {MAX_SCALED_MAGNITUDE:g} standard deviations from the training data)"
        )


def classify(model: Any, scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Class values and probabilities (None when the estimator has no predict_proba) of scaled rows."""
    if hasattr(model, "predict_proba"):
        # For every allow-listed estimator, predict() is the argmax of predict_proba (tested), so the
        # labels come from the probabilities instead of a second pass over the rows.
        probabilities = model.predict_proba(scaled)
        return model.classes_[probabilities.argmax(axis=1)], probabilities
    return model.predict(scaled), None
