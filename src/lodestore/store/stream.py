"""Chunking one large file on every core it can use, in bounded memory.

Three threads (measured per 256 MiB of random bytes, CPU of each step alone: read
0.055 s, FastCDC 0.07, a BLAKE3 per chunk 0.06, whole-file BLAKE3 0.047, zstd probes
0.015, writing 0.055; writing costs 2-8x that on this VM when fresh page-cache pages
are dear, see packs.WriteQueue):

- the calling thread reads the file a window at a time, feeds the whole-file hash with
  it, hands it to the cutter, and stores the windows the cutter has cut (`store_window`:
  at most one index query per window, pack appends straight from the window buffer, no copy). Its
  calls are few and long, so it seldom waits for the GIL;
- the cutter thread cuts each window into content-defined chunks, hashes each chunk and
  probes it for compressibility (codec.probe; in a long incompressible run only a sample
  of the chunks, see _Prober): the many short GIL-releasing calls are all on this
  thread. (Before, the calling thread also probed each chunk and the cutter read the
  file: each of the calling thread's ~100 calls a window waited for the GIL behind the
  cutter's; cProfile showed its 8 MiB hash updates taking 5 ms, twice their CPU time.)
- the session's write thread (packs.WriteQueue) writes each window's new chunks into
  the pack and starts their writeback; it gives the window's buffer back when done
  (`after_writes`), so neither of the other two ever waits on the disk.

Where the time went before the write thread (a per-thread timeline of one 1 GiB log,
issue 12): the calling thread read, hashed, looked up and wrote, and its writev alone
took 1.1 CPU-s of its ~2.3 s busy time; the cutter waited for work 60 % of the run.

Every heavy step releases the GIL (read, pyfastcdc's cut, blake3, zstd, writev), so the
three overlap; on a machine with more cores the whole-file hash uses blake3's own
threads too (_WHOLE_HASH_THREADS). Four window buffers of WINDOW + CHUNK_MAX circulate
(one being read, one being cut, one being stored or written, one spare): ~5 MB whatever
the file size. The chunk boundaries are those of chunking the whole file at once
(chunking.cut_window carries each window's unfinished tail into the next).
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import blake3

from lodestore.errors import FileChangedError
from lodestore.store import codec
from lodestore.store.chunking import cut_window
from lodestore.store.layout import CHUNK_MAX, READ_WINDOW

# Fresh bytes read per window. Small enough that a window stays in the CPU's caches
# from its read through the whole-file hash, the cut, the chunk hashes and the write:
# each of those passes then reads cache, not memory. Measured on this 2-core VM (1 GiB,
# in-process, 6 interleaved rounds, heavily loaded machine): 8 MiB windows 2.47 CPU-s
# (median; wall 4.35 s), 2 MiB 2.28 (4.06 s), 1 MiB 1.78 (2.56 s); 1 MiB with 8 buffers
# 1.83 (3.09 s). The price: a block (packs.py) per window, so a download moves a raw
# checkpoint in ~1,000 kernel copies a GiB instead of ~130 (rawcopy.py measured ~7 us
# a copy), and one index query per window where the session has no snapshot of the
# index's chunk digests (session.py, SNAPSHOT_MAX_DIGESTS).
WINDOW = 1024 * 1024
_WINDOW_BUFFERS = 4
# The whole-file hash runs on blake3's own threads only where cores are left over beside
# this pipeline's two: on this 2-core machine those threads only competed with the
# cutter (measured per 256 MiB: 0.49 CPU-s with them, 0.45 without, and no faster).
# Not measured on a bigger machine here: there they let the hash keep up with a faster cut.
_WHOLE_HASH_THREADS = blake3.blake3.AUTO if (os.cpu_count() or 1) > 2 else 1


# Compressibility probes in a run of incompressible chunks (float weights): once this
# many chunks in a row probed incompressible, only every _PROBE_EVERY-th chunk is probed
# and the others are stored raw as well, until a probe says "try" again.
_RAW_RUN = 16
_PROBE_EVERY = 8


class _Prober:
    """Which chunks of a large file are stored raw without trying zstd (codec.probe).
    Why sample: a probe costs ~5 us a chunk (0.07 CPU-s a GiB on the cutter thread, the
    busiest), and in a checkpoint of float weights every probe says the same. The price:
    after a long incompressible run, up to _PROBE_EVERY - 1 compressible chunks (a
    region of text or zeros inside the file) are stored raw before a probe sees them;
    identical chunks (zeros) are stored once anyway."""

    def __init__(self) -> None:
        self.raw_run = 0  # chunks in a row judged incompressible

    def says_raw(self, chunk: memoryview) -> bool:
        self.raw_run += 1
        if self.raw_run > _RAW_RUN and self.raw_run % _PROBE_EVERY:
            return True
        if codec.probe_says_raw(chunk):
            return True
        self.raw_run = 0
        return False


class Piece(NamedTuple):
    """One chunk of a window: its bytes are window[start:end]."""

    start: int
    end: int
    digest: bytes
    raw: bool  # the probe found it incompressible: stored raw without trying zstd


Pieces = list[Piece]


class _Read(NamedTuple):
    """A window's fresh bytes, read by the calling thread, waiting for the cutter."""

    buf: bytearray
    n: int
    final: bool


class _Cut(NamedTuple):
    """A window the cutter has cut: `window` is the carried tail then the fresh bytes."""

    buf: bytearray
    window: memoryview
    n: int
    pieces: Pieces


def stream_chunks(f, size: int, chunker, store_window: Callable[[memoryview, Pieces], bytes | bytearray],
                  after_writes: Callable[[Callable[[], None]], None], digest: bytes | None,
                  progress) -> tuple[bytes, bytearray]:
    """Chunk and store the open file `f` of `size` bytes; returns (file digest, recipe).

    `digest`: the file's digest if the caller hashed it first, else computed here in the
    same pass. `after_writes(give_back)` must call `give_back()` (from any thread) once
    every byte `store_window` took from the window is written, and not wait for it: the
    window's buffer is reused then. FileChangedError if the file's size turns out other
    than `size`."""
    whole = blake3.blake3(max_threads=_WHOLE_HASH_THREADS) if digest is None else None
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()  # given back by the writes
    for _ in range(_WINDOW_BUFFERS):
        free.put(bytearray(CHUNK_MAX + WINDOW))
    # SimpleQueue (C): a put or get is one call, not a Python Condition's several lock
    # round trips, each a chance to wait for the GIL (~1,000 of each a GiB)
    to_cut: queue.SimpleQueue[_Read | None] = queue.SimpleQueue()
    cut: queue.SimpleQueue[_Cut | BaseException] = queue.SimpleQueue()
    stop = threading.Event()

    def cutter() -> None:
        try:
            tail, prober = b"", _Prober()
            hash_chunk, says_raw = blake3.blake3, prober.says_raw
            while not stop.is_set():
                item = to_cut.get()
                if item is None:
                    return
                # the fresh bytes sit after CHUNK_MAX bytes of room for the carried tail
                view = memoryview(item.buf)[CHUNK_MAX - len(tail) : CHUNK_MAX + item.n]
                view[: len(tail)] = tail
                pieces, pos = [], 0
                for chunk in cut_window(chunker, view, item.final):
                    end = pos + len(chunk)
                    pieces.append(Piece(pos, end, hash_chunk(chunk).digest(), says_raw(chunk)))
                    pos = end
                tail = b"" if item.final else bytes(view[pos:])  # < CHUNK_MAX, copied: buf goes back
                cut.put(_Cut(item.buf, view, item.n, pieces))
        except BaseException as e:
            cut.put(e)

    thread = threading.Thread(target=cutter, name="lodestore-chunk", daemon=True)
    thread.start()
    recipe = bytearray()
    waiting: deque[bytearray] = deque()  # handed to the cutter, in file order
    total, eof = 0, False
    try:
        while True:
            # keep the cutter fed: read while a buffer is free; wait for one only when
            # nothing is being cut (all are still being written)
            while not eof and (not free.empty() or not waiting):
                buf = free.get()
                n = f.readinto(memoryview(buf)[CHUNK_MAX:])
                total += n
                eof = n == 0 or total >= size
                if whole is not None:
                    whole.update(memoryview(buf)[CHUNK_MAX : CHUNK_MAX + n])
                to_cut.put(_Read(buf, n, eof))
                waiting.append(buf)
            if not waiting:
                break
            item = cut.get()
            if isinstance(item, BaseException):
                raise item
            waiting.popleft()
            recipe += store_window(item.window, item.pieces)
            after_writes(partial(free.put, item.buf))
            if progress and item.n:
                progress(item.n)
        if total != size or f.read(1):
            raise FileChangedError(f"{f.name} changed size while it was being read; nothing was stored for it")
    finally:
        stop.set()
        to_cut.put(None)
        thread.join()
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
