"""Reading catalog rows back as records, and the "here is what exists" error messages;
shared by every part of the SQL catalog (see sql.py for who owns what)."""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, TypeAlias

from sqlalchemy import BindParameter, ColumnElement, Connection, Row, bindparam, literal_column, select, union_all

from lodestore.catalog.records import LATEST, RunRecord, VersionRecord
from lodestore.catalog.schema import aliases, artifacts, projects, runs, version_tags, versions

# A result row of any shape (SQLAlchemy types rows by their columns' types).
AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"

LIST_LIMIT = 20  # names shown in a not-found message before "and N more"


def listing(names: Iterable[str], what: str, limit: int = LIST_LIMIT) -> str:
    """``"versions: v0, v1"``, ``"versions: none"``, or the first `limit` and a count."""
    names = list(names)
    if not names:
        return f"{what}: none"
    shown = ", ".join(names[:limit])
    more = f", and {len(names) - limit} more" if len(names) > limit else ""
    return f"{what}: {shown}{more}"


def close_matches(word: str, candidates: list[str], n: int = 5) -> str:
    """``"; did you mean: a.txt, b.txt"`` or an empty string."""
    found = difflib.get_close_matches(word, candidates, n=n, cutoff=0.5)
    return f"; did you mean: {', '.join(found)}" if found else ""


def alias_order(names: Iterable[str]) -> tuple[str, ...]:
    """Aliases sorted with "latest" first, the order people read them in."""
    return tuple(sorted(names, key=lambda a: (a != LATEST, a)))


_VERSION_COLUMNS = select(
    versions,
    artifacts.c.name.label("artifact_name"),
    artifacts.c.type.label("artifact_type"),
    projects.c.name.label("project_name"),
).join_from(versions, artifacts, versions.c.artifact_id == artifacts.c.id).join(
    projects, artifacts.c.project_id == projects.c.id)


def load_versions(conn: Connection, where: ColumnElement[bool], order_by: Any = None) -> list[VersionRecord]:
    """Versions matching `where` (an expression on the versions table), with their tags
    and aliases, in three queries whatever their number."""
    rows = conn.execute(_VERSION_COLUMNS.where(where)
                        .order_by(order_by if order_by is not None else versions.c.id)).all()
    if not rows:
        return []
    tags = conn.execute(select(version_tags.c.version_id, version_tags.c.tag)
                        .join(versions, versions.c.id == version_tags.c.version_id).where(where)).all()
    held = conn.execute(select(aliases.c.version_id, aliases.c.alias)
                        .join(versions, versions.c.id == aliases.c.version_id).where(where)).all()
    return _version_records(rows, tags, held)


# Versions named by id in two statements built once (their rows; their tags and aliases
# together): a statement built per call costs more than SQLite takes to answer it (~0.1
# ms each), and by id is how the web page, lineage and diffs read versions, several
# times per request.
_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_ROWS_BY_ID = _VERSION_COLUMNS.where(versions.c.id.in_(_IDS)).order_by(versions.c.id)
# kinds as SQL literals, not bound parameters: PostgreSQL cannot type a parameter in a UNION
_NAMES_BY_ID = union_all(
    select(version_tags.c.version_id, literal_column("'t'").label("kind"), version_tags.c.tag.label("name"))
    .where(version_tags.c.version_id.in_(_IDS)),
    select(aliases.c.version_id, literal_column("'a'").label("kind"), aliases.c.alias.label("name"))
    .where(aliases.c.version_id.in_(_IDS)))


def versions_by_id(conn: Connection, ids: Iterable[int]) -> list[VersionRecord]:
    """What `load_versions(conn, versions.c.id.in_(ids))` returns (by id), from the
    statements built once; at most `sql_values.IN_BATCH` ids per call."""
    wanted = {"ids": list(ids)}
    if not wanted["ids"]:
        return []
    rows = conn.execute(_ROWS_BY_ID, wanted).all()
    if not rows:
        return []
    names = conn.execute(_NAMES_BY_ID, wanted).all()
    return _version_records(rows, [(v, n) for v, kind, n in names if kind == "t"],
                            [(v, n) for v, kind, n in names if kind == "a"])


def _version_records(rows: Iterable[Any], tag_rows: Iterable[Any], alias_rows: Iterable[Any]) -> list[VersionRecord]:
    tags: dict[int, list[str]] = defaultdict(list)
    for vid, tag in tag_rows:
        tags[vid].append(tag)
    held: dict[int, list[str]] = defaultdict(list)
    for vid, alias in alias_rows:
        held[vid].append(alias)
    return [_version_record(r._mapping, tags[r.id], held[r.id]) for r in rows]


def _version_record(m: Any, tags: list[str], held: list[str]) -> VersionRecord:
    return VersionRecord(
        id=m["id"],
        artifact_id=m["artifact_id"],
        project=m["project_name"],
        name=m["artifact_name"],
        type=m["artifact_type"],
        index=m["idx"],
        digest=m["digest"],
        size=m["size"],
        file_count=m["file_count"],
        description=m["description"],
        metadata=m["metadata"] or {},
        tags=tuple(sorted(tags)),
        aliases=alias_order(held),
        created_at=m["created_at"],
        created_by_run=m["created_by_run"],
        state=m["state"],
        deleted_at=m["deleted_at"],
        ttl_seconds=m["ttl_seconds"],
    )


RUN_SELECT = (select(runs, projects.c.name.label("project_name"))
              .join(projects, runs.c.project_id == projects.c.id))


def run_record(row: Any) -> RunRecord:
    m = row._mapping
    return RunRecord(
        id=m["id"],
        project=m["project_name"],
        name=m["name"],
        group=m["group_name"],
        job_type=m["job_type"],
        tags=tuple(m["tags"] or ()),
        notes=m["notes"],
        config=m["config"] or {},
        summary=m["summary"] or {},
        state=m["state"],
        exit_code=m["exit_code"],
        created_at=m["created_at"],
        finished_at=m["finished_at"],
        heartbeat_at=m["heartbeat_at"],
        host=m["host"],
        pid=m["pid"],
    )
