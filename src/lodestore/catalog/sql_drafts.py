"""Distributed drafts in the SQL catalog: one version written part by part by many
processes (see `Catalog.open_draft` and the following methods in base.py).

Every state change is one write transaction (on SQLite the write lock is taken up
front; on PostgreSQL the draft's row is locked first, FOR UPDATE), so a part racing
`seal_draft` either lands before the seal, and is merged, or after it, and is refused:
never lost silently. Two first upserts of one draft at once make one draft: `open_draft`
creates its key's row in draft_keys (ON CONFLICT DO NOTHING) and locks it before it looks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from lodestore.catalog.dialect import insert_ignore
from lodestore.catalog.records import DraftPart, DraftRecord, ManifestEntry
from lodestore.catalog.schema import draft_files, draft_keys, draft_parts, drafts
from lodestore.catalog.sql_database import Database
from lodestore.catalog.sql_values import now_utc
from lodestore.errors import ConflictError, NotFoundError

_LIVE = ("open", "sealed")


def _record(conn: Connection, row: Any) -> DraftRecord:
    parts = conn.execute(select(func.count()).where(draft_parts.c.draft_id == row.id)).scalar_one()
    files, size = conn.execute(select(func.count(), func.coalesce(func.sum(draft_files.c.size), 0))
                               .where(draft_files.c.draft_id == row.id)).one()
    return DraftRecord(id=row.id, project=row.project, name=row.name, type=row.type,
                       distributed_id=row.distributed_id, state=row.state, created_at=row.created_at,
                       updated_at=row.updated_at, expires_at=row.expires_at, version_id=row.version_id,
                       part_count=int(parts), file_count=int(files), size=int(size))


def _row(conn: Connection, draft_id: int, lock: bool = False) -> Any:
    """The draft's row; `lock`: held until the transaction ends (PostgreSQL)."""
    q = select(drafts).where(drafts.c.id == draft_id)
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise NotFoundError(f"no draft with id {draft_id}")
    return row


def _refuse_unless_open(conn: Connection, row: Any, doing: str, allow: tuple[str, ...] = ("open",)) -> None:
    record = _record(conn, row)
    state = record.shown_state(now_utc())
    if state not in allow:
        hint = {
            "sealed": "it is being finished",
            "finished": f"it was finished (version id {row.version_id}); upserts after finish never start a new "
                        "version by themselves: pass new_version=True (or another distributed_id) for one",
            "aborted": "it was aborted; pass new_version=True to start again",
            "expired": f"it expired at {row.expires_at:%Y-%m-%d %H:%M:%S} UTC (no part for its ttl); abort it "
                       "and start again with new_version=True",
        }.get(state, state)
        raise ConflictError(f"draft {record.qualified_name} cannot {doing}: {hint}")


def _parts(conn: Connection, draft_id: int) -> list[DraftPart]:
    files: dict[str, list[ManifestEntry]] = {}
    for f in conn.execute(select(draft_files).where(draft_files.c.draft_id == draft_id)
                          .order_by(draft_files.c.part_id, draft_files.c.path)):
        files.setdefault(f.part_id, []).append(ManifestEntry(f.path, f.digest, f.size))
    rows = conn.execute(select(draft_parts).where(draft_parts.c.draft_id == draft_id)
                        .order_by(draft_parts.c.part_id))
    return [DraftPart(r.part_id, r.digest, dict(r.metadata), r.run_id, r.added_at, tuple(files.get(r.part_id, ())))
            for r in rows]


class DraftStore:
    """Owns the drafts, draft_parts and draft_files tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def open_draft(self, project: str, name: str, type: str, distributed_id: str, ttl_seconds: int,
                   new_version: bool = False) -> DraftRecord:
        now = now_utc()
        key = {"project": project, "name": name, "distributed_id": distributed_id}
        with self.db.writing() as conn:
            conn.execute(insert_ignore(conn, draft_keys, list(key)).values(**key))
            conn.execute(select(draft_keys.c.project).filter_by(**key).with_for_update())
            row = conn.execute(select(drafts).where(
                drafts.c.project == project, drafts.c.name == name, drafts.c.distributed_id == distributed_id,
            ).order_by(drafts.c.id.desc()).limit(1)).first()
            if row is not None and not new_version:
                _refuse_unless_open(conn, row, "take parts", allow=("open", "sealed"))
            if row is not None and row.type != type and row.state in _LIVE:
                raise ConflictError(f"draft {project}/{name}@{distributed_id} is of type {row.type!r}, not {type!r}")
            if row is not None and row.state in _LIVE and not _record(conn, row).expired(now):
                return _record(conn, row)
            inserted = conn.execute(insert(drafts).values(
                project=project, name=name, type=type, distributed_id=distributed_id, state="open",
                created_at=now, updated_at=now, expires_at=now + timedelta(seconds=ttl_seconds),
            )).inserted_primary_key
            assert inserted is not None
            new_id = inserted[0]
            return _record(conn, _row(conn, new_id))

    def add_draft_part(self, draft_id: int, part: DraftPart, ttl_seconds: int) -> bool:
        now = now_utc()
        with self.db.writing() as conn:
            row = _row(conn, draft_id, lock=True)
            held = conn.execute(select(draft_parts.c.digest).where(
                draft_parts.c.draft_id == draft_id, draft_parts.c.part_id == part.part_id)).scalar()
            if held == part.digest and row.state != "open":
                return False  # a re-send of a recorded part changes nothing, whatever the state
            _refuse_unless_open(conn, row, f"take part {part.part_id!r}")
            added = held is None
            if held is not None and held != part.digest:
                raise ConflictError(f"part {part.part_id!r} was already sent with other content; a part id names "
                                    "one content (re-send the same files, or use another part id)")
            if added:
                conn.execute(insert(draft_parts).values(
                    draft_id=draft_id, part_id=part.part_id, digest=part.digest, metadata=part.metadata,
                    run_id=part.run_id, added_at=now))
                if part.entries:
                    conn.execute(insert(draft_files), [
                        {"draft_id": draft_id, "part_id": part.part_id, "path": e.path, "digest": e.digest,
                         "size": e.size} for e in part.entries])
            conn.execute(update(drafts).where(drafts.c.id == draft_id).values(
                updated_at=now, expires_at=now + timedelta(seconds=ttl_seconds)))
            return added

    def seal_draft(self, draft_id: int) -> list[DraftPart]:
        with self.db.writing() as conn:
            _refuse_unless_open(conn, _row(conn, draft_id, lock=True), "be finished", allow=_LIVE)
            conn.execute(update(drafts).where(drafts.c.id == draft_id).values(state="sealed", updated_at=now_utc()))
            return _parts(conn, draft_id)

    def close_draft(self, draft_id: int, state: str, version_id: int | None = None) -> DraftRecord:
        if state not in ("open", "finished", "aborted"):
            raise ValueError(f"a draft is closed as open, finished or aborted, not {state!r}")
        with self.db.writing() as conn:
            row = _row(conn, draft_id, lock=True)
            if row.state not in _LIVE:
                _refuse_unless_open(conn, row, "be " + state)
            conn.execute(update(drafts).where(drafts.c.id == draft_id).values(
                state=state, version_id=version_id, updated_at=now_utc()))
            if state == "aborted":  # its files are no longer anyone's: gc may take them
                conn.execute(delete(draft_files).where(draft_files.c.draft_id == draft_id))
            return _record(conn, _row(conn, draft_id))

    def get_draft(self, draft_id: int) -> DraftRecord:
        with self.db.reading() as conn:
            return _record(conn, _row(conn, draft_id))

    def list_drafts(self, project: str | None = None, name: str | None = None) -> list[DraftRecord]:
        q = select(drafts).order_by(drafts.c.id.desc())
        if project is not None:
            q = q.where(drafts.c.project == project)
        if name is not None:
            q = q.where(drafts.c.name == name)
        with self.db.reading() as conn:
            return [_record(conn, r) for r in conn.execute(q).all()]

    def draft_parts(self, draft_id: int) -> list[DraftPart]:
        with self.db.reading() as conn:
            _row(conn, draft_id)
            return _parts(conn, draft_id)

    def draft_digests(self) -> set[str]:
        q = (select(draft_files.c.digest).distinct()
             .join(drafts, drafts.c.id == draft_files.c.draft_id)
             .where(and_(drafts.c.state.in_(_LIVE), drafts.c.expires_at > now_utc())))
        with self.db.reading() as conn:
            return set(conn.execute(q).scalars())
