"""S3ContentStore on a real SeaweedFS: the whole ContentStore contract, then what only a
store shared by many machines has (cross-machine dedup, request counts, gc with
writers on other machines, faults of the server)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("boto3")

from lodestore.store.s3 import S3ContentStore
from lodestore.store.s3_packs import pack_name

from .contract import ContentStoreContract


def open_store(url: str, cache: Path) -> S3ContentStore:
    return S3ContentStore(url, cache)


@pytest.fixture
def store(tmp_path, s3_bucket):
    s = open_store(s3_bucket, tmp_path / "cache-a")
    yield s
    s.close()


def flip_object_byte(store: S3ContentStore, name: str, offset: int) -> None:
    """Damage the real object in the bucket (and drop the store's cached copy, as a
    machine that never read it would have none)."""
    data = bytearray(store.bucket.get(name))
    data[offset] ^= 0xFF
    store.bucket.put(name, bytes(data))


class TestS3ContentStore(ContentStoreContract):
    """The whole ContentStore contract on S3ContentStore over a fresh bucket."""

    def corrupt_stored_bytes(self, store, digest):
        chunks = _recipe(store, digest)
        loc = store.cache.index.locate([bytes.fromhex(chunks[len(chunks) // 2])])
        (where,) = loc.values()
        flip_object_byte(store, pack_name(where.pack_id), where.offset + where.stored_len // 2)
        store.cache.packs.evict(where.pack_id)

    def leftover_temp_paths(self, store):
        return [p for p in Path(store.cache.tmp_dir).rglob("*")] + [
            Path(o.name) for o in store.bucket.list("packs/")]


def _recipe(store: S3ContentStore, digest: str) -> list[str]:
    store.sync()
    row = store.cache.index.file_row(bytes.fromhex(digest))
    _size, count, recipe = row
    if recipe is None:
        return [digest]
    return [recipe[i : i + 32].hex() for i in range(0, count * 32, 32)]
