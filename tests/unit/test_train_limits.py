"""POST /train refuses in words, before any fitting, what it cannot train or serve; and says what data it used."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from deployment_model.storage.registry import ModelRegistry
from tests.conftest import SEED_BUCKET, Service, body_of, proxy_event

FLOWERS = [(0.2, 1.4, "setosa"), (1.3, 4.0, "versicolor"), (2.1, 5.8, "virginica")] * 8


def flowers_csv(extra_rows: str = "") -> bytes:
    return ("width,length,species\n" + "".join(f"{w},{h},{s}\n" for w, h, s in FLOWERS) + extra_rows).encode()


def put_csv(store_dir: Path, key: str, data: bytes) -> None:
    path = store_dir / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def published(store_dir: Path) -> list[Path]:
    return list(store_dir.glob("models/*/latest.json"))


@pytest.mark.parametrize(
    ("candidates", "field", "words"),
    [
        ({"knn": {"n_neighbors": [True]}}, "candidates.knn.n_neighbors.0", "valid integer"),
        ({"knn": {"metric": ["seuclidean"]}}, "candidates.knn.metric.0", "'minkowski', 'euclidean'"),
        ({"knn": {"metric": ["pyfunc"]}}, "candidates.knn.metric.0", "'minkowski', 'euclidean'"),
        (["svm"], "candidates", "unknown candidate(s) ['svm']; choose from knn, sgd"),
        ({"knn": {"n_neighbors": 5}}, "candidates.knn.n_neighbors", "must be a list of the values to try"),
        ([], "candidates", "choose at least one candidate"),
        ({}, "candidates", "choose at least one candidate"),
        ("knn", "candidates", "must be a list of candidate names or an object of grids"),
        ({"random_forest": {"n_estimators": [501]}}, "candidates.random_forest.n_estimators.0", "less than or equal"),
        ({"knn": {"leaf_size": [10]}}, "candidates.knn.leaf_size", "not a known field"),
    ],
)
def test_bad_candidates_are_a_400_in_words(local_service: Service, candidates: Any, field: str, words: str) -> None:
    answer = local_service.train(proxy_event("/train", {"candidates": candidates}))
    body = body_of(answer)
    assert answer["statusCode"] == 400, body
    assert [d["field"] for d in body["details"]] == [field]
    assert words in body["details"][0]["message"]
    for type_name in ("literal[", "dict[", "list[", "nullable", "constrained-str"):
        assert type_name not in body["message"]


def test_a_grid_value_beyond_float_range_is_refused_not_echoed_as_null(local_service: Service) -> None:
    # A direct invocation's JSON may carry Infinity (Python's json reads it); API Gateway's body cannot.
    answer = local_service.train({"candidates": {"logistic_regression": {"C": [float("inf")]}}})
    assert answer["statusCode"] == 400
    assert answer["details"] == [
        {"field": "candidates.logistic_regression.C.0", "message": "Input should be a finite number"}
    ]


def test_the_request_order_of_candidates_decides_a_tie(local_service: Service) -> None:
    first_sgd = local_service.train({"candidates": {"sgd": None, "knn": {"n_neighbors": [3, 4, 5, 6, 7]}}})
    assert first_sgd["statusCode"] == 200 and list(first_sgd["candidate_scores"]) == ["sgd", "knn"]
    assert first_sgd["candidate"] == "sgd"  # iris: both score the same; the first named wins


def test_rows_with_empty_cells_are_dropped_and_counted(local_service: Service, tmp_path: Path) -> None:
    put_csv(tmp_path / "store", "data/f.csv", flowers_csv(",4.1,setosa\n1.1,,virginica\n"))
    answer = local_service.train({"data_key": "data/f.csv", "target_column": "species"})
    assert answer["statusCode"] == 200
    assert answer["rows"]["total"] == len(FLOWERS) and answer["rows"]["dropped"] == 2
    assert "['width', 'length']" in answer["rows"]["dropped_reason"]
    assert "first on line 26" in answer["rows"]["dropped_reason"]


def test_rows_with_empty_cells_can_be_refused(local_service: Service, tmp_path: Path) -> None:
    put_csv(tmp_path / "store", "data/f.csv", flowers_csv(",4.1,setosa\n"))
    answer = local_service.train({"data_key": "data/f.csv", "target_column": "species", "missing_values": "refuse"})
    assert answer["statusCode"] == 400 and answer["error"] == "invalid_training_request"
    assert "1 rows have an empty (or NA) cell in column(s) ['width']" in answer["message"]
    assert published(tmp_path / "store") == []


def test_the_csv_fingerprint_is_recorded_in_the_response_and_the_metadata(s3_service: Service, s3: Any) -> None:
    data = flowers_csv()
    etag = s3.put_object(Bucket=SEED_BUCKET, Key="data/flowers.csv", Body=data)["ETag"]
    answer = s3_service.train({"data_key": "data/flowers.csv", "target_column": "species"})
    assert answer["training_data_sha256"] == hashlib.sha256(data).hexdigest()
    assert answer["training_data_etag"] == etag
    metadata_key = f"models/Model_ml/versions/{answer['model_version']}/metadata.json"
    metadata = json.loads(s3.get_object(Bucket=SEED_BUCKET, Key=metadata_key)["Body"].read())
    assert metadata["training_data_sha256"] == answer["training_data_sha256"]
    assert metadata["training_data_etag"] == etag


def test_iris_is_fingerprinted_by_its_recipe_marker(local_service: Service) -> None:
    answer = local_service.train({})
    assert answer["training_data_sha256"] == hashlib.sha256(b"iris").hexdigest()
    assert answer["training_data_etag"] is None


def test_a_csv_too_large_for_the_functions_memory_is_refused_unread(
    local_service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1")  # 1 MB of memory: CSVs up to 52,428 bytes
    put_csv(tmp_path / "store", "data/small.csv", flowers_csv())
    put_csv(tmp_path / "store", "data/big.csv", flowers_csv("0.2,1.4,setosa\n" * 4000))

    def must_not_read(*_: Any) -> None:
        raise AssertionError("the CSV was read")

    assert local_service.train({"data_key": "data/small.csv", "target_column": "species"})["statusCode"] == 200
    monkeypatch.setattr(ModelRegistry, "read_data_tagged", must_not_read)
    answer = local_service.train({"data_key": "data/big.csv", "target_column": "species"})
    assert answer["statusCode"] == 413 and answer["error"] == "training_data_too_large"
    assert "at most 52,428 bytes" in answer["message"]


def test_a_csv_that_serving_could_not_answer_for_is_refused_and_not_published(
    local_service: Service, tmp_path: Path
) -> None:
    header = ",".join(f"f{i}" for i in range(1500)) + ",t\n"
    rows = "".join(",".join(["1"] * 1500) + f",{label}\n" for label in ["a", "b"] * 4)
    put_csv(tmp_path / "store", "data/wide.csv", (header + rows).encode())
    answer = local_service.train({"data_key": "data/wide.csv", "target_column": "t"})
    assert answer["statusCode"] == 400
    assert "1500 feature columns" in answer["message"] and "at most 1000" in answer["message"]
    assert published(tmp_path / "store") == []


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        (["x" * 100_000, "y" * 100_000], "longer than 200 characters"),
        ([f"class{i}" for i in range(300)], "300 distinct values; at most 100 classes"),
    ],
)
def test_labels_too_long_or_too_many_to_answer_are_refused(
    local_service: Service, tmp_path: Path, labels: list[str], words: str
) -> None:
    put_csv(
        tmp_path / "store",
        "data/l.csv",
        ("a,t\n" + "".join(f"{i},{label}\n" for i, label in enumerate(labels * 4))).encode(),
    )
    answer = local_service.train({"data_key": "data/l.csv", "target_column": "t"})
    assert answer["statusCode"] == 400 and words in answer["message"]


def test_a_missing_csv_in_s3_is_a_404_naming_the_key(s3_service: Service) -> None:
    answer = s3_service.train({"data_key": "data/absent.csv", "target_column": "species"})
    assert answer["statusCode"] == 404 and answer["error"] == "data_not_found"
    assert "data/absent.csv" in answer["message"]
