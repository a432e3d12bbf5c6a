"""Atomic file replacement for the store: the one place a store file gets its final name.

Every file the store writes (format.json, catalog-binding.json, packs, an owner.json,
a download's destination) is written under a temp name and renamed onto its final
name, so a reader never sees half a file. Where durability matters (the store's own
metadata, packs before they are indexed) the file is fsynced before the rename and its
folder after it, so the rename itself survives a power cut. Large files (a download's
destination, the packs of a large file's log) get their disk space reserved before they
are written (`preallocate`).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import sys
from collections.abc import Callable

from lodestore.names import TEMP_PREFIX

_FALLOC_FL_KEEP_SIZE = 0x01  # linux/falloc.h


def temp_beside(dest: str) -> str:
    """A fresh temp path in dest's folder, in the form lodestore.names.is_temp_name knows
    (short and fixed-length: it fits beside a file whose name is near the 255-byte limit)."""
    return os.path.join(os.path.dirname(dest), TEMP_PREFIX + os.urandom(16).hex())


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make the entries of a folder (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(tmp: str | os.PathLike[str], dest: str | os.PathLike[str], durable: bool) -> None:
    """Rename a complete temp file onto `dest`; with `durable`, fsync dest's folder after.
    The temp file is removed if the rename fails (dest is a folder, say)."""
    try:
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_dir(os.path.dirname(os.path.abspath(dest)))


def write_bytes(dest: str | os.PathLike[str], data: bytes | bytearray | memoryview | str, durable: bool = True,
                tmp: str | None = None) -> None:
    """Write `data` to a temp file beside `dest` (or at `tmp`), then rename it onto dest.
    With `durable`, the file is fsynced before the rename and the folder after it.
    Nothing is left at the temp path if anything fails."""
    dest = os.fspath(dest)
    tmp_path = tmp if tmp is not None else temp_beside(dest)
    payload = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise
    replace(tmp_path, dest, durable)


def _libc_function(name: str, argtypes: list[type]) -> Callable[[int, int, int, int], int] | None:
    """libc's function `name`, typed with `argtypes` and returning an int, or None (not
    Linux, no such symbol): the calls below are hints or reservations that a platform
    without them simply goes without."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = argtypes
    fn.restype = ctypes.c_int
    return fn


@functools.cache
def _fallocate() -> Callable[[int, int, int, int], int] | None:
    """libc's fallocate(2), or None. Not os.posix_fallocate: where the file system cannot
    preallocate, glibc's posix_fallocate writes a byte into every block instead, a second
    write of the whole file."""
    return _libc_function("fallocate", [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64])


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's sync_file_range(2), or None."""
    return _libc_function("sync_file_range", [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint])


_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel start writing these bytes of the file at `fd` to disk now, without
    waiting for it (sync_file_range WRITE): a file written to be fsynced later (a pack
    received whole) then meets a fsync with little left to write, its writeback having
    run while the rest arrived. A hint only: nothing where the call is missing or fails
    (durability still comes from the fsync)."""
    sync_file_range = _sync_file_range()
    if sync_file_range is not None and length > 0:
        sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def preallocate(fd: int, size: int) -> None:
    """Reserve `size` bytes of disk for the file being written at `fd`, in one call,
    keeping its size as it is (blocks reserved past the end stay the file's until it is
    truncated: a writer that may use less truncates it to its size when done, see
    packs.PackWriter.finish). The writes after it then land in blocks already there
    instead of reserving space page by page (ext4's delayed allocation): measured on
    1 GiB here, copy_file_range took 0.28 CPU-s after it against 0.35 without. A file
    system that cannot (EOPNOTSUPP) is written as before; a disk too small fails here
    (ENOSPC), before any byte is written."""
    fallocate = _fallocate()
    if fallocate is None or size <= 0:
        return
    if fallocate(fd, _FALLOC_FL_KEEP_SIZE, 0, size) != 0:
        err = ctypes.get_errno()
        if err in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(err, os.strerror(err))
        # anything else (not supported here, an old kernel, a special file): write as before
