"""The diff of two versions' manifests, in SQL: counts, keyset pages of each list, and
each list whole, streamed. The one rule of a diff: `lode diff`, `lode diff --json`,
`Artifact.diff` and the web's Compare page all read their lists from here.

Four lists:

- removed: paths of `a` that `b` lacks, less the renamed ones;
- added: paths of `b` that `a` lacks, less the renamed ones;
- modified: paths both hold with other content (old and new entry);
- renamed: a removed path and an added path with the same content, paired in path
  order: the k-th removed path holding digest D (by path) pairs with the k-th added path
  holding D. Ranked with window functions over each digest (`_classified`), so many files
  sharing one digest (empty files) pair in one sort, with no join. A page of renames is
  cut by the new path; the whole list (`diff_rows`) is in the old path's order, as
  `lode diff` has always printed it.

A path held by both sides is never a rename, whatever moved: a file renamed and changed
is one path removed and one added. Nothing but the page is built in Python: a page
after a cursor is a range scan of the (version_id, path) primary key that stops at the
page's end (modified), or one pass over the changed paths (added, removed, renamed); a
whole list is fetched `STREAM_BATCH` rows at a time. Window functions and NOT EXISTS are
plain SQL on SQLite (>= 3.25) and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal_column,
    select,
    union_all,
)

from lodestore.catalog.records import DIFF_SECTIONS, DiffCounts, DiffRow, ManifestEntry
from lodestore.catalog.schema import manifest_entries

STREAM_BATCH = 2000  # rows fetched at a time by `diff_rows` (a server-side cursor on PostgreSQL)


def _only_in(this: int, other: int) -> Select[Any]:
    """(path, digest, size) of the entries of version `this` whose path `other` lacks."""
    e, o = manifest_entries.alias("e"), manifest_entries.alias("o")
    return select(e.c.path, e.c.digest, e.c.size).where(
        e.c.version_id == this, ~exists().where(o.c.version_id == other, o.c.path == e.c.path))


def _changed(a: int, b: int) -> Any:
    """(path, digest, size, side) of every path only one side holds: "a" added (only in
    b), "r" removed (only in a)."""
    # sides as SQL literals, not bound parameters: PostgreSQL cannot type a parameter in a UNION
    return union_all(_only_in(b, a).add_columns(literal_column("'a'").label("side")),
                     _only_in(a, b).add_columns(literal_column("'r'").label("side"))).subquery()


def _classified(a: int, b: int) -> Any:
    """Every changed path once (a path only one side holds), with the list it belongs
    to (`section`): "added", "removed", "renamed", or "paired" (a removed entry a rename
    took: listed under its new path only), and a rename's `old_path`.

    Within one digest, entries sort added first (side "a"), then removed ("r"), each by
    path: the k-th added entry (position k) pairs with the k-th removed one (position
    n_added + k) while both exist. One window ordering for the ranks and counts, and a
    second for the partner's path: no join, one pass however many share a digest."""
    u = _changed(a, b)
    order = [u.c.side, u.c.path]
    whole = (None, None)  # the frame: the whole partition
    ranked = select(
        u.c.path, u.c.digest, u.c.size, u.c.side,
        func.row_number().over(partition_by=u.c.digest, order_by=order).label("pos"),
        func.sum(case((u.c.side == "a", 1), else_=0)).over(partition_by=u.c.digest, order_by=order, rows=whole)
        .label("n_added"),
        func.sum(case((u.c.side == "r", 1), else_=0)).over(partition_by=u.c.digest, order_by=order, rows=whole)
        .label("n_removed"),
    ).subquery()
    r = ranked.c
    rank = case((r.side == "a", r.pos), else_=r.pos - r.n_added)  # rank among its side
    # lead's offset must be an integer on PostgreSQL, where sum() is a bigint
    partner = func.lead(r.path, cast(r.n_added, Integer)).over(partition_by=r.digest, order_by=[r.side, r.path])
    section = case((and_(r.side == "a", rank <= r.n_removed), "renamed"), (r.side == "a", "added"),
                   (rank <= r.n_added, "paired"), else_="removed")
    return select(r.path, r.digest, r.size, partner.label("old_path"), section.label("section")).subquery()


def _modified(a: Any, b: Any) -> Any:
    ea, eb = manifest_entries.alias("ea"), manifest_entries.alias("eb")
    return select(ea.c.path, ea.c.digest.label("old_digest"), ea.c.size.label("old_size"),
                  eb.c.digest, eb.c.size) \
        .join_from(ea, eb, and_(eb.c.version_id == b, eb.c.path == ea.c.path)) \
        .where(ea.c.version_id == a, ea.c.digest != eb.c.digest).subquery()


def _modified_page() -> Select[Any]:
    """A page of modified paths after a path: a range scan of a's (version_id, path)
    key and one probe of b's per row, stopping at the page's end. Built once with bound
    parameters (every page of every diff compiles to the same statement)."""
    m = _modified(bindparam("a"), bindparam("b"))
    return select(m).where(m.c.path > bindparam("after")).order_by(m.c.path).limit(bindparam("n"))


_MODIFIED_PAGE = _modified_page()


def diff_counts(conn: Connection, a: int, b: int) -> DiffCounts:
    """The size of each list, counted in SQL (no rows in Python), without ranking a row:
    pairing the k-th added with the k-th removed path of a digest makes min(added,
    removed) renames of it, the rest added or removed. One GROUP BY digest over the paths
    only one side holds (4x cheaper than the ranks when 100,000 files moved), one count
    of the modified paths."""
    u = _changed(a, b)
    per_digest = select(func.sum(case((u.c.side == "a", 1), else_=0)).label("n_added"),
                        func.sum(case((u.c.side == "r", 1), else_=0)).label("n_removed")) \
        .group_by(u.c.digest).subquery()
    d = per_digest.c
    pairs = case((d.n_added < d.n_removed, d.n_added), else_=d.n_removed)
    renamed, added, removed = (int(n or 0) for n in conn.execute(
        select(func.sum(pairs), func.sum(d.n_added), func.sum(d.n_removed))).one())
    modified = conn.execute(select(func.count()).select_from(_modified(a, b))).scalar_one()
    return DiffCounts(added=added - renamed, removed=removed - renamed, renamed=renamed, modified=modified)


def diff_page(conn: Connection, a: int, b: int, section: str, after: str | None,
              limit: int | None) -> list[DiffRow]:
    """The rows of one list whose path (a rename's new path) sorts after `after`, by
    path, at most `limit` (None: all of them)."""
    if section == "modified":
        if limit is None:
            m = _modified(a, b)
            rows = conn.execute(_window(select(m), m.c.path, after, None)).all()
        else:  # "" sorts before every path: the first page
            rows = conn.execute(_MODIFIED_PAGE, {"a": a, "b": b, "after": after or "", "n": limit}).all()
        return _diff_rows(section, rows)
    c = _classified(a, b)
    q = select(c.c.path, c.c.digest, c.c.size, c.c.old_path).where(c.c.section == section)
    return _diff_rows(section, conn.execute(_window(q, c.c.path, after, limit)).all())


def diff_rows(conn: Connection, a: int, b: int, sections: Sequence[str] = DIFF_SECTIONS) -> Iterator[
        tuple[str, DiffRow]]:
    """(list, row) for every row of the lists named, list after list in DIFF_SECTIONS
    order (`lode diff --json`'s), each by path, renames by their old path (`lode diff`'s
    order). Fetched `STREAM_BATCH` rows at a time, so a 100,000-file list is never held
    whole; added, removed and renamed come from one ranking of the changed paths, the
    modified ones from a second cursor opened between removed and renamed."""
    changed = _stream(conn, _changed_in_order(a, b)) if {"added", "removed", "renamed"} & set(sections) else iter(())
    renames: list[Any] = []
    for row in changed:
        if row.section == "renamed":
            renames.append(row)  # the first one: the modified list comes before it
            break
        if row.section in sections:
            yield row.section, _diff_row(row.section, row)
    if "modified" in sections:
        m = _modified(a, b)
        for row in _stream(conn, select(m).order_by(m.c.path)):
            yield "modified", _diff_row("modified", row)
    if "renamed" in sections:
        for row in chain(renames, changed):
            yield "renamed", _diff_row("renamed", row)


def _changed_in_order(a: int, b: int) -> Select[Any]:
    """The classified paths but the pairs' old halves: added, removed, then renamed, each
    by its path (a rename by its old path)."""
    c = _classified(a, b).c
    rank = case((c.section == "added", 0), (c.section == "removed", 1), else_=2)
    key = case((c.section == "renamed", c.old_path), else_=c.path)
    return select(c.path, c.digest, c.size, c.old_path, c.section).where(c.section != "paired") \
        .order_by(rank, key)


def _stream(conn: Connection, q: Select[Any]) -> Iterator[Any]:
    for rows in conn.execute(q, execution_options={"yield_per": STREAM_BATCH}).partitions():
        yield from rows


def _diff_row(section: str, row: Any) -> DiffRow:
    """A row of `_changed_in_order` (path, digest, size, old path, list) or of
    `_modified` (path, old digest, old size, digest, size) as a DiffRow."""
    return _diff_rows(section, [row if section == "modified" else row[:4]])[0]


def _diff_rows(section: str, rows: Sequence[Any]) -> list[DiffRow]:
    """Result rows as DiffRows: (path, old digest, old size, digest, size) of modified
    paths; (path, digest, size, old path) of the others, old path a rename's."""
    entry = ManifestEntry
    if section == "modified":
        return [DiffRow(entry(p, od, on), entry(p, d, n)) for p, od, on, d, n in rows]
    if section == "added":
        return [DiffRow(None, entry(p, d, n)) for p, d, n, _ in rows]
    if section == "removed":
        return [DiffRow(entry(p, d, n), None) for p, d, n, _ in rows]
    return [DiffRow(entry(old, d, n), entry(p, d, n)) for p, d, n, old in rows]


def _window(q: Select[Any], path: Any, after: str | None, limit: int | None) -> Select[Any]:
    if after is not None:
        q = q.where(path > after)
    q = q.order_by(path)
    return q if limit is None else q.limit(limit)


def digests_only_in(conn: Connection, this: int, other: int) -> list[str]:
    """The distinct file digests version `this` names and version `other` does not."""
    e, o = manifest_entries.alias("e"), manifest_entries.alias("o")
    q = select(e.c.digest).distinct().where(
        e.c.version_id == this, ~exists().where(o.c.version_id == other, o.c.digest == e.c.digest))
    return list(conn.execute(q).scalars())
