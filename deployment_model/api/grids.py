"""The `candidates` field of POST /train: which estimators to grid-search, and each one's tunable parameters.

Every tunable parameter is declared here with its type and allowed values, so a bad grid is a 400 naming
`candidates.<name>.<parameter>.<index>` and what is accepted, and the OpenAPI document lists them all.
The estimators themselves live in ml/candidates.py (this module must not import scikit-learn: the inference
function imports the API's schemas too); a unit test keeps the two lists in step.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    model_validator,
)

from deployment_model.ml.limits import (
    MAX_GRID_VALUES,
    MAX_ITERATIONS,
    MAX_MINKOWSKI_P,
    MAX_N_NEIGHBORS,
    MAX_TREE_DEPTH,
    MAX_TREES,
)

CandidateName = Literal["knn", "sgd", "logistic_regression", "random_forest"]
CANDIDATE_NAMES: tuple[str, ...] = get_args(CandidateName)
KnnMetric = Literal["minkowski", "euclidean", "manhattan", "chebyshev"]


def _a_list(value: Any) -> Any:
    if not isinstance(value, list):
        raise ValueError("must be a list of the values to try, e.g. [5] or [3, 5]")
    return value


def values(item: Any) -> Any:
    """A grid entry: a non-empty list of values to try, each checked as `item`."""
    return Annotated[list[item], BeforeValidator(_a_list), Field(min_length=1, max_length=MAX_GRID_VALUES)]


def _int(low: int, high: int | None = None) -> Any:
    return Annotated[int, Field(strict=True, ge=low, le=high)]


def _positive_float(high: float | None = None) -> Any:
    return Annotated[float, Field(strict=True, gt=0, le=high, allow_inf_nan=False)]


def _max_features(value: Any) -> Any:
    """random_forest max_features: "sqrt", "log2", null (all), a count >= 1, or a fraction in (0, 1]."""
    if value is None or value in ("sqrt", "log2"):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, float) and 0 < value <= 1:
        return value
    raise ValueError('must be "sqrt", "log2", null (all features), a whole number >= 1, or a fraction in (0, 1]')


MaxFeatures = Annotated[
    Any,
    PlainValidator(_max_features),
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": ["sqrt", "log2"]},
                {"type": "null"},
                {"type": "integer", "minimum": 1},
                {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            ]
        }
    ),
]


class _Grid(BaseModel):
    """A candidate's grid: each parameter given lists the values to try; the others keep scikit-learn's default."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # built at first use: train only

    def grid(self) -> dict[str, list[Any]]:
        return self.model_dump(exclude_none=True)


class KnnGrid(_Grid):
    n_neighbors: values(_int(1, MAX_N_NEIGHBORS)) = None
    weights: values(Literal["uniform", "distance"]) = None
    p: values(Annotated[float, Field(strict=True, ge=1, le=MAX_MINKOWSKI_P, allow_inf_nan=False)]) = Field(
        default=None, description="Minkowski power (metric minkowski only)."
    )
    metric: values(KnnMetric) = None


class SgdGrid(_Grid):
    alpha: values(_positive_float()) = None
    learning_rate: values(Literal["constant", "optimal", "invscaling", "adaptive"]) = None
    eta0: values(_positive_float()) = None
    penalty: values(Literal["l1", "l2", "elasticnet"] | None) = None
    loss: values(Literal["hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron"]) = None
    max_iter: values(_int(1, MAX_ITERATIONS)) = None
    l1_ratio: values(Annotated[float, Field(strict=True, ge=0, le=1)]) = None


class LogisticRegressionGrid(_Grid):
    C: values(_positive_float()) = None
    class_weight: values(Literal["balanced"] | None) = None
    max_iter: values(_int(1, MAX_ITERATIONS)) = None
    tol: values(_positive_float()) = None


class RandomForestGrid(_Grid):
    n_estimators: values(_int(1, MAX_TREES)) = None
    max_depth: values(_int(1, MAX_TREE_DEPTH) | None) = Field(default=None, description="null: unlimited depth.")
    min_samples_leaf: values(_int(1)) = None
    max_features: values(MaxFeatures) = None
    criterion: values(Literal["gini", "entropy", "log_loss"]) = None


_EXAMPLE = '["knn", "random_forest"] or {"knn": {"n_neighbors": [3, 5]}, "sgd": null}'


def _names_or_grids(value: Any) -> Any:
    """The two forms a request may use, checked in words: a list of names, or an object of name: grid | null."""
    if not isinstance(value, list | dict):
        raise ValueError(f"must be a list of candidate names or an object of grids, e.g. {_EXAMPLE}")
    strange = [name for name in value if name not in CANDIDATE_NAMES]
    if strange:
        raise ValueError(f"unknown candidate(s) {strange[:5]}; choose from {', '.join(CANDIDATE_NAMES)}")
    if isinstance(value, list):
        if len(set(value)) != len(value):
            raise ValueError("lists a candidate more than once; name each once")
        value = dict.fromkeys(value)
    if not value:
        raise ValueError(f"choose at least one candidate ({', '.join(CANDIDATE_NAMES)}), or omit candidates")
    return value


class CandidateGrids(BaseModel):
    """The chosen candidates in the request's order (the earlier wins a tie); null: that candidate's default grid."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # built at first use: train only

    knn: KnnGrid | None = None
    sgd: SgdGrid | None = None
    logistic_regression: LogisticRegressionGrid | None = None
    random_forest: RandomForestGrid | None = None
    _order: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _keep_order(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> CandidateGrids:
        model = handler(value)
        model._order = tuple(value) if isinstance(value, dict) else tuple(model.model_fields_set)
        return model

    def grids(self) -> dict[str, dict[str, list[Any]] | None]:
        """name -> grid (None: the default grid), in the request's order."""
        chosen: dict[str, dict[str, list[Any]] | None] = {}
        for name in self._order:
            grid = getattr(self, name)
            chosen[name] = None if grid is None else grid.grid()
        return chosen


Candidates = Annotated[
    CandidateGrids,
    BeforeValidator(_names_or_grids, json_schema_input_type=list[CandidateName] | CandidateGrids),
]
