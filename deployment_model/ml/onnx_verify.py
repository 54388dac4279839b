"""Prove an ONNX export answers as scikit-learn does before any version built on it is published.

The graph is run the way the inference function will run it (ml/onnx_model.py) on the held-out split (a
seeded sample of 2,000 rows when it is larger) and on
probe rows spread over and far beyond the training range (plus training rows themselves, where KNN's
distance weighting has its special case); every label must equal scikit-learn's and every probability
agree within 1e-4. A failure names the estimator and its parameters. The one allowance: KNN rows whose k-th
and (k+1)-th neighbours are equally far, where scikit-learn's own answer depends on the order of its training
data (it says so in its documentation); they are counted in the version's metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from deployment_model.ml.onnx_export import describe
from deployment_model.ml.onnx_model import OnnxModel, load_onnx_model
from deployment_model.ml.prediction import MAX_SCALED_MAGNITUDE, Prediction, classify

PROBABILITY_TOLERANCE = 1e-4
PROBES_IN_RANGE = 1000  # uniform over the training range widened by its span on each side
PROBES_FAR = 200  # uniform over the range widened by 1,000 spans
PROBES_ON_TRAINING_ROWS = 200
PROBE_SEED = 0
# A KNN graph is brute force (every row against every training point): on large data, verify a seeded sample
# of the held-out split rather than all of it, so verification stays a few seconds of a training.
MAX_HELD_OUT_ROWS = 2000


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


@dataclass(frozen=True)
class Verified:
    """The graph loaded as serving loads it, and what it was compared on."""

    model: OnnxModel
    held_out_rows: int
    probe_rows: int
    knn_tie_rows: int  # rows where scikit-learn's own answer depends on its tie order (see _knn_ties)

    def details(self) -> dict[str, int]:
        return {"held_out_rows": self.held_out_rows, "probe_rows": self.probe_rows, "knn_tie_rows": self.knn_tie_rows}


def verify_onnx(
    data: bytes,
    metadata: Mapping[str, Any],
    scaler: Any,
    classifier: Any,
    held_out: np.ndarray,
    training_rows: np.ndarray,
) -> Verified:
    """Load the graph as serving does and compare it with scikit-learn; raises OnnxVerificationError if not alike."""
    model = load_onnx_model(data, metadata)
    if len(held_out) > MAX_HELD_OUT_ROWS:
        picks = np.random.default_rng(PROBE_SEED).choice(len(held_out), MAX_HELD_OUT_ROWS, replace=False)
        held_out = held_out[np.sort(picks)]
    counts = {"held-out": 0, "probe": 0}
    ties = 0
    for what, rows in (("held-out", held_out), ("probe", probe_rows(training_rows))):
        if not len(rows):
            continue
        scaled = scaler.transform(rows)
        keep = _served(model, rows, scaled)  # the others are refused alike on both paths
        rows, scaled = rows[keep], scaled[keep]
        if not len(rows):
            continue
        expected_classes, expected_probabilities = classify(classifier, scaled)
        got = model.compute(rows)
        if (expected_probabilities is None) != (got.probabilities is None):
            raise OnnxVerificationError(f"{_where(classifier, what)}: one gives probabilities and the other not")
        differs = np.asarray(expected_classes) != got.classes
        if expected_probabilities is not None:
            differs |= ~(np.abs(expected_probabilities - got.probabilities) <= PROBABILITY_TOLERANCE).all(axis=1)
        if differs.any() and isinstance(classifier, KNeighborsClassifier):
            tied = np.zeros_like(differs)
            tied[differs] = _knn_ties(classifier, scaled[differs])
            ties += int(tied.sum())
            differs &= ~tied
        if differs.any():
            _raise(classifier, what, rows, differs, expected_classes, expected_probabilities, got)
        counts[what] = len(rows)
    return Verified(model, counts["held-out"], counts["probe"], ties)


def _served(model: OnnxModel, rows: np.ndarray, scaled: np.ndarray) -> np.ndarray:
    """Which rows serving answers rather than refuses: within input_limits, or (older versions) the magnitude."""
    limits = model.metadata.get("input_limits")
    if limits:
        low, high = np.asarray(limits["min"], dtype=np.float64), np.asarray(limits["max"], dtype=np.float64)
        return ((rows >= low) & (rows <= high)).all(axis=1)
    return (np.abs(scaled) < MAX_SCALED_MAGNITUDE).all(axis=1)


def _knn_ties(knn: KNeighborsClassifier, scaled: np.ndarray) -> np.ndarray:
    """Rows whose k-th and (k+1)-th nearest training points are equally far (within float rounding).

    scikit-learn documents that its answer on such rows "will depend on the ordering of the training data": its
    KD-tree keeps whichever tied point it visits first, the ONNX graph the one stored first. Both are answers
    scikit-learn itself gives (brute force, another tree, or reordered data): they are not a fidelity failure.
    """
    k = knn.n_neighbors
    if knn.n_samples_fit_ <= k:
        return np.zeros(len(scaled), dtype=bool)
    distances = knn.kneighbors(scaled, k + 1, return_distance=True)[0]
    return np.isclose(distances[:, k - 1], distances[:, k], rtol=1e-12, atol=0.0)


def _where(classifier: Any, what: str) -> str:
    return f"the ONNX export of {describe(classifier)} disagrees with scikit-learn on {what} rows"


def _raise(
    classifier: Any,
    what: str,
    rows: np.ndarray,
    differs: np.ndarray,
    expected_classes: np.ndarray,
    expected_probabilities: np.ndarray | None,
    got: Prediction,
) -> None:
    where, first = _where(classifier, what), int(np.flatnonzero(differs)[0])
    wrong = np.asarray(expected_classes) != got.classes
    if wrong.any():
        first = int(np.flatnonzero(wrong)[0])
        raise OnnxVerificationError(
            f"{where}: {int(wrong.sum())} of {len(rows)} labels differ (first: row {rows[first].tolist()} is "
            f"class {int(expected_classes[first])} in scikit-learn, {int(got.classes[first])} in ONNX)"
        )
    gap = float(np.abs(expected_probabilities[differs] - got.probabilities[differs]).max())
    raise OnnxVerificationError(
        f"{where}: probabilities differ by up to {gap:.3g} (more than {PROBABILITY_TOLERANCE:g}; first at row "
        f"{rows[first].tolist()})"
    )
