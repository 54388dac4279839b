"""Training data is read with its S3 ETag (recorded as training_data_etag), and with none from a local folder,
whose tags are not ETags: through the registry, however many wrappers (a time limit, a recorder) the store has."""

from __future__ import annotations

import hashlib

from deployment_model.storage.deadline import TimeBoundObjectStore
from deployment_model.storage.objects import S3ObjectStore
from deployment_model.storage.registry import ModelRegistry
from tests.unit.test_store import RecordingObjects


def test_training_data_comes_with_its_etag_only_from_s3(objects: RecordingObjects) -> None:
    data = b"petal_width,species\n0.2,setosa\n"
    objects.put("data/flowers.csv", data)
    s3_etag = f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
    expected = s3_etag if isinstance(objects.inner, S3ObjectStore) else None
    for store in (objects, TimeBoundObjectStore(objects)):
        assert ModelRegistry(store).read_data_tagged("data/flowers.csv") == (data, expected)
