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
import itertools
import os
import stat
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lodestore.catalog.records import ManifestEntry
from lodestore.errors import ConflictError, CorruptionError
from lodestore.names import temp_name
from lodestore.sdk import cache, ui
from lodestore.sdk.cache import CACHE_MTIME_NS
from lodestore.sdk.local_folder import (
    CHECKOUT_HINT,
    check_folders_on_the_way,
    file_digest,
    make_folders,
    refuse_links_on_the_way,
    refuse_store_overlap,
)

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
    return stat.S_ISREG(st.st_mode) and st.st_size == entry.size and file_digest(path) == entry.digest


# Every cached copy gets the mtime CACHE_MTIME_NS (sdk/cache.py) when it is written.
# Writing to a hard-linked file (root ignores the read-only mode; anyone may chmod)
# changes the shared inode's mtime, so a copy whose mtime is not the mark is no longer
# trusted and is written again. This is the cheap first check only: `cp -p` copies an
# mtime along, so what proves a copy good is its (inode, ctime, size) stamp in the cache
# index (sdk/cache.py, "Trust").


def _looks_intact(st: os.stat_result | None, size: int) -> bool:
    return (st is not None and stat.S_ISREG(st.st_mode) and st.st_size == size
            and st.st_mtime_ns == CACHE_MTIME_NS and not st.st_mode & 0o222)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class _CacheCopy:
    """A cache copy whose content is known to match its digest."""

    path: Path
    verified: os.stat_result  # its stat when it was known good
    created: bool  # written from the store just now
    recorded: bool  # the index already holds this stamp (nothing to record)


def _verified_cache_copy(repo: Repository, digest: str, size: int) -> _CacheCopy:
    """The cache's copy of `digest`, verified.

    A copy whose stamp is the one recorded when it was last known good is used as it is;
    one changed since (a link of ours, or a write through a link: the stamp cannot tell)
    is hashed again; one that fails, or shows an edit, is written anew from the store.
    The new inode replaces it atomically, so files a user already linked and edited keep
    their edit and do not spread it."""
    path = repo.cache_dir / "files" / digest[:2] / digest
    st = _lstat(path)
    if st is not None and _looks_intact(st, size):
        if cache.verified_stamp(repo.cache_dir, digest) == cache.stamp(st):
            return _CacheCopy(path, st, created=False, recorded=True)
        if file_digest(path) == digest and cache.stamp(os.lstat(path)) == cache.stamp(st):  # not changed while read
            return _CacheCopy(path, st, created=False, recorded=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(temp_name())
    try:
        repo.store.materialize(digest, tmp)  # verified against the digest as it is written
        tmp.chmod(0o444)
        os.utime(tmp, ns=(CACHE_MTIME_NS, CACHE_MTIME_NS))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return _CacheCopy(path, os.lstat(path), created=True, recorded=False)


def cached_copy(repo: Repository, digest: str, size: int | None = None) -> Path:
    """A read-only materialised copy of a file in the repository's cache, for hard links,
    whose content is known to match `digest` (see _verified_cache_copy)."""
    if size is None:
        size = repo.store.file_size(digest)
    copy = _verified_cache_copy(repo, digest, size)
    cache.touch(repo.cache_dir, digest, size, created=copy.created, verified=None if copy.recorded else copy.verified)
    return copy.path


def _keep_as_is(dest: Path, entry: ManifestEntry, hardlink: bool, repo: Repository) -> bool:
    """Dest (a regular file with the right content) is already what this download makes."""
    st = dest.lstat()
    if hardlink and not repo.read_only:
        return os.path.samestat(st, cached_copy(repo, entry.digest, entry.size).stat())
    # A copy must be the user's alone: a file still hard-linked elsewhere (an earlier
    # hardlink=True download) would let an edit reach the cache, so it is replaced.
    return st.st_nlink == 1 and bool(st.st_mode & stat.S_IWUSR)


# What a download does with each file of the version, given what is at its place.
WRITE, KEEP, CONFLICT = "write", "keep", "conflict"


def _plan_one(target: Path, e: ManifestEntry, hardlink: bool, repo: Repository, what: str) -> str:
    """WRITE (nothing there, or the same bytes in a form this download replaces), KEEP
    (already right), CONFLICT (the user's: other bytes, or a symlink)."""
    dest = target / e.path
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        return WRITE
    if stat.S_ISDIR(st.st_mode):
        raise ConflictError(f"{what}: {dest} is a folder, but the version has a file there; {CHECKOUT_HINT}")
    if not stat.S_ISREG(st.st_mode) or not _same_content(dest, e):
        return CONFLICT  # a symlink may lead anywhere: even with the right bytes it is the user's
    return KEEP if _keep_as_is(dest, e, hardlink, repo) else WRITE


def _refuse_conflicts(conflicts: list[ManifestEntry], count: int, target: Path, what: str) -> None:
    shown = ", ".join(repr(e.path) for e in conflicts[:10])
    more = f" and {count - 10} more" if count > 10 else ""
    raise ConflictError(
        f"{what}: {count} file(s) in {target} differ from the version: {shown}{more}; nothing was "
        "written. Download elsewhere to keep them, or replace them: overwrite=True (`lode get --overwrite`), "
        "or checkout() (`lode get --checkout`), which also deletes what is not in the version")


def _make_target(target: Path, what: str) -> None:
    try:
        target.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        # the target itself is the user's to move; inside it checkout can clear the way
        raise ConflictError(f"{what}: cannot make folder {target}: a file is in the way; "
                            "choose another folder or move that file") from None
    except OSError as err:  # kept an OSError (the CLI exits 9), said in the user's terms
        raise type(err)(err.errno, f"cannot make the folder: {err.strerror}", str(target)) from None


_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


def _link_from_cache(repo: Repository, e: ManifestEntry, dest: Path) -> bool:
    """Hard-link the read-only cache copy to dest; False where links are impossible
    (another filesystem, no permission), and the caller copies instead."""
    copy = _verified_cache_copy(repo, e.digest, e.size)
    source = copy.path
    tmp = dest.with_name(temp_name())
    try:
        os.link(source, tmp)
    except OSError as err:
        cache.touch(repo.cache_dir, e.digest, e.size, created=copy.created,
                    verified=None if copy.recorded else copy.verified)
        if err.errno in _NO_LINK:
            return False
        raise
    try:
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # The link changed the inode's ctime: stamp it again so the next hand-out is cheap
    # (the same inode, untouched otherwise, is what was verified an instant ago).
    after = _lstat(source)
    same = after is not None and after.st_ino == copy.verified.st_ino and _looks_intact(after, e.size)
    cache.touch(repo.cache_dir, e.digest, e.size, created=copy.created, verified=after if same else None)
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
        # a read-only store's cache is not used: recording a use would write its index
        self.active = sys.platform.startswith("linux") and not repo.read_only and self.files.is_dir()
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
        if not _looks_intact(_lstat(source), e.size):
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
            # The cache copy's mark is no proof (`cp -p` copies it, disk blocks rot): the
            # clone is verified like any read from the store.
            if not _same_content(tmp, e):
                tmp.unlink()
                source.unlink(missing_ok=True)  # spoiled: written again when next needed
                return False
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        cache.touch(self.repo.cache_dir, e.digest, e.size)
        return True


# Left in the target while a download writes, removed once every file is in place: a
# download that failed or was killed part-way says so (verify() reports it). The files
# it wrote are verified and kept; the next download into the folder completes them.
INCOMPLETE_MARKER = ".lodestore-incomplete"


def _map(fn, items: list) -> list:
    """fn over items; on both cores when there are many (file work is syscall-bound and
    releases the GIL). Large files are pipelined inside the store already."""
    if len(items) > 64:
        with ThreadPoolExecutor(SMALL_FILE_THREADS, thread_name_prefix="lodestore-download") as pool:
            return list(pool.map(fn, items))
    return [fn(x) for x in items]


# Entries a download plans and writes at a time: what it holds per file (entries, plans,
# destinations) is one window's, not the version's. A 1,000,000-file download held ~2 KB
# a file at once; 16,384 1 KiB files are ~5 MB.
WINDOW = 16_384

EntrySource = Callable[[], Iterable[ManifestEntry]]
"""The entries to write, read again for each pass (a download streams them from the
catalog a page at a time); a list's `lambda: entries` will do."""


def _windows(entries: EntrySource) -> Iterator[list[ManifestEntry]]:
    it = iter(entries())
    while window := list(itertools.islice(it, WINDOW)):
        yield window


@dataclass
class _Plan:
    """What the first pass learnt, one byte per file at most: which files to write, how
    many bytes, the conflicts (the first few named), whether the marker file may be used."""

    write: bytearray  # 1: write entry i (in the order the entries come)
    total: int = 0
    count: int = 0
    conflicts: list[ManifestEntry] = field(default_factory=list)
    conflict_count: int = 0
    usable_marker: bool = True


def _plan(repo: Repository, entries: EntrySource, target: Path, fresh: bool, hardlink: bool, what: str) -> _Plan:
    """Which entries to write. Into an empty folder: all. Into one that already holds
    files: those not already right; a file of the user's in the way (other bytes, a
    symlink) is a conflict (the caller refuses them, before anything is written, unless
    `overwrite`); a folder in the way always is (checkout clears it)."""
    plan = _Plan(bytearray())
    for window in _windows(entries):
        if fresh:
            actions = [WRITE] * len(window)
        else:
            check_folders_on_the_way(target, sorted({os.path.dirname(e.path) for e in window} - {""}), what)
            actions = _map(lambda e: _plan_one(target, e, hardlink, repo, what), window)
        for e, action in zip(window, actions, strict=True):
            plan.write.append(action != KEEP)
            if e.path == INCOMPLETE_MARKER:
                plan.usable_marker = False  # a version may hold a file of that name
            if action == CONFLICT:
                plan.conflict_count += 1
                if len(plan.conflicts) < 10:
                    plan.conflicts.append(e)
            if action != KEEP:
                plan.total += e.size
                plan.count += 1
    return plan


def materialize_entries(repo: Repository, entries: list[ManifestEntry] | EntrySource, target: Path, *, label: str,
                        hardlink: bool = False, overwrite: bool = False, whole_version: bool = False,
                        what: str = "") -> None:
    """Write `entries` under `target`: every download path (download(), an entry's
    download(), checkout(), `lode get`) comes through here, so its rules hold for all:
    nothing lands inside the store, nothing is written through a symlinked folder, a
    file of the user's in the way is a conflict unless `overwrite`, and the target
    carries INCOMPLETE_MARKER until every file is in place (`whole_version`: `entries`
    are all the version's files, so completing them clears an earlier download's mark).

    `entries` may be a function that streams them (a download reads them from the
    catalog): they are read twice, planned then written, a WINDOW at a time, so memory
    does not grow with the number of files; all conflicts are found before any write."""
    source: EntrySource = (lambda: entries) if isinstance(entries, list) else entries
    refuse_store_overlap(target, repo.root, (e.path for e in source()), what)
    _make_target(target, what)
    fresh = not any(target.iterdir())
    plan = _plan(repo, source, target, fresh, hardlink, what)
    if plan.conflict_count and not overwrite:
        _refuse_conflicts(plan.conflicts, plan.conflict_count, target, what)
    marker = target / INCOMPLETE_MARKER
    usable = plan.usable_marker
    earlier = usable and os.path.lexists(marker)  # an earlier download stopped part-way
    marked = usable and plan.count > 0 and not earlier
    if marked:
        marker.write_text(f"a download of {what} into this folder has not finished\n")
    try:
        _write(repo, source, plan, target, fresh, label, hardlink, what)
    except CorruptionError as err:
        note = f"; the files written so far are kept, and {marker} marks the download incomplete" if usable else ""
        raise CorruptionError(f"{err}{note}") from None
    # An earlier download's mark goes only once the whole version is in place (one file
    # or a path_prefix done says nothing about the rest).
    if marked or (earlier and whole_version):
        marker.unlink(missing_ok=True)


def _write(repo: Repository, entries: EntrySource, plan: _Plan, target: Path, fresh: bool, label: str,
           hardlink: bool, what: str) -> None:
    reflinker = None if hardlink else _Reflinker(repo)
    with ui.byte_progress(label, plan.total) as advance:
        lock = threading.Lock()

        def progress(n: int) -> None:
            with lock:
                advance(n)

        def one(e: ManifestEntry) -> None:
            dest = target / e.path
            refuse_links_on_the_way(target, e.path, what)  # right before writing
            try:
                # A read-only store's cache cannot be written: its links are copies too.
                shared = (_link_from_cache(repo, e, dest) if hardlink and not repo.read_only
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

        done = 0
        for window in _windows(entries):
            todo = [e for i, e in enumerate(window, done) if plan.write[i]]
            done += len(window)
            # folder names as strings: 20,000 Path objects cost 0.55 s of a 20,000-file download
            make_folders(target, sorted({os.path.dirname(e.path) for e in todo} - {""}), what)
            _write_window(repo, todo, target, fresh, reflinker, one, progress, what)


def _write_window(repo: Repository, entries: list[ManifestEntry], target: Path, fresh: bool,
                  reflinker: _Reflinker | None, one: Callable[[ManifestEntry], None],
                  progress: Callable[[int], None], what: str) -> None:
    small = [e for e in entries if e.size <= SMALL_FILE]
    large = [e for e in entries if e.size > SMALL_FILE]
    if fresh and reflinker is not None:
        # Into an empty folder, small files with no cache copy to reflink go to the
        # store in one batch (index lookups per 900 files, reads in pack order).
        cached = reflinker.cached(e.digest for e in small)
        batch = [e for e in small if e.digest not in cached]
        small = [e for e in small if e.digest in cached]
        base = str(target)
        check_folders_on_the_way(target, sorted({os.path.dirname(e.path) for e in batch} - {""}), what)
        try:
            repo.store.materialize_many([(e.digest, os.path.join(base, e.path)) for e in batch], progress,
                                        threads=SMALL_FILE_THREADS)
        except CorruptionError as err:
            bad = batch[getattr(err, "item", 0)]
            raise CorruptionError(f"{what}: file {bad.path!r} cannot be restored: {err}") from None
    _map(one, small)
    for e in large:
        one(e)
