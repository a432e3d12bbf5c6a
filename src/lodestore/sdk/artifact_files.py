"""`ArtifactEntry`: one file of a logged version, as `Artifact.files()` and
`Artifact.get_entry()` return it; it can download itself (through the door)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lodestore.catalog.records import ManifestEntry, VersionRecord

if TYPE_CHECKING:
    from lodestore.sdk.service import Service


def default_root(version: VersionRecord) -> Path:
    """Where a version goes when no folder is named: ./artifacts/<name>-vN (as W&B)."""
    return Path("artifacts") / f"{version.name}-{version.version}"


class ArtifactEntry:
    """One file of a logged version: its path inside the artifact, digest and size."""

    def __init__(self, service: Service, version: VersionRecord, entry: ManifestEntry):
        self._service = service
        self._version = version
        self.path = entry.path
        self.digest = entry.digest
        self.size = entry.size

    @property
    def name(self) -> str:
        return self.path

    def download(self, root: str | os.PathLike[str] | None = None, overwrite: bool = False) -> Path:
        """Write this one file under `root` (default: the artifact's default folder); a
        different file of the user's at its place is a conflict unless `overwrite`."""
        target = Path(root) if root is not None else default_root(self._version)
        return self._service.download_entry(self._version, ManifestEntry(self.path, self.digest, self.size),
                                            target, overwrite=overwrite)

    def __repr__(self) -> str:
        return f"ArtifactEntry(path={self.path!r}, size={self.size}, digest={self.digest[:12]}...)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArtifactEntry) and (self.path, self.digest, self.size) == (
            other.path, other.digest, other.size)
