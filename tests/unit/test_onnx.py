"""ONNX export: the same answers as scikit-learn for every allow-listed estimator, and each known skl2onnx gap
pinned (so that a skl2onnx upgrade that fixes one tells us which mend can go)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from deployment_model.ml import onnx_export
from deployment_model.ml.onnx_export import OnnxExportError, export_onnx, model_opsets
from deployment_model.ml.onnx_model import (
    OnnxModelError,
    UnsupportedOpsetError,
    check_opsets,
    load_onnx_model,
    new_session,
)
from deployment_model.ml.onnx_verify import OnnxVerificationError, probe_rows, verify_onnx
from deployment_model.ml.prediction import InvalidRowsError, classify
from deployment_model.ml.training import RANDOM_STATE, TEST_SIZE, Dataset, iris_dataset, resolve_grids, train_model
from tests.conftest import ROOT


def iris_three_classes() -> Dataset:
    """All four iris features and all three species: the multiclass case."""
    iris = load_iris()
    return Dataset(iris.data, iris.target, list(iris.feature_names), list(iris.target_names), "iris-3", "iris-3")


def split(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The training and held-out rows, split exactly as training.train_model splits them."""
    x_train, x_test, *_ = train_test_split(
        dataset.features, dataset.target, test_size=TEST_SIZE, stratify=dataset.target, random_state=RANDOM_STATE
    )
    return x_train, x_test


def metadata_for(dataset: Dataset, data: bytes) -> dict:
    return {
        "name": "m",
        "version": "v",
        "labels": dataset.labels,
        "feature_names": dataset.feature_names,
        "onnx": {"opsets": model_opsets(data)},
    }


def disagreement(onnx_model, scaler, classifier, rows: np.ndarray) -> tuple[int, float]:
    """(label mismatches, largest probability gap) of the served ONNX model against scikit-learn."""
    classes, probabilities = classify(classifier, scaler.transform(rows))
    got = onnx_model.predict(rows)
    mismatches = int((np.asarray(classes) != got.classes).sum())
    if probabilities is None:
        assert got.probabilities is None
        return mismatches, 0.0
    return mismatches, float(np.abs(probabilities - got.probabilities).max())


CASES = [
    ("knn", {"n_neighbors": [3], "weights": ["uniform"]}),
    ("knn", {"n_neighbors": [3], "weights": ["distance"]}),
    ("knn", {"n_neighbors": [4], "weights": ["distance"], "p": [1]}),
    ("knn", {"n_neighbors": [6], "weights": ["uniform"], "metric": ["manhattan"]}),
    *[("sgd", {"loss": [loss], "alpha": [0.01]}) for loss in ("hinge", "log_loss", "modified_huber", "perceptron")],
    ("sgd", {"loss": ["squared_hinge"], "alpha": [0.1], "penalty": ["l1"]}),
    ("logistic_regression", {"C": [1.0]}),
    ("random_forest", {"n_estimators": [50], "max_depth": [None]}),
    ("random_forest", {"n_estimators": [20], "max_depth": [3], "min_samples_leaf": [5]}),
]


@pytest.mark.parametrize("dataset", [iris_dataset(), iris_three_classes()], ids=["seed", "iris-3-classes"])
@pytest.mark.parametrize(("candidate", "grid"), CASES, ids=lambda c: str(c))
def test_onnx_gives_scikit_learns_labels_and_probabilities(dataset: Dataset, candidate: str, grid: dict) -> None:
    trained = train_model(dataset, resolve_grids({candidate: grid}))
    x_train, x_test = split(dataset)
    data = export_onnx(trained.scaler, trained.model, len(dataset.feature_names))
    served = verify_onnx(data, metadata_for(dataset, data), trained.scaler, trained.model, x_test, x_train).model
    for rows in (x_test, probe_rows(x_train)):
        mismatches, gap = disagreement(served, trained.scaler, trained.model, rows)
        assert mismatches == 0
        assert gap <= 1e-4
    assert served.has_probabilities == hasattr(trained.model, "predict_proba")


def test_the_seeds_default_model_exports_and_verifies() -> None:
    dataset = iris_dataset()
    trained = train_model(dataset)  # the seed's recipe: KNN with distance weights wins
    assert trained.params["weights"] == "distance"
    x_train, x_test = split(dataset)
    data = export_onnx(trained.scaler, trained.model, 2)
    served = verify_onnx(data, metadata_for(dataset, data), trained.scaler, trained.model, x_test, x_train).model
    answer = served.predict(np.array([[0.7, 1.0], [2.0, 5.5]]))
    assert answer.labels == ["Not virginica", "virginica"] and answer.classes.tolist() == [0, 1]


# --- the skl2onnx gaps, each pinned ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_split() -> tuple[Dataset, np.ndarray, np.ndarray]:
    dataset = iris_dataset()
    return dataset, *split(dataset)


def fitted_knn(seed_split, **params) -> tuple:
    from sklearn.preprocessing import StandardScaler

    dataset, x_train, _ = seed_split
    scaler = StandardScaler().fit(x_train)
    y_train = train_test_split(
        dataset.features, dataset.target, test_size=TEST_SIZE, stratify=dataset.target, random_state=RANDOM_STATE
    )[2]
    return scaler, KNeighborsClassifier(**params).fit(scaler.transform(x_train), y_train)


def stock_conversion(scaler, classifier, **options) -> bytes:
    """skl2onnx's own converter, as a plain call would use it."""
    pipeline = Pipeline([("scaler", scaler), ("classifier", classifier)])
    return convert_sklearn(
        pipeline,
        initial_types=[("rows", DoubleTensorType([None, scaler.n_features_in_]))],
        options={id(classifier): {"zipmap": False, **options}},
    ).SerializeToString()


def stock_probabilities(data: bytes, rows: np.ndarray) -> np.ndarray:
    return new_session(data).run(None, {"rows": rows})[1]


def test_skl2onnx_converts_distance_weighted_knn_as_uniform_and_ours_does_not(seed_split) -> None:
    dataset, x_train, _x_test = seed_split
    scaler, knn = fitted_knn(seed_split, n_neighbors=3, weights="distance")
    rows = probe_rows(x_train)
    expected = knn.predict_proba(scaler.transform(rows))
    uniform = KNeighborsClassifier(n_neighbors=3).fit(knn._fit_X, knn._y).predict_proba(scaler.transform(rows))
    stock = stock_probabilities(stock_conversion(scaler, knn), rows)
    assert np.abs(stock - uniform).max() < 1e-12  # the upstream bug: distance weights ignored
    assert np.abs(stock - expected).max() > 0.1
    data = export_onnx(scaler, knn, 2)
    served = load_onnx_model(data, metadata_for(dataset, data))
    assert np.abs(served.predict(rows).probabilities - expected).max() < 1e-12


def test_rows_on_a_training_point_weigh_only_that_point_as_scikit_learn_does(seed_split) -> None:
    dataset, x_train, _ = seed_split
    scaler, knn = fitted_knn(seed_split, n_neighbors=5, weights="distance")
    data = export_onnx(scaler, knn, 2)
    got = load_onnx_model(data, metadata_for(dataset, data)).predict(x_train)
    expected = knn.predict_proba(scaler.transform(x_train))
    assert np.array_equal(got.probabilities, expected)  # exactly: 0/1 weights, not 1/max(d, 1e-6)


def test_exact_distance_ties_fall_as_in_scikit_learn_where_cdist_does_not(seed_split) -> None:
    """Iris lies on a 0.1 cm grid: held-out row [1.5, 4.9] has two 3rd-nearest neighbours at the same distance."""
    dataset, _x_train, _x_test = seed_split
    scaler, knn = fitted_knn(seed_split, n_neighbors=3)
    row = np.array([[1.5, 4.9]])
    distances = knn.kneighbors(scaler.transform(row), 4, return_distance=True)[0][0]
    assert distances[2] == pytest.approx(distances[3], abs=1e-15)  # the tie this test is about
    expected = knn.predict_proba(scaler.transform(row))
    cdist = stock_probabilities(stock_conversion(scaler, knn, optim="cdist"), row)
    assert np.abs(cdist - expected).max() > 0.3  # skl2onnx's CDist picks the other neighbour
    data = export_onnx(scaler, knn, 2)
    assert np.array_equal(load_onnx_model(data, metadata_for(dataset, data)).predict(row).probabilities, expected)


def test_random_forests_need_the_float32_cast_before_the_trees(seed_split, monkeypatch) -> None:
    dataset = iris_three_classes()
    trained = train_model(dataset, resolve_grids({"random_forest": {"n_estimators": [50]}}))
    x_train, x_test = split(dataset)
    data = export_onnx(trained.scaler, trained.model, 4)
    verify_onnx(data, metadata_for(dataset, data), trained.scaler, trained.model, x_test, x_train)
    monkeypatch.setattr(onnx_export, "_compare_trees_in_float32", lambda model: None)
    unpatched = export_onnx(trained.scaler, trained.model, 4)
    with pytest.raises(OnnxVerificationError, match=r"RandomForestClassifier\(.*n_estimators=50.*probabilities differ"):
        verify_onnx(unpatched, metadata_for(dataset, unpatched), trained.scaler, trained.model, x_test, x_train)


def test_knn_rows_with_equally_far_neighbours_are_allowed_counted_and_only_those() -> None:
    """Data on a 0.1 grid: duplicate points with different labels tie at the k-th neighbour. scikit-learn's own
    answer there depends on the order of its training data, so ONNX may pick the other tied point."""
    from sklearn.preprocessing import StandardScaler

    from deployment_model.ml.onnx_verify import _knn_ties

    rng = np.random.default_rng(1)
    iris = load_iris()
    picks = rng.integers(0, 150, 600)
    rows = np.round(iris.data[picks][:, [3, 2]] + rng.normal(0, 0.1, (600, 2)), 1)
    target = iris.target[picks]
    queries = np.round(rng.uniform([0, 1], [2.6, 7], (2000, 2)), 1)
    scaler = StandardScaler().fit(rows)
    knn = KNeighborsClassifier(3).fit(scaler.transform(rows), target)
    reordered = KNeighborsClassifier(3).fit(scaler.transform(rows[::-1]), target[::-1])
    scaled = scaler.transform(queries)
    assert (knn.predict(scaled) != reordered.predict(scaled)).any()  # the premise: scikit-learn is order-bound here

    dataset = Dataset(rows, target, ["w", "l"], list(iris.target_names), "grid", "grid")
    data = export_onnx(scaler, knn, 2)
    verified = verify_onnx(data, metadata_for(dataset, data), scaler, knn, queries, rows)
    got = verified.model.predict(queries)
    expected = knn.predict_proba(scaled)
    differs = (got.classes != expected.argmax(axis=1)) | (np.abs(got.probabilities - expected).max(axis=1) > 1e-4)
    assert differs.any() and _knn_ties(knn, scaled[differs]).all()
    assert verified.knn_tie_rows >= differs.sum()
    assert not _knn_ties(knn, scaled[~differs][:50]).all()  # the allowance is not a blanket one


def test_sgd_with_hinge_loss_serves_labels_without_probabilities(seed_split) -> None:
    dataset, x_train, x_test = seed_split
    trained = train_model(dataset, resolve_grids({"sgd": {"loss": ["hinge"]}}))
    data = export_onnx(trained.scaler, trained.model, 2)
    served = verify_onnx(data, metadata_for(dataset, data), trained.scaler, trained.model, x_test, x_train).model
    assert not served.has_probabilities
    answer = served.predict(x_test)
    assert answer.probabilities is None
    assert answer.classes.tolist() == trained.model.predict(trained.scaler.transform(x_test)).tolist()
    # The graph's second output is decision scores, not probabilities: rows need not sum to 1.
    scores = served.session.run(None, {"rows": x_test})[1]
    assert not np.allclose(scores.sum(axis=1), 1.0)


def test_rows_so_far_out_that_every_distance_ties_are_refused_on_both_paths(seed_split) -> None:
    """At 1e30 standard deviations every distance rounds to the same float64: any KNN label is arbitrary."""
    dataset, x_train, _ = seed_split
    scaler, knn = fitted_knn(seed_split, n_neighbors=3)
    far = scaler.mean_ + 1e30 * scaler.scale_
    distances = knn.kneighbors(scaler.transform([far]), len(x_train))[0][0]
    assert np.unique(distances).size == 1  # the premise: a total tie
    data = export_onnx(scaler, knn, 2)
    served = load_onnx_model(data, metadata_for(dataset, data))
    with pytest.raises(InvalidRowsError, match="row 1 has values too large"):
        served.predict(np.array([[0.7, 1.0], far]))
    from deployment_model.ml.prediction import check_magnitude

    with pytest.raises(InvalidRowsError, match="row 1 has values too large"):
        check_magnitude(scaler.transform(np.array([[0.7, 1.0], far])), "m")
    assert served.predict(np.array([[1e6, -1e6]])).labels[0] in dataset.labels  # far but answerable


def test_a_failed_verification_names_the_estimator_and_its_parameters(seed_split) -> None:
    dataset, x_train, x_test = seed_split
    scaler, knn = fitted_knn(seed_split, n_neighbors=3, weights="distance")
    wrong = onnx.load_from_string(stock_conversion(scaler, knn))  # the uniform-weights graph ...
    wrong.metadata_props.extend(onnx.load_from_string(export_onnx(scaler, knn, 2)).metadata_props)  # ... passed off
    wrong = wrong.SerializeToString()
    with pytest.raises(OnnxVerificationError) as raised:
        verify_onnx(wrong, metadata_for(dataset, wrong), scaler, knn, x_test, x_train)
    assert "KNeighborsClassifier(" in str(raised.value) and "weights='distance'" in str(raised.value)
    assert "n_neighbors=3" in str(raised.value)


def test_metrics_the_graph_cannot_compute_are_refused_by_name(seed_split) -> None:
    scaler, knn = fitted_knn(seed_split, n_neighbors=3, metric="cosine")
    with pytest.raises(OnnxExportError, match=r"KNeighborsClassifier\(.*metric='cosine'.*not supported"):
        export_onnx(scaler, knn, 2)


def test_large_knn_batches_run_in_chunks_with_the_same_answers(seed_split, monkeypatch) -> None:
    dataset, x_train, _ = seed_split
    scaler, knn = fitted_knn(seed_split, n_neighbors=4, weights="distance")
    rows = probe_rows(x_train)
    whole = load_onnx_model(data := export_onnx(scaler, knn, 2), metadata_for(dataset, data))
    monkeypatch.setattr(onnx_export, "MAX_ELEMENTS_PER_RUN", 7 * len(x_train))
    chunked = load_onnx_model(data := export_onnx(scaler, knn, 2), metadata_for(dataset, data))
    assert (chunked.rows_per_run, whole.rows_per_run) == (7, 65_536 // len(x_train))
    a, b = whole.predict(rows), chunked.predict(rows)
    assert a.labels == b.labels and np.array_equal(a.probabilities, b.probabilities)


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("by_point", [True, False], ids=["points x rows", "rows x points"])
def test_both_distance_layouts_give_scikit_learns_answers(
    seed_split, monkeypatch, by_point: bool, weights: str
) -> None:
    """The graph lays distances out by the model's size (many rows a run: points x rows); both layouts must
    answer as scikit-learn does, the grid's exact ties included."""
    dataset, x_train, x_test = seed_split
    if not by_point:  # fewer rows a run than training points, as for a KNN trained on thousands of rows
        monkeypatch.setattr(onnx_export, "MAX_ELEMENTS_PER_RUN", 7 * len(x_train))
    scaler, knn = fitted_knn(seed_split, n_neighbors=3, weights=weights)
    data = export_onnx(scaler, knn, 2)
    assert any(node.op_type == "Transpose" for node in onnx.load_from_string(data).graph.node) == by_point
    served = load_onnx_model(data, metadata_for(dataset, data))
    for rows in (x_test, probe_rows(x_train), np.array([[1.5, 4.9]])):  # the last: a tie at the 3rd neighbour
        mismatches, gap = disagreement(served, scaler, knn, rows)
        assert (mismatches, gap) == (0, 0.0)


@pytest.mark.parametrize(
    "scaler", [MinMaxScaler(), StandardScaler(with_mean=False), StandardScaler(with_std=False)], ids=repr
)
def test_a_knn_graph_scales_as_the_recipes_standard_scaler_only(seed_split, scaler) -> None:
    """The KNN graph computes the recipe's (x - mean) / scale itself: any other scaling is refused by name
    (with_mean=False still records a mean, which the graph would have subtracted: 87 labels in 200 wrong)."""
    _, x_train, _ = seed_split
    _, knn = fitted_knn(seed_split)
    with pytest.raises(
        OnnxExportError, match=r"after the recipe's StandardScaler\(\) only, not " + re.escape(repr(scaler))
    ):
        export_onnx(scaler.fit(x_train), knn, 2)


def test_a_distance_so_small_that_its_inverse_overflows_weighs_as_zero_does_in_scikit_learn() -> None:
    """scikit-learn weighs by 1/d and treats an infinite 1/d as d == 0: so does the graph (a subnormal
    manhattan distance gave NaN probabilities when the graph tested d == 0)."""
    x = np.array([[-1.0], [0.0], [1.0]])  # mean 0: the middle point is 0 once scaled
    scaler = StandardScaler().fit(x)
    knn = KNeighborsClassifier(n_neighbors=2, weights="distance", metric="manhattan")
    knn.fit(scaler.transform(x), [0, 1, 0])
    row = np.array([[1e-309]])  # scaled: ~1.2e-309 (subnormal) from that point; 1 / that overflows to inf
    with np.errstate(over="ignore"):  # the overflow this test is about, in scikit-learn and here
        assert np.isinf(1.0 / knn.kneighbors(scaler.transform(row))[0][0][0])
        expected = knn.predict_proba(scaler.transform(row))
    data = export_onnx(scaler, knn, 1)
    metadata = {"name": "m", "version": "v", "labels": ["a", "b"], "feature_names": ["f"]}
    assert np.array_equal(load_onnx_model(data, metadata).compute(row).probabilities, expected)


# --- serving: versions, opsets, bytes ------------------------------------------------------------------


def test_a_graph_needing_a_newer_opset_than_onnxruntime_has_is_refused_clearly() -> None:
    check_opsets({"": 21, "ai.onnx.ml": 3}, "model 'm' version v")
    with pytest.raises(UnsupportedOpsetError, match=r"model 'm' version v needs ONNX opsets \{'ai.onnx': 999\}"):
        check_opsets({"": 999}, "model 'm' version v")


def test_bytes_that_are_not_this_services_onnx_are_refused(seed_split) -> None:
    dataset, *_ = seed_split
    with pytest.raises(OnnxModelError, match="cannot be loaded by onnxruntime"):
        load_onnx_model(b"not onnx", {**metadata_for(dataset, export_onnx(*fitted_knn(seed_split), 2))})
    scaler, knn = fitted_knn(seed_split)
    foreign = stock_conversion(scaler, knn)  # valid ONNX, but without the properties serving needs
    with pytest.raises(OnnxModelError, match="lacks this service's properties"):
        load_onnx_model(foreign, metadata_for(dataset, foreign))


BLOCK_TRAINING_LIBRARIES = (
    "import sys\n"
    "class NotInstalled:\n"  # an import finder that makes these look uninstalled, as in the inference image
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('sklearn', 'scipy', 'joblib', 'threadpoolctl', 'pandas', 'skl2onnx', 'onnx'):\n"
    "            raise ModuleNotFoundError(name)\n"
    "sys.meta_path.insert(0, NotInstalled())\n"
)


def last_two_lines_without_training_libraries(code: str, cwd: Path) -> tuple[str, str]:
    """Run code in a fresh Python where scikit-learn and the other training libraries cannot be imported, as in
    the inference image; its last two lines of output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", BLOCK_TRAINING_LIBRARIES + code], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    first, second = out.stdout.strip().splitlines()[-2:]
    return first, second


def test_serving_an_onnx_model_imports_no_scikit_learn_scipy_or_joblib(seed_split, tmp_path: Path) -> None:
    dataset, _x_train, x_test = seed_split
    trained = train_model(dataset)
    data = export_onnx(trained.scaler, trained.model, 2)
    (tmp_path / "model.onnx").write_bytes(data)
    code = (
        "import json\n"
        "import numpy as np\n"
        "from deployment_model.ml.onnx_model import load_onnx_model\n"
        f"metadata = json.loads({json.dumps(metadata_for(dataset, data))!r})\n"
        "model = load_onnx_model(open('model.onnx', 'rb').read(), metadata)\n"
        f"answer = model.predict(np.array({x_test.tolist()!r}))\n"
        "print(json.dumps([answer.classes.tolist(), answer.probabilities.tolist()]))\n"
        "print(sorted(m for m in ('sklearn', 'scipy', 'joblib') if m in sys.modules))\n"
    )
    answer, imported = last_two_lines_without_training_libraries(code, tmp_path)
    classes, probabilities = json.loads(answer)
    expected_classes, expected_probabilities = classify(trained.model, trained.scaler.transform(x_test))
    assert classes == expected_classes.tolist()
    assert np.abs(np.array(probabilities) - expected_probabilities).max() <= 1e-4
    assert imported == "[]"


# --- the two functions ----------------------------------------------------------------------------------


def test_the_inference_function_serves_without_scikit_learn_scipy_or_joblib(local_service, tmp_path: Path) -> None:
    trained = local_service.train({})
    code = (
        "import json\n"
        "from deployment_model.local.server import LocalContext\n"
        "from deployment_model.inference.app import lambda_handler\n"
        "answer = lambda_handler({'x_test': [[2.0, 5.5], [0.7, 1.0]]}, LocalContext('inference'))\n"
        "print(json.dumps(answer))\n"
        "print(sorted(m for m in ('sklearn', 'scipy', 'joblib', 'pandas') if m in sys.modules))\n"
    )
    answer, imported = last_two_lines_without_training_libraries(code, tmp_path)
    answer = json.loads(answer)
    assert answer["statusCode"] == 200 and answer["model_version"] == trained["model_version"]
    assert answer["result"] == ["virginica", "Not virginica"] and answer["prediction"] == [1, 0]
    assert imported == "[]"


def test_training_stores_a_verified_onnx_artifact_in_the_same_version(local_service) -> None:
    trained = local_service.train({})
    metadata = local_service.train_module.registry.get_version("Model_ml", trained["model_version"])
    assert {"model", "scaler", "onnx"} <= set(metadata["artifacts"])  # joblib stays the system of record
    assert set(metadata["artifacts"]) - {"model", "scaler", "onnx"} == set(metadata["report"]["kinds"])
    assert metadata["artifacts"]["onnx"]["key"].endswith("/onnx/Model_ml.onnx")
    assert metadata["onnx"]["opsets"] and metadata["onnx"]["verified_on"]["held_out_rows"] == 45
    assert "derived_from" not in metadata
    assert local_service.predict({"x_test": [2.0, 5.5]})["result"] == "virginica"


def test_a_model_that_fails_verification_is_not_published_and_the_answer_says_why(local_service, monkeypatch) -> None:
    from deployment_model.ml import onnx_artifact

    def uniform_graph(scaler, classifier, n_features):  # skl2onnx's own KNN converter: distance weights lost
        graph = onnx.load_from_string(stock_conversion(scaler, classifier))
        graph.metadata_props.extend(onnx.load_from_string(export_onnx(scaler, classifier, n_features)).metadata_props)
        return graph.SerializeToString()

    monkeypatch.setattr(onnx_artifact, "export_onnx", uniform_graph)
    answer = local_service.train({})
    assert answer["statusCode"] == 422 and answer["error"] == "model_not_servable"
    assert "KNeighborsClassifier(" in answer["message"] and "weights='distance'" in answer["message"]
    assert "not published" in answer["message"]
    missing = local_service.predict({"x_test": [2.0, 5.5]})
    assert missing["statusCode"] == 404  # no version went live
    assert local_service.train_module.registry.list_models().items == []  # nor was a version stored


def old_version(local_service) -> str:
    """A version as the service wrote them before ONNX: joblib model and scaler only."""
    from deployment_model.ml.artifacts import model_artifacts, model_metadata

    trained = train_model(iris_dataset())
    registry = local_service.train_module.registry
    artifacts = model_artifacts("Model_ml", "scaler", trained.model, trained.scaler)
    version = registry.create_version("Model_ml", artifacts, model_metadata(trained.summary(), "scaler"))["version"]
    registry.publish("Model_ml", version, reason="trained before ONNX serving")
    return version


def test_a_version_without_onnx_answers_409_saying_how_to_convert_it(local_service) -> None:
    version = old_version(local_service)
    answer = local_service.predict({"x_test": [2.0, 5.5]})
    assert answer["statusCode"] == 409 and answer["error"] == "model_not_exported"
    assert f"POST /models/Model_ml/versions/{version}/export" in answer["message"]


def test_exporting_an_old_version_makes_a_new_verified_version_published_only_if_asked(local_service) -> None:
    from tests.conftest import body_of, proxy_event

    version = old_version(local_service)
    path = f"/models/Model_ml/versions/{version}/export"
    stored = body_of(local_service.train(proxy_event(path, {})))
    assert stored["derived_from"] == version and stored["published"] is False
    assert local_service.predict({"x_test": [2.0, 5.5]})["statusCode"] == 409  # still the old one published
    pinned = local_service.predict({"x_test": [[2.0, 5.5], [0.7, 1.0]], "model_version": stored["model_version"]})
    assert pinned["result"] == ["virginica", "Not virginica"]

    answer = local_service.train(proxy_event(path, {"publish": True}))
    assert answer["statusCode"] == 200 and body_of(answer)["published"] is True
    new = body_of(answer)["model_version"]
    metadata = local_service.train_module.registry.get_version("Model_ml", new)
    assert metadata["derived_from"] == version and metadata["onnx"]["verified_on"]["held_out_rows"] == 45
    assert metadata["params"] == {"n_neighbors": 3, "weights": "distance"}
    served = local_service.predict({"x_test": [2.0, 5.5]})
    assert served["model_version"] == new and served["result"] == "virginica"

    again = local_service.train(proxy_event(f"/models/Model_ml/versions/{new}/export", {}))
    assert again["statusCode"] == 409 and body_of(again)["error"] == "already_exported"
    unknown = local_service.train(proxy_event("/models/Model_ml/versions/20200101T000000000000Z-00000000/export", {}))
    assert unknown["statusCode"] == 404


def test_the_cli_exports_an_old_version(local_service, capsys) -> None:
    from deployment_model.local.cli import main

    version = old_version(local_service)
    store_dir = os.environ["MODEL_STORE_DIR"]
    capsys.readouterr()
    assert main(["--store-dir", store_dir, "--json", "models", "export", "Model_ml", version, "--publish"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["derived_from"] == version and answer["published"] is True
    unknown = version[:-1] + ("1" if version.endswith("0") else "0")  # another version id, never this one
    assert main(["--store-dir", store_dir, "models", "export", "Model_ml", unknown]) == 1
    assert "has no version" in capsys.readouterr().err


def test_large_held_out_splits_are_verified_on_a_seeded_sample(seed_split) -> None:
    from deployment_model.ml.onnx_verify import MAX_HELD_OUT_ROWS

    dataset, x_train, _ = seed_split
    scaler, knn = fitted_knn(seed_split, n_neighbors=3, weights="distance")
    many = np.random.default_rng(3).uniform(x_train.min(axis=0), x_train.max(axis=0), (MAX_HELD_OUT_ROWS + 500, 2))
    data = export_onnx(scaler, knn, 2)
    verified = verify_onnx(data, metadata_for(dataset, data), scaler, knn, many, x_train)
    assert verified.held_out_rows == MAX_HELD_OUT_ROWS and verified.probe_rows > 1000


def test_knn_input_limits_stop_before_every_distance_ties(local_service) -> None:
    """A new version's input_limits refuse the all-tie rows too (1e30 standard deviations out), and only those."""
    local_service.train({})
    far = local_service.predict({"x_test": [1e30, 1e30]})
    assert far["statusCode"] == 400 and "every training point is equally far" in far["message"]
    assert local_service.predict({"x_test": [1e6, -1e6]})["statusCode"] == 200


def test_a_graph_stamped_with_an_opset_onnxruntime_lacks_is_refused_as_incompatible(seed_split) -> None:
    dataset, *_ = seed_split
    scaler, knn = fitted_knn(seed_split)
    graph = onnx.load_from_string(export_onnx(scaler, knn, 2))
    for entry in graph.opset_import:
        if entry.domain == "":
            entry.version = 999
    future = graph.SerializeToString()
    with pytest.raises(UnsupportedOpsetError, match=r"needs ONNX opsets \{'ai.onnx': 999\}.*onnxruntime 1\."):
        load_onnx_model(future, metadata_for(dataset, future))
