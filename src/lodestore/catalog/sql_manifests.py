"""Manifests in the SQL catalog: the files each version lists (path, digest, size),
streamed a page at a time, compared between two versions, and the digests versions
reference (what gc keeps and accounting counts)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import Connection, select, tuple_
from sqlalchemy.exc import IntegrityError

from lodestore.catalog.dialect import bulk_insert_cache, insert_rows
from lodestore.catalog.records import ManifestEntry, ReferenceEntry
from lodestore.catalog.schema import manifest_entries, reference_entries, versions
from lodestore.catalog.sql_database import Database
from lodestore.catalog.sql_lookups import load_version, version_row
from lodestore.catalog.sql_rows import close_matches
from lodestore.catalog.sql_values import ENTRY_PAGE, IN_BATCH, NOT_DELETED, batches
from lodestore.errors import ConflictError, NotFoundError


def insert_references(conn: Connection, version_id: int, refs: list[ReferenceEntry]) -> None:
    """Write a new version's reference entries inside the caller's transaction."""
    if refs:
        conn.execute(reference_entries.insert(), [
            {"version_id": version_id, "path": r.path, "uri": r.uri, "size": r.size, "digest": r.digest,
             "etag": r.etag, "object_version": r.object_version, "last_modified": r.last_modified} for r in refs])


def insert_entries(conn: Connection, version_id: int, entries: Iterable[ManifestEntry]) -> None:
    """Write a new version's manifest inside the caller's transaction, ENTRY_PAGE rows a
    statement (entries may stream from disk: a 1,000,000-file version's rows are never
    all in memory); ConflictError naming the paths listed twice."""
    try:
        with bulk_insert_cache(conn):
            for page in batches(((version_id, e.path, e.digest, e.size) for e in entries), ENTRY_PAGE):
                insert_rows(conn, "manifest_entries", ("version_id", "path", "digest", "size"), page)
    except IntegrityError as exc:
        dups = _listed_twice(entries)
        if not dups:
            raise
        more = f" and {len(dups) - 5} more" if len(dups) > 5 else ""
        raise ConflictError(f"a version lists these paths twice: {', '.join(dups[:5])}{more}") from exc


def _listed_twice(entries: Iterable[ManifestEntry]) -> list[str]:
    seen: set[str] = set()
    twice: set[str] = set()
    for e in entries:
        (twice if e.path in seen else seen).add(e.path)
    return sorted(twice)


def _entry_page(conn: Connection, version_id: int, after: str | None) -> list[ManifestEntry]:
    me = manifest_entries.c
    q = select(me.path, me.digest, me.size).where(me.version_id == version_id)
    if after is not None:
        q = q.where(me.path > after)
    return [ManifestEntry(p, d, s) for p, d, s in conn.execute(q.order_by(me.path).limit(ENTRY_PAGE))]


class ManifestStore:
    """Reading manifests and the digests they reference."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def iter_entries(self, version_id: int) -> Iterator[ManifestEntry]:
        # Pages by path (keyset), each its own short read: no connection stays checked out
        # while the caller works through 100k files. Entries never change, so pages agree.
        with self.db.reading() as conn:
            version_row(conn, version_id)  # NotFoundError now, not at first next()
            first = _entry_page(conn, version_id, None)
        return self._stream_entries(version_id, first)

    def _stream_entries(self, version_id: int, page: list[ManifestEntry]) -> Iterator[ManifestEntry]:
        while page:
            yield from page
            if len(page) < ENTRY_PAGE:
                return
            with self.db.reading() as conn:
                page = _entry_page(conn, version_id, page[-1].path)

    def get_entry(self, version_id: int, path: str) -> ManifestEntry:
        me = manifest_entries.c
        with self.db.reading() as conn:
            row = conn.execute(
                select(me.path, me.digest, me.size).where(me.version_id == version_id, me.path == path)
            ).first()
            if row is not None:
                return ManifestEntry(row.path, row.digest, row.size)
            v = load_version(conn, version_id)
            paths = list(conn.execute(select(me.path).where(me.version_id == version_id)).scalars())
        raise NotFoundError(
            f"{v.qualified_name} has no file {path!r}{close_matches(path, paths)} ({v.file_count} files)"
        )

    def referenced_digests(self, include_deleted: bool = True) -> set[str]:
        q = select(manifest_entries.c.digest).distinct()
        if not include_deleted:
            q = q.join(versions, versions.c.id == manifest_entries.c.version_id).where(NOT_DELETED)
        with self.db.reading() as conn:
            return set(conn.execute(q).scalars())

    def version_digests(self, include_deleted: bool = True,
                        version_ids: Iterable[int] | None = None) -> Iterator[tuple[int, str, int]]:
        me = manifest_entries.c
        q = select(me.version_id, me.digest, me.size, me.path)
        if not include_deleted:
            q = q.join(versions, versions.c.id == me.version_id).where(NOT_DELETED)
        batches = [None] if version_ids is None else [
            ids[i : i + IN_BATCH] for ids in [sorted(set(version_ids))] for i in range(0, len(ids), IN_BATCH)]
        for batch in batches:
            # pages of ENTRY_PAGE rows by (version_id, path), each its own short read: the
            # caller (accounting, over every manifest) never holds all rows at once
            where = q if batch is None else q.where(me.version_id.in_(batch))
            after: tuple[int, str] | None = None
            while True:
                page = where if after is None else where.where(tuple_(me.version_id, me.path) > tuple_(*after))
                with self.db.reading() as conn:
                    rows = conn.execute(page.order_by(me.version_id, me.path).limit(ENTRY_PAGE)).all()
                for r in rows:
                    yield r[0], r[1], r[2]
                if len(rows) < ENTRY_PAGE:
                    break
                after = (rows[-1][0], rows[-1][3])

    def digest_holders(self, digests: Iterable[str]) -> Iterator[tuple[int, str]]:
        items = sorted(set(digests))
        q = select(manifest_entries.c.version_id, manifest_entries.c.digest).distinct()
        for i in range(0, len(items), IN_BATCH):  # a short read per batch: rows never pile up
            with self.db.reading() as conn:
                rows = conn.execute(q.where(manifest_entries.c.digest.in_(items[i : i + IN_BATCH]))).all()
            for r in rows:
                yield r[0], r[1]

    def iter_references(self, version_id: int) -> list[ReferenceEntry]:
        q = select(reference_entries).where(reference_entries.c.version_id == version_id) \
            .order_by(reference_entries.c.path)
        with self.db.reading() as conn:
            return [ReferenceEntry(r.path, r.uri, r.size, r.digest, r.etag, r.object_version, r.last_modified)
                    for r in conn.execute(q)]
