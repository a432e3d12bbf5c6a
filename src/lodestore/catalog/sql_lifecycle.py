"""The lifecycle of versions in the SQL catalog: soft delete, restore, purge, state
(broken), where `latest` goes afterwards, retention policies and the digests versions
reference (for gc and accounting). A mixin of `SqlCatalog`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from lodestore.catalog.base import (
    LATEST,
    CatalogIdentity,
    VersionRecord,
)
from lodestore.catalog.schema import (
    aliases,
    artifacts,
    catalog_instance,
    manifest_entries,
    versions,
)
from lodestore.catalog.sql_values import (
    IN_BATCH,
    NOT_DELETED,
    now_utc,
)
from lodestore.errors import ConflictError, InvalidInputError, NotFoundError


class LifecycleSql:
    # --- identity and generation (see base.CatalogIdentity) -----------------------------
    def identity(self) -> CatalogIdentity:
        with self._reading() as conn:
            row = conn.execute(select(catalog_instance.c.instance_id, catalog_instance.c.generation)).first()
            has_versions = conn.execute(select(versions.c.id).limit(1)).first() is not None
        if row is None:  # only a database migrated by hand lacks the row; make it once
            with self._writing() as conn:
                row = self._instance_row(conn)
        return CatalogIdentity(row.instance_id, int(row.generation), has_versions)

    def _instance_row(self, conn: Connection) -> Any:
        row = conn.execute(select(catalog_instance.c.instance_id, catalog_instance.c.generation)).first()
        if row is None:
            conn.execute(catalog_instance.insert().values(instance_id=str(uuid.uuid4()), generation=0))
            row = conn.execute(select(catalog_instance.c.instance_id, catalog_instance.c.generation)).first()
        return row

    @contextmanager
    def _writing_versions(self) -> Iterator[Connection]:
        """A write transaction that changes the set of versions: it bumps the generation
        (first, so concurrent ones serialise on that row), and once it has committed
        the generation listener hears of it."""
        with self._writing() as conn:
            row = self._instance_row(conn)
            generation = int(row.generation) + 1
            conn.execute(update(catalog_instance).values(generation=generation))
            yield conn
        if self.on_generation is not None:
            self.on_generation(row.instance_id, generation)

    def delete_version(self, version_id: int, run_id: str | None = None) -> VersionRecord:
        now = now_utc()
        with self._writing_versions() as conn:
            v = self._version_row(conn, version_id)
            if run_id is not None:
                self._require_run(conn, run_id)
            if v.state == "deleted":
                return self._load_one(conn, version_id)
            conn.execute(update(versions).where(versions.c.id == v.id).values(state="deleted", deleted_at=now))
            held = conn.execute(select(aliases.c.alias).where(aliases.c.version_id == v.id)).scalars().all()
            for alias in sorted(held):
                if alias == LATEST:
                    heir = self._latest_heir(conn, v.artifact_id)
                    if heir is not None:
                        self._move_alias(conn, v.artifact_id, LATEST, heir.id, heir.idx, run_id, now)
                        continue
                self._drop_alias(conn, v.artifact_id, alias, v.id, v.idx, run_id, now)
            return self._load_one(conn, version_id)

    def purge_version(self, version_id: int) -> None:
        with self._writing_versions() as conn:
            v = self._version_row(conn, version_id)
            if v.state != "deleted":
                raise ConflictError(f"version id {version_id} (v{v.idx}) is {v.state}; delete it before purging")
            # Children go through ON DELETE CASCADE / SET NULL (foreign keys are on).
            conn.execute(delete(versions).where(versions.c.id == version_id))

    def set_version_state(self, version_id: int, state: str) -> VersionRecord:
        if state not in ("live", "broken"):
            raise InvalidInputError(f"state must be 'live' or 'broken' (use delete_version to delete), got {state!r}")
        with self._writing() as conn:
            v = self._version_row(conn, version_id)
            if v.state == "deleted":
                raise ConflictError(f"version id {version_id} (v{v.idx}) is deleted; its state cannot change")
            if v.state == state:
                return self._load_one(conn, version_id)
            conn.execute(update(versions).where(versions.c.id == version_id).values(state=state))
            self._repoint_latest(conn, v.artifact_id, None, now_utc())
            return self._load_one(conn, version_id)

    def _latest_heir(self, conn: Connection, artifact_id: int) -> Any:
        """The version `latest` belongs on: the newest usable (live) one; if none is
        usable, the newest broken one, so fetching `latest` explains it is broken."""
        for states in (("live",), ("live", "broken")):
            row = conn.execute(
                select(versions.c.id, versions.c.idx)
                .where(versions.c.artifact_id == artifact_id, versions.c.state.in_(states))
                .order_by(versions.c.idx.desc())
                .limit(1)
            ).first()
            if row is not None:
                return row
        return None

    def _repoint_latest(self, conn: Connection, artifact_id: int, run_id: str | None, now: datetime) -> None:
        """After a state change: move `latest` onto the newest usable version (recorded)."""
        heir = self._latest_heir(conn, artifact_id)
        if heir is not None:
            self._move_alias(conn, artifact_id, LATEST, heir.id, heir.idx, run_id, now)

    def referenced_digests(self, include_deleted: bool = True) -> set[str]:
        q = select(manifest_entries.c.digest).distinct()
        if not include_deleted:
            q = q.join(versions, versions.c.id == manifest_entries.c.version_id).where(NOT_DELETED)
        with self._reading() as conn:
            return set(conn.execute(q).scalars())

    def restore_version(self, version_id: int, run_id: str | None = None, state: str = "live") -> VersionRecord:
        if state not in ("live", "broken"):
            raise InvalidInputError(f"a version is restored 'live' or 'broken', not {state!r}")
        now = now_utc()
        with self._writing() as conn:
            row = conn.execute(select(versions.c.id).where(versions.c.id == version_id)).first()
            if row is None:
                raise NotFoundError(f"no version with id {version_id} (it may have been purged for good)")
            v = self._version_row(conn, version_id)
            if run_id is not None:
                self._require_run(conn, run_id)
            if v.state != "deleted":
                return self._load_one(conn, version_id)
            conn.execute(update(versions).where(versions.c.id == v.id).values(state=state, deleted_at=None))
            newest = self._latest_heir(conn, v.artifact_id)
            if newest is not None and newest.id == v.id:
                self._move_alias(conn, v.artifact_id, LATEST, v.id, v.idx, run_id, now)
            return self._load_one(conn, version_id)

    def get_retention(self, project: str, name: str) -> dict[str, Any] | None:
        with self._reading() as conn:
            return self._artifact(conn, project, name).retention

    def set_retention(self, project: str, name: str, policy: dict[str, Any] | None) -> None:
        if policy is not None and not isinstance(policy, dict):
            raise InvalidInputError("a retention policy is a dict or None")
        with self._writing() as conn:
            art = self._artifact(conn, project, name, lock=True)
            conn.execute(update(artifacts).where(artifacts.c.id == art.id).values(retention=policy))

    def version_digests(self, include_deleted: bool = True,
                        version_ids: Iterable[int] | None = None) -> Iterator[tuple[int, str, int]]:
        q = select(manifest_entries.c.version_id, manifest_entries.c.digest, manifest_entries.c.size)
        if not include_deleted:
            q = q.join(versions, versions.c.id == manifest_entries.c.version_id).where(NOT_DELETED)
        with self._reading() as conn:
            if version_ids is None:
                rows = conn.execute(q).all()
            else:
                ids = sorted(set(version_ids))
                rows = [r for i in range(0, len(ids), IN_BATCH)
                        for r in conn.execute(q.where(manifest_entries.c.version_id.in_(ids[i : i + IN_BATCH])))]
        for r in rows:
            yield r[0], r[1], r[2]

    def digest_holders(self, digests: Iterable[str]) -> Iterator[tuple[int, str]]:
        items = sorted(set(digests))
        q = select(manifest_entries.c.version_id, manifest_entries.c.digest).distinct()
        with self._reading() as conn:
            rows = [r for i in range(0, len(items), IN_BATCH)
                    for r in conn.execute(q.where(manifest_entries.c.digest.in_(items[i : i + IN_BATCH])))]
        for r in rows:
            yield r[0], r[1]
