"""Aliases in the SQL catalog: moving one onto a version (every move recorded in
alias_events, so `lode alias history` can say who moved what when), dropping one,
setting a version's aliases, and reading the history.

`move_alias`, `drop_alias` and `set_version_aliases` work inside the caller's write
transaction: committing a version and the lifecycle (delete, restore, state) move
`latest` with them. `AliasStore` holds the operations that are a transaction of their own.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from lodestore.catalog.records import LATEST, AliasEvent
from lodestore.catalog.schema import alias_events, aliases, versions
from lodestore.catalog.sql_database import Database
from lodestore.catalog.sql_lookups import find_artifact, lock_artifact, require_run, resolve_selector
from lodestore.catalog.sql_rows import AnyRow, alias_order, listing
from lodestore.catalog.sql_values import now_utc
from lodestore.errors import ConflictError, InvalidNameError, NotFoundError
from lodestore.names import validate_alias


def move_alias(conn: Connection, artifact_id: int, alias: str, version_id: int, idx: int,
               run_id: str | None, now: datetime) -> None:
    """Point `alias` at the version, recording the move (nothing if already there)."""
    lock_artifact(conn, artifact_id)  # read, then insert or update: no other mover between
    cur = conn.execute(
        select(aliases.c.version_id, versions.c.idx)
        .join(versions, versions.c.id == aliases.c.version_id)
        .where(aliases.c.artifact_id == artifact_id, aliases.c.alias == alias)
    ).first()
    if cur is not None and cur.version_id == version_id:
        return
    if cur is None:
        conn.execute(insert(aliases).values(artifact_id=artifact_id, alias=alias, version_id=version_id))
    else:
        conn.execute(
            update(aliases)
            .where(aliases.c.artifact_id == artifact_id, aliases.c.alias == alias)
            .values(version_id=version_id)
        )
    conn.execute(insert(alias_events).values(
        artifact_id=artifact_id, alias=alias, run_id=run_id, at=now,
        from_version_id=cur.version_id if cur else None, from_idx=cur.idx if cur else None,
        to_version_id=version_id, to_idx=idx,
    ))


def drop_alias(conn: Connection, artifact_id: int, alias: str, from_id: int, from_idx: int,
               run_id: str | None, now: datetime) -> None:
    """Remove `alias` from the artifact, recording the drop."""
    lock_artifact(conn, artifact_id)
    conn.execute(delete(aliases).where(aliases.c.artifact_id == artifact_id, aliases.c.alias == alias))
    conn.execute(insert(alias_events).values(
        artifact_id=artifact_id, alias=alias, run_id=run_id, at=now,
        from_version_id=from_id, from_idx=from_idx, to_version_id=None, to_idx=None,
    ))


def set_version_aliases(conn: Connection, v: AnyRow, add: list[str], remove: list[str] | None,
                        run_id: str | None, now: datetime) -> None:
    """Move each alias of `add` onto version `v` (a `sql_lookups.version_row`) and drop
    those of `remove` it holds; `remove=None`: drop every custom alias it holds that is
    not in `add` (assigning a whole list). `latest` is never dropped here: it follows the
    newest version."""
    lock_artifact(conn, v.artifact_id)
    if add and v.state == "deleted":
        raise ConflictError(f"version id {v.id} (v{v.idx}) is deleted; it cannot take aliases")
    if remove is None:
        held_q = select(aliases.c.alias).where(aliases.c.version_id == v.id, aliases.c.alias != LATEST)
    elif remove:
        held_q = select(aliases.c.alias).where(aliases.c.version_id == v.id, aliases.c.alias.in_(remove))
    else:
        held_q = None
    held = set(conn.execute(held_q).scalars()) if held_q is not None else set()
    for alias in sorted(held - set(add)):
        drop_alias(conn, v.artifact_id, alias, v.id, v.idx, run_id, now)
    for alias in add:
        move_alias(conn, v.artifact_id, alias, v.id, v.idx, run_id, now)


class AliasStore:
    """Custom aliases set and removed by hand, and every artifact's alias history."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def set_alias(self, project: str, name: str, alias: str, index: int, run_id: str | None = None) -> None:
        validate_alias(alias)
        if alias == LATEST:
            raise InvalidNameError(f"{LATEST!r} is managed by the catalog (it follows the newest version)")
        with self.db.writing() as conn:
            art = find_artifact(conn, project, name)
            if run_id is not None:
                require_run(conn, run_id)
            vid = resolve_selector(conn, art, project, f"v{int(index)}", include_deleted=False)
            move_alias(conn, art.id, alias, vid, int(index), run_id, now_utc())

    def remove_alias(self, project: str, name: str, alias: str, run_id: str | None = None) -> None:
        if alias == LATEST:
            raise ConflictError(f"{LATEST!r} cannot be removed: it follows the newest version")
        with self.db.writing() as conn:
            art = find_artifact(conn, project, name)
            if run_id is not None:
                require_run(conn, run_id)
            cur = conn.execute(
                select(aliases.c.version_id, versions.c.idx)
                .join(versions, versions.c.id == aliases.c.version_id)
                .where(aliases.c.artifact_id == art.id, aliases.c.alias == alias)
            ).first()
            if cur is None:
                held = alias_order(
                    conn.execute(select(aliases.c.alias).where(aliases.c.artifact_id == art.id)).scalars())
                raise NotFoundError(f"{project}/{name} has no alias {alias!r}; {listing(held, 'aliases')}")
            drop_alias(conn, art.id, alias, cur.version_id, cur.idx, run_id, now_utc())

    def alias_history(self, project: str, name: str) -> list[AliasEvent]:
        e = alias_events.c
        with self.db.reading() as conn:
            art = find_artifact(conn, project, name)
            rows = conn.execute(
                select(e.alias, e.from_idx, e.to_idx, e.run_id, e.at)
                .where(e.artifact_id == art.id)
                .order_by(e.id)
            )
            return [AliasEvent(r.alias, r.from_idx, r.to_idx, r.run_id, r.at) for r in rows]
