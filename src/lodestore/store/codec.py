"""Per-chunk compression: zstd where it pays, raw where it does not.

Random-looking data (most float weights, already-compressed images) is detected with a
small probe so it costs almost nothing; text, JSON, CSV and code compress well. Why
float weights end up raw (measured): see COMPRESS_KEEP_RATIO in layout.py.
"""

from __future__ import annotations

import threading

import zstandard

from lodestore.errors import CorruptionError
from lodestore.store.layout import COMPRESS_KEEP_RATIO, COMPRESS_PROBE, ZSTD_LEVEL

RAW = 0
ZSTD = 1

_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    c = getattr(_local, "c", None)
    if c is None:
        c = _local.c = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "d", None)
    if d is None:
        d = _local.d = zstandard.ZstdDecompressor()
    return d


def encode(data: memoryview | bytes) -> tuple[int, bytes | memoryview]:
    """Return (codec, stored bytes) for one chunk."""
    n = len(data)
    if n >= 256:
        compressor = _compressor()
        if n > COMPRESS_PROBE * 2:
            probe = compressor.compress(data[:COMPRESS_PROBE])
            if len(probe) > COMPRESS_PROBE * COMPRESS_KEEP_RATIO:
                return RAW, data
        packed = compressor.compress(data)
        if len(packed) <= n * COMPRESS_KEEP_RATIO:
            return ZSTD, packed
    return RAW, data


def decode(codec: int, stored: bytes | memoryview, raw_len: int) -> bytes | memoryview:
    if codec == RAW:
        return stored
    if codec == ZSTD:
        try:
            return _decompressor().decompress(stored, max_output_size=raw_len)
        except zstandard.ZstdError as e:
            raise CorruptionError(f"compressed chunk does not decompress: {e}") from None
    raise CorruptionError(f"unknown codec {codec} in pack")
