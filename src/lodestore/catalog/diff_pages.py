"""The diff of two versions' manifests as SQL: counts, and keyset pages of each list.

Four lists, each sorted by path:

- removed: paths of `a` that `b` lacks, less the renamed ones;
- added: paths of `b` that `a` lacks, less the renamed ones;
- modified: paths both hold with other content (old and new entry);
- renamed: a removed path and an added path with the same content, paired in path
  order: the k-th removed path holding digest D (by path) pairs with the k-th added path
  holding D. Ranked with window functions over each digest (`_changed`), so many files
  sharing one digest (empty files) pair in one sort, with no join. Paged by the new path.

Nothing but the page is built in Python: a page after a cursor is a range scan of the
(version_id, path) primary key that stops at the page's end (modified), or one pass
over the changed paths (added, removed, renamed). Window functions and NOT EXISTS are
plain SQL on SQLite (>= 3.25) and PostgreSQL.
"""

from __future__ import annotations

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

from lodestore.catalog.base import DiffCounts, DiffRow, ManifestEntry
from lodestore.catalog.schema import manifest_entries


def _only_in(this: int, other: int) -> Select[Any]:
    """(path, digest, size) of the entries of version `this` whose path `other` lacks."""
    e, o = manifest_entries.alias("e"), manifest_entries.alias("o")
    return select(e.c.path, e.c.digest, e.c.size).where(
        e.c.version_id == this, ~exists().where(o.c.version_id == other, o.c.path == e.c.path))


def _classified(a: int, b: int) -> Any:
    """Every changed path once (a path only one side holds), with the list it belongs
    to (`section`): "added", "removed", "renamed", or "paired" (a removed entry a rename
    took: listed under its new path only), and a rename's `old_path`.

    Within one digest, entries sort added first (side "a"), then removed ("r"), each by
    path: the k-th added entry (position k) pairs with the k-th removed one (position
    n_added + k) while both exist. One window ordering for the ranks and counts, and a
    second for the partner's path: no join, one pass however many share a digest."""
    # sides as SQL literals, not bound parameters: PostgreSQL cannot type a parameter in a UNION
    u = union_all(_only_in(b, a).add_columns(literal_column("'a'").label("side")),
                  _only_in(a, b).add_columns(literal_column("'r'").label("side"))).subquery()
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
    """The size of each list, counted in SQL (no rows in Python): one query for the
    paths only one side holds, one for the modified ones."""
    c = _classified(a, b)
    counts: dict[str, int] = {section: int(n) for section, n in
                              conn.execute(select(c.c.section, func.count()).group_by(c.c.section))}
    modified = _modified(a, b)
    return DiffCounts(added=counts.get("added", 0), removed=counts.get("removed", 0),
                      renamed=counts.get("renamed", 0),
                      modified=conn.execute(select(func.count()).select_from(modified)).scalar_one())


def diff_page(conn: Connection, a: int, b: int, section: str, after: str | None,
              limit: int | None) -> list[DiffRow]:
    """The rows of one list whose path (a rename's new path) sorts after `after`, by
    path, at most `limit` (None: all of them)."""
    entry = ManifestEntry
    if section == "modified":
        if limit is None:
            m = _modified(a, b)
            rows = conn.execute(_window(select(m), m.c.path, after, None)).all()
        else:  # "" sorts before every path: the first page
            rows = conn.execute(_MODIFIED_PAGE, {"a": a, "b": b, "after": after or "", "n": limit}).all()
        return [DiffRow(entry(p, od, on), entry(p, d, n)) for p, od, on, d, n in rows]
    c = _classified(a, b)
    q = select(c.c.path, c.c.digest, c.c.size, c.c.old_path).where(c.c.section == section)
    rows = conn.execute(_window(q, c.c.path, after, limit)).all()
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
