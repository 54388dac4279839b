"""The ONNX artifact of a model version: exported, verified against scikit-learn, described for its metadata.

Training calls `onnx_artifact_of()` once the winner is chosen; the export route calls
`onnx_artifact_for_version()` on a version trained before ONNX existed. Either raises `OnnxConversionError`
(a sentence naming the estimator and its parameters) when the graph cannot reproduce scikit-learn; the
version is then not published.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from typing import Any

import numpy as np

from deployment_model.ml.onnx_export import OnnxExportError, export_onnx, model_opsets
from deployment_model.ml.onnx_model import OnnxModelError
from deployment_model.ml.onnx_verify import OnnxVerificationError, verify_onnx
from deployment_model.ml.training import SEED_FEATURES, TrainedModel, iris_dataset, split

ONNX_FILENAME = "model.onnx"


class OnnxConversionError(ValueError):
    """The version cannot be served through ONNX: the graph cannot be built or does not match scikit-learn."""


@dataclass(frozen=True)
class OnnxArtifact:
    data: bytes
    details: dict[str, Any]  # metadata["onnx"]: opsets (checked when serving), how it was verified, converters


def onnx_artifact(
    scaler: Any,
    classifier: Any,
    feature_names: Sequence[str],
    labels: Sequence[str],
    held_out: np.ndarray,
    training_rows: np.ndarray,
    input_limits: Mapping[str, Any] | None = None,
) -> OnnxArtifact:
    """Export scaler + classifier and verify the graph, served as the inference function will serve it."""
    try:
        data = export_onnx(scaler, classifier, len(feature_names))
        opsets = model_opsets(data)
        provisional = {
            "name": "candidate",
            "version": "unpublished",
            "feature_names": list(feature_names),
            "labels": list(labels),
            "onnx": {"opsets": opsets},
            "input_limits": dict(input_limits or {}),
        }
        verified = verify_onnx(data, provisional, scaler, classifier, held_out, training_rows)
    except (OnnxExportError, OnnxVerificationError, OnnxModelError) as exc:
        raise OnnxConversionError(f"{exc}; the version was not published") from None
    details = {
        "opsets": opsets,
        "verified_on": verified.details(),
        "converter": {name: installed_version(name) for name in ("skl2onnx", "onnx", "onnxruntime")},
    }
    return OnnxArtifact(data, details)


def onnx_artifact_of(trained: TrainedModel) -> OnnxArtifact:
    """The training run's own export, verified on its held-out split and on probes around its training rows."""
    if trained.held_out_rows is None or trained.training_rows is None:
        raise ValueError("the training run did not keep its split; train it with ml.training.train_model")
    return onnx_artifact(
        trained.scaler,
        trained.model,
        trained.feature_names,
        trained.labels,
        trained.held_out_rows,
        trained.training_rows,
        trained.input_limits,
    )


def held_out_rows_of(metadata: Mapping[str, Any]) -> np.ndarray | None:
    """A stored version's held-out rows, when its data can be rebuilt exactly: the seed's iris recipe."""
    if metadata.get("training_data") == "iris" and list(metadata.get("feature_names", [])) == list(SEED_FEATURES):
        return split(iris_dataset())[1]
    return None  # a user's CSV may have changed since, and its target column is not recorded


def onnx_artifact_for_version(scaler: Any, classifier: Any, metadata: Mapping[str, Any]) -> OnnxArtifact:
    """The ONNX artifact of a version trained before ONNX: verified on its held-out rows when they can be rebuilt
    (the iris recipe), and always on probe rows around the training data the scaler describes."""
    held_out = held_out_rows_of(metadata)
    mean, scale = np.asarray(scaler.mean_, dtype=np.float64), np.asarray(scaler.scale_, dtype=np.float64)
    # The scaler knows each feature's mean and spread; three spreads each side covers the bulk of the data.
    around = np.vstack([mean - 3 * scale, mean + 3 * scale])
    fitted = getattr(classifier, "_fit_X", None)  # KNN keeps its scaled training points: probe on them exactly
    training_rows = around if fitted is None else np.vstack([around, scaler.inverse_transform(fitted)])
    rows = held_out if held_out is not None else np.empty((0, len(mean)))
    return onnx_artifact(
        scaler,
        classifier,
        metadata["feature_names"],
        metadata["labels"],
        rows,
        training_rows,
        metadata.get("input_limits"),
    )
