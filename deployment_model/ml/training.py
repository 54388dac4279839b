"""The training recipe: a dataset in, a fitted scaler and classifier out. No AWS here.

The default reproduces the seed tutorial: iris, petal width then petal length, virginica vs the rest,
a stratified 70/30 split, a StandardScaler, and a 3-fold GridSearchCV (f1_macro) over KNN and SGD.
Every random_state is fixed so the same request always trains the same model.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import parallel_config
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GridSearchCV, ParameterGrid, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

RANDOM_STATE = 0
TEST_SIZE = 0.3
CV_FOLDS = 3
SCORING = "f1_macro"
MAX_GRID_COMBINATIONS = 200
MIN_ROWS_PER_CLASS = 4  # a stratified 70/30 split plus 3 folds needs a few of each class
PARALLEL_FROM_ROWS = 10_000  # below this, threads cost more than they save

SEED_FEATURES = ("petal_width", "petal_length")
SEED_LABELS = ("Not virginica", "virginica")


class TrainingError(ValueError):
    """The request asked for something this data or recipe cannot do; the message says what."""


@dataclass(frozen=True)
class Candidate:
    """One allow-listed estimator: how to build it, its default grid, and the params a request may tune."""

    estimator: type[BaseEstimator]
    fixed_params: Mapping[str, Any]
    default_grid: Mapping[str, Sequence[Any]]
    tunable: frozenset[str]
    ceilings: Mapping[str, int] = field(default_factory=dict)  # bounds on params that scale the work

    def build(self) -> BaseEstimator:
        return self.estimator(**self.fixed_params)


# The allow-list. Order matters: on a tie of held-out scores the earlier candidate wins (the seed's rule).
CANDIDATES: dict[str, Candidate] = {
    "knn": Candidate(
        KNeighborsClassifier,
        {},
        {"n_neighbors": [3, 4, 5, 6, 7], "weights": ["uniform", "distance"]},
        frozenset({"n_neighbors", "weights", "p", "metric"}),
        {"n_neighbors": 1000},
    ),
    "sgd": Candidate(
        SGDClassifier,
        {"random_state": RANDOM_STATE},
        {
            "alpha": [0.1, 0.01],
            "learning_rate": ["constant"],
            "eta0": [0.1, 0.01, 0.001],
            "penalty": ["l1", "l2"],
        },
        frozenset({"alpha", "learning_rate", "eta0", "penalty", "loss", "max_iter", "l1_ratio"}),
        {"max_iter": 10_000},
    ),
    "logistic_regression": Candidate(
        LogisticRegression,
        {"random_state": RANDOM_STATE, "max_iter": 1000},
        {"C": [0.01, 0.1, 1.0, 10.0]},
        frozenset({"C", "class_weight", "max_iter", "tol"}),
        {"max_iter": 10_000},
    ),
    "random_forest": Candidate(
        RandomForestClassifier,
        {"random_state": RANDOM_STATE},
        {"n_estimators": [50, 100], "max_depth": [None, 3, 5]},
        frozenset({"n_estimators", "max_depth", "min_samples_leaf", "max_features", "criterion"}),
        {"n_estimators": 500, "max_depth": 100},
    ),
}
DEFAULT_CANDIDATES: tuple[str, ...] = ("knn", "sgd")


@dataclass(frozen=True)
class Dataset:
    """Features as a float matrix, the target as class indexes into `labels`."""

    features: np.ndarray
    target: np.ndarray
    feature_names: list[str]
    labels: list[str]
    source: str
    sha256: str = ""  # of the CSV bytes, or of the literal "iris" recipe marker: which data trained a version


@dataclass(frozen=True)
class Split:
    """The stratified train / held-out split a run used, kept so its report scores the same rows."""

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


@dataclass
class TrainedModel:
    """What a training run produces: everything the store saves and the response reports."""

    model: ClassifierMixin
    scaler: StandardScaler
    candidate: str
    estimator: str
    params: dict[str, Any]
    metrics: dict[str, float]
    feature_names: list[str]
    labels: list[str]
    rows: dict[str, int]
    source: str
    duration_seconds: float
    candidate_scores: dict[str, float] = field(default_factory=dict)
    cv_scores: dict[str, float] = field(default_factory=dict)  # each candidate's best mean CV f1_macro
    split: Split | None = None  # not in the summary: the report reads it

    def summary(self) -> dict[str, Any]:
        """The JSON-safe facts of this run: recorded in the version's metadata and returned to the client."""
        return {
            "candidate": self.candidate,
            "estimator": self.estimator,
            "params": self.params,
            "metrics": self.metrics,
            "candidate_scores": self.candidate_scores,
            "rows": self.rows,
            "feature_names": self.feature_names,
            "labels": self.labels,
            "training_data": self.source,
            "duration_seconds": round(self.duration_seconds, 4),
        }


def iris_dataset() -> Dataset:
    """The seed's data: iris petal width and length, 1 = virginica, 0 = anything else."""
    iris = load_iris()
    features = iris.data[:, [3, 2]]  # petal width (cm), petal length (cm): the seed's order
    target = (iris.target == 2).astype(np.int64)
    return Dataset(features, target, list(SEED_FEATURES), list(SEED_LABELS), "iris", _sha256(b"iris"))


def csv_dataset(data: bytes, target_column: str, feature_columns: Sequence[str] | None, source: str) -> Dataset:
    """A user's CSV: numeric feature columns and any target column; labels are the target's values."""
    try:
        frame = pd.read_csv(io.BytesIO(data))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TrainingError(f"data_key {source!r} is not a readable CSV file: {exc}") from None
    if target_column not in frame.columns:
        raise TrainingError(
            f"target_column {target_column!r} is not a column of {source!r}; columns: {list(frame.columns)}"
        )
    names = list(feature_columns) if feature_columns else [c for c in frame.columns if c != target_column]
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise TrainingError(f"feature_columns {missing} are not columns of {source!r}")
    if target_column in names:
        raise TrainingError(f"target_column {target_column!r} cannot also be a feature column")
    if not names:
        raise TrainingError(f"{source!r} has no feature column besides the target {target_column!r}")
    frame = frame[[*names, target_column]].dropna()
    non_numeric = [name for name in names if not pd.api.types.is_numeric_dtype(frame[name])]
    if non_numeric:
        raise TrainingError(f"feature columns must be numeric; not numeric: {non_numeric}")
    features = frame[names].to_numpy(dtype=np.float64)
    if not np.isfinite(features).all():
        raise TrainingError("feature columns must hold finite numbers only")
    codes, uniques = pd.factorize(frame[target_column], sort=True)
    labels = [str(value) for value in uniques]
    _check_enough_rows(codes, labels)
    return Dataset(features, codes.astype(np.int64), [str(n) for n in names], labels, source, _sha256(data))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_enough_rows(target: np.ndarray, labels: list[str]) -> None:
    if len(labels) < 2:
        raise TrainingError(f"the target needs at least two classes; found {labels}")
    counts = np.bincount(target, minlength=len(labels))
    scarce = [labels[i] for i, count in enumerate(counts) if count < MIN_ROWS_PER_CLASS]
    if scarce:
        raise TrainingError(f"each class needs at least {MIN_ROWS_PER_CLASS} rows; too few rows of {scarce}")


def resolve_grids(
    requested: Mapping[str, Mapping[str, Sequence[Any]] | None] | None,
) -> dict[str, dict[str, list[Any]]]:
    """Turn a request's candidate choice into checked parameter grids (the seed's when none is given)."""
    chosen = requested or {name: None for name in DEFAULT_CANDIDATES}
    grids: dict[str, dict[str, list[Any]]] = {}
    for name, grid in chosen.items():
        candidate = CANDIDATES.get(name)
        if candidate is None:
            raise TrainingError(f"unknown candidate {name!r}; allowed: {sorted(CANDIDATES)}")
        grid = {key: list(values) for key, values in (grid or candidate.default_grid).items()}
        unknown = sorted(set(grid) - candidate.tunable)
        if unknown:
            raise TrainingError(f"candidate {name!r} cannot tune {unknown}; tunable: {sorted(candidate.tunable)}")
        for key, ceiling in candidate.ceilings.items():
            too_big = [v for v in grid.get(key, []) if isinstance(v, int | float) and v > ceiling]
            if too_big:
                raise TrainingError(f"candidate {name!r}: {key} may be at most {ceiling}; got {too_big}")
        combinations = len(ParameterGrid(grid))
        if combinations > MAX_GRID_COMBINATIONS:
            raise TrainingError(
                f"candidate {name!r} grid has {combinations} combinations; at most {MAX_GRID_COMBINATIONS}"
            )
        for params in ParameterGrid(grid):
            try:
                # scikit-learn's own parameter check, so a bad value is refused before any fitting.
                candidate.build().set_params(**params)._validate_params()
            except (ValueError, TypeError) as exc:
                raise TrainingError(f"candidate {name!r}: {exc}") from None
        grids[name] = grid
    return grids


def train_model(
    dataset: Dataset,
    grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    n_jobs: int | None = None,
) -> TrainedModel:
    """Fit the scaler on the training split, grid-search each candidate, keep the best held-out f1_macro."""
    started = time.perf_counter()
    grids = grids if grids is not None else resolve_grids(None)
    _check_enough_rows(dataset.target, dataset.labels)
    x_train, x_test, y_train, y_test = train_test_split(
        dataset.features,
        dataset.target,
        test_size=TEST_SIZE,
        stratify=dataset.target,
        random_state=RANDOM_STATE,
    )
    scaler = StandardScaler().fit(x_train)
    x_train_scaled, x_test_scaled = scaler.transform(x_train), scaler.transform(x_test)

    best: tuple[float, str, BaseEstimator, dict[str, Any]] | None = None
    scores: dict[str, float] = {}
    cv_scores: dict[str, float] = {}
    for name, grid in grids.items():
        search = GridSearchCV(
            CANDIDATES[name].build(),
            {key: list(values) for key, values in grid.items()},
            cv=CV_FOLDS,
            scoring=SCORING,
            n_jobs=n_jobs if n_jobs is not None else default_n_jobs(len(y_train)),
            error_score="raise",
        )
        try:
            with parallel_config(backend="threading"):
                search.fit(x_train_scaled, y_train)
        except ValueError as exc:
            raise TrainingError(f"candidate {name!r} could not be fitted on this data: {exc}") from None
        held_out = float(f1_score(y_test, search.best_estimator_.predict(x_test_scaled), average="macro"))
        scores[name] = held_out
        cv_scores[name] = float(search.best_score_)
        if best is None or held_out > best[0]:  # strictly greater: the first candidate wins a tie
            best = (held_out, name, search.best_estimator_, dict(search.best_params_))

    if best is None:
        raise TrainingError("choose at least one candidate")
    f1_macro, name, model, params = best
    predicted = model.predict(x_test_scaled)
    return TrainedModel(
        model=model,
        scaler=scaler,
        candidate=name,
        estimator=type(model).__name__,
        params=params,
        metrics={"f1_macro": f1_macro, "accuracy": float(accuracy_score(y_test, predicted))},
        feature_names=list(dataset.feature_names),
        labels=list(dataset.labels),
        rows={"total": len(dataset.target), "train": len(y_train), "test": len(y_test)},
        source=dataset.source,
        duration_seconds=time.perf_counter() - started,
        candidate_scores=scores,
        cv_scores=cv_scores,
        split=Split(x_train, x_test, y_train, y_test),
    )


def default_n_jobs(rows: int) -> int:
    """Grid-search threads: all the cores Lambda gives, once the data is big enough to repay the overhead.

    Threads, not processes: Lambda has no /dev/shm, so process pools are not an option. On iris (150 rows)
    two threads are slower than one; on 100,000 rows they are about 1.7x faster (docs/performance.md).
    TRAIN_N_JOBS overrides the core count.
    """
    if rows < PARALLEL_FROM_ROWS:
        return 1
    return int(os.environ.get("TRAIN_N_JOBS") or os.cpu_count() or 1)
