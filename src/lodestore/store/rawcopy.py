"""Reassembling a large file of raw (uncompressed) chunks with the kernel's copy.

The chunks are copied pack -> file with copy_file_range (the bytes never enter this
process: one copy, as `cp` does), while the hash thread reads the same chunks through a
read-only mapping of the pack (no copy either). Measured, 1 GiB checkpoint, ext4:
pread + writev + hash 1.58-2.07 s, this 0.52-0.79 s (cp 0.32-0.42 s).

Why verifying the mapped pages verifies the copied bytes: both read the pack's pages in
the page cache, and a pack is a write-once file nothing modifies in place (it is written
under a temp name and renamed; gc writes new packs and deletes old ones, which leaves an
open file's pages as they were). A bit flipped on disk is read into the page cache once
and seen alike by both. The whole-file digest is checked before the file gets its name.
"""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from lodestore.errors import CorruptionError
from lodestore.store.index import ChunkLocation

if TYPE_CHECKING:
    from lodestore.store.local import LocalContentStore

# copy_file_range refuses here: across file systems on older kernels (EXDEV), file
# systems or kernels without it (ENOSYS, EOPNOTSUPP, EINVAL), not allowed (EPERM).
NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.EPERM}
HASH_GROUP = 16 * 1024 * 1024  # bytes handed to the hash thread at a time


def copy_raw(store: LocalContentStore, plan: list[ChunkLocation], out: int, hasher,
             progress: Callable[[int], None] | None) -> int | None:
    """Copy every chunk of `plan` to `out` and feed them to `hasher` in order; returns
    the bytes written, or None (nothing written) where the kernel copy is refused."""
    fds: dict[str, int] = {}
    maps: dict[str, mmap.mmap] = {}
    views: dict[str, memoryview] = {}
    pending = None
    pending_spans: dict[str, list[int]] = {}
    group: list[memoryview] = []
    spans: dict[str, list[int]] = {}  # pack -> [first, end) offsets of the group's chunks
    grouped = written = 0
    try:
        for loc in plan:
            src = fds.get(loc.pack_id)
            if src is None:
                src = fds[loc.pack_id] = store._pack_fd(loc.pack_id)
                length = os.fstat(src).st_size
                if length:
                    maps[loc.pack_id] = mm = mmap.mmap(src, length, prot=mmap.PROT_READ)
                    views[loc.pack_id] = memoryview(mm)
                else:
                    views[loc.pack_id] = memoryview(b"")
            view = views[loc.pack_id]
            end = loc.offset + loc.stored_len
            if end > len(view):  # checked first: touching a mapping past its file's end kills the process
                raise CorruptionError(f"pack {loc.pack_id} is truncated before offset {end}; run `lode fsck`")
            left, offset = loc.stored_len, loc.offset
            while left:
                try:
                    n = os.copy_file_range(src, out, left, offset)
                except OSError as err:
                    if written == 0 and offset == loc.offset and err.errno in NO_KERNEL_COPY:
                        return None
                    raise
                if n == 0:
                    raise CorruptionError(f"pack {loc.pack_id} is truncated at offset {offset}; run `lode fsck`")
                left -= n
                offset += n
            written += loc.stored_len
            group.append(view[loc.offset : end])
            span = spans.setdefault(loc.pack_id, [loc.offset, end])
            span[0], span[1] = min(span[0], loc.offset), max(span[1], end)
            grouped += loc.stored_len
            if grouped >= HASH_GROUP:
                if pending is not None:
                    pending.result()
                    _drop(maps, pending_spans)
                pending = store._hash_pool.submit(_update_all, hasher, group)
                pending_spans = spans
                if progress:
                    progress(grouped)
                group, grouped, spans = [], 0, {}
        if pending is not None:
            pending.result()
        _update_all(hasher, group)
        if progress and grouped:
            progress(grouped)
        return written
    finally:
        if pending is not None:
            pending.exception()  # the hash thread is done with the mappings before they go
        for fd in fds.values():
            os.close(fd)


def _drop(maps: dict[str, mmap.mmap], spans: dict[str, list[int]]) -> None:
    """Unmap the pages of hashed chunks from this process (they stay in the page cache):
    mapped pages count in the process's RSS (1 GiB of them measured 1,081 MB peak; with
    this, 87 MB), at a cost within the noise (0.87 -> 0.96 s median of 4, 1 GiB)."""
    if not hasattr(mmap, "MADV_DONTNEED"):
        return
    for pack_id, (first, end) in spans.items():
        mm = maps.get(pack_id)
        if mm is not None:
            start = first - first % mmap.PAGESIZE
            mm.madvise(mmap.MADV_DONTNEED, start, end - start)


def _update_all(hasher, pieces: list[memoryview]) -> None:
    for piece in pieces:
        hasher.update(piece)
