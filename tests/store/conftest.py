from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from .data import MiB, random_bytes


@pytest.fixture(scope="session")
def big_file(tmp_path_factory) -> Path:
    """200 MiB of random bytes, written once per test session: large enough that a
    store is still busy with it (several packs) when a test kills the writer."""
    path = tmp_path_factory.mktemp("big") / "big.bin"
    with open(path, "wb") as f:
        f.writelines(random_bytes(20 * MiB, 1000 + i) for i in range(10))
    return path


@pytest.fixture(scope="module")
def _module_bucket(seaweedfs) -> str:
    """One bucket per test module: SeaweedFS gives every bucket volumes of its own and
    refuses writes (InternalError) once a test session made a few dozen buckets."""
    name = f"store-{uuid.uuid4().hex[:12]}"
    seaweedfs.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_store_url(seaweedfs, _module_bucket, monkeypatch) -> str:
    """A fresh empty S3 store (its own prefix in the module's bucket) as `s3://bucket/prefix`,
    with the AWS_* variables pointing at the session's SeaweedFS."""
    for key, value in seaweedfs.env().items():
        monkeypatch.setenv(key, value)
    return f"s3://{_module_bucket}/{uuid.uuid4().hex[:12]}"
