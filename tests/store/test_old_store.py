"""A store written by the lodestore of pack format 1 (tests/store/fixtures/store_v1,
made by that code: fixtures/make_store_v1.py) is still read by this one, byte for byte."""

from __future__ import annotations

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
