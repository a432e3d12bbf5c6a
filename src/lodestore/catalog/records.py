"""The catalog's records: what its methods take and return (artifacts, versions and their
manifest entries, aliases' history, runs, drafts, diffs, lineage steps), and the keys
that order pages of them. Plain frozen dataclasses with no behaviour beyond naming
themselves, so every layer above the catalog (SDK, CLI, web) reads the same types and
none of them needs the catalog's interface (catalog/base.py) to do so.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

LATEST = "latest"


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a version: its path inside the artifact, content digest and size."""

    path: str
    digest: str
    size: int


@dataclass(frozen=True)
class ReferenceEntry:
    """A file a version names by URI without storing its bytes, with what identifies its
    content: a digest ("blake3:…" computed, "sha256:…" as given), an S3/HTTP ETag (opaque),
    an S3 version id, size and last-modified. None: not recorded (checksum=False)."""

    path: str
    uri: str
    size: int | None = None
    digest: str | None = None
    etag: str | None = None
    object_version: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class ArtifactRecord:
    id: int
    project: str
    name: str
    type: str
    created_at: datetime
    version_count: int = 0  # live versions
    latest_index: int | None = None
    total_size: int = 0  # logical bytes of live versions


@dataclass(frozen=True)
class VersionRecord:
    """A logged version. Files and digest are immutable; the rest is editable via update_version."""

    id: int
    artifact_id: int
    project: str
    name: str
    type: str
    index: int  # the N of "vN"
    digest: str  # digest of the manifest: identical content -> identical digest
    size: int  # logical bytes: files plus the recorded sizes of references (NewVersion.size)
    file_count: int
    description: str | None
    metadata: dict[str, Any]
    tags: tuple[str, ...]
    aliases: tuple[str, ...]  # includes "latest" when it points here, sorted with latest first
    created_at: datetime
    created_by_run: str | None  # run id
    state: str = "live"  # "live" | "deleted" (soft) | "broken" (fsck found missing bytes)
    deleted_at: datetime | None = None
    ttl_seconds: int | None = None

    @property
    def version(self) -> str:
        return f"v{self.index}"

    @property
    def qualified_name(self) -> str:
        return f"{self.project}/{self.name}:v{self.index}"


@dataclass(frozen=True)
class AliasEvent:
    """One move of an alias: from a version to another (either may be None)."""

    alias: str
    from_index: int | None
    to_index: int | None
    run_id: str | None
    at: datetime


@dataclass(frozen=True)
class RunRecord:
    id: str
    project: str
    name: str | None
    group: str | None
    job_type: str | None
    tags: tuple[str, ...]
    notes: str | None
    config: dict[str, Any]
    summary: dict[str, Any]
    state: str  # "running" | "finished" | "failed" | "crashed"
    exit_code: int | None
    created_at: datetime
    finished_at: datetime | None
    heartbeat_at: datetime | None
    host: str | None = None
    pid: int | None = None


@dataclass(frozen=True)
class HistoryRow:
    """One `run.log(...)` call: metrics at a step."""

    step: int
    data: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class CommitResult:
    version: VersionRecord
    created: bool  # False when identical content already existed and was returned


@dataclass
class NewVersion:
    """What the SDK hands to `commit_version` once every byte is in the content store."""

    project: str
    name: str
    type: str
    # sorted by path, unique paths; any sized collection read in order (a log of 1,000,000
    # files hands a ManifestBuffer, spilled to disk, read a page at a time as it is inserted)
    entries: Collection[ManifestEntry]
    digest: str
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)  # besides "latest"
    run_id: str | None = None
    ttl_seconds: int | None = None
    references: list[ReferenceEntry] = field(default_factory=list)  # no bytes stored (sdk/references.py)
    # A version copied from another store (push, pull, import: sdk/transfer.py) keeps when
    # it was made (None: now) and brings its producing run, created in the commit's own
    # transaction if this catalog lacks it (its id is then the run_id).
    created_at: datetime | None = None
    run: RunRecord | None = None

    @property
    def size(self) -> int:
        """The version's size, as W&B counts `artifact.size`: its files' bytes plus the
        recorded sizes of its reference entries (a reference recorded without a size, as
        with `checksum=False` or a Runicorn reference given no `size`, counts 0). The
        store holds none of a reference's bytes: stored and exclusive bytes leave them out."""
        return sum(e.size for e in self.entries) + sum(r.size or 0 for r in self.references)


@dataclass(frozen=True)
class CatalogIdentity:
    """Who a catalog is (`instance_id`, made once when it is created) and how many times
    its set of versions changed (`generation`). The content store keeps a copy of both,
    so a catalog that was deleted, emptied or restored from an old backup is recognised
    before gc sweeps the bytes of versions it does not know (store/binding.py)."""

    instance_id: str
    generation: int
    has_versions: bool  # any version row, live, deleted or broken


@dataclass(frozen=True)
class DraftRecord:
    """A distributed draft: one version being written by many processes, part by part
    (`run.upsert_artifact`), until one `finish` merges the parts into a version."""

    id: int
    project: str
    name: str
    type: str
    distributed_id: str
    state: str  # "open" | "sealed" (being finished) | "finished" | "aborted"
    created_at: datetime
    updated_at: datetime
    expires_at: datetime  # an open draft past this is expired: no parts accepted, gc may sweep
    version_id: int | None  # the version a finish made
    part_count: int = 0
    file_count: int = 0
    size: int = 0

    @property
    def qualified_name(self) -> str:
        return f"{self.project}/{self.name}@{self.distributed_id}"

    def expired(self, now: datetime) -> bool:
        return self.state in ("open", "sealed") and self.expires_at <= now

    def shown_state(self, now: datetime) -> str:
        return "expired" if self.expired(now) else self.state


@dataclass(frozen=True)
class DraftPart:
    """One writer's contribution to a draft, under its part id."""

    part_id: str
    digest: str  # of its entries: re-sending the same part is a no-op, other content a conflict
    metadata: dict[str, Any]
    run_id: str | None
    added_at: datetime
    entries: tuple[ManifestEntry, ...]


@dataclass(frozen=True)
class SchemaUpgrade:
    """What an upgrade of a catalog's schema did (`lode db upgrade`): the revision found
    (None: an empty database, now created) and the revision now stamped."""

    catalog: str  # the catalog's URL, password masked
    from_revision: str | None
    to_revision: str

    @property
    def changed(self) -> bool:
        return self.from_revision != self.to_revision


DIFF_SECTIONS = ("added", "removed", "modified", "renamed")


@dataclass(frozen=True)
class DiffCounts:
    """How many entries each list of a diff holds (catalog/diff_pages.py)."""

    added: int
    removed: int
    modified: int
    renamed: int


@dataclass(frozen=True)
class LineageStep:
    """One hop of the lineage graph from a set of versions (`Catalog.lineage_step`): its
    links as `lineage_hop` gives them, and the records of the versions it starts from or
    reaches and of its runs, read in the same transaction (ids gone meanwhile left out)."""

    links: list[tuple[str, int, int | None]]
    versions: dict[int, VersionRecord]
    runs: dict[str, RunRecord]


@dataclass(frozen=True)
class DiffRow:
    """One row of a diff list: `old` is None for an added file, `new` for a removed one."""

    old: ManifestEntry | None
    new: ManifestEntry | None


# Keyset pages (sql_pages.py; issue 13): the orders a page of artifacts or versions may
# take, and the key of a record in that order. A page's cursor is the key of its last
# record; the next page is the records whose key sorts after it (the last key element
# is unique, so no two records tie). Keys hold JSON scalars (timestamps as isoformat).
ARTIFACT_ORDERS = ("name", "type", "created", "versions", "size")
VERSION_ORDERS = ("index", "created", "size", "files")


def artifact_page_key(a: ArtifactRecord, order: str) -> tuple[Any, ...]:
    return {"name": (a.project, a.name), "type": (a.type, a.project, a.name),
            "created": (a.created_at.isoformat(), a.id), "versions": (a.version_count, a.id),
            "size": (a.total_size, a.id)}[order]


def search_page_key(v: VersionRecord) -> tuple[Any, ...]:
    """A version's key in search results (newest first: created, then id)."""
    return (v.created_at.isoformat(), v.id)


def version_page_key(v: VersionRecord, order: str) -> tuple[Any, ...]:
    return {"index": (v.index,), "created": (v.created_at.isoformat(), v.index), "size": (v.size, v.index),
            "files": (v.file_count, v.index)}[order]
