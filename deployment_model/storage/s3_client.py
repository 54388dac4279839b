"""The S3 client every S3-backed store uses, built for a short cold start.

botocore reads its service models (JSON files of up to a few megabytes) with the standard library into
OrderedDicts, through a pure-Python hook: about 20 ms of the inference function's cold start. orjson reads the
same files, unchanged, into plain dicts (which keep their order too) in a fraction of that. Nothing else differs:
credentials, region, AWS_ENDPOINT_URL_S3, AWS_DATA_PATH, retries and timeouts are botocore's own.
"""

from __future__ import annotations

import gzip
import os
from typing import Any

import botocore.session
import orjson
from botocore.config import Config
from botocore.loaders import create_loader


class OrjsonModelFiles:
    """botocore's model files (`<path>.json`, or `<path>.json.gz` as botocore ships its larger ones), read by
    orjson. The interface is botocore's file loader's: `exists` and `load_file`, paths without the extension."""

    def exists(self, file_path: str) -> bool:
        return any(os.path.isfile(file_path + extension) for extension in (".json", ".json.gz"))

    def load_file(self, file_path: str) -> Any:
        if os.path.isfile(plain := file_path + ".json"):
            with open(plain, "rb") as file:
                return orjson.loads(file.read())
        if os.path.isfile(packed := file_path + ".json.gz"):
            with gzip.open(packed, "rb") as file:
                return orjson.loads(file.read())
        return None


def s3_client(config: Config) -> Any:
    """An S3 client from botocore's own session (boto3's would import boto3 and s3transfer, ~30 ms of a cold
    start, for nothing the stores use), its model files read by orjson."""
    session = botocore.session.Session()
    loader = create_loader(session.get_config_variable("data_path"))
    loader.file_loader = OrjsonModelFiles()
    session.register_component("data_loader", loader)
    return session.create_client("s3", config=config)
