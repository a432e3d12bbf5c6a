"""A bucket of the previous store format (pack version 1, still read) is upgraded on
open, as a local store is (tests/store/test_old_store.py); so is a bucket whose index
objects are JSON (format 1, still read); any other format is refused."""

from __future__ import annotations

import json

import pytest

boto3 = pytest.importorskip("boto3")

from lodestore.errors import StoreFormatError  # noqa: E402
from lodestore.store.layout import format_description, previous_format_description  # noqa: E402
from lodestore.store.s3 import S3ContentStore, bucket_format_description  # noqa: E402


def test_a_format_1_bucket_is_upgraded_and_other_formats_are_still_refused(s3_store_url, tmp_path):
    bucket, prefix = s3_store_url[len("s3://"):].split("/", 1)
    client = boto3.client("s3")
    key = f"{prefix}/format.json"
    client.put_object(Bucket=bucket, Key=key, Body=json.dumps(previous_format_description()).encode())
    S3ContentStore(s3_store_url, tmp_path / "cache").close()
    assert json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read()) == bucket_format_description()

    client.put_object(Bucket=bucket, Key=key, Body=json.dumps({**format_description(), "format": 99}).encode())
    with pytest.raises(StoreFormatError):
        S3ContentStore(s3_store_url, tmp_path / "cache2")
