"""Artifacts and their versions in the SQL catalog: committing a version (numbering,
its manifest, tags and aliases in one transaction), reading and listing versions,
editing what is editable, and search (the query language in query.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from types import EllipsisType
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from lodestore.catalog import query
from lodestore.catalog.dialect import insert_ignore
from lodestore.catalog.records import LATEST, ArtifactRecord, CommitResult, NewVersion, VersionRecord
from lodestore.catalog.schema import aliases, artifacts, projects, run_outputs, version_tags, versions
from lodestore.catalog.sql_aliases import move_alias, set_version_aliases
from lodestore.catalog.sql_database import Database
from lodestore.catalog.sql_identity import IdentityStore
from lodestore.catalog.sql_lookups import (
    ensure_project,
    find_artifact,
    find_version_id,
    link_run,
    load_version,
    require_run,
    version_row,
)
from lodestore.catalog.sql_manifests import insert_entries, insert_references
from lodestore.catalog.sql_rows import AnyRow, load_versions, versions_by_id
from lodestore.catalog.sql_runs import copy_run
from lodestore.catalog.sql_values import (
    NOT_DELETED,
    aware,
    batches,
    custom_aliases,
    metadata_keys,
    now_utc,
    tag_names,
)
from lodestore.errors import ConflictError, InvalidInputError
from lodestore.json_values import json_dict
from lodestore.names import validate_name
from lodestore.testhooks import pause_point


def _check_digest_and_ttl(new: NewVersion) -> None:
    if not isinstance(new.digest, str) or not new.digest:
        raise InvalidInputError("a version needs its manifest digest")
    if new.ttl_seconds is not None and (not isinstance(new.ttl_seconds, int) or new.ttl_seconds <= 0):
        raise InvalidInputError(f"ttl_seconds must be a positive number of seconds, got {new.ttl_seconds!r}")


def _ensure_artifact(conn: Connection, pid: int, new: NewVersion, now: datetime) -> AnyRow:
    """The artifact row, created if new (two writers may race: the insert does nothing for
    the second), and locked until the commit ends (PostgreSQL: FOR UPDATE; SQLite: the
    write lock), so the version number is read and written by one writer at a time."""
    q = select(artifacts).where(artifacts.c.project_id == pid, artifacts.c.name == new.name).with_for_update()
    art = conn.execute(q).first()
    if art is None:
        conn.execute(insert_ignore(conn, artifacts, ["project_id", "name"]).values(
            project_id=pid, name=new.name, type=new.type, created_at=now
        ))
        art = conn.execute(q).one()
    if art.type != new.type:
        raise ConflictError(
            f"artifact {new.project}/{new.name} has type {art.type!r}, not {new.type!r}; "
            f"an artifact keeps one type (log under another name)"
        )
    return art


def _next_index(conn: Connection, art: AnyRow) -> int:
    """One past every index the artifact ever used (purged versions' numbers are not reused):
    its counter, `last_index`, raised in the same transaction. Only called holding the
    artifact's row; the unique (artifact_id, idx) constraint is the last guard. The MAX()
    covers catalogs from before the counter, inside the same lock."""
    used = conn.execute(select(func.max(versions.c.idx)).where(versions.c.artifact_id == art.id)).scalar()
    return max(-1 if art.last_index is None else art.last_index, -1 if used is None else used) + 1


class VersionStore:
    """Committing, reading, listing, editing and searching versions. Committing changes
    the set of versions, so it goes through `identity`."""

    def __init__(self, db: Database, identity: IdentityStore) -> None:
        self.db = db
        self.identity = identity

    def commit_version(self, new: NewVersion, stored: Callable[[], None] | None = None) -> CommitResult:
        validate_name(new.project, "project name")
        validate_name(new.name, "artifact name")
        validate_name(new.type, "artifact type")
        wanted_aliases = custom_aliases(new.aliases)
        tags = tag_names(new.tags)
        _check_digest_and_ttl(new)
        meta = json_dict(new.metadata or {}, "metadata")
        now = now_utc()
        created_at = aware(new.created_at, "created_at") or now
        if new.run is not None and new.run_id not in (None, new.run.id):
            raise InvalidInputError(f"run_id {new.run_id!r} is not the id of the run given ({new.run.id!r})")
        run_id = new.run.id if new.run is not None else new.run_id
        with self.identity.writing_versions() as conn:
            if new.run is not None:
                copy_run(conn, new.run)
            if run_id is not None:
                require_run(conn, run_id)
            pid = ensure_project(conn, new.project, now)
            art = _ensure_artifact(conn, pid, new, now)
            same = conn.execute(
                select(versions.c.id, versions.c.idx)
                .where(versions.c.artifact_id == art.id, versions.c.digest == new.digest,
                       versions.c.state == "live")
                .order_by(versions.c.idx)
                .limit(1)
            ).first()
            if same is not None:
                # Identical content: no new version, but the caller's aliases still apply.
                for alias in wanted_aliases:
                    move_alias(conn, art.id, alias, same.id, same.idx, run_id, now)
                if run_id is not None:
                    link_run(conn, run_outputs, run_id, same.id, now)
                if stored is not None:
                    stored()
                return CommitResult(load_version(conn, same.id), created=False)

            idx = _next_index(conn, art)
            # inserted_primary_key is typed Optional, but a single-row INSERT always has one.
            vid = conn.execute(insert(versions).values(
                artifact_id=art.id, idx=idx, digest=new.digest, size=new.size,
                file_count=len(new.entries), description=new.description, metadata=meta,
                created_at=created_at, created_by_run=run_id, state="live", ttl_seconds=new.ttl_seconds,
            )).inserted_primary_key[0]  # type: ignore[index]
            insert_entries(conn, vid, new.entries)
            insert_references(conn, vid, new.references)
            if tags:
                conn.execute(insert(version_tags), [{"version_id": vid, "tag": t} for t in tags])
            for alias in [LATEST, *wanted_aliases]:
                move_alias(conn, art.id, alias, vid, idx, run_id, now)
            if run_id is not None:
                link_run(conn, run_outputs, run_id, vid, now)
            conn.execute(update(artifacts).where(artifacts.c.id == art.id).values(last_index=idx))
            if stored is not None:  # the version's bytes, committed meanwhile (Catalog.commit_version)
                stored()
            pause_point("catalog-commit")  # tests cut the connection here, inside the transaction
            return CommitResult(load_version(conn, vid), created=True)

    def get_version(self, project: str, name: str, selector: str | None = None,
                    include_deleted: bool = False) -> VersionRecord:
        with self.db.reading() as conn:
            return load_version(conn, find_version_id(conn, project, name, selector, include_deleted))

    def get_version_by_id(self, version_id: int) -> VersionRecord:
        with self.db.reading() as conn:
            return load_version(conn, version_id)

    def get_versions(self, version_ids: Iterable[int]) -> dict[int, VersionRecord]:
        ids = sorted(set(version_ids))
        if not ids:
            return {}
        with self.db.reading() as conn:
            return {v.id: v for chunk in batches(ids) for v in versions_by_id(conn, chunk)}

    def list_artifacts(self, project: str | None = None, type: str | None = None,
                       name: str | None = None) -> list[ArtifactRecord]:
        live = select(
            versions.c.artifact_id,
            func.count().label("n"),
            func.coalesce(func.sum(versions.c.size), 0).label("total"),
        ).where(NOT_DELETED).group_by(versions.c.artifact_id).subquery()
        latest = (
            select(aliases.c.artifact_id, versions.c.idx)
            .join(versions, versions.c.id == aliases.c.version_id)
            .where(aliases.c.alias == LATEST)
            .subquery()
        )
        q = (
            select(artifacts, projects.c.name.label("project_name"), live.c.n, live.c.total,
                   latest.c.idx.label("latest_idx"))
            .join(projects, projects.c.id == artifacts.c.project_id)
            .outerjoin(live, live.c.artifact_id == artifacts.c.id)
            .outerjoin(latest, latest.c.artifact_id == artifacts.c.id)
            .order_by(projects.c.name, artifacts.c.name)
        )
        if project is not None:
            q = q.where(projects.c.name == project)
        if type is not None:
            q = q.where(artifacts.c.type == type)
        if name is not None:
            q = q.where(artifacts.c.name == name)
        with self.db.reading() as conn:
            return [
                ArtifactRecord(
                    id=r.id, project=r.project_name, name=r.name, type=r.type, created_at=r.created_at,
                    version_count=r.n or 0, latest_index=r.latest_idx, total_size=int(r.total or 0),
                )
                for r in conn.execute(q)
            ]

    def list_versions(self, project: str, name: str, include_deleted: bool = False) -> list[VersionRecord]:
        with self.db.reading() as conn:
            art = find_artifact(conn, project, name)
            where = versions.c.artifact_id == art.id
            return load_versions(conn, where if include_deleted else where & NOT_DELETED, versions.c.idx)

    def list_projects(self) -> list[str]:
        with self.db.reading() as conn:
            return list(conn.execute(select(projects.c.name).order_by(projects.c.name)).scalars())

    def artifact_types(self, project: str | None = None) -> list[str]:
        q = select(artifacts.c.type).distinct().order_by(artifacts.c.type)
        if project is not None:
            q = q.join(projects, projects.c.id == artifacts.c.project_id).where(projects.c.name == project)
        with self.db.reading() as conn:
            return list(conn.execute(q).scalars())

    def update_version(self, version_id: int, *, description: str | EllipsisType | None = ...,
                       metadata: dict[str, Any] | None = None, tags: Iterable[str] | None = None,
                       aliases: Iterable[str] | None = None, run_id: str | None = None,
                       set_metadata: dict[str, Any] | None = None,
                       unset_metadata: Iterable[str] | None = None,
                       add_tags: Iterable[str] | None = None, remove_tags: Iterable[str] | None = None,
                       add_aliases: Iterable[str] | None = None,
                       remove_aliases: Iterable[str] | None = None) -> VersionRecord:
        if description is not ... and description is not None and not isinstance(description, str):
            raise InvalidInputError(f"description must be a string or None, got {type(description).__name__}")
        for field_, whole, *changes in (("metadata", metadata, set_metadata, unset_metadata),
                                        ("tags", tags, add_tags, remove_tags),
                                        ("aliases", aliases, add_aliases, remove_aliases)):
            if whole is not None and any(c is not None for c in changes):
                raise InvalidInputError(f"pass {field_} as a whole value or as changes, not both")
        metadata = None if metadata is None else json_dict(metadata, "metadata")
        set_metadata = None if set_metadata is None else json_dict(set_metadata, "metadata")
        unset_keys = None if unset_metadata is None else metadata_keys(unset_metadata)
        wanted_tags = None if tags is None else tag_names(tags)
        tags_in, tags_out = tag_names(add_tags or ()), tag_names(remove_tags or ())
        wanted_aliases = None if aliases is None else custom_aliases(aliases)
        aliases_in, aliases_out = custom_aliases(add_aliases or ()), custom_aliases(remove_aliases or ())
        now = now_utc()
        with self.db.writing() as conn:
            v = version_row(conn, version_id)
            if run_id is not None:
                require_run(conn, run_id)
            values: dict[str, Any] = {}
            if description is not ...:
                values["description"] = description
            if metadata is not None:
                values["metadata"] = metadata
            elif set_metadata or unset_keys:
                # read and written in one transaction holding the write lock (SQLite) or the
                # version's row (PostgreSQL): no other edit lands between
                stored = conn.execute(select(versions.c.metadata).where(versions.c.id == version_id)
                                      .with_for_update()).scalar()
                merged = {k: val for k, val in (stored or {}).items() if k not in (unset_keys or ())}
                values["metadata"] = {**merged, **(set_metadata or {})}
            if values:
                conn.execute(update(versions).where(versions.c.id == version_id).values(**values))
            if wanted_tags is not None:
                conn.execute(delete(version_tags).where(version_tags.c.version_id == version_id))
                if wanted_tags:
                    conn.execute(insert(version_tags),
                                 [{"version_id": version_id, "tag": t} for t in wanted_tags])
            if tags_out:
                conn.execute(delete(version_tags).where(version_tags.c.version_id == version_id,
                                                        version_tags.c.tag.in_(tags_out)))
            if tags_in:
                conn.execute(insert_ignore(conn, version_tags, ["version_id", "tag"]),
                             [{"version_id": version_id, "tag": t} for t in tags_in])
            if wanted_aliases is not None:
                set_version_aliases(conn, v, wanted_aliases, None, run_id, now)
            if aliases_in or aliases_out:
                set_version_aliases(conn, v, aliases_in, aliases_out, run_id, now)
            return load_version(conn, version_id)

    def search_versions(self, text: str, limit: int | None = None,
                        liveness: query.Liveness | None = None) -> list[VersionRecord]:
        parsed = query.parse(text)
        with self.db.reading() as conn:
            wanted = query.needs_liveness(parsed, via_run=True)
            live = query.bind_liveness(conn, liveness) if wanted else liveness
            ids = query.version_ids_query(conn.dialect.name, parsed, limit, live)
            order = list(conn.execute(ids).scalars())
            if not order:
                return []
            # the id query again as a subquery: no bound-parameter limit however many match
            matched = ids.subquery()
            found = {v.id: v for v in load_versions(conn, versions.c.id.in_(select(matched.c.id)))}
            return [found[i] for i in order if i in found]
