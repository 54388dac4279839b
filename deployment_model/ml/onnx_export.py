"""Convert a run's scaler + classifier into ONE ONNX graph that gives scikit-learn's answers.

skl2onnx 1.20 converts the pipeline, with double inputs (float inputs flip labels and overflow at 3.4e38) and
plain arrays instead of ZipMap dictionaries, with three mends where its graph and scikit-learn part ways:

- KNeighborsClassifier gets our own converter (`_convert_knn`). skl2onnx's treats `weights="distance"` as
  uniform (it negates TopK's distances, so every weight clamps to 1e6; onnx/sklearn-onnx#1212), and its
  distances differ from scikit-learn's in the last bit, which picks another neighbour on exact ties (iris
  lies on a 0.1 cm grid: such ties are common). Ours sums squared differences feature by feature, as
  scikit-learn's KD/ball tree does, so ties fall the same way, and weighs neighbours as scikit-learn does,
  including rows that coincide with a training point (only those count). It never materialises a
  rows x training-points x features array, so it is fast like skl2onnx's `optim="cdist"` without its error.
- Random forests compare float32 thresholds with the input cast to float32 in scikit-learn: the graph casts
  the scaled input to float32 and back before the trees, so every split falls the same way.
- Estimators without `predict_proba` (SGD with hinge, perceptron, ... losses) give decision scores as the
  second output; the serving side ignores them and answers `probabilities: null`, as before.

The graph records, as metadata properties, what the serving side needs without scikit-learn: the class
values, the scaler's mean and scale (to refuse rows too far from the training data), and how many rows to
run at once so that a KNN graph's rows x training-points intermediates stay small.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType
from sklearn.ensemble import RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from deployment_model.ml.onnx_model import (
    PROP_CLASSES,
    PROP_HAS_PROBABILITIES,
    PROP_MEAN,
    PROP_ROWS_PER_RUN,
    PROP_SCALE,
)

# Opsets stamped on every exported graph: released ones that skl2onnx 1.20 is tested with.
TARGET_OPSET = {"": 21, "ai.onnx.ml": 3}
INPUT_NAME = "rows"
# A KNN graph holds a few (rows x training points) double arrays: run at most this many elements at once.
# 65,536 doubles (512 KiB) stay in a core's cache: measured 10-20% faster than one run of 10,000 rows x 105
# points (1 million elements) for the seed's KNN, and it bounds memory for large models as well.
MAX_ELEMENTS_PER_RUN = 65_536
_KNN_METRICS = {  # scikit-learn's metric name -> (per-feature term, combine, reduced -> true distance)
    "euclidean": ("square", "add", "sqrt"),
    "l2": ("square", "add", "sqrt"),
    "manhattan": ("abs", "add", None),
    "cityblock": ("abs", "add", None),
    "l1": ("abs", "add", None),
    "chebyshev": ("abs", "max", None),
    "infinity": ("abs", "max", None),
}


class OnnxExportError(ValueError):
    """This estimator cannot be served through ONNX; the message names it and its parameters."""


def describe(classifier: Any) -> str:
    """The estimator and the parameters a request can tune, for error messages."""
    params = {k: v for k, v in classifier.get_params(deep=False).items() if not callable(v)}
    return f"{type(classifier).__name__}({', '.join(f'{k}={v!r}' for k, v in sorted(params.items()))})"


def export_onnx(scaler: Any, classifier: Any, n_features: int) -> bytes:
    """The serialized ONNX model computing classifier(scaler(rows)) for float64 rows of n_features values."""
    options: dict[int, dict[str, Any]] = {id(classifier): {"zipmap": False}}
    converted: Any = Pipeline([("scaler", scaler), ("classifier", classifier)])
    custom = {}
    if isinstance(classifier, KNeighborsClassifier):  # our graph, scaling included (see _convert_knn)
        _check_knn(scaler, classifier)
        converted, custom = classifier, {KNeighborsClassifier: functools.partial(_convert_knn, scaler=scaler)}
    try:
        model = convert_sklearn(
            converted,
            initial_types=[(INPUT_NAME, DoubleTensorType([None, n_features]))],
            options=options,
            target_opset=TARGET_OPSET,
            custom_conversion_functions=custom,
        )
    except (RuntimeError, NotImplementedError, ValueError, TypeError, KeyError) as exc:
        raise OnnxExportError(f"{describe(classifier)} cannot be converted to ONNX: {exc}") from None
    if isinstance(classifier, RandomForestClassifier):
        _compare_trees_in_float32(model)
    rows_per_run = knn_rows_per_run(classifier) if isinstance(classifier, KNeighborsClassifier) else 0  # 0: all
    properties = {
        PROP_CLASSES: classifier.classes_.tolist(),
        PROP_MEAN: np.asarray(scaler.mean_, dtype=np.float64).tolist(),
        PROP_SCALE: np.asarray(scaler.scale_, dtype=np.float64).tolist(),
        PROP_ROWS_PER_RUN: rows_per_run,
        PROP_HAS_PROBABILITIES: hasattr(classifier, "predict_proba"),
    }
    helper.set_model_props(model, {key: json.dumps(value) for key, value in properties.items()})
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def knn_rows_per_run(knn: KNeighborsClassifier) -> int:
    """How many rows a KNN graph runs at once: rows x training points stay within MAX_ELEMENTS_PER_RUN."""
    return max(1, MAX_ELEMENTS_PER_RUN // knn.n_samples_fit_)


def model_opsets(data: bytes) -> dict[str, int]:
    """The opset per domain a serialized graph needs: recorded in the version's metadata for the serving check."""
    return {entry.domain: entry.version for entry in onnx.load_from_string(data).opset_import}


def _compare_trees_in_float32(model: onnx.ModelProto) -> None:
    """Insert Cast(float32) -> Cast(float64) before every tree ensemble: scikit-learn splits in float32."""
    graph = model.graph
    nodes = list(graph.node)
    patched = []
    for node in nodes:
        if node.op_type.startswith("TreeEnsemble"):
            source = node.input[0]
            as_float, as_double = f"{source}_as_float32", f"{source}_float32_as_double"
            patched.append(helper.make_node("Cast", [source], [as_float], to=TensorProto.FLOAT, name=as_float))
            patched.append(helper.make_node("Cast", [as_float], [as_double], to=TensorProto.DOUBLE, name=as_double))
            node.input[0] = as_double
        patched.append(node)
    if len(patched) == len(nodes):
        raise OnnxExportError("the random forest graph has no tree ensemble node to patch")
    del graph.node[:]
    graph.node.extend(patched)


def _check_knn(scaler: Any, knn: KNeighborsClassifier) -> None:
    """Refuse, before converting, what our KNN graph does not compute: another scaling, callable weights, a metric
    other than the Minkowski family."""
    if type(scaler) is not StandardScaler or not (scaler.with_mean and scaler.with_std):
        raise OnnxExportError(f"{describe(knn)} is exported after the recipe's StandardScaler() only, not {scaler!r}")
    if knn.weights not in ("uniform", "distance"):
        raise OnnxExportError(f"{describe(knn)} cannot be converted to ONNX: callable weights are not supported")
    _knn_metric(knn)


def _knn_metric(knn: KNeighborsClassifier) -> tuple[str, str, str | None, float | None]:
    """(per-feature term, combine, reduced -> distance, p) for this KNN's metric, as scikit-learn computes it."""
    metric, p = knn.effective_metric_, knn.effective_metric_params_.get("p")
    if metric == "minkowski" and p is not None:
        if p == 2:
            metric = "euclidean"
        elif p == 1:
            metric = "manhattan"
        elif p == float("inf"):
            metric = "chebyshev"
        else:
            return ("pow", "add", "root", float(p))
    if metric not in _KNN_METRICS or knn.effective_metric_params_.get("w") is not None:
        raise OnnxExportError(
            f"{describe(knn)} cannot be converted to ONNX: metric {knn.metric!r} is not supported; "
            f"use one of {sorted({'minkowski', *_KNN_METRICS})}"
        )
    term, combine, to_distance = _KNN_METRICS[metric]
    return term, combine, to_distance, None


def _convert_knn(scope: Any, operator: Any, container: Any, scaler: StandardScaler) -> None:
    """The run's StandardScaler, then KNeighborsClassifier, as scikit-learn computes them: outputs label (int64)
    and probabilities (double). The scaling is ours too, so that it runs in the distances' layout."""
    knn: KNeighborsClassifier = operator.raw_operator  # checked by _check_knn
    term, combine, to_distance, p = _knn_metric(knn)
    points = np.asarray(knn._fit_X, dtype=np.float64)
    n_features, n_classes, k = points.shape[1], len(knn.classes_), knn.n_neighbors
    name = scope.get_unique_variable_name

    def constant(prefix: str, values: np.ndarray, onnx_type: int = TensorProto.DOUBLE) -> str:
        tensor_name = name(prefix)
        container.add_initializer(tensor_name, onnx_type, list(values.shape), values.ravel().tolist())
        return tensor_name

    def node(op_type: str, inputs: list[str], prefix: str, **attrs: Any) -> str:
        output = name(prefix)
        container.add_node(op_type, inputs, [output], name=scope.get_unique_operator_name(op_type), **attrs)
        return output

    def axes(*values: int) -> str:
        return constant("axes", np.array(values), TensorProto.INT64)

    def take(values: str, index: int, axis: int, prefix: str) -> str:
        """values[index] along axis, that axis kept (one feature, the first column)."""
        start, end = (
            constant(where, np.array([i]), TensorProto.INT64) for where, i in (("start", index), ("end", index + 1))
        )
        return node("Slice", [values, start, end, axes(axis)], prefix)

    rows = operator.inputs[0].full_name
    # onnxruntime broadcasts a binary operator one output row at a time, so the distances are laid out with the
    # longer side as rows: training points x rows when a run holds more rows than there are points (the seed's
    # 105 points, 624 rows a run: 5-10% less time for the whole graph), rows x points otherwise (5,000 points,
    # 13 rows a run: half the time). TopK then runs along the points' axis.
    by_point = knn_rows_per_run(knn) > len(points)
    points_axis = 0 if by_point else 1
    across_rows = (-1, 1) if by_point else (1, -1)  # the shape of a constant that every row meets
    laid_out = node("Transpose", [rows], "features", perm=[1, 0]) if by_point else rows
    # StandardScaler.transform: (x - mean) / scale, in float64 as scikit-learn computes it (the same values).
    mean, scale = (
        np.asarray(values, dtype=np.float64).reshape(across_rows) for values in (scaler.mean_, scaler.scale_)
    )
    centred = node("Sub", [laid_out, constant("mean", mean)], "centred")
    features = node("Div", [centred, constant("scale", scale)], "scaled")
    reduced = ""
    for j in range(n_features):  # feature by feature, in scikit-learn's order: equal sums, equal ties
        feature = take(features, j, points_axis, "feature")  # the features' axis is the points' axis
        difference = node("Sub", [feature, constant("points", points[:, j].reshape(across_rows))], "difference")
        if term == "square":
            part = node("Mul", [difference, difference], "square")
        elif term == "abs":
            part = node("Abs", [difference], "abs")
        else:
            part = node("Pow", [node("Abs", [difference], "abs"), constant("p", np.array(p))], "pow")
        reduced = part if j == 0 else node("Add" if combine == "add" else "Max", [reduced, part], "reduced")
    top = [name("top_reduced"), name("top_index")]
    container.add_node(
        "TopK",
        [reduced, constant("k", np.array([k]), TensorProto.INT64)],
        top,
        name=scope.get_unique_operator_name("TopK"),
        axis=points_axis,
        largest=0,
        sorted=1,
    )
    if by_point:  # rows x k, as the votes below read them
        top = [node("Transpose", [values], "top", perm=[1, 0]) for values in top]
    neighbour_class = node("Gather", [constant("fit_classes", np.asarray(knn._y), TensorProto.INT64), top[1]], "nc")
    if knn.weights == "distance":
        if to_distance == "sqrt":
            distance = node("Sqrt", [top[0]], "distance")
        elif to_distance == "root":
            distance = node("Pow", [top[0], constant("inv_p", np.array(1.0 / p))], "distance")
        else:
            distance = top[0]
        # scikit-learn: weight 1/d; in a row where some 1/d is infinite (d is 0, or so small that 1/d overflows),
        # those neighbours weigh 1 and the others 0. TopK sorts the distances ascending: such a row has one first.
        inverse = node("Reciprocal", [distance], "inverse")
        at_zero = node("IsInf", [inverse], "at_zero")
        row_has_zero = take(at_zero, 0, 1, "row_has_zero")
        at_zero_weight = node("Cast", [at_zero], "at_zero_weight", to=TensorProto.DOUBLE)
        weight = node("Where", [row_has_zero, at_zero_weight, inverse], "weight")
    else:  # uniform: every neighbour counts 1
        one = helper.make_tensor("one", TensorProto.DOUBLE, [1], [1.0])
        weight = node("ConstantOfShape", [node("Shape", [neighbour_class], "k_shape")], "weight", value=one)
    # Votes per class in one pass: each neighbour's weight added into its class's column, in neighbour order
    # (as scikit-learn adds them), into a rows x classes array of zeros.
    rows_count = node("Shape", [neighbour_class], "rows_count", end=1)
    votes_shape = node(
        "Concat",
        [rows_count, constant("classes_count", np.array([n_classes]), TensorProto.INT64)],
        "votes_shape",
        axis=0,
    )
    zero = helper.make_tensor("zero", TensorProto.DOUBLE, [1], [0.0])
    no_votes = node("ConstantOfShape", [votes_shape], "no_votes", value=zero)
    votes = node("ScatterElements", [no_votes, neighbour_class, weight], "votes", axis=1, reduction="add")
    total = node("ReduceSum", [votes, axes(1)], "total", keepdims=1)
    # Votes are all 0 only where every distance overflowed (scikit-learn refuses such rows, and so does serving,
    # before the graph): dividing by at least the smallest positive double keeps them 0s, not NaNs.
    normalizer = node("Max", [total, constant("smallest", np.array(np.nextafter(0.0, 1.0)))], "normalizer")
    container.add_node(
        "Div", [votes, normalizer], [operator.outputs[1].full_name], name=scope.get_unique_operator_name("Div")
    )
    best = node("ArgMax", [operator.outputs[1].full_name], "best", axis=1, keepdims=0)
    container.add_node(
        "Gather",
        [constant("classes", np.asarray(knn.classes_, dtype=np.int64), TensorProto.INT64), best],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Gather"),
    )
