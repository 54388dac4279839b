"""Prove an ONNX export answers as scikit-learn does before any version built on it is published.

The graph is run the way the inference function will run it (ml/onnx_model.py) on the held-out split and on
probe rows spread over and far beyond the training range (plus training rows themselves, where KNN's
distance weighting has its special case); every label must equal scikit-learn's and every probability
agree within 1e-4. A failure names the estimator and its parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from deployment_model.ml.onnx_export import describe
from deployment_model.ml.onnx_model import OnnxModel, load_onnx_model
from deployment_model.ml.prediction import MAX_SCALED_MAGNITUDE, classify

PROBABILITY_TOLERANCE = 1e-4
PROBES_IN_RANGE = 1000  # uniform over the training range widened by its span on each side
PROBES_FAR = 200  # uniform over the range widened by 1,000 spans
PROBES_ON_TRAINING_ROWS = 200
PROBE_SEED = 0


class OnnxVerificationError(ValueError):
    """The ONNX graph disagrees with scikit-learn; the message says where and by how much."""


def probe_rows(training_rows: np.ndarray, seed: int = PROBE_SEED) -> np.ndarray:
    """Rows over and beyond the training range, and some training rows exactly (distance 0 for KNN)."""
    rng = np.random.default_rng(seed)
    low, high = training_rows.min(axis=0), training_rows.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    n_features = training_rows.shape[1]
    in_range = rng.uniform(low - span, high + span, size=(PROBES_IN_RANGE, n_features))
    far = rng.uniform(low - 1000 * span, high + 1000 * span, size=(PROBES_FAR, n_features))
    picks = rng.choice(len(training_rows), size=min(PROBES_ON_TRAINING_ROWS, len(training_rows)), replace=False)
    return np.vstack([in_range, far, training_rows[picks]])


def verify_onnx(
    data: bytes,
    metadata: Mapping[str, Any],
    scaler: Any,
    classifier: Any,
    held_out: np.ndarray,
    training_rows: np.ndarray,
) -> OnnxModel:
    """Load the graph as serving does and compare it with scikit-learn; returns the loaded model if it agrees."""
    model = load_onnx_model(data, metadata)
    for what, rows in (("held-out", held_out), ("probe", probe_rows(training_rows))):
        if not len(rows):
            continue
        scaled = scaler.transform(rows)
        rows = rows[(np.abs(scaled) < MAX_SCALED_MAGNITUDE).all(axis=1)]  # refused alike on both paths
        if not len(rows):
            continue
        expected_classes, expected_probabilities = classify(classifier, scaler.transform(rows))
        got = model.predict(rows)
        _compare(classifier, what, rows, expected_classes, expected_probabilities, got.classes, got.probabilities)
    return model


def _compare(
    classifier: Any,
    what: str,
    rows: np.ndarray,
    expected_classes: np.ndarray,
    expected_probabilities: np.ndarray | None,
    classes: np.ndarray,
    probabilities: np.ndarray | None,
) -> None:
    where = f"the ONNX export of {describe(classifier)} disagrees with scikit-learn on {what} rows"
    wrong = np.flatnonzero(np.asarray(expected_classes) != np.asarray(classes))
    if len(wrong):
        first = wrong[0]
        raise OnnxVerificationError(
            f"{where}: {len(wrong)} of {len(rows)} labels differ (first: row {rows[first].tolist()} is class "
            f"{expected_classes[first]!r} in scikit-learn, {classes[first]!r} in ONNX)"
        )
    if (expected_probabilities is None) != (probabilities is None):
        raise OnnxVerificationError(f"{where}: one gives probabilities and the other does not")
    if expected_probabilities is not None:
        gap = np.abs(expected_probabilities - probabilities)
        if not (gap <= PROBABILITY_TOLERANCE).all():  # a NaN fails too
            row = int(np.nanargmax(np.where(np.isnan(gap), np.inf, gap)) // gap.shape[1])
            raise OnnxVerificationError(
                f"{where}: probabilities differ by up to {float(np.nanmax(gap)):.3g} (more than "
                f"{PROBABILITY_TOLERANCE:g}; first at row {rows[row].tolist()})"
            )
