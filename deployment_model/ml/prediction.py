"""Predictions from a loaded model version: its own scaler, then its classifier, in one pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deployment_model.ml.artifacts import LoadedModel

# After scaling, |value| must stay below this so that squared distances and sums stay finite in float64.
MAX_SCALED_MAGNITUDE = 1e150


class InvalidRowsError(ValueError):
    """Rows this model cannot take: another width than it was trained on, or values far beyond float range."""


@dataclass(frozen=True)
class Prediction:
    classes: np.ndarray  # class index per row, into labels
    labels: list[str]  # label per row
    probabilities: np.ndarray | None  # rows x classes, when the estimator has predict_proba


def predict(loaded: LoadedModel, rows: np.ndarray) -> Prediction:
    """Scale with the run's own scaler, then classify; one pass gives both labels and probabilities."""
    expected = len(loaded.feature_names)
    if rows.shape[1] != expected:
        raise InvalidRowsError(
            f"x_test rows must have {expected} values ({', '.join(loaded.feature_names)}) for model "
            f"{loaded.name!r}; got {rows.shape[1]}"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow becomes inf, refused just below
        scaled = loaded.scaler.transform(rows)
    too_large = ~(np.abs(scaled) < MAX_SCALED_MAGNITUDE).all(axis=1)
    if too_large.any():
        raise InvalidRowsError(
            f"x_test row {int(np.flatnonzero(too_large)[0])} has values too large for model {loaded.name!r} "
            f"(more than {MAX_SCALED_MAGNITUDE:g} standard deviations from the training data)"
        )
    model = loaded.model
    if hasattr(model, "predict_proba"):
        # For every allow-listed estimator, predict() is the argmax of predict_proba (tested), so the
        # labels come from the probabilities instead of a second pass over the rows.
        probabilities = model.predict_proba(scaled)
        classes = model.classes_[probabilities.argmax(axis=1)]
    else:
        probabilities, classes = None, model.predict(scaled)
    labels = loaded.label_array[classes].tolist()
    return Prediction(classes=classes, labels=labels, probabilities=probabilities)
