"""The drift signal of a prediction: OutOfRangeRows beside PredictedRows, and the count logged with the version."""

from __future__ import annotations

import numpy as np
from aws_lambda_powertools.metrics import MetricUnit

from deployment_model.api.service import logger, metrics
from deployment_model.ml.drift import bounds_for
from deployment_model.storage.models import LoadedModel


def record_drift(loaded: LoadedModel, rows: np.ndarray) -> np.ndarray | None:
    """Flag each row outside the version's training range (ml/drift.py) and publish the count.

    None for versions trained before drift statistics were recorded: they publish no OutOfRangeRows.
    """
    bounds = bounds_for(loaded.name, loaded.version, loaded.metadata)
    if bounds is None:
        return None
    flags = bounds.out_of_range(rows)
    count = int(np.count_nonzero(flags))
    metrics.add_metric(name="OutOfRangeRows", unit=MetricUnit.Count, value=count)
    # The metric line (EMF) names the version too, so a count is always traceable to the model answering.
    metrics.add_metadata(key="model_version", value=f"{loaded.name}/{loaded.version}")
    if count:
        logger.info(
            "rows outside the training range",
            extra={"model_name": loaded.name, "model_version": loaded.version, "out_of_range_rows": count},
        )
    return flags
