"""The objects Runicorn's `get_metadata()` and `get_manifest()` return, so its guide's
samples run unchanged (``metadata.metadata['val_acc']``, ``manifest.total_files``,
``for file in manifest.files: file.path, file.size``).

Both stay readable as the plain dicts these methods returned before: the metadata
object is a mapping of the metadata keys (``m["val_acc"]``), the manifest a mapping of
entry path to ``{"digest", "size"}`` (``m["model.pth"]["size"]``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any


class _DictLike:
    """Equal to a plain dict with the same items (what these methods returned before),
    and to an object of its own class with the same fields."""

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(self))  # type: ignore[arg-type]
        if isinstance(other, Mapping):
            return dict(self) == dict(other)  # type: ignore[call-overload]
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class ManifestFile(_DictLike, Mapping[str, Any]):
    """One file of a manifest; also a mapping (``f["size"]``) as the old dict was.
    A reference (`uri` set) holds no bytes in the store: `digest` is what identifies
    its content (see sdk/references.py)."""

    path: str
    size: int
    digest: str
    uri: str | None = None

    @property
    def is_reference(self) -> bool:
        return self.uri is not None

    def _as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"digest": self.digest, "size": self.size}
        if self.uri is not None:
            d["uri"] = self.uri
        return d

    def __getitem__(self, key: str) -> Any:
        return self._as_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._as_dict())

    def __len__(self) -> int:
        return len(self._as_dict())


@dataclass(frozen=True, eq=False)
class ArtifactManifest(_DictLike, Mapping[str, ManifestFile]):
    """Every file of a version, sorted by path; a mapping of path -> ManifestFile."""

    files: tuple[ManifestFile, ...]

    @property
    def total_files(self) -> int:
        return len(self.files)

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def _by_path(self) -> dict[str, ManifestFile]:
        return {f.path: f for f in self.files}

    def __getitem__(self, path: str) -> ManifestFile:
        return self._by_path()[path]

    def __iter__(self) -> Iterator[str]:
        return (f.path for f in self.files)

    def __len__(self) -> int:
        return len(self.files)


@dataclass(frozen=True, eq=False)
class ArtifactMetadata(_DictLike, Mapping[str, Any]):
    """What Runicorn's ``artifact.get_metadata()`` shows of a version: its metadata
    (`metadata`, a copy) with the facts about it. A mapping of the metadata keys."""

    name: str
    type: str
    version: str | None  # "v3"; None for a draft
    project: str | None
    description: str | None
    metadata: dict[str, Any]
    tags: tuple[str, ...]
    aliases: tuple[str, ...]
    created_at: datetime | None  # None for a draft
    created_by: str | None  # the run id that logged it
    size_bytes: int
    file_count: int
    digest: str | None
    status: str  # "ready" once logged (Runicorn's word), "draft", "deleted", "broken"
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.metadata[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.metadata)

    def __len__(self) -> int:
        return len(self.metadata)
