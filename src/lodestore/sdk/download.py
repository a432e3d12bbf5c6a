"""A logged version's files in a local folder: download (write what is missing),
checkout (make the folder match exactly) and verify (does it match?). The door
(`Service.download`, `checkout`, `verify`, `download_entry`) calls these; the bytes are
written by sdk/materialize.py, the folder is read and cleaned by sdk/local_folder.py.
A broken version (its bytes lost) serves nothing, refused before anything is written."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lodestore.catalog.records import ManifestEntry, VersionRecord
from lodestore.errors import VerificationError
from lodestore.names import is_temp_name
from lodestore.sdk.lifecycle import refuse_broken
from lodestore.sdk.local_folder import file_digest, refuse_store_overlap, remove_extras
from lodestore.sdk.materialize import INCOMPLETE_MARKER, materialize_entries

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository

MAX_PROBLEMS_SHOWN = 20


def download(repo: Repository, version: VersionRecord, target: Path, hardlink: bool = False,
             overwrite: bool = False, path_prefix: str | None = None) -> Path:
    """Write the version's files (those under `path_prefix` if given) into `target`;
    files already there with the right content are kept, another file in the way is a
    ConflictError unless `overwrite`. Returns `target`."""
    refuse_broken(repo, version)

    def entries() -> Iterator[ManifestEntry]:  # streamed from the catalog each time it is read
        found = repo.catalog.iter_entries(version.id)
        return (e for e in found if e.path.startswith(path_prefix)) if path_prefix else iter(found)

    materialize_entries(repo, entries, target, label=f"download {version.name}:{version.version}",
                        hardlink=hardlink, overwrite=overwrite, whole_version=not path_prefix,
                        what=version.qualified_name)
    return target


def download_entry(repo: Repository, version: VersionRecord, entry: ManifestEntry, target: Path,
                   overwrite: bool = False) -> Path:
    """Write one file of the version under `target` (the same path as a whole download:
    kept if already there, reflinked where it can be). Returns the file's path."""
    refuse_broken(repo, version)  # a broken version serves no file, not even one
    materialize_entries(repo, [entry], target, label=f"download {entry.path}", overwrite=overwrite,
                        what=version.qualified_name)
    return target / entry.path


def checkout(repo: Repository, version: VersionRecord, target: Path, hardlink: bool = False) -> Path:
    """Make `target` match the version exactly: delete what is not in it, then download,
    replacing files that differ. The store itself is never touched, even inside `target`."""
    refuse_broken(repo, version)  # before extras are deleted
    wanted = {e.path for e in repo.catalog.iter_entries(version.id)}
    refuse_store_overlap(target, repo.root, wanted, version.qualified_name)  # before extras are deleted
    if target.is_dir():
        remove_extras(target, wanted, protect=repo.root)
    return download(repo, version, target, hardlink=hardlink, overwrite=True)


def verify(repo: Repository, version: VersionRecord, target: Path, also: Iterable[str] = ()) -> None:
    """Raise VerificationError listing every file under `target` that is missing,
    modified, or not part of the version (`also`: paths of it checked elsewhere, its
    references)."""
    if not target.is_dir():
        raise VerificationError(f"{target} does not exist or is not a folder")
    problems: list[str] = []
    seen: set[str] = {INCOMPLETE_MARKER, *also}
    if (target / INCOMPLETE_MARKER).exists():
        problems.append(f"incomplete: a download into this folder stopped part-way ({INCOMPLETE_MARKER})")
    for e in repo.catalog.iter_entries(version.id):
        seen.add(e.path)
        p = target / e.path
        if not p.is_file():
            problems.append(f"missing: {e.path}")
            continue
        if p.stat().st_size != e.size or file_digest(p) != e.digest:
            problems.append(f"modified: {e.path}")
    for dirpath, _, filenames in os.walk(target):
        for f in filenames:
            rel = Path(dirpath, f).relative_to(target).as_posix()
            if rel not in seen and not is_temp_name(f):  # a download in progress (or killed)
                problems.append(f"extra: {rel}")
    if problems:
        shown = "\n  ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = f"\n  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more" if len(problems) > MAX_PROBLEMS_SHOWN else ""
        raise VerificationError(f"{target} does not match {version.qualified_name}:\n  {shown}{more}")
