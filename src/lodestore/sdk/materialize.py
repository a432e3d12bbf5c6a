"""Writing a version's files into a folder: verified, atomic per file, incremental.

Files already at the destination with the right size and digest are kept, so a second
download of a mostly unchanged version writes only what changed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import blake3

from lodestore.catalog.base import ManifestEntry
from lodestore.errors import CorruptionError
from lodestore.sdk import ui

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository


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


def cached_copy(repo: Repository, digest: str) -> Path:
    """A read-only materialised copy of a file in the repository's cache, for hard links."""
    path = repo.cache_dir / "files" / digest[:2] / digest
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        repo.store.materialize(digest, path)
        path.chmod(0o444)
    return path


def materialize_entries(repo: Repository, entries: list[ManifestEntry], target: Path, *, label: str,
                        hardlink: bool = False, what: str = "") -> None:
    target.mkdir(parents=True, exist_ok=True)
    fresh = not any(target.iterdir())
    for folder in sorted({(target / e.path).parent for e in entries}):
        folder.mkdir(parents=True, exist_ok=True)
    total = sum(e.size for e in entries)
    with ui.byte_progress(label, total) as advance:
        for e in entries:
            dest = target / e.path
            if not fresh and _same_content(dest, e) and not (hardlink and dest.stat().st_nlink == 1):
                advance(e.size)
                continue
            try:
                if hardlink:
                    source = cached_copy(repo, e.digest)
                    tmp = dest.with_name(f".{dest.name}.lodestore-tmp")
                    tmp.unlink(missing_ok=True)
                    os.link(source, tmp)
                    os.replace(tmp, dest)
                    advance(e.size)
                else:
                    repo.store.materialize(e.digest, dest, progress=advance)
            except CorruptionError as err:
                raise CorruptionError(f"{what}: file {e.path!r} cannot be restored: {err}") from None
