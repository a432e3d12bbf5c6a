"""The user's folder a version is downloaded into: where a download may write (never
into the store, never through a symlinked folder), hashing what is there (verify) and
clearing what does not belong (checkout)."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

import blake3

from lodestore.errors import ConflictError

CHECKOUT_HINT = "checkout() / `lode get --checkout` makes the folder match the version (deleting what is not in it)"


def refuse_store_overlap(target: Path, store_root: Path, paths: Iterable[str], what: str) -> None:
    """The one rule every download path obeys before writing: nothing lands inside the
    store. A target inside the store is refused; a target holding the store is fine as
    long as no file of the version would land inside it (a version may hold a file
    named `catalog.db` or `.lodestore/catalog.db`). Symlinks are resolved on both sides
    (the target may be a link the user chose; links below it are refused on the way)."""
    store = store_root.resolve()
    where = target.resolve()
    if where.is_relative_to(store):
        raise ConflictError(f"{what}: {target} is inside the store at {store_root}; download somewhere else")
    if not store.is_relative_to(where):
        return
    inner = store.relative_to(where).as_posix()
    for p in paths:
        if p == inner or p.startswith(inner + "/"):
            raise ConflictError(f"{what}: file {p!r} would land inside the store at {store_root}; "
                                "download somewhere else")


def _folder_conflict(target: Path, rel: str, st: os.stat_result, what: str) -> ConflictError | None:
    if stat.S_ISLNK(st.st_mode):
        return ConflictError(f"{what}: {target / rel} is a symlink, but the version has a folder there; a download "
                             f"never writes through it (it could lead anywhere); {CHECKOUT_HINT}")
    if not stat.S_ISDIR(st.st_mode):
        return ConflictError(f"{what}: cannot make folder {target / rel}: a file is in the way; {CHECKOUT_HINT}")
    return None


def _prefixes(folder: str) -> list[str]:
    parts = folder.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def check_folders_on_the_way(target: Path, folders: Iterable[str], what: str) -> None:
    """Refuse (ConflictError) a symlink or a file where the version has a folder below
    `target`; folders not there yet are fine (the download makes them). lstat, component
    by component: a symlinked folder would carry the download out of the target."""
    seen: set[str] = set()
    base = str(target)
    for folder in folders:
        for rel in _prefixes(folder):
            if rel in seen:
                continue
            seen.add(rel)
            try:
                st = os.lstat(os.path.join(base, rel))
            except FileNotFoundError:
                break  # nothing below a missing folder exists either
            if err := _folder_conflict(target, rel, st, what):
                raise err


def make_folders(target: Path, folders: Iterable[str], what: str) -> None:
    """Make each folder below `target` one component at a time, never following a
    symlink (one that appeared since the check is refused here too)."""
    made: set[str] = set()
    base = str(target)
    for folder in folders:
        for rel in _prefixes(folder):
            if rel in made:
                continue
            path = os.path.join(base, rel)
            try:
                os.mkdir(path)
            except FileExistsError:
                if err := _folder_conflict(target, rel, os.lstat(path), what):
                    raise err from None
            except OSError as err:  # kept an OSError (the CLI exits 9), said in the user's terms
                raise type(err)(err.errno, f"cannot make the folder: {err.strerror}", path) from None
            made.add(rel)


def refuse_links_on_the_way(target: Path, path: str, what: str) -> None:
    """Right before a file is written: every folder between `target` and it is still a
    real folder (a symlink swapped in since the folders were made would lead outside)."""
    folder = os.path.dirname(path)
    if not folder:
        return
    base = str(target)
    for rel in _prefixes(folder):
        if err := _folder_conflict(target, rel, os.lstat(os.path.join(base, rel)), what):
            raise err


def remove_extras(target: Path, wanted: set[str], protect: Path) -> None:
    """Delete under `target` every file, symlink and folder not part of `wanted` (paths
    of files); folders on the way to wanted files stay. Nothing under `protect` is touched."""
    protect = protect.resolve()
    wanted_dirs = {p.rsplit("/", 1)[0] for p in wanted if "/" in p}
    wanted_dirs |= {d.rsplit("/", i)[0] for d in list(wanted_dirs) for i in range(1, d.count("/") + 1)}
    for dirpath, dirnames, filenames in os.walk(target, topdown=True):
        here = Path(dirpath)
        keep_dirs = []
        for d in dirnames:
            full = here / d
            rel = full.relative_to(target).as_posix()
            if full.is_symlink():
                full.unlink()  # versions hold regular files only; a link could lead outside
            elif full.resolve() == protect or protect in full.resolve().parents:
                continue
            elif rel in wanted_dirs:
                keep_dirs.append(d)
            elif protect.is_relative_to(full.resolve()):
                keep_dirs.append(d)  # holds the store somewhere below: walk in, delete around it
            else:
                shutil.rmtree(full)
        dirnames[:] = keep_dirs
        for f in filenames:
            full = here / f
            rel = full.relative_to(target).as_posix()
            if rel not in wanted or full.is_symlink():
                full.unlink()


_DIGEST_BUFFER = 4 * 1024 * 1024


def file_digest(path: Path) -> str:
    h = blake3.blake3()
    with open(path, "rb", buffering=0) as f:
        if os.fstat(f.fileno()).st_size < _DIGEST_BUFFER:  # most files: one read, no 4 MiB buffer to allocate
            h.update(f.read())
            return h.hexdigest()
        buf = bytearray(_DIGEST_BUFFER)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()
