"""The service's fixed limits, in one place both functions can import (no scikit-learn, no pandas here).

The API's request models and the training recipe read the same numbers, so what training accepts is exactly
what serving can answer: a model is never published that no predict request could reach.
"""

from __future__ import annotations

MAX_ROWS_PER_REQUEST = 10_000  # rows per predict request
MAX_FEATURES_PER_ROW = 1_000  # values per predict row, so also feature columns per model

MAX_GRID_COMBINATIONS = 200  # per candidate
MAX_GRID_VALUES = 20  # values per tuned parameter
MAX_N_NEIGHBORS = 1_000
MAX_ITERATIONS = 10_000  # sgd and logistic_regression max_iter
MAX_TREES = 500  # random_forest n_estimators
MAX_TREE_DEPTH = 100  # random_forest max_depth
MAX_MINKOWSKI_P = 100.0  # knn p: beyond it |difference|**p overflows for everyday values

MAX_CLASSES = 100  # distinct target values: every predict answer carries one probability per class
MAX_LABEL_LENGTH = 200  # characters of one target value: every predicted row repeats its label
MIN_ROWS_PER_CLASS = 4  # a stratified 70/30 split plus 3 folds needs a few of each class

# Lambda answers at most 6 MB synchronously (MAX_RESPONSE_BYTES in ml/prediction.py keeps a margin under it).
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024
