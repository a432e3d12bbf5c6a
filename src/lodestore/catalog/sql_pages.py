"""Keyset pages of the catalog's lists, in SQL: artifacts, an artifact's versions, search
results, and the lists of a diff of two versions (their SQL: diff_pages.py); and the
ordered ids of runs, whose pages are read by id.

A page is "the `limit` rows whose sort key comes after `after`", where `after` is the
key of the last row of the previous page (`catalog.base.artifact_page_key`,
`version_page_key`): a row-value comparison on the sort columns plus a unique tie
breaker, then ORDER BY those columns and LIMIT. Rows inserted or removed before the
cursor never shift a later page (no OFFSET). Only the page's rows are read back as
records; aggregates (an artifact's live version count and size) are computed for those
rows alone unless the order is by the aggregate itself. Plain SQLAlchemy Core: row
values and LIMIT work the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    func,
    literal,
    select,
    tuple_,
    union_all,
)

from lodestore.catalog import diff_pages, query
from lodestore.catalog.records import (
    DIFF_SECTIONS,
    LATEST,
    ArtifactRecord,
    DiffCounts,
    DiffRow,
    VersionRecord,
)
from lodestore.catalog.schema import aliases, artifacts, projects, versions
from lodestore.catalog.sql_database import Database
from lodestore.catalog.sql_lookups import find_artifact, require_versions
from lodestore.catalog.sql_rows import versions_by_id
from lodestore.catalog.sql_values import NOT_DELETED
from lodestore.errors import InvalidInputError


def _after(columns: Sequence[Any], key: Sequence[Any], descending: bool) -> ColumnElement[bool]:
    """Rows whose (columns) sort after `key` in the page order: a row-value comparison."""
    if len(key) != len(columns) or not all(_fits(c, k) for c, k in zip(columns, key, strict=True)):
        raise InvalidInputError("the cursor is not one of this list's (was the sort changed?)")
    # each value bound with its column's type (a timestamp goes through UTCDateTime)
    values = [literal(k, type_=c.type) for c, k in zip(columns, key, strict=True)]
    if len(columns) == 1:
        return columns[0] < values[0] if descending else columns[0] > values[0]
    return tuple_(*columns) < tuple_(*values) if descending else tuple_(*columns) > tuple_(*values)


def _fits(column: Any, value: Any) -> bool:
    """A cursor value of the column's kind (PostgreSQL refuses to compare across kinds)."""
    try:
        want = column.type.python_type
    except NotImplementedError:  # SQLAlchemy's answer for a type with no Python class (not a stub of ours)
        want = object
    return value is not None and not isinstance(value, bool) and isinstance(value, want)


def _ordered(q: Select[Any], columns: Sequence[Any], descending: bool) -> Select[Any]:
    return q.order_by(*[c.desc() if descending else c.asc() for c in columns])


def _when(text: Any) -> datetime:
    """A cursor's timestamp (isoformat, as `*_page_key` writes it) back as a datetime."""
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        raise InvalidInputError("the cursor is not one of this list's (a bad timestamp)") from None


def _live_totals() -> Any:
    """Per artifact: live (not soft-deleted) version count and logical bytes."""
    return (select(versions.c.artifact_id, func.count().label("n"),
                   func.coalesce(func.sum(versions.c.size), 0).label("total"))
            .where(NOT_DELETED).group_by(versions.c.artifact_id).subquery())


def _artifact_columns(order: str, totals: Any) -> list[Any]:
    """The sort columns of an artifact order, the last one unique (the tie breaker)."""
    a, pname = artifacts.c, projects.c.name
    if order == "name":
        return [pname, a.name]
    if order == "type":
        return [a.type, pname, a.name]
    if order == "created":
        return [a.created_at, a.id]
    if order == "versions" and totals is not None:
        return [func.coalesce(totals.c.n, 0), a.id]
    if order == "size" and totals is not None:
        return [func.coalesce(totals.c.total, 0), a.id]
    raise InvalidInputError(f"unknown artifact order {order!r}")


class PageStore:
    """Keyset pages of artifacts, versions and diffs."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def artifacts_page(self, project: str | None, type: str | None, order: str, descending: bool,
                       after: Sequence[Any] | None, limit: int) -> list[ArtifactRecord]:
        totals = _live_totals() if order in ("versions", "size") else None
        columns = _artifact_columns(order, totals)
        pname = projects.c.name
        q = select(artifacts.c.id).join(projects, projects.c.id == artifacts.c.project_id)
        if totals is not None:
            q = q.outerjoin(totals, totals.c.artifact_id == artifacts.c.id)
        if project is not None:
            q = q.where(pname == project)
        if type is not None:
            q = q.where(artifacts.c.type == type)
        if after is not None:
            key = [_when(after[0]), *after[1:]] if order == "created" and after else list(after)
            q = q.where(_after(columns, key, descending))
        with self.db.reading() as conn:
            ids = list(conn.execute(_ordered(q, columns, descending).limit(limit)).scalars())
            found = {a.id: a for a in _artifact_records(conn, ids)}
        return [found[i] for i in ids if i in found]

    def versions_page(self, project: str, name: str, include_deleted: bool, order: str, descending: bool,
                      after: Sequence[Any] | None, limit: int) -> list[VersionRecord]:
        v = versions.c
        columns: list[Any] | None = {"index": [v.idx], "created": [v.created_at, v.idx],
                                     "size": [v.size, v.idx], "files": [v.file_count, v.idx]}.get(order)
        if columns is None:
            raise InvalidInputError(f"unknown version order {order!r}")
        with self.db.reading() as conn:
            art = find_artifact(conn, project, name)
            q = select(v.id).where(v.artifact_id == art.id)
            if not include_deleted:
                q = q.where(NOT_DELETED)
            if after is not None:
                key = [_when(after[0]), *after[1:]] if order == "created" and after else list(after)
                q = q.where(_after(columns, key, descending))
            ids = list(conn.execute(_ordered(q, columns, descending).limit(limit)).scalars())
            found = {r.id: r for r in versions_by_id(conn, ids)}
        return [found[i] for i in ids if i in found]

    def search_page(self, text: str, after: Sequence[Any] | None, limit: int,
                    liveness: query.Liveness | None) -> list[VersionRecord]:
        """The search language's id query (catalog/query.py, newest first) with the
        keyset on its order (created, id) and a LIMIT: a page reads its rows only."""
        parsed = query.parse(text)
        with self.db.reading() as conn:
            live = query.bind_liveness(conn, liveness) if query.needs_liveness(parsed, via_run=True) else liveness
            ids_query = query.version_ids_query(conn.dialect.name, parsed, None, live)
            if after is not None:
                key = [_when(after[0]), *after[1:]] if after else []
                ids_query = ids_query.where(_after([versions.c.created_at, versions.c.id], key, descending=True))
            ids = list(conn.execute(ids_query.limit(limit)).scalars())
            found = {r.id: r for r in versions_by_id(conn, ids)}
        return [found[i] for i in ids if i in found]

    def find_run_ids(self, filters: dict[str, Any] | str | None, project: str | None, order: str | None,
                     liveness: query.Liveness | None) -> list[str]:
        """The search language's run id query (the one `find_runs` runs), ids only: runs
        are ordered by any key, a summary's JSON path among them, which a keyset cannot
        compare portably; the page's runs are then read by id."""
        parsed = query.filters_query(filters)
        with self.db.reading() as conn:
            live = query.bind_liveness(conn, liveness) if query.needs_liveness(parsed, order) else liveness
            return list(conn.execute(query.run_ids_query(conn.dialect.name, parsed, project, order, None,
                                                         live)).scalars())

    def version_states(self) -> dict[str, int]:
        """The few versions not live counted by state on the (state, deleted_at) index
        (its ranges either side of "live"), the live ones as all versions less those: a
        bare count(*), which SQLite answers by counting the b-tree's cells page by page.
        Counting 10,000 live versions one by one took 0.5 ms of each stat cards request."""
        with self.db.reading() as conn:
            states = {state: int(n) for state, n in conn.execute(_NOT_LIVE)}
            live = conn.execute(_ALL_VERSIONS).scalar_one() - sum(states.values())
        return {**states, LIVE: live} if live else states

    def diff_counts(self, a: int, b: int) -> DiffCounts:
        with self.db.reading() as conn:
            require_versions(conn, a, b)
            return diff_pages.diff_counts(conn, a, b)

    def diff_page(self, a: int, b: int, section: str, after: str | None, limit: int | None) -> list[DiffRow]:
        _check_section(section)
        with self.db.reading() as conn:
            require_versions(conn, a, b)
            return diff_pages.diff_page(conn, a, b, section, after, limit)

    def iter_diff(self, a: int, b: int, sections: Sequence[str] = DIFF_SECTIONS) -> Iterator[tuple[str, DiffRow]]:
        for section in sections:
            _check_section(section)
        with self.db.reading() as conn:  # a missing version says so now, not at the first row
            require_versions(conn, a, b)
        return self._stream_diff(a, b, tuple(sections))

    def _stream_diff(self, a: int, b: int, sections: Sequence[str]) -> Iterator[tuple[str, DiffRow]]:
        # One read held while the caller takes the rows (writing them out, in `lode diff`):
        # the lists are computed once in SQL and fetched a batch at a time. Keyset pages in
        # short reads, as manifests are streamed, would rank every changed path again for
        # each page.
        with self.db.reading() as conn:
            yield from diff_pages.diff_rows(conn, a, b, sections)

    def digests_only_in(self, version_id: int, other_id: int) -> list[str]:
        with self.db.reading() as conn:
            require_versions(conn, version_id, other_id)
            return diff_pages.digests_only_in(conn, version_id, other_id)


LIVE = "live"
# Two ranges of the index (an OR of the two, or !=, makes SQLite scan the whole index)
_NOT_LIVE = union_all(*(select(versions.c.state, func.count()).where(side).group_by(versions.c.state)
                        for side in (versions.c.state < LIVE, versions.c.state > LIVE)))
_ALL_VERSIONS = select(func.count()).select_from(versions)


def _check_section(section: str) -> None:
    if section not in DIFF_SECTIONS:
        raise InvalidInputError(f"section must be one of {', '.join(DIFF_SECTIONS)}, not {section!r}")


def _records_query() -> Select[Any]:
    """Artifacts by id with their live totals and latest index, computed per row (for the
    page's rows alone); built once, its ids an expanding parameter, so it compiles once."""
    a, v = artifacts.c, versions.c
    live = and_(v.artifact_id == a.id, NOT_DELETED)
    latest = (select(v.idx).join(aliases, aliases.c.version_id == v.id)
              .where(aliases.c.artifact_id == a.id, aliases.c.alias == LATEST).scalar_subquery())
    return (select(a.id, a.name, a.type, a.created_at, projects.c.name.label("project_name"),
                   select(func.count()).where(live).scalar_subquery().label("n"),
                   select(func.coalesce(func.sum(v.size), 0)).where(live).scalar_subquery().label("total"),
                   latest.label("latest_idx"))
            .join(projects, projects.c.id == a.project_id)
            .where(a.id.in_(bindparam("ids", expanding=True))))


_RECORDS = _records_query()


def _artifact_records(conn: Connection, ids: list[int]) -> list[ArtifactRecord]:
    if not ids:
        return []
    return [ArtifactRecord(id=r.id, project=r.project_name, name=r.name, type=r.type, created_at=r.created_at,
                           version_count=r.n or 0, latest_index=r.latest_idx, total_size=int(r.total or 0))
            for r in conn.execute(_RECORDS, {"ids": ids})]
