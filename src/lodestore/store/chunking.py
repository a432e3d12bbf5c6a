"""Content-defined chunking of a stream, with boundaries identical to chunking the
whole file at once, in bounded memory.

pyfastcdc decides each cut looking at most CHUNK_MAX bytes past the chunk start, so a
cut is final once CHUNK_MAX bytes after its start are in the window (or the file has
ended); the unfinished tail is carried into the next window.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyfastcdc

from lodestore.store.layout import CHUNK_AVG, CHUNK_MAX, CHUNK_MIN, CHUNK_NORMALIZATION


def make_chunker() -> pyfastcdc.FastCDC:
    return pyfastcdc.FastCDC(
        CHUNK_AVG, min_size=CHUNK_MIN, max_size=CHUNK_MAX, normalized_chunking=CHUNK_NORMALIZATION
    )


def cut_window(chunker: pyfastcdc.FastCDC, window: memoryview, final: bool) -> Iterator[memoryview]:
    """Yield the final chunks of `window`; the caller carries the bytes after the last
    yielded chunk into the next window (unless `final`, when every byte is yielded)."""
    size = len(window)
    for chunk in chunker.cut_buf(window):
        if not final and size - chunk.offset < CHUNK_MAX:
            return
        yield chunk.data


def chunk_bytes(data: bytes) -> list[bytes]:
    """All chunks of an in-memory buffer (used by tests and small inputs)."""
    return [bytes(c.data) for c in make_chunker().cut_buf(memoryview(data))]
