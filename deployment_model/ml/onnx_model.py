"""Serving a model version from its ONNX graph: onnxruntime and numpy only, no scikit-learn, scipy or joblib.

The inference function imports this instead of scikit-learn: ~0.17 s of imports instead of ~1.4 s, a third of
the image's packages, and nothing is unpickled (an ONNX file is data, a pickle is code). Answers are the
same as ml/prediction.py's: the same row checks, labels from the argmax of the probabilities, the same
`Prediction`. ml/onnx_verify.py proves that on every version before it is published.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

import numpy as np
import onnxruntime

from deployment_model.ml.drift import DriftBounds
from deployment_model.ml.prediction import Prediction, check_magnitude, check_request

ONNX_KIND = "onnx"  # the version artifact kind: metadata `artifacts.onnx`, details in metadata `onnx`
# Metadata property names written by ml/onnx_export.py (kept here so serving never imports the exporter).
PROP_CLASSES, PROP_MEAN, PROP_SCALE, PROP_ROWS_PER_RUN, PROP_HAS_PROBABILITIES = (
    "classes",
    "scaler_mean",
    "scaler_scale",
    "rows_per_run",
    "has_probabilities",
)


class OnnxUnavailableError(ValueError):
    """The version has no ONNX artifact to serve: the message says how to convert it."""


class OnnxModelError(ValueError):
    """The ONNX bytes are not a model this service exported: not ONNX, or missing its properties."""


class UnsupportedOpsetError(OnnxModelError):
    """The graph needs a newer ONNX opset than the installed onnxruntime implements."""


@cache
def supported_opsets() -> dict[str, int]:
    """The highest opset per domain that the installed onnxruntime implements (from its operator schemas)."""
    from onnxruntime.capi import _pybind_state

    highest: dict[str, int] = {}
    for schema in _pybind_state.get_all_operator_schema():
        highest[schema.domain] = max(highest.get(schema.domain, 0), schema.since_version)
    return highest


def check_opsets(required: Mapping[str, int], where: str) -> None:
    """The library-version check that matters for ONNX: can this onnxruntime run every opset the graph uses?"""
    available = supported_opsets()
    missing = {domain or "ai.onnx": v for domain, v in required.items() if v > available.get(domain, 0)}
    if missing:
        raise UnsupportedOpsetError(
            f"{where} needs ONNX opsets {missing}; the installed onnxruntime {onnxruntime.__version__} implements "
            f"up to { ({d or 'ai.onnx': v for d, v in available.items() if d in required}) }: serve it with a newer "
            "onnxruntime or re-export it"
        )


def new_session(data: bytes) -> onnxruntime.InferenceSession:
    """One thread per operator: measured faster for these small graphs on Lambda-sized CPUs."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no warnings about unused initializers in the logs
    return onnxruntime.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class OnnxModel:
    """A version ready to serve: its onnxruntime session, what the graph records, and the version's metadata."""

    name: str
    version: str
    metadata: dict[str, Any]
    session: onnxruntime.InferenceSession = field(repr=False)
    input_name: str
    classes: np.ndarray = field(repr=False)  # class value per probability column
    mean: np.ndarray = field(repr=False)
    scale: np.ndarray = field(repr=False)
    rows_per_run: int
    has_probabilities: bool
    feature_names: list[str]
    labels: list[str]
    label_array: np.ndarray = field(repr=False)  # labels as an array: class indexes -> labels in one operation
    drift_bounds: DriftBounds | None = field(repr=False)  # None: trained before drift statistics were recorded

    def predict(self, rows: np.ndarray) -> Prediction:
        """The checks ml/prediction.py makes (width, answer size, input limits), then the graph on the rows."""
        if not check_request(self, rows, self.has_probabilities):  # a version without input_limits
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow becomes inf, refused just below
                check_magnitude((rows - self.mean) / self.scale, self.name)  # what StandardScaler.transform does
        return self.compute(rows)

    def compute(self, rows: np.ndarray) -> Prediction:
        """Run the graph (scaler + classifier) on rows already checked; labels from the argmax of probabilities."""
        label, second = self._run(np.ascontiguousarray(rows, dtype=np.float64))
        if self.has_probabilities:
            probabilities, classes = second, self.classes[second.argmax(axis=1)]
        else:  # the second output is decision scores: not probabilities, not served
            probabilities, classes = None, label.astype(np.int64, copy=False)
        return Prediction(classes=classes, labels=self.label_array[classes].tolist(), probabilities=probabilities)

    def _run(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        step = self.rows_per_run or len(rows)
        if len(rows) <= step:
            label, second = self.session.run(None, {self.input_name: rows})
            return label, second
        parts = [self._run(rows[start : start + step]) for start in range(0, len(rows), step)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class StoredVersion(Protocol):
    """What the registry hands over: a version's name, id and (digest-checked) metadata."""

    name: str
    version: str
    metadata: dict[str, Any]


def load_stored_version(stored: StoredVersion, read_artifact: Callable[[StoredVersion, str], bytes]) -> OnnxModel:
    """What serving builds from a registry version: its ONNX graph (read_artifact checks the digest)."""
    require_onnx(stored.metadata)
    return load_onnx_model(read_artifact(stored, ONNX_KIND), stored.metadata)


def load_onnx_model(data: bytes, metadata: Mapping[str, Any]) -> OnnxModel:
    """An OnnxModel from verified bytes (their digest already checked) and the version's metadata."""
    where = f"model {metadata['name']!r} version {metadata['version']}"
    features, labels = metadata.get("feature_names"), metadata.get("labels")
    if not isinstance(features, list) or not features or not isinstance(labels, list) or len(labels) < 2:
        raise OnnxModelError(f"{where}: its metadata has no valid feature_names and labels")
    try:
        session = new_session(data)  # onnxruntime refuses opsets it does not implement
    except Exception as exc:  # onnxruntime raises its own exception types, not exported for catching
        # Then say why in words: a newer opset than this onnxruntime implements, or bytes that are not a graph.
        # (Reading the schemas costs ~50 ms: only on this path, not on every cold start.)
        check_opsets(dict(metadata.get("onnx", {}).get("opsets", {})), where)
        raise OnnxModelError(f"{where}: its ONNX artifact cannot be loaded by onnxruntime: {exc}") from None
    properties = session.get_modelmeta().custom_metadata_map
    try:
        values = {key: json.loads(properties[key]) for key in (PROP_CLASSES, PROP_MEAN, PROP_SCALE)}
        rows_per_run = int(json.loads(properties[PROP_ROWS_PER_RUN]))
        has_probabilities = bool(json.loads(properties[PROP_HAS_PROBABILITIES]))
    except (KeyError, ValueError, TypeError) as exc:
        raise OnnxModelError(f"{where}: its ONNX artifact lacks this service's properties ({exc})") from None
    try:
        drift_bounds = DriftBounds.of_version(metadata)
    except (KeyError, TypeError, ValueError) as exc:
        raise OnnxModelError(f"{where}: its metadata's drift statistics are not usable ({exc!r})") from None
    if drift_bounds is not None and not len(drift_bounds.low) == len(drift_bounds.high) == len(features):
        raise OnnxModelError(f"{where}: its metadata's drift statistics do not have one value per feature")
    labels = [str(label) for label in metadata["labels"]]
    return OnnxModel(
        name=str(metadata["name"]),
        version=str(metadata["version"]),
        metadata=dict(metadata),
        session=session,
        input_name=session.get_inputs()[0].name,
        classes=np.asarray(values[PROP_CLASSES], dtype=np.int64),
        mean=np.asarray(values[PROP_MEAN], dtype=np.float64),
        scale=np.asarray(values[PROP_SCALE], dtype=np.float64),
        rows_per_run=rows_per_run,
        has_probabilities=has_probabilities,
        feature_names=[str(n) for n in metadata["feature_names"]],
        labels=labels,
        label_array=np.asarray(labels, dtype=object),
        drift_bounds=drift_bounds,
    )


def require_onnx(metadata: Mapping[str, Any]) -> Mapping[str, Any]:
    """The version's ONNX artifact entry, or a 409-worthy error saying how to get one."""
    entry = metadata.get("artifacts", {}).get(ONNX_KIND)
    if entry is None:
        name, version = metadata["name"], metadata["version"]
        raise OnnxUnavailableError(
            f"model {name!r} version {version} was trained before this service served ONNX and has no ONNX "
            f"artifact; convert it with POST /models/{name}/versions/{version}/export (add "
            '{"publish": true} to serve the converted version), or train a new version'
        )
    return entry
