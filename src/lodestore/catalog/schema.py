"""The catalog's tables, as SQLAlchemy Core metadata.

This module is what the code queries against; the migrations under ``migrations/``
are what creates the tables. They must agree: ``tests/catalog`` checks that a
freshly migrated database matches this metadata.

Types are kept portable so the same code runs on SQLite and PostgreSQL: JSON,
BigInteger for byte counts, and `UTCDateTime` for timestamps (always UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from lodestore.catalog.dialect import bytewise_type

# Every string column compares byte-wise on PostgreSQL too (COLLATE "C"), so sort orders,
# ranges and comparisons are SQLite's and Python's everywhere (catalog/dialect.py).
NAME = bytewise_type(String(128))  # names.MAX_NAME_LENGTH
DIGEST = bytewise_type(String(160))  # "algo:hex" of any hash we may adopt, with room to spare
RUN_ID = bytewise_type(String(128))
STATE = bytewise_type(String(16))
TEXT = bytewise_type(Text())
PATH = TEXT  # entry paths: "sorted by path" is Python's str order
VERSION_STATES = ("live", "deleted", "broken")
RUN_STATES = ("running", "finished", "failed", "crashed")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no timezone-aware type: SQLAlchemy would hand back naive values. We store
    UTC there and re-attach the zone on read, so callers always get aware datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the catalog stores aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    # Stable constraint names, so later migrations (and SQLite batch mode) can refer to them.
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", NAME, nullable=False),
    Column("type", NAME, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("description", TEXT),
    Column("retention", JSON),  # retention policy (keep last N, max age...), None = keep all
    # Highest version index ever handed out; kept here so indexes are never reused even
    # after versions are purged, and so writers lock this row to serialise numbering.
    Column("last_index", Integer),
    UniqueConstraint("project_id", "name"),
    Index(None, "type"),
    Index(None, "name"),  # search name=x across projects (migration 0002)
)

versions = Table(
    "versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("artifact_id", Integer, ForeignKey("artifacts.id", ondelete="CASCADE"), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("digest", DIGEST, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("description", TEXT),
    Column("metadata", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by_run", RUN_ID, ForeignKey("runs.id", ondelete="SET NULL")),
    Column("state", STATE, nullable=False, server_default="live"),
    Column("deleted_at", UTCDateTime),
    Column("ttl_seconds", BigInteger),
    UniqueConstraint("artifact_id", "idx"),
    CheckConstraint("state IN ('live', 'deleted', 'broken')", name="state"),
    Index(None, "artifact_id", "digest"),  # "same content already logged?" on every commit
    Index(None, "digest"),
    Index(None, "created_at"),
    Index(None, "created_by_run"),
    Index(None, "state", "deleted_at"),  # gc / ttl sweeps
)

manifest_entries = Table(
    "manifest_entries",
    metadata,
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
    Column("path", PATH, nullable=False),
    Column("digest", DIGEST, nullable=False),
    Column("size", BigInteger, nullable=False),
    PrimaryKeyConstraint("version_id", "path"),
    Index(None, "digest"),  # "which versions hold this file?" and gc
    # On SQLite the rows live in the primary-key b-tree: a manifest streams in path order
    # without a separate rowid lookup, and the table is about a third smaller.
    sqlite_with_rowid=False,
)

aliases = Table(
    "aliases",
    metadata,
    Column("artifact_id", Integer, ForeignKey("artifacts.id", ondelete="CASCADE"), nullable=False),
    Column("alias", NAME, nullable=False),
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
    PrimaryKeyConstraint("artifact_id", "alias"),
    Index(None, "version_id"),
    Index(None, "alias"),  # search alias:x from the alias side (migration 0002)
)

alias_events = Table(
    "alias_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("artifact_id", Integer, ForeignKey("artifacts.id", ondelete="CASCADE"), nullable=False),
    Column("alias", NAME, nullable=False),
    # History outlives purged versions: the reference is cleared but the index (which is
    # never reused) stays, so `alias_history` still says "best: v3 -> v5".
    Column("from_version_id", Integer, ForeignKey("versions.id", ondelete="SET NULL")),
    Column("to_version_id", Integer, ForeignKey("versions.id", ondelete="SET NULL")),
    Column("from_idx", Integer),
    Column("to_idx", Integer),
    Column("run_id", RUN_ID, ForeignKey("runs.id", ondelete="SET NULL")),
    Column("at", UTCDateTime, nullable=False),
    Index(None, "artifact_id", "id"),
)

version_tags = Table(
    "version_tags",
    metadata,
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
    Column("tag", NAME, nullable=False),
    PrimaryKeyConstraint("version_id", "tag"),
    Index(None, "tag"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", RUN_ID, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", TEXT),
    Column("group_name", TEXT),
    Column("job_type", TEXT),
    Column("tags", JSON, nullable=False),
    Column("notes", TEXT),
    Column("config", JSON, nullable=False),
    Column("summary", JSON, nullable=False),
    Column("state", STATE, nullable=False),
    Column("exit_code", Integer),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("heartbeat_at", UTCDateTime),
    Column("host", TEXT),
    Column("pid", Integer),
    CheckConstraint("state IN ('running', 'finished', 'failed', 'crashed')", name="state"),
    Index(None, "project_id", "created_at"),
    Index(None, "state", "heartbeat_at"),  # finding crashed runs: running but silent
    Index(None, "group_name"),  # a sweep's runs: runs(filters={"group": ...})
    Index(None, "job_type"),  # run.job_type=train (migration 0002)
)

run_history = Table(
    "run_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", RUN_ID, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("data", JSON, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index(None, "run_id", "step"),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", RUN_ID, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("run_id", "version_id"),
    Index(None, "version_id"),  # "who used this version?" before deleting it
)

run_outputs = Table(
    "run_outputs",
    metadata,
    Column("run_id", RUN_ID, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("run_id", "version_id"),
    Index(None, "version_id"),
)

# One row: who this catalog is and how many times its set of versions changed. The
# content store keeps a copy of both (store/binding.py), so a catalog that was deleted,
# emptied or put back from an old backup is recognised before gc sweeps the bytes of
# versions it does not know (migration 0003).
catalog_instance = Table(
    "catalog_instance",
    metadata,
    Column("instance_id", bytewise_type(String(36)), primary_key=True),
    Column("generation", BigInteger, nullable=False),
)

# Distributed drafts (migration 0004): one version written by many processes. Each part
# (one writer's files, under a part id) is kept until `finish` merges every part into a
# version; an open draft's files are kept alive against gc until it expires.
DRAFT_STATES = ("open", "sealed", "finished", "aborted")
drafts = Table(
    "drafts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project", NAME, nullable=False),
    Column("name", NAME, nullable=False),
    Column("type", NAME, nullable=False),
    Column("distributed_id", bytewise_type(String(256)), nullable=False),
    Column("state", STATE, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="SET NULL")),
    CheckConstraint("state IN ('open', 'sealed', 'finished', 'aborted')", name="state"),
    Index(None, "project", "name", "distributed_id"),
    Index(None, "state", "expires_at"),
)

# One row per draft key (migration 0006), created with INSERT ... ON CONFLICT DO NOTHING and
# then locked (SELECT ... FOR UPDATE) by every `open_draft` of that key: two first upserts
# of one draft at once on PostgreSQL make one draft, not two (SQLite's writers are serial).
draft_keys = Table(
    "draft_keys",
    metadata,
    Column("project", NAME, nullable=False),
    Column("name", NAME, nullable=False),
    Column("distributed_id", bytewise_type(String(256)), nullable=False),
    PrimaryKeyConstraint("project", "name", "distributed_id"),
)

draft_parts = Table(
    "draft_parts",
    metadata,
    Column("draft_id", Integer, ForeignKey("drafts.id", ondelete="CASCADE"), nullable=False),
    Column("part_id", bytewise_type(String(256)), nullable=False),
    Column("digest", DIGEST, nullable=False),  # of the part's files: same id, same digest, or a conflict
    Column("metadata", JSON, nullable=False),
    Column("run_id", RUN_ID),
    Column("added_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("draft_id", "part_id"),
)

draft_files = Table(
    "draft_files",
    metadata,
    Column("draft_id", Integer, ForeignKey("drafts.id", ondelete="CASCADE"), nullable=False),
    Column("part_id", bytewise_type(String(256)), nullable=False),
    Column("path", PATH, nullable=False),
    Column("digest", DIGEST, nullable=False),
    Column("size", BigInteger, nullable=False),
    PrimaryKeyConstraint("draft_id", "part_id", "path"),
    Index(None, "digest"),
)

# Reference entries (migration 0005): files a version names by URI without storing their
# bytes (s3://, file://, http(s)://), with what identifies their content.
reference_entries = Table(
    "reference_entries",
    metadata,
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
    Column("path", PATH, nullable=False),
    Column("uri", TEXT, nullable=False),
    Column("size", BigInteger),
    Column("digest", DIGEST),  # "blake3:<hex>", "sha256:<hex>" as given, ...; None: not checksummed
    Column("etag", bytewise_type(String(256))),  # S3/HTTP ETag: an opaque change detector (a multipart ETag is no MD5)
    Column("object_version", bytewise_type(String(1024))),  # S3 version id
    Column("last_modified", bytewise_type(String(64))),
    PrimaryKeyConstraint("version_id", "path"),
)
