"""A model version as Python objects: joblib (de)serialisation and the checks before unpickling is allowed.

storage/ deals in bytes only. This module turns a trained scaler and classifier into artifact bytes, and a
version's verified bytes back into a LoadedModel, refusing versions this runtime cannot serve safely.
joblib and scikit-learn are imported where they are used: the inference image has neither (it serves ONNX),
yet the API layer maps this module's errors.
"""

from __future__ import annotations

import io
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy

MODEL_KINDS = ("model", "scaler")  # the artifacts a prediction needs, both from the same run
MIN_LABELS = 2


class IncompatibleVersionError(Exception):
    """The version was written by other library versions than the ones serving it: unpickling is unsafe."""


class BrokenVersionError(Exception):
    """The version's recorded facts are missing or malformed, so it cannot be served as it is."""


class VerifiedVersion(Protocol):
    """What the registry hands over: metadata and artifact bytes whose digests it has checked."""

    name: str
    version: str
    metadata: dict[str, Any]
    artifacts: Mapping[str, bytes]


@dataclass(frozen=True)
class LoadedModel:
    """A verified, unpickled model version: the classifier, its own scaler, and their metadata."""

    name: str
    version: str
    model: Any
    scaler: Any
    metadata: dict[str, Any]

    # Derived once per loaded version (cached), not on every prediction.
    @cached_property
    def feature_names(self) -> list[str]:
        return list(self.metadata["feature_names"])

    @cached_property
    def labels(self) -> list[str]:
        return list(self.metadata["labels"])

    @cached_property
    def label_array(self) -> numpy.ndarray:
        """The labels as an array, so a batch of class indexes maps to labels in one numpy operation."""
        return numpy.asarray(self.labels, dtype=object)


def runtime_versions() -> dict[str, str]:
    """The library versions an artifact depends on; a pickle is only safe to load under the same ones."""
    import joblib
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "joblib": joblib.__version__,
    }


def dump(obj: Any) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


def model_artifacts(name: str, scaler_name: str, model: Any, scaler: Any) -> dict[str, tuple[str, bytes]]:
    """The artifacts of a trained run, by kind, each with the file name the request gave it."""
    if scaler_name == name:
        raise ValueError("the scaler's name must differ from the model's: they are two artifacts")
    return {"model": (f"{name}.joblib", dump(model)), "scaler": (f"{scaler_name}.joblib", dump(scaler))}


def model_metadata(summary: Mapping[str, Any], scaler_name: str) -> dict[str, Any]:
    """What a version records besides its artifacts: the run's summary, the scaler's name, library versions."""
    return {**summary, "scaler_name": scaler_name, "runtime": runtime_versions()}


def check_compatible(name: str, version: str, metadata: Mapping[str, Any]) -> None:
    runtime = metadata.get("runtime")
    trained_with = runtime.get("scikit-learn") if isinstance(runtime, dict) else None
    serving = runtime_versions()["scikit-learn"]
    if trained_with != serving:
        raise IncompatibleVersionError(
            f"model {name!r} version {version} was trained with scikit-learn {trained_with} (serving {serving}); "
            "retrain it or pin a version trained with the serving libraries"
        )


def _check_facts(name: str, version: str, metadata: Mapping[str, Any]) -> None:
    """Fields a prediction relies on, with the types it relies on: a broken version is refused, not a 500."""
    where = f"model {name!r} version {version}"
    features, labels = metadata.get("feature_names"), metadata.get("labels")
    if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
        raise BrokenVersionError(f"{where}: its metadata has no valid feature_names")
    if not isinstance(labels, list) or len(labels) < MIN_LABELS or not all(isinstance(x, str) for x in labels):
        raise BrokenVersionError(f"{where}: its metadata needs at least {MIN_LABELS} labels, as strings")
    if not isinstance(metadata.get("scaler_name"), str):
        raise BrokenVersionError(f"{where}: its metadata has no scaler_name")


def load_model(verified: VerifiedVersion) -> LoadedModel:
    """Unpickle a version's model and scaler, once its bytes are verified and its runtime matches ours."""
    import joblib

    name, version, metadata = verified.name, verified.version, verified.metadata
    _check_facts(name, version, metadata)
    check_compatible(name, version, metadata)
    model = joblib.load(io.BytesIO(verified.artifacts["model"]))
    scaler = joblib.load(io.BytesIO(verified.artifacts["scaler"]))
    classes = getattr(model, "classes_", None)
    if classes is None or len(classes) != len(metadata["labels"]):
        raise BrokenVersionError(f"model {name!r} version {version}: its labels do not match the classifier's classes")
    if getattr(scaler, "n_features_in_", None) != len(metadata["feature_names"]):
        raise BrokenVersionError(f"model {name!r} version {version}: its feature_names do not match the scaler")
    return LoadedModel(name=name, version=version, model=model, scaler=scaler, metadata=metadata)
