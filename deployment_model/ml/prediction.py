"""Predictions from a loaded model version: its own scaler, then its classifier, in one pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the ONNX serving path imports this module without scikit-learn or joblib
    from deployment_model.storage.models import LoadedModel

# After scaling, |value| must stay below this. Beyond about 1e16 standard deviations every distance to the
# training points rounds to the same float64 and a KNN label is arbitrary (in scikit-learn and ONNX alike);
# 1e12 keeps four orders of magnitude of margin and every sum finite.
MAX_SCALED_MAGNITUDE = 1e12


class InvalidRowsError(ValueError):
    """Rows this model cannot take: another width than it was trained on, or values far beyond float range."""


@dataclass(frozen=True)
class Prediction:
    classes: np.ndarray  # class index per row, into labels
    labels: list[str]  # label per row
    probabilities: np.ndarray | None  # rows x classes, when the estimator has predict_proba


def predict(loaded: LoadedModel, rows: np.ndarray) -> Prediction:
    """Scale with the run's own scaler, then classify; one pass gives both labels and probabilities."""
    check_width(rows, loaded.feature_names, loaded.name)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow becomes inf, refused just below
        scaled = loaded.scaler.transform(rows)
    check_magnitude(scaled, loaded.name)
    classes, probabilities = classify(loaded.model, scaled)
    labels = loaded.label_array[classes].tolist()
    return Prediction(classes=classes, labels=labels, probabilities=probabilities)


def classify(model: Any, scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Class values and probabilities (None when the estimator has no predict_proba) of scaled rows."""
    if hasattr(model, "predict_proba"):
        # For every allow-listed estimator, predict() is the argmax of predict_proba (tested), so the
        # labels come from the probabilities instead of a second pass over the rows.
        probabilities = model.predict_proba(scaled)
        return model.classes_[probabilities.argmax(axis=1)], probabilities
    return model.predict(scaled), None


def check_width(rows: np.ndarray, feature_names: list[str], model_name: str) -> None:
    """Refuse rows of another width than the model was trained on, naming the features it expects."""
    if rows.shape[1] != len(feature_names):
        raise InvalidRowsError(
            f"x_test rows must have {len(feature_names)} values ({', '.join(feature_names)}) for model "
            f"{model_name!r}; got {rows.shape[1]}"
        )


def check_magnitude(scaled: np.ndarray, model_name: str) -> None:
    """Refuse scaled rows too far from the training data to compute or to label meaningfully."""
    too_large = ~(np.abs(scaled) < MAX_SCALED_MAGNITUDE).all(axis=1)
    if too_large.any():
        raise InvalidRowsError(
            f"x_test row {int(np.flatnonzero(too_large)[0])} has values too large for model {model_name!r} "
            f"(more than {MAX_SCALED_MAGNITUDE:g} standard deviations from the training data)"
        )
