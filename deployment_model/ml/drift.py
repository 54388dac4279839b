"""Input drift, per request: which rows lie outside what a version learned from. Plain numpy, no AWS.

A feature value is *out of range* when it is outside the training range [min, max] of that feature AND more
than DRIFT_STD_THRESHOLD training standard deviations from the training mean. The first rule alone flags
ordinary new data just past the sample's extremes; the second alone ignores a hard edge the model never saw
(a length of -1). A row is out of range when any of its features is.

The statistics come from the training split (what the scaler and model were fitted on) and are recorded in
each version's metadata (`report.feature_stats`) at training; the bounds are derived once, when the inference
function loads the version (`OnnxModel.drift_bounds`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deployment_model.ml.input_limits import within

DRIFT_STD_THRESHOLD = 3.0


def feature_stats(features: np.ndarray) -> dict[str, list[float]]:
    """What drift needs of the training features, one list entry per feature (JSON-safe)."""
    return {
        "min": features.min(axis=0).tolist(),
        "max": features.max(axis=0).tolist(),
        "mean": features.mean(axis=0).tolist(),
        "std": features.std(axis=0).tolist(),
    }


@dataclass(frozen=True)
class DriftBounds:
    """Per feature: a value below `low` or above `high` is out of range."""

    low: np.ndarray
    high: np.ndarray

    @classmethod
    def from_stats(
        cls, stats: Mapping[str, Sequence[float]], std_threshold: float = DRIFT_STD_THRESHOLD
    ) -> DriftBounds:
        mean, std = np.asarray(stats["mean"], dtype=np.float64), np.asarray(stats["std"], dtype=np.float64)
        low = np.minimum(np.asarray(stats["min"], dtype=np.float64), mean - std_threshold * std)
        high = np.maximum(np.asarray(stats["max"], dtype=np.float64), mean + std_threshold * std)
        return cls(low=low, high=high)

    @classmethod
    def of_version(cls, metadata: Mapping[str, Any]) -> DriftBounds | None:
        """A version's bounds, from the statistics its training recorded; None for versions trained before."""
        stats = (metadata.get("report") or {}).get("feature_stats")
        return cls.from_stats(stats) if stats else None

    def out_of_range(self, rows: np.ndarray) -> np.ndarray:
        """One bool per row, in one vectorised pass (none to look for when every column keeps within bounds)."""
        if within(rows, self.low, self.high):
            return np.zeros(len(rows), dtype=bool)
        return ((rows < self.low) | (rows > self.high)).any(axis=1)
