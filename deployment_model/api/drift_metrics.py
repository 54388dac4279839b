"""The drift signal of a prediction: OutOfRangeRows beside PredictedRows, and the count logged with the version."""

from __future__ import annotations

import numpy as np
from aws_lambda_powertools.metrics import MetricUnit

from deployment_model.api.service import logger, metrics
from deployment_model.ml.onnx_model import OnnxModel


def record_drift(loaded: OnnxModel, rows: np.ndarray) -> np.ndarray | None:
    """Flag each row outside the version's training range (ml/drift.py); publish and log a count above zero.

    A request without such rows publishes no OutOfRangeRows (the dashboard and alarm read a missing value as
    0). None for versions trained before drift statistics were recorded.
    """
    bounds = loaded.drift_bounds
    if bounds is None:
        return None
    flags = bounds.out_of_range(rows)
    count = int(np.count_nonzero(flags))
    if count:  # only then: a warm 1-row prediction has about 150 us to spend, and each metric costs 7
        metrics.add_metric(name="OutOfRangeRows", unit=MetricUnit.Count, value=count)
        # The metric line (EMF) names the version too, so a count is always traceable to the model answering.
        metrics.add_metadata(key="model_version", value=f"{loaded.name}/{loaded.version}")
        logger.info(
            "rows outside the training range",
            extra={"model_name": loaded.name, "model_version": loaded.version, "out_of_range_rows": count},
        )
    return flags
