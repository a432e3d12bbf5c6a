"""Writing a version's files into a folder: verified, atomic per file, incremental.

Files already at the destination with the right size and digest are kept, so a second
download of a mostly unchanged version writes only what changed.

Copies come from the store's packs (chunked, compressed), which no file system can
share. Where the download cache (sdk/cache.py) already holds a whole copy of a file and
the file system has reflinks (XFS, btrfs), the copy is a reflink of that cache copy:
no bytes written, and an edit to it is copy-on-write, so it never reaches the cache.
Elsewhere (ext4, another file system) the file is written from the store as usual.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import blake3

from lodestore.catalog.base import ManifestEntry
from lodestore.errors import ConflictError, CorruptionError
from lodestore.names import temp_name
from lodestore.sdk import ui

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository


SMALL_FILE = 1024 * 1024
# Two threads, not four: file creation serialises in the kernel (the folder's lock, the
# journal) and the per-file Python work holds the GIL. Measured, 20,000 x 16 KiB into an
# empty folder through the batch path: 1 thread 3.5-4.3 s, 2 threads 2.9-3.4 s; the
# older per-file path measured 4 threads slower than 1 (5,000 files: 3.0 s vs 1.9-2.1 s).
SMALL_FILE_THREADS = 2


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
        tmp = path.with_name(temp_name())
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


CHECKOUT_HINT = "checkout() / `lode get --checkout` makes the folder match the version (deleting what is not in it)"


def _make_folder(folder: Path, what: str, is_target: bool = False) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        # inside the target checkout can clear the way; the target itself is the user's to move
        hint = "choose another folder or move that file" if is_target else CHECKOUT_HINT
        raise ConflictError(f"{what}: cannot make folder {folder}: a file is in the way; {hint}") from None
    except OSError as err:  # kept an OSError (the CLI exits 9), said in the user's terms
        raise type(err)(err.errno, f"cannot make the folder: {err.strerror}", str(folder)) from None


_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


def _link_from_cache(repo: Repository, e: ManifestEntry, dest: Path) -> bool:
    """Hard-link the read-only cache copy to dest; False where links are impossible
    (another filesystem, no permission), and the caller copies instead."""
    source = cached_copy(repo, e.digest, e.size)
    tmp = dest.with_name(temp_name())
    try:
        os.link(source, tmp)
    except OSError as err:
        if err.errno in _NO_LINK:
            return False
        raise
    try:
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int), the ioctl behind `cp --reflink`
# What FICLONE answers where it cannot share extents: no reflinks on this file system
# (ext4: EOPNOTSUPP), another file system (EXDEV), not supported for these files (EINVAL),
# no such ioctl (ENOTTY, ENOSYS), not allowed (EPERM, EACCES).
_NO_CLONE = {errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.ENOSYS,
             errno.EPERM, errno.EACCES, errno.EBADF}


def reflink(source: Path, dest: Path) -> bool:
    """Make `dest` (which must not exist) a reflink of `source`; False, leaving nothing
    behind, where the file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        src = os.open(source, os.O_RDONLY)
    except OSError:
        return False
    try:
        dst = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.ioctl(dst, FICLONE, src)
        except OSError as err:
            os.close(dst)
            dst = -1
            dest.unlink(missing_ok=True)
            if err.errno in _NO_CLONE:
                return False
            raise
        finally:
            if dst >= 0:
                os.close(dst)
    finally:
        os.close(src)
    return True


class _Reflinker:
    """Reflinks downloads from the cache's whole-file copies, where there are any and the
    file system allows. After the first refusal for a pair of file systems it stops
    trying, so a download on ext4 pays one failed ioctl, not one per file."""

    def __init__(self, repo: Repository):
        self.repo = repo
        self.files = repo.cache_dir / "files"
        self.active = sys.platform.startswith("linux") and self.files.is_dir()
        self.refused: set[tuple[int, int]] = set()

    def cached(self, digests) -> set[str]:
        """Which of `digests` have a cache copy: one listing per cache subfolder needed,
        not one stat per file (a download of 20,000 files mostly has none)."""
        if not self.active:
            return set()
        wanted = set(digests)
        found: set[str] = set()
        for prefix in {d[:2] for d in wanted}:
            try:
                found.update(n for n in os.listdir(self.files / prefix) if n in wanted)
            except (FileNotFoundError, NotADirectoryError):
                continue
        return found

    def copy(self, e: ManifestEntry, dest: Path) -> bool:
        if not self.active:
            return False
        source = self.files / e.digest[:2] / e.digest
        if not _cache_intact(source, e.size):
            return False
        try:
            devices = (source.stat().st_dev, dest.parent.stat().st_dev)
        except FileNotFoundError:
            return False
        if devices in self.refused:
            return False
        tmp = dest.with_name(temp_name())
        if not reflink(source, tmp):
            self.refused.add(devices)
            return False
        try:
            # The cache copy's mark shows it was not edited through a hard link, not that
            # its disk blocks are sound: the clone is verified like any read from the store.
            if not _same_content(tmp, e):
                tmp.unlink()
                source.unlink(missing_ok=True)  # spoiled: written again when next needed
                return False
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        from lodestore.sdk import cache

        cache.touch(self.repo.cache_dir, e.digest, e.size)
        return True


def materialize_entries(repo: Repository, entries: list[ManifestEntry], target: Path, *, label: str,
                        hardlink: bool = False, what: str = "") -> None:
    _make_folder(target, what, is_target=True)
    fresh = not any(target.iterdir())
    # folder names as strings: 20,000 Path objects cost 0.55 s of a 20,000-file download
    for folder in sorted({os.path.dirname(e.path) for e in entries}):
        if folder:
            _make_folder(target / folder, what)
    total = sum(e.size for e in entries)
    reflinker = None if hardlink else _Reflinker(repo)
    with ui.byte_progress(label, total) as advance:
        lock = threading.Lock()

        def progress(n: int) -> None:
            with lock:
                advance(n)

        def one(e: ManifestEntry) -> None:
            dest = target / e.path
            if not fresh and dest.is_dir() and not dest.is_symlink():
                raise ConflictError(f"{what}: {dest} is a folder, but the version has a file there; "
                                    f"{CHECKOUT_HINT}")
            if not fresh and _keep(dest, e, hardlink, repo):
                progress(e.size)
                return
            try:
                shared = (_link_from_cache(repo, e, dest) if hardlink
                          else reflinker is not None and reflinker.copy(e, dest))
                if shared:  # a hard link or a reflink: nothing to write
                    progress(e.size)
                else:
                    repo.store.materialize(e.digest, dest, progress=progress)
                    if hardlink:  # no links possible here: copies, read-only as links would be
                        dest.chmod(0o444)
            except CorruptionError as err:
                # (the CLI escapes Rich markup in every error message itself)
                raise CorruptionError(f"{what}: file {e.path!r} cannot be restored: {err}") from None

        small = [e for e in entries if e.size <= SMALL_FILE]
        large = [e for e in entries if e.size > SMALL_FILE]
        if fresh and reflinker is not None:
            # Into an empty folder, small files with no cache copy to reflink go to the
            # store in one batch (index lookups per 900 files, reads in pack order).
            cached = reflinker.cached(e.digest for e in small)
            batch = [e for e in small if e.digest not in cached]
            small = [e for e in small if e.digest in cached]
            base = str(target)
            try:
                repo.store.materialize_many([(e.digest, os.path.join(base, e.path)) for e in batch], progress,
                                            threads=SMALL_FILE_THREADS)
            except CorruptionError as err:
                bad = batch[getattr(err, "item", 0)]
                raise CorruptionError(f"{what}: file {bad.path!r} cannot be restored: {err}") from None
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
