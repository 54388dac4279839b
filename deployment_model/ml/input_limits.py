"""The input values each trained model can take, computed at training and checked at prediction with numpy only.

Every estimator has numeric edges a finite float can cross: trees compare in float32 (a value beyond 3.4e38
makes scikit-learn raise), KNN's Minkowski distances raise |difference| to the power p (1e5**100 overflows, and
with distance weights every neighbour then weighs zero), linear models multiply values by their coefficients.
Training knows the model, so it derives, per feature, the raw input range within which every computation
stays finite, and records it in the version's metadata as `input_limits`. Prediction (scikit-learn or ONNX)
refuses rows outside it with a 400 naming the row, the feature and the range, before any arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

FLOAT64_MAX = float(np.finfo(np.float64).max)
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Every bound keeps a factor of 4 below overflow, so rounding at the boundary never tips a value over.
SAFETY = 4.0
# Beyond about 1e16 standard deviations every distance to the training points rounds to the same float64, and a
# KNN label is arbitrary (in scikit-learn and ONNX alike): KNN's limits stop at 1e12, four orders short of it.
KNN_TIE_MAGNITUDE = 1e12
MINKOWSKI_P = {"euclidean": 2.0, "manhattan": 1.0, "chebyshev": 1.0}  # chebyshev bounded like p=1 (a sum)


class InvalidRowsError(ValueError):
    """Rows this model cannot take: another width than it was trained on, or values beyond its numeric range."""


class UnusableModelError(ValueError):
    """The fitted model cannot measure its own training data (e.g. KNN with a huge p): refused at training."""


def max_scaled_magnitude(candidate: str, model: Any, scaled_training: np.ndarray) -> tuple[float, str]:
    """The largest |scaled value| this fitted model computes with safely, and why (said in errors)."""
    if candidate == "random_forest":
        return FLOAT32_MAX / SAFETY, "random forests compare values as 32-bit floats"
    if candidate == "knn":
        metric = str(model.effective_metric_)
        p = float((model.effective_metric_params_ or {}).get("p", MINKOWSKI_P.get(metric, 2.0)))
        p = MINKOWSKI_P.get(metric, p)
        width = scaled_training.shape[1]
        # sum over features of |x - y|**p must stay finite, with y a training point
        reach = (FLOAT64_MAX / SAFETY / width) ** (1.0 / p)
        largest_training = float(np.abs(scaled_training).max(initial=0.0))
        magnitude = reach - largest_training
        if magnitude <= largest_training:
            raise UnusableModelError(
                f"knn with p={p:g} cannot measure distances on this data: |difference|**{p:g} overflows for "
                "values the training data already holds; choose a smaller p"
            )
        return min(magnitude, FLOAT64_MAX / SAFETY), f"knn distances raise differences to the power p={p:g}"
    # linear models: the decision is values . coefficients + intercept
    coefficients = np.abs(np.asarray(model.coef_, dtype=np.float64)).sum(axis=1).max()
    intercept = float(np.abs(np.asarray(model.intercept_, dtype=np.float64)).max(initial=0.0))
    if not (np.isfinite(coefficients) and np.isfinite(intercept)):
        raise UnusableModelError("the fitted coefficients are not finite numbers; choose other parameter values")
    room = FLOAT64_MAX / SAFETY - intercept
    magnitude = room / coefficients if coefficients > 0 else FLOAT64_MAX / SAFETY
    return min(magnitude, FLOAT64_MAX / SAFETY), "the model multiplies values by its coefficients"


def compute_input_limits(
    candidate: str, model: Any, mean: np.ndarray, scale: np.ndarray, scaled_training: np.ndarray
) -> dict[str, Any]:
    """Per-feature raw input ranges, JSON-ready for the version's metadata.

    `mean` and `scale` are the StandardScaler's: a raw value x is scaled to (x - mean) / scale, so |scaled|
    <= M holds for x in [mean - M * scale, mean + M * scale].
    """
    magnitude, reason = max_scaled_magnitude(candidate, model, scaled_training)
    if candidate == "knn" and magnitude > KNN_TIE_MAGNITUDE:
        magnitude, reason = KNN_TIE_MAGNITUDE, "farther out every training point is equally far: no nearest neighbour"
    with np.errstate(over="ignore"):
        low = np.clip(mean - magnitude * scale, -FLOAT64_MAX / 2, FLOAT64_MAX / 2)
        high = np.clip(mean + magnitude * scale, -FLOAT64_MAX / 2, FLOAT64_MAX / 2)
    return {"min": low.tolist(), "max": high.tolist(), "scaled_magnitude": magnitude, "reason": reason}


def check_rows(limits: dict[str, Any], rows: np.ndarray, feature_names: Sequence[str], model: str) -> None:
    """Refuse rows with a value outside the model's input limits (numpy only: no scikit-learn needed)."""
    low = np.asarray(limits["min"], dtype=np.float64)
    high = np.asarray(limits["max"], dtype=np.float64)
    if within(rows, low, high):
        return
    outside = (rows < low) | (rows > high)
    if outside.any():
        row, column = (int(i) for i in np.argwhere(outside)[0])
        # Each number as repr writes it (the shortest text that reads back as the same float): a value just past
        # a limit never reads as equal to it.
        value, least, most = (float(number) for number in (rows[row, column], low[column], high[column]))
        raise InvalidRowsError(
            f"x_test row {row}, feature {feature_names[column]!r} (column {column}, both counted from 0): "
            f"{value!r} is outside what model {model!r} can compute with: it accepts {least!r} to {most!r} "
            f"for that feature ({limits.get('reason', 'its numeric range')})"
        )


# Below this many rows, comparing every value is cheaper than the column-ordered copy `within` reduces.
_FEW_ROWS = 256


def within(rows: np.ndarray, low: np.ndarray, high: np.ndarray) -> bool:
    """Every value within [low, high] of its column. A large batch is judged by each column's extremes: numpy
    compares a C-ordered matrix with one bound per column, or reduces it along its columns, an element at a
    time, 15 times slower at 10,000 x 2 than reducing a column-ordered copy. Only a batch with a value outside
    then pays the per-value pass that names it."""
    if len(rows) < _FEW_ROWS:
        return not ((rows < low) | (rows > high)).any()
    columns = np.asfortranarray(rows)
    return bool((columns.min(axis=0) >= low).all() and (columns.max(axis=0) <= high).all())
