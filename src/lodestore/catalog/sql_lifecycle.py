"""The lifecycle of versions in the SQL catalog: soft delete, restore, purge, state
(broken), where `latest` goes afterwards, and retention policies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from lodestore.catalog.records import LATEST, VersionRecord
from lodestore.catalog.schema import aliases, artifacts, versions
from lodestore.catalog.sql_aliases import drop_alias, move_alias
from lodestore.catalog.sql_database import Database
from lodestore.catalog.sql_identity import IdentityStore
from lodestore.catalog.sql_lookups import find_artifact, load_version, require_run, version_row
from lodestore.catalog.sql_rows import AnyRow
from lodestore.catalog.sql_values import now_utc
from lodestore.errors import ConflictError, InvalidInputError, NotFoundError


def latest_heir(conn: Connection, artifact_id: int) -> AnyRow | None:
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


def repoint_latest(conn: Connection, artifact_id: int, run_id: str | None, now: datetime) -> None:
    """After a state change: move `latest` onto the newest usable version (recorded)."""
    heir = latest_heir(conn, artifact_id)
    if heir is not None:
        move_alias(conn, artifact_id, LATEST, heir.id, heir.idx, run_id, now)


class LifecycleStore:
    """Delete, restore, purge and mark versions broken; each artifact's retention policy.
    Deleting and purging change the set of versions, so they go through `identity`."""

    def __init__(self, db: Database, identity: IdentityStore) -> None:
        self.db = db
        self.identity = identity

    def delete_version(self, version_id: int, run_id: str | None = None) -> VersionRecord:
        now = now_utc()
        with self.identity.writing_versions() as conn:
            v = version_row(conn, version_id)
            if run_id is not None:
                require_run(conn, run_id)
            if v.state == "deleted":
                return load_version(conn, version_id)
            conn.execute(
                update(versions).where(versions.c.id == v.id).values(state="deleted", deleted_at=now))
            held = conn.execute(select(aliases.c.alias).where(aliases.c.version_id == v.id)).scalars().all()
            for alias in sorted(held):
                if alias == LATEST:
                    heir = latest_heir(conn, v.artifact_id)
                    if heir is not None:
                        move_alias(conn, v.artifact_id, LATEST, heir.id, heir.idx, run_id, now)
                        continue
                drop_alias(conn, v.artifact_id, alias, v.id, v.idx, run_id, now)
            return load_version(conn, version_id)

    def purge_version(self, version_id: int) -> None:
        with self.identity.writing_versions() as conn:
            v = version_row(conn, version_id)
            if v.state != "deleted":
                raise ConflictError(
                    f"version id {version_id} (v{v.idx}) is {v.state}; delete it before purging")
            # Children go through ON DELETE CASCADE / SET NULL (foreign keys are on).
            conn.execute(delete(versions).where(versions.c.id == version_id))

    def set_version_state(self, version_id: int, state: str) -> VersionRecord:
        if state not in ("live", "broken"):
            raise InvalidInputError(
                f"state must be 'live' or 'broken' (use delete_version to delete), got {state!r}")
        with self.db.writing() as conn:
            v = version_row(conn, version_id)
            if v.state == "deleted":
                raise ConflictError(f"version id {version_id} (v{v.idx}) is deleted; its state cannot change")
            if v.state == state:
                return load_version(conn, version_id)
            conn.execute(update(versions).where(versions.c.id == version_id).values(state=state))
            repoint_latest(conn, v.artifact_id, None, now_utc())
            return load_version(conn, version_id)

    def restore_version(self, version_id: int, run_id: str | None = None,
                        state: str = "live") -> VersionRecord:
        if state not in ("live", "broken"):
            raise InvalidInputError(f"a version is restored 'live' or 'broken', not {state!r}")
        now = now_utc()
        with self.db.writing() as conn:
            row = conn.execute(select(versions.c.id).where(versions.c.id == version_id)).first()
            if row is None:
                raise NotFoundError(f"no version with id {version_id} (it may have been purged for good)")
            v = version_row(conn, version_id)
            if run_id is not None:
                require_run(conn, run_id)
            if v.state != "deleted":
                return load_version(conn, version_id)
            conn.execute(update(versions).where(versions.c.id == v.id).values(state=state, deleted_at=None))
            newest = latest_heir(conn, v.artifact_id)
            if newest is not None and newest.id == v.id:
                move_alias(conn, v.artifact_id, LATEST, v.id, v.idx, run_id, now)
            return load_version(conn, version_id)

    def get_retention(self, project: str, name: str) -> dict[str, Any] | None:
        with self.db.reading() as conn:
            policy: dict[str, Any] | None = find_artifact(conn, project, name).retention
            return policy

    def set_retention(self, project: str, name: str, policy: dict[str, Any] | None) -> None:
        if policy is not None and not isinstance(policy, dict):
            raise InvalidInputError("a retention policy is a dict or None")
        with self.db.writing() as conn:
            art = find_artifact(conn, project, name, lock=True)
            conn.execute(update(artifacts).where(artifacts.c.id == art.id).values(retention=policy))
