"""Row lookups every part of the SQL catalog shares, each inside the caller's
transaction: a project, an artifact, a version (by id or by "vN"/alias), a run.

Each raises NotFoundError listing what does exist, so a typo gets an answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select

from lodestore.catalog.dialect import insert_ignore
from lodestore.catalog.records import LATEST, VersionRecord
from lodestore.catalog.schema import aliases, artifacts, projects, runs, versions
from lodestore.catalog.sql_rows import AnyRow, alias_order, close_matches, listing, versions_by_id
from lodestore.catalog.sql_values import NOT_DELETED, VERSION_RE
from lodestore.errors import NotFoundError


def project_id(conn: Connection, project: str) -> int:
    pid = conn.execute(select(projects.c.id).where(projects.c.name == project)).scalar()
    if pid is None:
        names = list(conn.execute(select(projects.c.name).order_by(projects.c.name)).scalars())
        raise NotFoundError(
            f"project {project!r} does not exist{close_matches(project, names)}; {listing(names, 'projects')}"
        )
    return int(pid)


def ensure_project(conn: Connection, project: str, now: datetime) -> int:
    """The project's id, creating the project if it is new (two writers may race: the
    insert does nothing for the second)."""
    pid = conn.execute(select(projects.c.id).where(projects.c.name == project)).scalar()
    if pid is None:
        conn.execute(insert_ignore(conn, projects, ["name"]).values(name=project, created_at=now))
        pid = conn.execute(select(projects.c.id).where(projects.c.name == project)).scalar_one()
    return int(pid)


def find_artifact(conn: Connection, project: str, name: str, lock: bool = False) -> AnyRow:
    """The artifact's row; `lock`: held until the transaction ends (PostgreSQL)."""
    pid = project_id(conn, project)
    q = select(artifacts).where(artifacts.c.project_id == pid, artifacts.c.name == name)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        names = list(conn.execute(
            select(artifacts.c.name).where(artifacts.c.project_id == pid).order_by(artifacts.c.name)
        ).scalars())
        raise NotFoundError(
            f"project {project!r} has no artifact {name!r}{close_matches(name, names)}; "
            f"{listing(names, 'artifacts')}"
        )
    return row


def lock_artifact(conn: Connection, artifact_id: int) -> None:
    """Hold the artifact's row until the transaction ends, so writers of its versions'
    numbers and aliases take turns (PostgreSQL; on SQLite BEGIN IMMEDIATE already did)."""
    conn.execute(select(artifacts.c.id).where(artifacts.c.id == artifact_id).with_for_update())


def version_row(conn: Connection, version_id: int) -> AnyRow:
    """The few columns most checks need: id, artifact_id, idx, state."""
    row = conn.execute(
        select(versions.c.id, versions.c.artifact_id, versions.c.idx, versions.c.state).where(
            versions.c.id == version_id
        )
    ).first()
    if row is None:
        raise _no_version(version_id)
    return row


_VERSION_IDS = select(versions.c.id).where(versions.c.id.in_(bindparam("ids", expanding=True)))


def require_versions(conn: Connection, *version_ids: int) -> None:
    """`version_row`'s check for several ids in one query built once (a diff page checks
    both of its versions on every request): NotFoundError for the first missing one."""
    found = set(conn.execute(_VERSION_IDS, {"ids": list(version_ids)}).scalars())
    for vid in version_ids:
        if vid not in found:
            raise _no_version(vid)


def _no_version(version_id: int) -> NotFoundError:
    return NotFoundError(f"no version with id {version_id}")


def load_version(conn: Connection, version_id: int) -> VersionRecord:
    found = versions_by_id(conn, [version_id])
    if not found:
        raise NotFoundError(f"no version with id {version_id}")
    return found[0]


def require_run(conn: Connection, run_id: str) -> None:
    if conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is None:
        recent = conn.execute(
            select(runs.c.id).order_by(runs.c.created_at.desc()).limit(10)
        ).scalars().all()
        raise NotFoundError(
            f"run {run_id!r} does not exist (create it first); {listing(recent, 'recent runs')}")


def _version_lookup(by_alias: bool) -> Any:
    """(id, state) of the version project/name:vN or :alias, one query built once."""
    q = (select(versions.c.id, versions.c.state)
         .join_from(versions, artifacts, artifacts.c.id == versions.c.artifact_id)
         .join(projects, projects.c.id == artifacts.c.project_id)
         .where(projects.c.name == bindparam("project"), artifacts.c.name == bindparam("name")))
    if by_alias:
        return q.join(aliases, aliases.c.version_id == versions.c.id).where(
            aliases.c.artifact_id == artifacts.c.id, aliases.c.alias == bindparam("alias"))
    return q.where(versions.c.idx == bindparam("idx"))


_BY_INDEX, _BY_ALIAS = _version_lookup(False), _version_lookup(True)


def find_version_id(conn: Connection, project: str, name: str, selector: str | None,
                    include_deleted: bool) -> int:
    """The id of project/name:selector (None: latest): one query when it exists (how
    every page and command names a version); otherwise the lookups step by step, for
    the error that lists what does exist (`find_artifact`, `resolve_selector`)."""
    label = LATEST if selector is None else selector
    m = VERSION_RE.fullmatch(label)
    row = conn.execute(_BY_INDEX if m else _BY_ALIAS, {"project": project, "name": name, **(
        {"idx": int(m.group(1))} if m else {"alias": label})}).first()
    if row is not None and (include_deleted or row.state != "deleted"):
        return int(row.id)
    return resolve_selector(conn, find_artifact(conn, project, name), project, selector, include_deleted)


def resolve_selector(conn: Connection, art: AnyRow, project: str, selector: str | None,
                     include_deleted: bool) -> int:
    """The id of the version "vN" or alias `selector` (None: latest) names in `art`."""
    label = LATEST if selector is None else selector
    m = VERSION_RE.fullmatch(label)
    if m:
        q = select(versions.c.id, versions.c.state).where(
            versions.c.artifact_id == art.id, versions.c.idx == int(m.group(1))
        )
    else:
        q = (select(versions.c.id, versions.c.state)
             .join(aliases, aliases.c.version_id == versions.c.id)
             .where(aliases.c.artifact_id == art.id, aliases.c.alias == label))
    row = conn.execute(q).first()
    if row is not None and (include_deleted or row.state != "deleted"):
        return int(row.id)
    idxs = conn.execute(
        select(versions.c.idx).where(versions.c.artifact_id == art.id, NOT_DELETED).order_by(versions.c.idx)
    ).scalars().all()
    held = alias_order(conn.execute(select(aliases.c.alias).where(aliases.c.artifact_id == art.id)).scalars())
    what = f"{project}/{art.name}"
    head = (f"{what}:{label} is soft-deleted (`lode restore {what}:{label}` or "
            f"version.restore() brings it back; `lode versions {what} --all` lists it)" if row is not None
            else f"{what} has no version or alias {label!r}")
    raise NotFoundError(f"{head}; {listing([f'v{i}' for i in idxs], 'versions')}; {listing(held, 'aliases')}")


def link_run(conn: Connection, table: Table, run_id: str, version_id: int, now: datetime) -> None:
    """Record a run's input or output (`table`); linking twice is a no-op."""
    conn.execute(insert_ignore(conn, table, ["run_id", "version_id"]).values(
        run_id=run_id, version_id=version_id, at=now
    ))
