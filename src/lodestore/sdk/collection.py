"""`ArtifactCollection`: one artifact with all its versions, as W&B's
`Api().artifact_collection(type, name)` returns it (a W&B "collection" is what
lodestore calls an artifact; its versions are v0, v1, ...)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lodestore.catalog.records import ArtifactRecord, VersionRecord

if TYPE_CHECKING:
    from lodestore.sdk.service import Service

ArtifactOf = Callable[["Service", VersionRecord], Any]  # Artifact._from_record, passed in (no import cycle)


class ArtifactCollection:
    """The versions of one artifact; read from the store when asked, so versions logged
    later appear."""

    def __init__(self, service: Service, record: ArtifactRecord, artifact_of: ArtifactOf):
        self._service = service
        self._record = record
        self._artifact_of = artifact_of

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def type(self) -> str:
        return self._record.type

    @property
    def project(self) -> str:
        return self._record.project

    @property
    def entity(self) -> None:
        """W&B's account; a lodestore store has none."""
        return None

    @property
    def id(self) -> int:
        return self._record.id

    @property
    def created_at(self) -> datetime:
        return self._record.created_at

    @property
    def aliases(self) -> list[str]:
        """Every alias held by one of its live versions (`latest` included), sorted."""
        return sorted({a for v in self._versions() for a in v.aliases})

    def _versions(self) -> list[VersionRecord]:
        return self._service.versions(self._record.project, self._record.name)

    def artifacts(self) -> list[Any]:
        """Its live versions, oldest first, as Artifacts."""
        return [self._artifact_of(self._service, v) for v in self._versions()]

    versions = artifacts  # W&B's older spelling

    def is_sequence(self) -> bool:
        """W&B: True for a collection of versions of one artifact (not a portfolio)."""
        return True

    def __repr__(self) -> str:
        return f"<ArtifactCollection {self.project}/{self.name} type={self.type}>"
