"""Content-defined chunking of a stream, with boundaries identical to chunking the
whole file at once, in bounded memory.

pyfastcdc scans a chunk's bytes from its start and cuts at the first hash match, or at
CHUNK_MAX bytes, or where the buffer ends. The first two are the cuts it would make in
the whole file (it looks at no byte past the cut; a buffer ending within CHUNK_AVG of the
chunk start only narrows the scan to bytes the whole-file scan also reads with the same
mask), so only the last chunk of a window, cut because the window ended, is unfinished:
its bytes are carried into the next window.
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
    yielded chunk into the next window (unless `final`, when every byte is yielded).

    Why the last chunk only (before, every chunk starting in the window's last CHUNK_MAX
    bytes was carried): per GiB cut in 1 MiB windows, 49 MiB are carried, copied twice and
    cut again instead of 207 MiB, on the thread that cuts every byte (issue 12)."""
    size = len(window)
    for chunk in chunker.cut_buf(window):
        if not final and chunk.offset + chunk.length == size and chunk.length < CHUNK_MAX:
            return  # cut only because the window ended: the next window cuts it again
        yield chunk.data


def chunk_bytes(data: bytes) -> list[bytes]:
    """All chunks of an in-memory buffer (used by tests and small inputs)."""
    return [bytes(c.data) for c in make_chunker().cut_buf(memoryview(data))]
