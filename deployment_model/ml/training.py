"""The training recipe: a dataset in, a fitted scaler and classifier out. No AWS here.

The default reproduces the seed tutorial: iris, petal width then petal length, virginica vs the rest,
a stratified 70/30 split, a StandardScaler, and a 3-fold GridSearchCV (f1_macro) over KNN and SGD.
Every random_state is fixed so the same request always trains the same model.

Training runs within a time Budget: the score of every fit checks the pace, so a grid that cannot finish in
time is refused after its first fits, and nothing is ever returned (so nothing published) past the deadline.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from joblib import parallel_config
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import accuracy_score, f1_score, get_scorer
from sklearn.model_selection import GridSearchCV, ParameterGrid, train_test_split
from sklearn.preprocessing import StandardScaler

from deployment_model.ml.budget import Budget, TrainingTooLongError, unlimited
from deployment_model.ml.candidates import CANDIDATES, DEFAULT_CANDIDATES, RANDOM_STATE, TrainingError, resolve_grids
from deployment_model.ml.datasets import (
    SEED_FEATURES,
    SEED_LABELS,
    Dataset,
    check_enough_rows,
    csv_dataset,
    iris_dataset,
)
from deployment_model.ml.input_limits import UnusableModelError, compute_input_limits
from deployment_model.ml.limits import MAX_GRID_COMBINATIONS, MIN_ROWS_PER_CLASS

__all__ = [
    "CANDIDATES",
    "DEFAULT_CANDIDATES",
    "MAX_GRID_COMBINATIONS",
    "MIN_ROWS_PER_CLASS",
    "SEED_FEATURES",
    "SEED_LABELS",
    "Budget",
    "Dataset",
    "TrainedModel",
    "TrainingError",
    "TrainingTooLongError",
    "csv_dataset",
    "default_n_jobs",
    "iris_dataset",
    "resolve_grids",
    "train_model",
]

TEST_SIZE = 0.3
CV_FOLDS = 3
SCORING = "f1_macro"
PARALLEL_FROM_ROWS = 10_000  # below this, threads cost more than they save
REFIT_FITS = 2  # the final refit on all training rows costs about 1.5 fold fits: counted as 2


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
    rows: dict[str, Any]
    source: str
    duration_seconds: float
    candidate_scores: dict[str, float] = field(default_factory=dict)
    training_data_sha256: str = ""
    training_data_etag: str | None = None
    input_limits: dict[str, Any] = field(default_factory=dict)
    # The raw rows of the split, for checking an export against the model (ml/onnx_artifact.py); not metadata.
    training_rows: np.ndarray | None = field(default=None, repr=False)
    held_out_rows: np.ndarray | None = field(default=None, repr=False)
    cv_scores: dict[str, float] = field(default_factory=dict)  # each candidate's best mean CV f1_macro
    split: Split | None = None  # not in the summary: the report reads it

    def summary(self) -> dict[str, Any]:
        """The JSON-safe facts of this run: recorded in the version's metadata (the response shows most)."""
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
            "training_data_sha256": self.training_data_sha256,
            "training_data_etag": self.training_data_etag,
            "input_limits": self.input_limits,
            "duration_seconds": round(self.duration_seconds, 4),
        }


class _PacedScorer:
    """f1_macro, plus a look at the clock after every fit: the only hook GridSearchCV gives between fits."""

    def __init__(self, budget: Budget, total_fits: int, candidate: str) -> None:
        self.budget, self.total_fits, self.candidate = budget, total_fits, candidate
        self.started = budget.clock()
        self._done = itertools.count(1)
        self._lock = threading.Lock()
        self._score = get_scorer(SCORING)

    def __call__(self, estimator: BaseEstimator, features: np.ndarray, target: np.ndarray) -> float:
        with self._lock:
            done = next(self._done)
        self.budget.check_pace(self.started, done, self.total_fits, f"candidate {self.candidate!r}")
        return float(self._score(estimator, features, target))


def train_model(
    dataset: Dataset,
    grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    n_jobs: int | None = None,
    budget: Budget | None = None,
    on_candidate_done: Callable[[int, int], None] | None = None,
) -> TrainedModel:
    """Fit the scaler on the training split, grid-search each candidate, keep the best held-out f1_macro.

    Raises TrainingTooLongError as soon as the budget cannot hold the work (before the deadline when the first
    fits show it), and never returns after the deadline: a caller that publishes what this returns publishes
    in time or not at all. on_candidate_done(done, total) is called as each candidate's search ends (a queued
    job's progress).
    """
    budget = budget or unlimited()
    started = time.perf_counter()
    grids = grids if grids is not None else resolve_grids(None)
    check_enough_rows(dataset.target, dataset.labels)
    x_train, x_test, y_train, y_test = split(dataset)
    scaler = StandardScaler().fit(x_train)
    x_train_scaled, x_test_scaled = scaler.transform(x_train), scaler.transform(x_test)

    best: tuple[float, str, BaseEstimator, dict[str, Any]] | None = None
    scores: dict[str, float] = {}
    cv_scores: dict[str, float] = {}
    for name, grid in grids.items():
        budget.check(f"before fitting candidate {name!r}")
        grid = {key: list(values) for key, values in grid.items()}
        total_fits = len(ParameterGrid(grid)) * CV_FOLDS + REFIT_FITS
        search = GridSearchCV(
            CANDIDATES[name].build(),
            grid,
            cv=CV_FOLDS,
            scoring=_PacedScorer(budget, total_fits, name),
            n_jobs=n_jobs if n_jobs is not None else default_n_jobs(len(y_train)),
            error_score="raise",
        )
        try:
            with parallel_config(backend="threading"):
                search.fit(x_train_scaled, y_train)
            held_out = float(f1_score(y_test, search.best_estimator_.predict(x_test_scaled), average="macro"))
        except TrainingTooLongError:
            raise
        except Exception as exc:  # any fitting failure is about this data and these parameters: a 4xx
            raise TrainingError(
                f"candidates.{name} could not be fitted on this data ({type(exc).__name__}: {exc}); "
                "choose other parameter values or another candidate"
            ) from None
        scores[name] = held_out
        cv_scores[name] = float(search.best_score_)
        if best is None or held_out > best[0]:  # strictly greater: the first candidate wins a tie
            best = (held_out, name, search.best_estimator_, dict(search.best_params_))
        if on_candidate_done is not None:
            on_candidate_done(len(scores), len(grids))

    if best is None:
        raise TrainingError("candidates: choose at least one candidate")
    f1_macro, name, model, params = best
    try:
        input_limits = compute_input_limits(name, model, scaler.mean_, scaler.scale_, x_train_scaled)
    except UnusableModelError as exc:
        raise TrainingError(f"candidates.{name}: {exc}") from None
    predicted = model.predict(x_test_scaled)
    budget.check("in time to publish")
    rows: dict[str, Any] = {
        "total": len(dataset.target),
        "train": len(y_train),
        "test": len(y_test),
        "dropped": dataset.dropped_rows,
        "dropped_reason": dataset.dropped_reason,
    }
    return TrainedModel(
        model=model,
        scaler=scaler,
        candidate=name,
        estimator=type(model).__name__,
        params=params,
        metrics={"f1_macro": f1_macro, "accuracy": float(accuracy_score(y_test, predicted))},
        feature_names=list(dataset.feature_names),
        labels=list(dataset.labels),
        rows=rows,
        source=dataset.source,
        duration_seconds=time.perf_counter() - started,
        candidate_scores=scores,
        training_data_sha256=dataset.sha256,
        training_data_etag=dataset.etag,
        input_limits=input_limits,
        cv_scores=cv_scores,
        split=Split(x_train, x_test, y_train, y_test),
        training_rows=x_train,
        held_out_rows=x_test,
    )


def split(dataset: Dataset) -> list[np.ndarray]:
    """x_train, x_test, y_train, y_test: the stratified 70/30 split, the same for the same data every time."""
    return train_test_split(
        dataset.features, dataset.target, test_size=TEST_SIZE, stratify=dataset.target, random_state=RANDOM_STATE
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
