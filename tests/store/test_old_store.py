"""A store written by the lodestore of pack format 1 (tests/store/fixtures/store_v1,
made by that code: fixtures/make_store_v1.py) is still read by this one, byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lodestore.store.layout import format_description, previous_format_description
from lodestore.store.local import LocalContentStore

from .contract import b3
from .data import KiB, random_bytes, text_bytes


def fixture_files() -> dict[str, bytes]:
    """The files of the fixture store, rebuilt from their seeds. Small on purpose (the
    store is committed): a random block repeats so its chunks dedup, and still every kind
    of file is there: chunked all-raw (a checkpoint), chunked mixed raw and compressed,
    one-chunk text (compressed) and one-chunk random (raw)."""
    block = random_bytes(96 * KiB, 71)
    return {
        "weights.bin": block * 11 + block[: 5 * KiB],  # > 1 MiB: chunked, every chunk raw
        "mixed.bin": block * 9 + text_bytes(200 * KiB, 72),  # chunked: raw and zstd chunks
        "notes.txt": text_bytes(20 * KiB, 73),  # one chunk, compressed
        "blob.bin": random_bytes(3 * KiB, 74),  # one chunk, raw
    }


FIXTURE = Path(__file__).parent / "fixtures" / "store_v1"


@pytest.fixture
def old_store(tmp_path) -> Path:
    """A copy of the store the pack-format-1 code wrote (the fixture stays as it was)."""
    root = tmp_path / "store"
    shutil.copytree(FIXTURE, root)
    return root


def pack_magics(root: Path) -> list[bytes]:
    return sorted(p.read_bytes()[:8] for p in (root / "packs").glob("*/*.pack"))


def test_a_format_1_store_is_read_byte_for_byte_and_upgraded_on_open(old_store, tmp_path):
    assert json.loads((old_store / "format.json").read_text()) == previous_format_description()
    store = LocalContentStore(old_store)
    try:
        # a writable store is upgraded at once: an older lodestore now refuses it ("upgrade")
        assert json.loads((old_store / "format.json").read_text()) == format_description()
        assert pack_magics(old_store) == [b"LODEPK01"]  # its packs stay as they were
        for name, data in fixture_files().items():
            digest = b3(data)
            assert store.read_bytes(digest) == data, name
            store.materialize(digest, tmp_path / name)  # chunked all-raw files: the kernel copy, per chunk
            assert (tmp_path / name).read_bytes() == data, name
        assert store.fsck().ok
    finally:
        store.close()


def test_a_format_1_store_takes_new_files_beside_its_old_packs(old_store, tmp_path):
    files = fixture_files()
    longer = files["weights.bin"] + random_bytes(700 * KiB, 75)  # shares the old raw chunks
    (tmp_path / "longer.bin").write_bytes(longer)
    store = LocalContentStore(old_store)
    try:
        with store.session() as s:
            ref = s.add_file(tmp_path / "longer.bin")
            s.commit()
        assert pack_magics(old_store) == [b"LODEPK01", b"LODEPK02"]
        store.materialize(ref.digest, tmp_path / "out.bin")  # runs from both pack versions
        assert (tmp_path / "out.bin").read_bytes() == longer
        assert store.fsck().ok
        # gc repacks what it keeps of the old pack into a version-2 pack
        store.gc(lambda: {ref.digest, b3(files["mixed.bin"])}, grace=0, repack_threshold=0.001)
        assert pack_magics(old_store) == [b"LODEPK02"] * len(pack_magics(old_store))
        for data in (longer, files["mixed.bin"]):
            assert store.read_bytes(b3(data)) == data
        assert store.fsck().ok
    finally:
        store.close()

