"""Reassembling a large file of raw (uncompressed) chunks: a piece at a time, each piece
read once, hashed and written from the same buffer.

The copying thread fills a PIECE (1 MiB) of the file in a buffer from the packs (preadv,
one call per stretch of the piece that lies back to back in one pack), hands it to the
hash thread and writes it at the file's position in writes of up to WRITE_MAX (64 KiB),
each ending at a multiple of WRITE_MAX; the hash thread hashes the pieces in file order
while the next ones are read and written. The whole-file digest is checked before the
file gets its name, and the bytes hashed are the very bytes written (one buffer for
both).

A span is a stretch of chunks stored back to back in one pack: in a version-2 pack the
chunks a log appended together (a 1 MiB window of a large file) are one extent, so a
1 GiB checkpoint is ~1,000 spans; a piece takes one or two of them. (Version-1 packs
have a record header before each chunk: one span per chunk, read across the headers
into a scrap buffer, so a piece is still one preadv.)

Why not the kernel's copy, as before (copy_file_range pack -> file, one call a span,
while the hash thread read the same bytes from the pack again): each copy started where
a span starts in the file, at no particular alignment, and a buffered write that starts
off a 64 KiB boundary leaves the file's page cache in 4 KiB folios, which costs the
kernel more per byte. Measured on 1 GiB here (ext4, kernel 6.18, A/B in one process):
copy_file_range of a file in one call 0.25 s; of the same file cut at ckpt_v2's ~1,000
span ends 0.34 s; cut every 4 MiB + 4 KiB (255 calls) 0.34 s, every 1 MiB + 64 KiB
0.25 s: the alignment, not the number of calls. Cutting each copy at the next 64 KiB of
the file did not help (0.34 s: the source offsets are then off the file's by an
arbitrary amount). The download's copying thread went from 0.37-0.40 CPU-s to 0.26-0.31
(hash thread 0.27 -> 0.19-0.21: it no longer reads the pack a second time).

Why 64 KiB writes, not one 1 MiB write a piece: a write's length sets the size of the
page-cache folios it allocates, and on this VM (free page reporting: memory idle for a
few seconds goes back to the host) the large ones come from memory the host must hand
back page by page: 1 MiB writes cost the copying thread 1.1-1.2 CPU-s a GiB, 256 KiB
ones 0.26-0.29 right after other writes but 0.6-0.9 after 3 s idle, 64 KiB ones (the
size `cp`'s kernel copy writes at a time) 0.24-0.35 either way. Also measured, slower:
the copying thread reading and hashing and a writer thread writing (the hash, the
longest part, then shares a thread with a copy); pieces of 256 KiB (4x the hand-offs
to the hash thread).

Why reading the pack once is enough: the bytes written are those hashed, from one
buffer, whatever the pack does meanwhile (a pack is write-once anyway: written under
a temp name and renamed; gc writes new packs and deletes old ones).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, NamedTuple

from lodestore.errors import CorruptionError
from lodestore.store.index import ChunkLocation

if TYPE_CHECKING:
    from lodestore.store.local import LocalContentStore

PIECE = 1024 * 1024  # bytes read and hashed at a time; a piece ends at a multiple of PIECE in the file
WRITE_MAX = 64 * 1024  # bytes a write moves at most: small page-cache folios (see above)
PIECE_BUFFERS = 4  # pieces in flight: one being read and written, the others waiting for the hash
PROGRESS_EVERY = 16 * 1024 * 1024  # bytes between progress reports
_GAP = 64  # a version-1 record header (41 bytes) separates neighbouring chunks: read across it into scrap
_IOV_MAX = 1024  # iovecs per preadv (Linux IOV_MAX): span + header pairs


class Span(NamedTuple):
    """Chunks stored back to back in one pack: `length` bytes at `offset`."""

    pack_id: str
    offset: int
    length: int


def spans(plan: list[ChunkLocation]) -> list[Span]:
    """The plan's chunks, in order, merged where each starts where the one before ends
    in the same pack."""
    out: list[Span] = []
    pack_id, start, end = None, 0, 0
    for loc in plan:
        if loc.pack_id == pack_id and loc.offset == end:
            end += loc.stored_len
            continue
        if pack_id is not None:
            out.append(Span(pack_id, start, end - start))
        pack_id, start, end = loc.pack_id, loc.offset, loc.offset + loc.stored_len
    if pack_id is not None:
        out.append(Span(pack_id, start, end - start))
    return out


class _Reads:
    """The preadv calls that fill one piece: neighbouring stretches of one pack (at most
    _GAP apart, the record headers between them scattered into scrap) are one call."""

    def __init__(self) -> None:
        self._scrap = memoryview(bytearray(_GAP))
        self._iov: list[memoryview] = []
        self._fd, self._pack_id, self._start, self._end = -1, "", 0, 0

    def add(self, fd: int, pack_id: str, offset: int, into: memoryview) -> None:
        """Read len(into) bytes of the pack at `offset` into `into` (now or with the
        stretches after it)."""
        gap = offset - self._end
        if not (self._iov and pack_id == self._pack_id and 0 <= gap <= _GAP and len(self._iov) < _IOV_MAX - 1):
            self.flush()
            self._fd, self._pack_id, self._start, self._end, gap = fd, pack_id, offset, offset, 0
        if gap:
            self._iov.append(self._scrap[:gap])  # the record header between two chunks (version-1 packs)
        self._iov.append(into)
        self._end = offset + len(into)

    def flush(self) -> None:
        if not self._iov:
            return
        iov, self._iov = self._iov, []
        if os.preadv(self._fd, iov, self._start) != self._end - self._start:
            raise CorruptionError(f"pack {self._pack_id} is truncated before offset {self._end}; run `lode fsck`")


class RawCopy:
    """The copy of one file's raw chunks, page after page of its plan, written at the
    file's current position a piece at a time (each piece ends at a multiple of PIECE,
    each write at a multiple of WRITE_MAX). The store's hash thread
    hashes each piece, in file order, while the next ones are read and written.
    `finish()` writes what is left of a piece and waits for the hash; a page of other
    chunks (decoded) may then be written before the next copy(). Use it as a context
    manager: leaving waits for the hash thread before the pack descriptors close."""

    def __init__(self, store: LocalContentStore, out: int, hasher, progress: Callable[[int], None] | None):
        self._packs = store.packs
        self._pool = store._hash_pool
        self._out = out
        self._hasher = hasher
        self._progress = progress
        self._fds: dict[str, int] = {}
        self._buffers: list[memoryview] = []
        self._hashing: list[Future | None] = [None] * PIECE_BUFFERS
        self._turn = 0  # the buffer the next piece is read into
        self._piece: memoryview | None = None  # the piece being filled, its capacity and fill
        self._filled = 0
        self._at: int | None = 0  # the file's position (None: ask the file, after a page written elsewhere)
        self._reads = _Reads()
        self._unreported = 0
        self.written = 0

    def copy(self, plan: list[ChunkLocation]) -> None:
        """Copy the plan's chunks (all raw) after those written so far."""
        for span in spans(plan):
            src = self._fds.get(span.pack_id)
            if src is None:
                src = self._fds[span.pack_id] = self._packs.open_fd(span.pack_id)
            offset, left = span.offset, span.length
            while left:
                piece = self._piece if self._piece is not None else self._next_piece()
                n = min(left, len(piece) - self._filled)
                self._reads.add(src, span.pack_id, offset, piece[self._filled : self._filled + n])
                self._filled += n
                offset += n
                left -= n
                if self._filled == len(piece):
                    self._write_piece()

    def finish(self) -> int:
        """Write what is read of the last piece and wait until every piece is hashed;
        returns the bytes written so far."""
        if self._piece is not None and self._filled:
            self._write_piece()
        self._piece, self._filled, self._at = None, 0, None
        for i, pending in enumerate(self._hashing):
            if pending is not None:
                self._hashing[i] = None
                pending.result()
        if self._progress and self._unreported:
            self._progress(self._unreported)
        self._unreported = 0
        return self.written

    def _next_piece(self) -> memoryview:
        """The next free buffer (its last piece hashed), cut to end at a multiple of PIECE."""
        i = self._turn
        pending = self._hashing[i]
        if pending is not None:
            self._hashing[i] = None
            pending.result()
        if i == len(self._buffers):
            self._buffers.append(memoryview(bytearray(PIECE)))
        if self._at is None:
            self._at = os.lseek(self._out, 0, os.SEEK_CUR)
        self._piece = self._buffers[i][: PIECE - self._at % PIECE]
        self._filled = 0
        return self._piece

    def _write_piece(self) -> None:
        self._reads.flush()
        assert self._piece is not None and self._at is not None
        data = self._piece[: self._filled]
        self._hashing[self._turn] = self._pool.submit(self._hasher.update, data)
        _write_all(self._out, data, self._at)
        self._turn = (self._turn + 1) % PIECE_BUFFERS
        self._at += self._filled
        self.written += self._filled
        self._unreported += self._filled
        self._piece, self._filled = None, 0
        if self._progress and self._unreported >= PROGRESS_EVERY:
            self._progress(self._unreported)
            self._unreported = 0

    def __enter__(self) -> RawCopy:
        return self

    def __exit__(self, *exc) -> None:
        for pending in self._hashing:
            if pending is not None:
                pending.exception()  # the hash thread is done with the buffers
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _write_all(fd: int, data: memoryview, at: int) -> None:
    """Write `data` at the file's position `at`, a call up to each next multiple of
    WRITE_MAX (a write may be short on a full disk or a signal: the rest follows, or
    the error is raised)."""
    while data:
        n = os.write(fd, data[: WRITE_MAX - at % WRITE_MAX])
        data = data[n:]
        at += n
