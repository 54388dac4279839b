"""The S3 client reads botocore's model files with orjson: the same data, so the same client."""

from __future__ import annotations

from pathlib import Path

import botocore
import botocore.session
import pytest
from botocore.config import Config
from botocore.loaders import JSONFileLoader

from deployment_model.storage.s3_client import OrjsonModelFiles, s3_client

DATA = Path(botocore.__file__).parent / "data"


def model_files() -> list[str]:
    """Every file botocore may read for an S3 client (without extension, as its loader asks for them)."""
    files = [DATA / name for name in ("endpoints", "partitions", "sdk-default-configuration", "_retry")]
    files += [path.with_name(path.name.split(".")[0]) for path in (DATA / "s3").glob("*/*.json*")]
    return sorted({str(path) for path in files})


@pytest.mark.parametrize("path", model_files(), ids=lambda path: Path(path).relative_to(DATA).as_posix())
def test_every_model_file_reads_as_botocore_reads_it(path: str) -> None:
    assert OrjsonModelFiles().exists(path)
    assert OrjsonModelFiles().load_file(path) == JSONFileLoader().load_file(path)


def test_a_missing_file_is_absent_as_for_botocore(tmp_path: Path) -> None:
    missing = str(tmp_path / "service-2")
    assert not OrjsonModelFiles().exists(missing)
    assert OrjsonModelFiles().load_file(missing) is None
    assert JSONFileLoader().load_file(missing) is None


def test_the_client_is_botocores_s3_client_with_our_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    config = Config(connect_timeout=1.5, retries={"mode": "standard", "total_max_attempts": 2})
    ours = s3_client(config)
    theirs = botocore.session.Session().create_client("s3", config=config)
    assert ours.meta.service_model.operation_names == theirs.meta.service_model.operation_names
    assert (ours.meta.region_name, ours.meta.endpoint_url) == ("eu-west-1", "http://127.0.0.1:9")
    assert ours.meta.config.connect_timeout == 1.5
    request = ours.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=60)
    assert request.startswith("http://127.0.0.1:9/b/k?")
