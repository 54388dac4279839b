"""The train flow's report step: a trained run in, the report's artifacts and metadata entry out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from deployment_model.ml.report import IMAGE_KINDS, REPORT_KIND, report_metadata, report_numbers
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
    artifacts[REPORT_KIND] = ("report.json", orjson.dumps(numbers, option=orjson.OPT_SORT_KEYS))
    return TrainingReport(artifacts=artifacts, metadata=report_metadata(trained, sorted(artifacts)))
