"""The object store contract, passed by both backends: S3 (moto) and a local directory."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from deployment_model.storage.deadline import TimeBoundObjectStore
from deployment_model.storage.objects import (
    DirectoryObjectStore,
    ObjectNotFoundError,
    ObjectStore,
    PreconditionFailedError,
    S3ObjectStore,
)

BUCKET = "objects-contract"


@pytest.fixture(params=["s3", "directory"])
def objects(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "directory":
        yield DirectoryObjectStore(tmp_path / "store")
        return
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield S3ObjectStore(BUCKET, client=client)


def all_keys(objects: ObjectStore, prefix: str, page_size: int, delimiter: str | None = None) -> list[str]:
    """Every entry of a listing, page by page, as a client following next_start_after would see them."""
    seen: list[str] = []
    start_after = None
    for _ in range(1000):
        page = objects.list_objects(prefix, start_after=start_after, limit=page_size, delimiter=delimiter)
        assert len(page.keys) + len(page.prefixes) <= page_size
        seen += sorted(page.keys + page.prefixes)
        if page.next_start_after is None:
            return seen
        start_after = page.next_start_after
    raise AssertionError("the listing never ended")


def test_missing_object_is_not_found(objects: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError):
        objects.get("models/none/latest.json")
    with pytest.raises(ObjectNotFoundError):
        objects.get_tagged("models/none/latest.json")


def test_put_returns_the_tag_that_get_tagged_reads(objects: ObjectStore) -> None:
    first = objects.put("jobs/a.json", b"1")
    assert objects.get_tagged("jobs/a.json") == (b"1", first)
    second = objects.put("jobs/a.json", b"2")
    assert second != first and objects.get_tagged("jobs/a.json") == (b"2", second)


def test_tags_are_etags_exactly_where_they_are_what_s3_shows(objects: ObjectStore) -> None:
    """A single-part object's S3 ETag is its quoted MD5: a store claims ETags only if its tags are those."""
    data = b"petal_width,species\n0.2,setosa\n"
    etag = f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
    tag = objects.put("data/flowers.csv", data)
    assert isinstance(objects.tags_are_etags, bool)
    assert objects.tags_are_etags == (tag == etag) == (objects.get_tagged("data/flowers.csv")[1] == etag)
    assert TimeBoundObjectStore(objects).tags_are_etags == objects.tags_are_etags


def test_if_none_match_creates_once(objects: ObjectStore) -> None:
    objects.put("jobs/a.json", b"first", if_none_match=True)
    with pytest.raises(PreconditionFailedError):
        objects.put("jobs/a.json", b"second", if_none_match=True)
    assert objects.get("jobs/a.json") == b"first"


def test_if_match_replaces_only_the_version_that_was_read(objects: ObjectStore) -> None:
    tag = objects.put("models/m/latest.json", b"v1")
    newer = objects.put("models/m/latest.json", b"v2", if_match=tag)
    with pytest.raises(PreconditionFailedError):
        objects.put("models/m/latest.json", b"stale writer", if_match=tag)
    assert objects.get_tagged("models/m/latest.json") == (b"v2", newer)


def test_if_match_on_a_missing_object_fails(objects: ObjectStore) -> None:
    with pytest.raises(PreconditionFailedError):
        objects.put("models/m/latest.json", b"v1", if_match="0" * 32)
    with pytest.raises(ObjectNotFoundError):
        objects.get("models/m/latest.json")


def test_delete_removes_and_an_absent_object_is_fine(objects: ObjectStore) -> None:
    objects.put("models/m/versions/v1/a.bin", b"a")
    objects.delete("models/m/versions/v1/a.bin")
    objects.delete("models/m/versions/v1/a.bin")
    with pytest.raises(ObjectNotFoundError):
        objects.get("models/m/versions/v1/a.bin")
    assert objects.list_objects("models/", delimiter="/").prefixes == []


def test_listing_is_ordered_filtered_by_prefix_and_complete_across_pages(objects: ObjectStore) -> None:
    keys = [f"models/m/versions/{i:04d}/metadata.json" for i in range(23)] + ["models/m/latest.json"]
    for key in keys:
        objects.put(key, b"x")
    objects.put("models/mm/latest.json", b"x")  # shares the text prefix "models/m", not the folder
    objects.put("data/x.csv", b"x")
    for page_size in (1, 5, 1000):
        assert all_keys(objects, "models/m/", page_size) == sorted(keys)
    first = objects.list_objects("models/m/", limit=5)
    assert first.keys == sorted(keys)[:5] and first.next_start_after == sorted(keys)[4]


def test_a_delimiter_lists_one_level_down_without_repeating_a_folder(objects: ObjectStore) -> None:
    for name in ("alpha", "beta", "gamma"):
        for version in range(3):
            objects.put(f"models/{name}/versions/{version}/metadata.json", b"x")
        objects.put(f"models/{name}/latest.json", b"x")
    objects.put("models/README.txt", b"x")
    expected = ["models/README.txt", "models/alpha/", "models/beta/", "models/gamma/"]
    for page_size in (1, 2, 100):
        assert all_keys(objects, "models/", page_size, delimiter="/") == expected
    page = objects.list_objects("models/", delimiter="/")
    assert page.keys == ["models/README.txt"] and page.prefixes == expected[1:] and page.next_start_after is None


def test_an_empty_or_unknown_prefix_lists_nothing(objects: ObjectStore) -> None:
    page = objects.list_objects("models/nobody/")
    assert (page.keys, page.prefixes, page.next_start_after) == ([], [], None)


def test_conditional_increments_from_8_threads_lose_no_update(tmp_path: Path) -> None:
    """Read-modify-write with if_match: every increment lands exactly once (the directory store's lock)."""
    objects = DirectoryObjectStore(tmp_path)
    objects.put("counter", b"0")
    increments_per_thread = 25
    lost_races: list[int] = []

    def increment() -> None:
        done = 0
        while done < increments_per_thread:
            data, tag = objects.get_tagged("counter")
            try:
                objects.put("counter", str(int(data) + 1).encode(), if_match=tag)
            except PreconditionFailedError:
                lost_races.append(1)
                continue
            done += 1

    threads = [threading.Thread(target=increment) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert int(objects.get("counter")) == 8 * increments_per_thread


def test_directory_keys_never_leave_the_root(tmp_path: Path) -> None:
    objects = DirectoryObjectStore(tmp_path / "root")
    (tmp_path / "secret").write_text("x")
    for key in ("../secret", "a/../../secret", ""):
        with pytest.raises(ObjectNotFoundError):
            objects.get(key)
        with pytest.raises(ObjectNotFoundError):
            objects.put(key, b"overwritten", if_none_match=True)
    assert (tmp_path / "secret").read_text() == "x"


def test_a_s3_conflict_on_a_conditional_write_is_a_precondition_failure() -> None:
    """S3 answers 409 ConditionalRequestConflict when two conditional writes race: the loser must retry."""

    class Conflicting:
        def put_object(self, **_: Any) -> dict[str, Any]:
            from botocore.exceptions import ClientError

            error = {"Error": {"Code": "ConditionalRequestConflict"}, "ResponseMetadata": {"HTTPStatusCode": 409}}
            raise ClientError(error, "PutObject")

    with pytest.raises(PreconditionFailedError):
        S3ObjectStore(BUCKET, client=Conflicting()).put("models/m/latest.json", b"x", if_match='"abc"')
