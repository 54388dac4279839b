"""Fixtures of the unit tests: both storage backends behind a recording wrapper, one trained iris model, the
local service with that model published, and the local service's model folder (for the command line)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from deployment_model.ml.training import TrainedModel, iris_dataset, train_model
from deployment_model.storage.objects import DirectoryObjectStore, S3ObjectStore
from tests.conftest import Service
from tests.unit.test_store import BUCKET, RecordingObjects


@pytest.fixture(params=["s3", "directory"])
def objects(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordingObjects]:
    if request.param == "directory":
        yield RecordingObjects(DirectoryObjectStore(tmp_path / "store"))
        return
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield RecordingObjects(S3ObjectStore(BUCKET, client=client))


@pytest.fixture(scope="session")
def trained_iris_model() -> TrainedModel:
    """The seed's recipe trained on iris, in memory (nothing stored): one training for the whole run."""
    return train_model(iris_dataset())


@pytest.fixture
def trained_local_service(local_service: Service) -> Service:
    """Both functions on a directory store holding one published model: the seed's recipe, as `Model_ml`."""
    local_service.train({})
    return local_service


@pytest.fixture
def store(local_service: Service) -> str:
    """The folder the local service keeps its models in (what `--store-dir` names)."""
    return os.environ["MODEL_STORE_DIR"]
