"""The train flow's report step: a trained run in, the report's numbers, pictures and metadata entry out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from deployment_model.ml.drift import DRIFT_STD_THRESHOLD, feature_stats
from deployment_model.ml.report import (
    FEATURE_STATISTICS,
    IMAGE_KINDS,
    QUANTILES,
    REPORT_FILE,
    REPORT_KIND,
    REPORT_SCHEMA_VERSION,
)
from deployment_model.ml.report_images import confusion_matrix_png, decision_regions_png
from deployment_model.ml.training import Dataset, TrainedModel


@dataclass(frozen=True)
class TrainingReport:
    """What the store writes beside the version: {kind: (filename, bytes)}, and the metadata's `report` entry."""

    artifacts: dict[str, tuple[str, bytes]]
    metadata: dict[str, Any]


def build_report(dataset: Dataset, trained: TrainedModel) -> TrainingReport:
    numbers = report_numbers(dataset, trained)
    images = {
        "report_confusion_matrix": confusion_matrix_png(numbers["held_out"]["confusion_matrix"], trained.labels),
        "report_decision_regions": decision_regions_png(trained),
    }
    artifacts = {kind: (IMAGE_KINDS[kind], data) for kind, data in images.items() if data is not None}
    artifacts[REPORT_KIND] = (REPORT_FILE, orjson.dumps(numbers, option=orjson.OPT_SORT_KEYS))
    return TrainingReport(artifacts=artifacts, metadata=report_metadata(trained, sorted(artifacts)))


def report_numbers(dataset: Dataset, trained: TrainedModel) -> dict[str, Any]:
    """Everything the report states, JSON-safe: held-out confusion and per-class scores, candidates, data stats."""
    split = trained.split
    if split is None:
        raise ValueError("a report needs the run's train / held-out split")
    predicted = trained.model.predict(trained.scaler.transform(split.x_test))
    classes = list(range(len(trained.labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        split.y_test, predicted, labels=classes, zero_division=0
    )
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "labels": list(trained.labels),
        "feature_names": list(trained.feature_names),
        "training_data": {
            "source": dataset.source,
            "sha256": trained.training_data_sha256,
            "etag": trained.training_data_etag,
            "rows": dict(trained.rows),
        },
        "held_out": {
            "rows": len(split.y_test),
            "metrics": dict(trained.metrics),
            "confusion_matrix": confusion_matrix(split.y_test, predicted, labels=classes).tolist(),
            "per_class": [
                {
                    "label": label,
                    "precision": float(precision[i]),
                    "recall": float(recall[i]),
                    "f1": float(f1[i]),
                    "support": int(support[i]),
                }
                for i, label in enumerate(trained.labels)
            ],
        },
        "candidates": [
            {
                "name": name,
                "cv_f1_macro": trained.cv_scores.get(name),
                "held_out_f1_macro": held_out,
                "chosen": name == trained.candidate,
            }
            for name, held_out in trained.candidate_scores.items()
        ],
        "chosen": {"candidate": trained.candidate, "estimator": trained.estimator, "params": dict(trained.params)},
        "feature_stats": [_describe(name, split.x_train[:, i]) for i, name in enumerate(trained.feature_names)],
        "drift": {"std_threshold": DRIFT_STD_THRESHOLD, "statistics_of": "training split"},
    }


def _describe(name: str, values: np.ndarray) -> dict[str, Any]:
    quantiles = np.quantile(values, QUANTILES)
    return {
        "feature": name,
        "count": int(values.size),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        **{name: float(v) for name, v in zip(FEATURE_STATISTICS[4:-1], quantiles, strict=True)},
        "max": float(values.max()),
    }


def report_metadata(trained: TrainedModel, kinds: list[str]) -> dict[str, Any]:
    """The version metadata's `report` entry: which artifacts hold the report, and the drift statistics."""
    if trained.split is None:
        raise ValueError("a report needs the run's train / held-out split")
    return {"kinds": kinds, "feature_stats": feature_stats(trained.split.x_train)}
