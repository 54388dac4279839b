"""The allow-listed estimators: how each is built, its default grid, what a request may tune, and the checks.

The API's request models (api/grids.py) describe the same parameters with their types and allowed values, so a
bad value is refused with a readable 400 before it gets here; the checks below are the domain's own, for any
caller, and end with scikit-learn's own parameter validation so nothing unchecked reaches a fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import ParameterGrid
from sklearn.neighbors import KNeighborsClassifier

from deployment_model.ml.limits import (
    MAX_GRID_COMBINATIONS,
    MAX_ITERATIONS,
    MAX_MINKOWSKI_P,
    MAX_N_NEIGHBORS,
    MAX_TREE_DEPTH,
    MAX_TREES,
)

RANDOM_STATE = 0
KNN_METRICS = ("minkowski", "euclidean", "manhattan", "chebyshev")


class TrainingError(ValueError):
    """The request asked for something this data or recipe cannot do; the message says what."""


@dataclass(frozen=True)
class Candidate:
    """One allow-listed estimator: how to build it, its default grid, and the params a request may tune."""

    estimator: type[BaseEstimator]
    fixed_params: Mapping[str, Any]
    default_grid: Mapping[str, Sequence[Any]]
    tunable: frozenset[str]
    ceilings: Mapping[str, float] = field(default_factory=dict)  # bounds on params that scale the work
    choices: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # string params: the values allowed

    def build(self) -> BaseEstimator:
        return self.estimator(**self.fixed_params)


# The allow-list. Order matters: on a tie of held-out scores the earlier candidate wins (the seed's rule).
CANDIDATES: dict[str, Candidate] = {
    "knn": Candidate(
        KNeighborsClassifier,
        {},
        {"n_neighbors": [3, 4, 5, 6, 7], "weights": ["uniform", "distance"]},
        frozenset({"n_neighbors", "weights", "p", "metric"}),
        {"n_neighbors": MAX_N_NEIGHBORS, "p": MAX_MINKOWSKI_P},
        # Metrics whose distances ml/input_limits.py can bound; others (seuclidean, callables, ...) need
        # parameters or code a request cannot give.
        {"metric": KNN_METRICS, "weights": ("uniform", "distance")},
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
        {"max_iter": MAX_ITERATIONS},
    ),
    "logistic_regression": Candidate(
        LogisticRegression,
        {"random_state": RANDOM_STATE, "max_iter": 1000},
        {"C": [0.01, 0.1, 1.0, 10.0]},
        frozenset({"C", "class_weight", "max_iter", "tol"}),
        {"max_iter": MAX_ITERATIONS},
    ),
    "random_forest": Candidate(
        RandomForestClassifier,
        {"random_state": RANDOM_STATE},
        {"n_estimators": [50, 100], "max_depth": [None, 3, 5]},
        frozenset({"n_estimators", "max_depth", "min_samples_leaf", "max_features", "criterion"}),
        {"n_estimators": MAX_TREES, "max_depth": MAX_TREE_DEPTH},
    ),
}
DEFAULT_CANDIDATES: tuple[str, ...] = ("knn", "sgd")


def resolve_grids(
    requested: Mapping[str, Mapping[str, Sequence[Any]] | None] | None,
) -> dict[str, dict[str, list[Any]]]:
    """Turn a request's candidate choice into checked parameter grids (the seed's when none is given)."""
    if requested is not None and not requested:
        raise TrainingError(f"candidates: choose at least one of {', '.join(CANDIDATES)}, or omit it")
    chosen = requested or {name: None for name in DEFAULT_CANDIDATES}
    return {name: _checked_grid(name, grid) for name, grid in chosen.items()}


def _checked_grid(name: str, requested: Mapping[str, Sequence[Any]] | None) -> dict[str, list[Any]]:
    candidate = CANDIDATES.get(name)
    if candidate is None:
        raise TrainingError(f"candidates: unknown candidate {name!r}; choose from {', '.join(CANDIDATES)}")
    grid = {key: list(values) for key, values in (requested or candidate.default_grid).items()}
    unknown = sorted(set(grid) - candidate.tunable)
    if unknown:
        raise TrainingError(
            f"candidates.{name}: cannot tune {unknown}; tunable: {', '.join(sorted(candidate.tunable))}"
        )
    empty = sorted(key for key, values in grid.items() if not values)
    if empty:
        raise TrainingError(f"candidates.{name}: {empty} list no value to try; give at least one")
    flags = sorted(key for key, values in grid.items() if any(isinstance(v, bool) for v in values))
    if flags:
        raise TrainingError(f"candidates.{name}: {flags} take numbers or names, not true/false")
    for key, allowed in candidate.choices.items():
        wrong = [v for v in grid.get(key, []) if v not in allowed]
        if wrong:
            raise TrainingError(f"candidates.{name}.{key}: {wrong} not allowed; choose from {', '.join(allowed)}")
    for key, ceiling in candidate.ceilings.items():
        too_big = [v for v in grid.get(key, []) if isinstance(v, int | float) and v > ceiling]
        if too_big:
            raise TrainingError(f"candidates.{name}.{key}: may be at most {ceiling:g}; got {too_big}")
    combinations = len(ParameterGrid(grid))
    if combinations > MAX_GRID_COMBINATIONS:
        raise TrainingError(
            f"candidates.{name}: the grid has {combinations} combinations (the product of the numbers of values); "
            f"at most {MAX_GRID_COMBINATIONS}"
        )
    for params in ParameterGrid(grid):
        try:
            # scikit-learn's own parameter check, so a bad value is refused before any fitting.
            candidate.build().set_params(**params)._validate_params()
        except (ValueError, TypeError) as exc:
            raise TrainingError(f"candidates.{name}: {exc}") from None
    return grid
