"""Reading a logged version's files: the list and manifest, one entry, download,
checkout (make a folder match the version exactly) and verify (does a folder match it?).
A mixin of `Artifact`, which provides the logged record (_logged, _record) and the names.
The bytes themselves are written by sdk/materialize.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lodestore.catalog.base import ManifestEntry
from lodestore.errors import InvalidInputError, VerificationError
from lodestore.names import is_temp_name, normalize_entry_path
from lodestore.sdk.local_folder import file_digest, refuse_store_overlap, remove_extras
from lodestore.sdk.materialize import INCOMPLETE_MARKER, materialize_entries

if TYPE_CHECKING:
    from lodestore.sdk.artifact import Artifact


class ArtifactEntry:
    """One file of a logged version (what `files()` and `get_entry()` return)."""

    def __init__(self, artifact: Artifact, path: str, digest: str, size: int):
        self._artifact = artifact
        self.path = path
        self.digest = digest
        self.size = size

    @property
    def name(self) -> str:
        return self.path

    def download(self, root: str | os.PathLike[str] | None = None, overwrite: bool = False) -> Path:
        """Write this one file under `root` (default: the artifact's default folder); a
        different file of the user's at its place is a conflict unless `overwrite`."""
        art = self._artifact
        target = Path(root) if root is not None else art._default_root()
        from lodestore.sdk.lifecycle import refuse_broken

        refuse_broken(art._logged(), art._record)  # a broken version serves no file, not even one

        # the same path as a whole download: kept if already there, reflinked where it can be
        materialize_entries(art._logged(), [ManifestEntry(self.path, self.digest, self.size)], target,
                            label=f"download {self.path}", overwrite=overwrite, what=art.qualified_name)
        return target / self.path

    def __repr__(self) -> str:
        return f"ArtifactEntry(path={self.path!r}, size={self.size}, digest={self.digest[:12]}...)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArtifactEntry) and (self.path, self.digest, self.size) == (
            other.path, other.digest, other.size)


class VersionFiles:
    """The files of a logged version (see the module docstring)."""

    def files(self) -> list[ArtifactEntry]:
        repo = self._logged()
        return [ArtifactEntry(self, e.path, e.digest, e.size) for e in repo.catalog.iter_entries(self._record.id)]

    def get_manifest(self) -> dict[str, dict[str, Any]]:
        """Runicorn spelling: {path: {"digest", "size"}}."""
        return {e.path: {"digest": e.digest, "size": e.size} for e in self.files()}

    def get_entry(self, name: str) -> ArtifactEntry:
        repo = self._logged()
        e = repo.catalog.get_entry(self._record.id, normalize_entry_path(name))
        return ArtifactEntry(self, e.path, e.digest, e.size)

    get_path = get_entry  # W&B's older spelling

    def _default_root(self) -> Path:
        return Path("artifacts") / f"{self._name}-{self.version}"

    def download(self, root: str | os.PathLike[str] | None = None, target_dir: str | os.PathLike[str] | None = None,
                 path_prefix: str | None = None, hardlink: bool = False, overwrite: bool = False) -> Path:
        """Materialise the version's files under `root` (or `target_dir`); returns the folder.

        Files already present with the right content are kept (re-downloads are cheap);
        missing ones are written from the store, verified, atomically. A file of the
        user's with other content (or a symlink) where the version has a file is a
        ConflictError, raised before anything is written, unless `overwrite=True`
        replaces it; files not in the version are left alone (checkout() deletes them).
        By default files are copies the user may edit freely; `hardlink=True` links them
        to a read-only cache copy instead (fast, no extra space, but read-only).
        """
        repo = self._logged()
        from lodestore.sdk.lifecycle import refuse_broken

        refuse_broken(repo, self._record)  # before anything is written
        if root is not None and target_dir is not None and Path(root) != Path(target_dir):
            raise InvalidInputError("pass root= or target_dir=, not both")
        target = Path(root if root is not None else target_dir if target_dir is not None else self._default_root())
        entries = list(repo.catalog.iter_entries(self._record.id))
        if path_prefix:
            entries = [e for e in entries if e.path.startswith(path_prefix)]

        materialize_entries(repo, entries, target, label=f"download {self.name}", hardlink=hardlink,
                            overwrite=overwrite, whole_version=not path_prefix, what=self.qualified_name)
        return target

    def checkout(self, root: str | os.PathLike[str] | None = None, hardlink: bool = False) -> Path:
        """Make `root` match the version exactly: delete what is not in it (files, folders
        standing where a file goes, symlinks), then download, replacing files that
        differ. The store itself is never touched, even when it lives inside `root`."""
        repo = self._logged()
        from lodestore.sdk.lifecycle import refuse_broken

        refuse_broken(repo, self._record)  # before extras are deleted
        target = Path(root) if root is not None else self._default_root()
        wanted = {e.path for e in repo.catalog.iter_entries(self._record.id)}
        refuse_store_overlap(target, repo.root, wanted, self.qualified_name)  # before extras are deleted
        if target.is_dir():
            remove_extras(target, wanted, protect=repo.root)
        return self.download(root=target, hardlink=hardlink, overwrite=True)

    def verify(self, root: str | os.PathLike[str] | None = None) -> None:
        """Raise VerificationError listing every file under `root` that is missing,
        modified, or not part of the version."""
        repo = self._logged()
        target = Path(root) if root is not None else self._default_root()
        if not target.is_dir():
            raise VerificationError(f"{target} does not exist or is not a folder")
        problems: list[str] = []
        seen: set[str] = {INCOMPLETE_MARKER}
        if (target / INCOMPLETE_MARKER).exists():
            problems.append(f"incomplete: a download into this folder stopped part-way ({INCOMPLETE_MARKER})")
        for e in repo.catalog.iter_entries(self._record.id):
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
            shown = "\n  ".join(problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise VerificationError(f"{target} does not match {self.qualified_name}:\n  {shown}{more}")
