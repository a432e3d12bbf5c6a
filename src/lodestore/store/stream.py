"""Chunking one large file on both cores, in bounded memory.

A producer thread reads a window, cuts it into content-defined chunks and hashes each
chunk; the calling thread stores the new chunks (`store_window`: lookups, zstd, pack
append straight from the window buffer) and feeds the whole-file hash. Every heavy step
releases the GIL (read, pyfastcdc's cut, blake3, zstd, writev), so the two overlap.
Three window buffers circulate (one being filled, one being stored, one spare): ~25 MB
whatever the file size. The chunk boundaries are those of chunking the whole file at
once (chunking.cut_window carries each window's unfinished tail into the next).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import blake3

from lodestore.errors import FileChangedError
from lodestore.store.chunking import cut_window
from lodestore.store.layout import CHUNK_MAX, READ_WINDOW

_WINDOW_BUFFERS = 3

Pieces = list[tuple[int, int, bytes]]  # (start, end, chunk digest) within a window


def stream_chunks(f, size: int, chunker, store_window: Callable[[memoryview, Pieces], bytes | bytearray],
                  flush: Callable[[], None], digest: bytes | None, progress) -> tuple[bytes, bytearray]:
    """Chunk and store the open file `f` of `size` bytes; returns (file digest, recipe).

    `digest`: the file's digest if the caller hashed it first, else computed here in the
    same pass. `flush()` must write out every byte taken from a window before the window
    is reused. FileChangedError if the file's size turns out other than `size`."""
    # The whole-file hash runs on this (consumer) thread, the busier one: blake3's own
    # threads let it borrow the producer's core while the producer waits for a buffer.
    whole = blake3.blake3(max_threads=blake3.blake3.AUTO) if digest is None else None
    free: queue.Queue = queue.Queue()
    for _ in range(_WINDOW_BUFFERS):
        free.put(bytearray(READ_WINDOW + CHUNK_MAX))
    ready: queue.Queue = queue.Queue(maxsize=_WINDOW_BUFFERS)
    stop = threading.Event()

    def produce() -> None:
        try:
            tail, total = b"", 0
            while True:
                buf = _get(free, stop)
                if buf is None:
                    return
                view = memoryview(buf)
                carry = len(tail)
                view[:carry] = tail
                n = f.readinto(view[carry : carry + READ_WINDOW])
                total += n
                final = n == 0 or total >= size
                window = view[: carry + n]
                pieces, pos = [], 0
                for piece in cut_window(chunker, window, final):
                    pieces.append((pos, pos + len(piece), blake3.blake3(piece).digest()))
                    pos += len(piece)
                tail = b"" if final else bytes(window[pos:])  # < CHUNK_MAX, copied: buf goes back
                _put(ready, (buf, window, carry, n, pieces), stop)
                if final:
                    break
            if total != size or f.read(1):
                raise FileChangedError(f"{f.name} changed size while it was being read; nothing was stored for it")
            _put(ready, None, stop)
        except BaseException as e:
            _put(ready, e, stop)

    t = threading.Thread(target=produce, name="lodestore-chunk", daemon=True)
    t.start()
    recipe = bytearray()
    try:
        while True:
            item = ready.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            buf, window, carry, n, pieces = item
            if whole is not None:
                whole.update(window[carry : carry + n])
            recipe += store_window(window, pieces)
            flush()
            free.put(buf)
            if progress and n:
                progress(n)
    finally:
        stop.set()
        _drain(ready)
        t.join()
    if whole is not None:
        return whole.digest(), recipe
    assert digest is not None  # whole is None only when the digest was given
    return digest, recipe


def hash_stream(f) -> bytes:
    """Whole-file blake3 on every core (blake3's own threads), READ_WINDOW reads."""
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    buf = bytearray(READ_WINDOW)
    view = memoryview(buf)
    while n := f.readinto(buf):
        hasher.update(view[:n])
    return hasher.digest()


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event):
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue
    return None


def _drain(q: queue.Queue) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass
