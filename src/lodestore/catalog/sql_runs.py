"""Runs in the SQL catalog: create, update (also conditionally, in one transaction),
inputs and outputs, history, search (the query language in query.py) and the lineage
hops that run links make between versions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from lodestore.catalog import lineage_query, query
from lodestore.catalog.records import HistoryRow, LineageStep, RunRecord, VersionRecord
from lodestore.catalog.schema import (
    RUN_STATES,
    projects,
    run_history,
    run_inputs,
    run_outputs,
    runs,
    versions,
)
from lodestore.catalog.sql_database import Database
from lodestore.catalog.sql_lookups import ensure_project, link_run, require_run, version_row
from lodestore.catalog.sql_rows import RUN_SELECT, load_versions, run_record
from lodestore.catalog.sql_values import RUN_FIELDS, aware, batches, now_utc
from lodestore.errors import ConflictError, InvalidInputError
from lodestore.json_values import json_dict
from lodestore.names import validate_name


def run_values(fields: dict[str, Any]) -> dict[str, Any]:
    """RunRecord fields -> validated column values."""
    unknown = set(fields) - set(RUN_FIELDS)
    if unknown:
        raise InvalidInputError(
            f"cannot update run field(s) {', '.join(sorted(unknown))}; editable: {', '.join(RUN_FIELDS)}"
        )
    values: dict[str, Any] = {}
    for f, v in fields.items():
        if f in ("created_at", "finished_at", "heartbeat_at"):
            aware(v, f)
        elif f == "state" and v not in RUN_STATES:
            raise InvalidInputError(f"run state must be one of {', '.join(RUN_STATES)}, got {v!r}")
        elif f in ("config", "summary"):
            v = json_dict(v or {}, f)
        elif f == "tags":
            if isinstance(v, str) or not all(isinstance(t, str) and t for t in v or ()):
                raise InvalidInputError(f"run tags must be a list of non-empty strings, got {v!r}")
            v = list(v or ())
        values[RUN_FIELDS[f]] = v
    if "created_at" in values and values["created_at"] is None:
        raise InvalidInputError("created_at cannot be None")
    return values


def copy_run(conn: Connection, run: RunRecord) -> bool:
    """Inside the caller's transaction: create `run` (a record from another catalog) if
    absent, else set its fields to the record's where they differ. True if it wrote."""
    validate_name(run.id, "run id")
    validate_name(run.project, "project name")
    values = run_values({f: getattr(run, f) for f in RUN_FIELDS})
    row = conn.execute(RUN_SELECT.where(runs.c.id == run.id)).first()
    if row is None:
        pid = ensure_project(conn, run.project, now_utc())
        conn.execute(insert(runs).values(id=run.id, project_id=pid, **values))
        return True
    current = run_record(row)
    changed = {RUN_FIELDS[f]: values[RUN_FIELDS[f]] for f in RUN_FIELDS
               if _comparable(getattr(current, f)) != _comparable(getattr(run, f))}
    if changed:
        conn.execute(update(runs).where(runs.c.id == run.id).values(**changed))
    return bool(changed)


def _comparable(value: Any) -> Any:
    """A run field as compared between catalogs: tags as a list (records hold tuples)."""
    return list(value) if isinstance(value, tuple) else value


_LINK_TABLES = {"input": run_inputs, "output": run_outputs}


class RunStore:
    """Runs, what they used and produced, and their logged history."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create_run(self, run: RunRecord) -> RunRecord:
        validate_name(run.id, "run id")
        validate_name(run.project, "project name")
        values = run_values({f: getattr(run, f) for f in RUN_FIELDS})
        with self.db.writing() as conn:
            if conn.execute(select(runs.c.id).where(runs.c.id == run.id)).first() is not None:
                raise ConflictError(f"run {run.id!r} already exists")
            pid = ensure_project(conn, run.project, now_utc())
            try:
                conn.execute(insert(runs).values(id=run.id, project_id=pid, **values))
            except IntegrityError as exc:  # PostgreSQL: created concurrently by another writer
                raise ConflictError(f"run {run.id!r} already exists") from exc
            return run_record(conn.execute(RUN_SELECT.where(runs.c.id == run.id)).one())

    def get_run(self, run_id: str) -> RunRecord:
        with self.db.reading() as conn:
            row = conn.execute(_RUN_BY_ID, {"run_id": run_id}).first()
            if row is None:
                require_run(conn, run_id)
            return run_record(row)

    def update_run(self, run_id: str, **fields: Any) -> RunRecord:
        values = run_values(fields)
        with self.db.writing() as conn:
            require_run(conn, run_id)
            if values:
                conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
            return run_record(conn.execute(RUN_SELECT.where(runs.c.id == run_id)).one())

    def update_run_if(self, run_id: str, refuse: Callable[[RunRecord], str | None],
                      **fields: Any) -> RunRecord:
        values = run_values(fields)
        with self.db.writing() as conn:
            # The check and the update share one write transaction (BEGIN IMMEDIATE on
            # SQLite, a row lock on PostgreSQL): two resumers cannot both pass the check.
            row = conn.execute(RUN_SELECT.where(runs.c.id == run_id).with_for_update(of=runs)).first()
            if row is None:
                require_run(conn, run_id)
            reason = refuse(run_record(row))
            if reason is not None:
                raise ConflictError(reason)
            if values:
                conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
            return run_record(conn.execute(RUN_SELECT.where(runs.c.id == run_id)).one())

    def import_runs(self, records: Iterable[RunRecord], links: Iterable[tuple[str, str, int]]) -> tuple[int, int]:
        records, links = list(records), list(links)
        for _, kind, _ in links:
            if kind not in _LINK_TABLES:
                raise InvalidInputError(f"a run link is 'input' or 'output', not {kind!r}")
        if not records and not links:
            return 0, 0
        now = now_utc()
        with self.db.writing() as conn:
            written = sum(copy_run(conn, r) for r in records)
            added = 0
            for run_id, kind, version_id in links:
                require_run(conn, run_id)
                version_row(conn, version_id)
                table = _LINK_TABLES[kind]
                # asked first, not read from rowcount: drivers differ on the rowcount of an
                # INSERT that did nothing (psycopg gave 0 for rows it did insert)
                there = conn.execute(select(table.c.run_id).where(table.c.run_id == run_id,
                                                                  table.c.version_id == version_id)).first()
                if there is None:
                    link_run(conn, table, run_id, version_id, now)
                    added += 1
            return written, added

    def record_use(self, run_id: str, version_id: int) -> None:
        self._record_link(run_inputs, run_id, version_id)

    def record_output(self, run_id: str, version_id: int) -> None:
        self._record_link(run_outputs, run_id, version_id)

    def _record_link(self, table: Table, run_id: str, version_id: int) -> None:
        with self.db.writing() as conn:
            require_run(conn, run_id)
            version_row(conn, version_id)
            link_run(conn, table, run_id, version_id, now_utc())

    def run_inputs(self, run_id: str) -> list[VersionRecord]:
        return self._run_versions(run_inputs, run_id)

    def run_outputs(self, run_id: str) -> list[VersionRecord]:
        return self._run_versions(run_outputs, run_id)

    def _run_versions(self, table: Table, run_id: str) -> list[VersionRecord]:
        with self.db.reading() as conn:
            require_run(conn, run_id)
            order = [vid for vid, in conn.execute(
                select(table.c.version_id)
                .where(table.c.run_id == run_id)
                .order_by(table.c.at, table.c.version_id)
            )]
            found = {v.id: v for v in load_versions(
                conn, versions.c.id.in_(select(table.c.version_id).where(table.c.run_id == run_id))
            )}
            return [found[vid] for vid in order]

    def version_users(self, version_id: int) -> list[RunRecord]:
        with self.db.reading() as conn:
            version_row(conn, version_id)
            rows = conn.execute(
                RUN_SELECT.join(run_inputs, run_inputs.c.run_id == runs.c.id)
                .where(run_inputs.c.version_id == version_id)
                .order_by(run_inputs.c.at, runs.c.id)
            )
            return [run_record(r) for r in rows]

    def list_runs(self, project: str | None = None) -> list[RunRecord]:
        q = RUN_SELECT.order_by(runs.c.created_at, runs.c.id)
        if project is not None:
            q = q.where(projects.c.name == project)
        with self.db.reading() as conn:
            return [run_record(r) for r in conn.execute(q)]

    def append_history(self, run_id: str, rows: Iterable[tuple[int, dict[str, Any]]]) -> None:
        now = now_utc()
        values = []
        for step, data in rows:
            if isinstance(step, bool) or not isinstance(step, int) or not isinstance(data, dict):
                raise InvalidInputError(
                    f"history rows are (int step, dict data), got ({step!r}, {type(data).__name__})")
            data = json_dict(data, "run.log values")
            values.append({"run_id": run_id, "step": step, "data": data, "at": now})
        with self.db.writing() as conn:
            require_run(conn, run_id)
            if values:
                conn.execute(insert(run_history), values)

    def run_history(self, run_id: str) -> list[HistoryRow]:
        h = run_history.c
        with self.db.reading() as conn:
            require_run(conn, run_id)
            rows = conn.execute(select(h.step, h.data, h.at).where(h.run_id == run_id).order_by(h.step, h.id))
            return [HistoryRow(r.step, r.data, r.at) for r in rows]

    def get_runs(self, run_ids: Iterable[str]) -> dict[str, RunRecord]:
        ids = sorted(set(run_ids))
        if not ids:
            return {}
        with self.db.reading() as conn:
            return {r.id: run_record(r) for chunk in batches(ids)
                    for r in conn.execute(RUN_SELECT.where(runs.c.id.in_(chunk)))}

    def find_runs(self, filters: dict[str, Any] | str | None = None, project: str | None = None,
                  order: str | None = None, limit: int | None = None,
                  liveness: query.Liveness | None = None) -> list[RunRecord]:
        parsed = query.filters_query(filters)
        with self.db.reading() as conn:
            live = query.bind_liveness(conn, liveness) if query.needs_liveness(parsed, order) else liveness
            ids_query = query.run_ids_query(conn.dialect.name, parsed, project, order, limit, live)
            order_ids = list(conn.execute(ids_query).scalars())
            rows = [r for chunk in batches(order_ids) for r in conn.execute(RUN_SELECT.where(runs.c.id.in_(chunk)))]
        by_id = {r.id: run_record(r) for r in rows}
        return [by_id[i] for i in order_ids if i in by_id]

    def lineage_hop(self, version_ids: Iterable[int], direction: str) -> list[tuple[str, int, int | None]]:
        _check_direction(direction)
        with self.db.reading() as conn:
            return lineage_query.lineage_hop(conn, set(version_ids), direction)

    def lineage_step(self, version_ids: Iterable[int], direction: str) -> LineageStep:
        _check_direction(direction)
        with self.db.reading() as conn:
            return lineage_query.lineage_step(conn, version_ids, direction)


_RUN_BY_ID = RUN_SELECT.where(runs.c.id == bindparam("run_id"))  # built once: a version page asks for its run


def _check_direction(direction: str) -> None:
    if direction not in ("up", "down"):
        raise InvalidInputError(f"direction must be 'up' or 'down', got {direction!r}")
