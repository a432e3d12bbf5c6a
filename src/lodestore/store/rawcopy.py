"""Reassembling a large file of raw (uncompressed) chunks with the kernel's copy.

The chunks are copied pack -> file with copy_file_range (the bytes never enter this
process: one copy, as `cp` does), while the hash thread preads the same bytes from the
pack, a 1 MiB piece at a time, and hashes each piece while it is still in the core's
cache. The whole-file digest is checked before the file gets its name.

A span is a stretch of chunks stored back to back in one pack: in a version-2 pack the
chunks a log appended together (a window of a large file) are one extent, so a 1 GiB
checkpoint of ~13,000 chunks is ~200 spans of up to 8 MiB, each moved by one
copy_file_range (version-1 packs have a record header before each chunk: one span, so
one copy, per chunk; their hash reads scatter the headers into a scrap buffer).

Where the time goes (1 GiB checkpoint, ext4 on this 2-core VM, per-thread CPU of one
download; `cp` of the same file 0.35 CPU-s): the copying thread 0.36 CPU-s, nearly all
inside copy_file_range; the hash thread 0.25 CPU-s; locating the chunks 0.03 CPU-s on
the planning thread (LocalContentStore._planned_ahead), overlapped with the copy. Before
this layout the copying thread took 0.45-0.51 (it located every chunk first, then
copied into a file growing by delayed allocation) and the hash thread 0.36 (16 MiB
reads, hashed after they had left the cache), so the hash thread and the plan, not the
copy, set the pace. What each change measured, on its own, A/B in one run:
- preallocating the file (`atomic.preallocate`): copy_file_range of 1 GiB 0.28-0.35 CPU-s
  against 0.35-0.42 without;
- 1 MiB hash pieces instead of 16 MiB reads: read + hash 0.34 CPU-s against 0.38-0.45
  (256 KiB to 4 MiB measured alike);
- hashing through a mapping of the pack instead of a pread (no copy into this
  process): no gain here, 0.37-0.39 CPU-s against 0.34-0.35, as faulting the pages in
  costs what the copy did, with or without MADV_HUGEPAGE or MAP_POPULATE; and the
  mapped pages count in the peak RSS unless unmapped window by window;
- blake3's own threads for the whole-file hash: more CPU (0.81 against 0.75 CPU-s a
  download) and no faster on 2 cores, where the hash is no longer the slower thread;
- larger copies (64 MiB or the whole file per call): no faster than 8 MiB;
- two threads copying halves of the file: the same wall time (ext4 takes the file's
  lock for every buffered write), so one file copies as fast as `cp` at best.

Why verifying the pread bytes verifies the copied bytes: both read the pack's pages in
the page cache, and a pack is a write-once file nothing modifies in place (it is written
under a temp name and renamed; gc writes new packs and deletes old ones, which leaves an
open file's pages as they were). A bit flipped on disk is read into the page cache once
and seen alike by both.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, NamedTuple

from lodestore.errors import CorruptionError
from lodestore.store.index import ChunkLocation

if TYPE_CHECKING:
    from lodestore.store.local import LocalContentStore

# copy_file_range refuses here: across file systems on older kernels (EXDEV), file
# systems or kernels without it (ENOSYS, EOPNOTSUPP, EINVAL), not allowed (EPERM).
NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.EPERM}
HASH_GROUP = 16 * 1024 * 1024  # bytes handed to the hash thread at a time
HASH_PIECE = 1024 * 1024  # bytes the hash thread reads, then hashes while they are in the core's cache
SPAN_MAX = 8 * 1024 * 1024  # bytes one copy_file_range moves at most (a group ends past HASH_GROUP by < one span)
_GAP = 64  # a version-1 record header (41 bytes) separates neighbouring chunks: read across it into scrap
_IOV_MAX = 1024  # iovecs per preadv (Linux IOV_MAX): span + header pairs


class Span(NamedTuple):
    """Chunks stored back to back in one pack: `length` bytes at `offset`."""

    pack_id: str
    offset: int
    length: int


def spans(plan: list[ChunkLocation]) -> list[Span]:
    """The plan's chunks, in order, merged where each starts where the one before ends
    in the same pack (at most SPAN_MAX bytes a span)."""
    out: list[Span] = []
    pack_id, start, end = None, 0, 0
    for loc in plan:
        if loc.pack_id == pack_id and loc.offset == end and end + loc.stored_len - start <= SPAN_MAX:
            end += loc.stored_len
            continue
        if pack_id is not None:
            out.append(Span(pack_id, start, end - start))
        pack_id, start, end = loc.pack_id, loc.offset, loc.offset + loc.stored_len
    if pack_id is not None:
        out.append(Span(pack_id, start, end - start))
    return out


class RawCopy:
    """The kernel copy of one file's raw chunks, page after page of its plan, with the
    store's hash thread reading the same bytes from the packs and hashing them in file
    order a group behind. Pages follow one another without draining the hash thread
    between them; `finish()` hands over the last group and waits for the hash. Use it
    as a context manager: leaving waits for the hash thread before the pack
    descriptors close."""

    def __init__(self, store: LocalContentStore, out: int, hasher, progress: Callable[[int], None] | None):
        self._packs = store.packs
        self._pool = store._hash_pool
        self._out = out
        self._hasher = hasher
        self._progress = progress
        self._fds: dict[str, int] = {}
        self._buf = bytearray(HASH_PIECE)  # the hash thread's
        self._pending: Future | None = None
        self._group: list[tuple[int, Span]] = []
        self._grouped = 0
        self.written = 0

    def copy(self, plan: list[ChunkLocation]) -> bool:
        """Copy the plan's chunks after those copied so far; False (nothing written) where
        the kernel refuses the file's first copy (another file system, an old kernel)."""
        for span in spans(plan):
            src = self._fds.get(span.pack_id)
            if src is None:
                src = self._fds[span.pack_id] = self._packs.open_fd(span.pack_id)
            left, offset = span.length, span.offset
            while left:
                try:
                    n = os.copy_file_range(src, self._out, left, offset)
                except OSError as err:
                    if self.written == 0 and offset == span.offset and err.errno in NO_KERNEL_COPY:
                        return False
                    raise
                if n == 0:
                    raise CorruptionError(f"pack {span.pack_id} is truncated at offset {offset}; run `lode fsck`")
                left -= n
                offset += n
            self.written += span.length
            self._group.append((src, span))
            self._grouped += span.length
            if self._grouped >= HASH_GROUP:
                self._hand_over()
        return True

    def finish(self) -> int:
        """Hash everything copied so far; returns the bytes copied so far."""
        if self._group:
            self._hand_over()
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()
        return self.written

    def _hand_over(self) -> None:
        if self._pending is not None:
            self._pending.result()  # one group hashed while the next is copied
        self._pending = self._pool.submit(_hash_group, self._hasher, self._group, self._buf)
        if self._progress:
            self._progress(self._grouped)
        self._group, self._grouped = [], 0

    def __enter__(self) -> RawCopy:
        return self

    def __exit__(self, *exc) -> None:
        if self._pending is not None:
            self._pending.exception()  # the hash thread is done with the descriptors before they close
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _hash_group(hasher, group: list[tuple[int, Span]], buf: bytearray) -> None:
    """Read the spans of `group` into `buf` a piece at a time and hash each piece.

    A piece is at most len(buf) (HASH_PIECE) bytes of chunk data: read, then hashed
    while it is still in the core's cache. Measured on 1 GiB here, read + hash of 1 MiB
    pieces took 0.34 CPU-s against 0.38-0.45 for 16 MiB ones (read into memory, then
    read back from memory by the hash). One preadv fills a piece from neighbouring
    spans (in version-1 packs, one span per chunk), scattering the record headers
    between them into a scrap buffer, so the chunk bytes land contiguously: one hash
    call per piece, not one per ~80 KiB chunk."""
    view = memoryview(buf)
    scrap = memoryview(bytearray(_GAP))
    cap = len(view)
    iov: list[memoryview] = []
    fd, pack_id, start, end, filled = -1, "", 0, 0, 0
    for src, span in group:
        offset, left = span.offset, span.length
        while left:
            gap = offset - end
            if not (iov and span.pack_id == pack_id and 0 <= gap <= _GAP and filled < cap
                    and len(iov) < _IOV_MAX - 1):
                if iov:
                    _read_and_hash(hasher, fd, pack_id, iov, start, end, view[:filled])
                iov, fd, pack_id, start, end, filled, gap = [], src, span.pack_id, offset, offset, 0, 0
            if gap:
                iov.append(scrap[:gap])  # the record header between two chunks (version-1 packs)
            n = min(left, cap - filled)
            iov.append(view[filled : filled + n])
            filled += n
            offset += n
            end = offset
            left -= n
    if iov:
        _read_and_hash(hasher, fd, pack_id, iov, start, end, view[:filled])


def _read_and_hash(hasher, fd: int, pack_id: str, iov: list[memoryview], start: int, end: int,
                   data: memoryview) -> None:
    if os.preadv(fd, iov, start) != end - start:
        raise CorruptionError(f"pack {pack_id} is truncated before offset {end}; run `lode fsck`")
    hasher.update(data)
