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


def probe_says_raw(data: memoryview | bytes) -> bool:
    """True if `data` is not worth compressing, judged on a COMPRESS_PROBE prefix (random
    bytes cost ~nothing to judge). False means "try": encode() then compresses it whole."""
    n = len(data)
    if n < 256:
        return True
    if n > COMPRESS_PROBE * 2:
        probe = _compressor().compress(data[:COMPRESS_PROBE])
        return len(probe) > COMPRESS_PROBE * COMPRESS_KEEP_RATIO
    return False


def encode(data: memoryview | bytes, probed_raw: bool | None = None) -> tuple[int, bytes | memoryview]:
    """Return (codec, stored bytes) for one chunk. `probed_raw`: probe_says_raw(data)
    if the caller knows it already (the large-file cutter probes each chunk on its own
    thread), else it is judged here."""
    if probed_raw is None:
        probed_raw = probe_says_raw(data)
    if not probed_raw:
        packed = _compressor().compress(data)
        if len(packed) <= len(data) * COMPRESS_KEEP_RATIO:
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
