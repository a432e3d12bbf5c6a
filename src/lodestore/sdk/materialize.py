"""Writing a version's files into a folder: verified, atomic per file, incremental.

Files already at the destination with the right size and digest are kept, so a second
download of a mostly unchanged version writes only what changed.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import blake3

from lodestore.catalog.base import ManifestEntry
from lodestore.errors import ConflictError, CorruptionError
from lodestore.sdk import ui

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository


SMALL_FILE = 1024 * 1024
SMALL_FILE_THREADS = 4


def _same_content(path: Path, entry: ManifestEntry) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    if not path.is_file() or st.st_size != entry.size:
        return False
    h = blake3.blake3()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(8 * 1024 * 1024):
            h.update(chunk)
    return h.hexdigest() == entry.digest


# Every cached copy gets this mtime when it is written. Writing to a hard-linked file
# (root ignores the read-only mode; anyone may chmod) changes the shared inode's mtime,
# so a copy whose mtime is not the mark is no longer trusted and is written again.
CACHE_MTIME_NS = 1_000_000_000 * 1_000_000_000  # 2001-09-09, a date no write produces now


def _cache_intact(path: Path, size: int) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    return (stat.S_ISREG(st.st_mode) and st.st_size == size and st.st_mtime_ns == CACHE_MTIME_NS
            and not st.st_mode & 0o222)


def cached_copy(repo: Repository, digest: str, size: int | None = None) -> Path:
    """A read-only materialised copy of a file in the repository's cache, for hard links.

    The copy is (re)written when absent or when it shows signs of an edit made through a
    hard link (size, mtime mark, write bits); the new inode replaces it atomically, so
    files a user already linked and edited keep their edit and do not spread it.
    """
    path = repo.cache_dir / "files" / digest[:2] / digest
    if size is None:
        size = repo.store.file_size(digest)
    created = not _cache_intact(path, size)
    if created:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{digest}.{uuid.uuid4().hex[:8]}.lodestore-tmp")
        try:
            repo.store.materialize(digest, tmp)
            tmp.chmod(0o444)
            os.utime(tmp, ns=(CACHE_MTIME_NS, CACHE_MTIME_NS))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    from lodestore.sdk import cache  # LRU tracking and size cap (sdk/cache.py)

    cache.touch(repo.cache_dir, digest, size, created=created)
    return path


def _keep(dest: Path, entry: ManifestEntry, hardlink: bool, repo: Repository) -> bool:
    """Is the file already at `dest` what this download would write?"""
    if not _same_content(dest, entry):
        return False
    st = dest.lstat()
    if stat.S_ISLNK(st.st_mode):
        return False  # a symlink's target may be anywhere; write a real file
    if hardlink:
        return os.path.samestat(st, cached_copy(repo, entry.digest, entry.size).stat())
    # A copy must be the user's alone: a file still hard-linked elsewhere (an earlier
    # hardlink=True download) would let an edit reach the cache, so it is replaced.
    return st.st_nlink == 1 and bool(st.st_mode & stat.S_IWUSR)


def _make_folder(folder: Path, what: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConflictError(f"{what}: cannot make folder {folder}: a file is in the way; "
                            "checkout() makes the folder match the version") from None


_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


def _link_from_cache(repo: Repository, e: ManifestEntry, dest: Path) -> bool:
    """Hard-link the read-only cache copy to dest; False where links are impossible
    (another filesystem, no permission), and the caller copies instead."""
    source = cached_copy(repo, e.digest, e.size)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.lodestore-tmp")
    try:
        os.link(source, tmp)
    except OSError as err:
        if err.errno in _NO_LINK:
            return False
        raise
    os.replace(tmp, dest)
    return True


def materialize_entries(repo: Repository, entries: list[ManifestEntry], target: Path, *, label: str,
                        hardlink: bool = False, what: str = "") -> None:
    _make_folder(target, what)
    fresh = not any(target.iterdir())
    for folder in sorted({(target / e.path).parent for e in entries}):
        _make_folder(folder, what)
    total = sum(e.size for e in entries)
    with ui.byte_progress(label, total) as advance:
        lock = threading.Lock()

        def one(e: ManifestEntry) -> None:
            dest = target / e.path
            if not fresh and dest.is_dir() and not dest.is_symlink():
                raise ConflictError(f"{what}: {dest} is a folder, but the version has a file there; "
                                    "checkout() makes the folder match the version")
            if not fresh and _keep(dest, e, hardlink, repo):
                progress(e.size)
                return
            try:
                if hardlink and _link_from_cache(repo, e, dest):
                    progress(e.size)
                else:
                    repo.store.materialize(e.digest, dest, progress=progress)
                    if hardlink:  # no links possible here: copies, read-only as links would be
                        dest.chmod(0o444)
            except CorruptionError as err:
                # (the CLI escapes Rich markup in every error message itself)
                raise CorruptionError(f"{what}: file {e.path!r} cannot be restored: {err}") from None

        def progress(n: int) -> None:
            with lock:
                advance(n)

        small = [e for e in entries if e.size <= SMALL_FILE]
        large = [e for e in entries if e.size > SMALL_FILE]
        # Creating many small files is syscall-bound (the GIL is released): a few threads
        # keep both cores busy. Large files are already pipelined inside the store.
        if len(small) > 64:
            with ThreadPoolExecutor(SMALL_FILE_THREADS, thread_name_prefix="lodestore-download") as pool:
                for _ in pool.map(one, small):
                    pass
        else:
            for e in small:
                one(e)
        for e in large:
            one(e)
