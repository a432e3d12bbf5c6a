"""One hop of the lineage graph, for a whole frontier of versions at once, in SQL.

A hop is one set-based statement per `IN_BATCH` ids (a bound on parameters per
statement on every backend), whatever the width of the frontier:

- "up": the runs that logged the versions (`run_outputs`, and `versions.created_by_run`
  for a run no longer linked there), each joined with the inputs it used;
- "down": the runs that used the versions, each joined with the outputs it logged.

`lineage_step` reads a hop and the records of every version and run it names in one
read transaction: the walk of `sdk/lineage.py` costs one call per hop (a lineage page
one per direction), never a query per node. Every statement is built once, with the
ids an expanding parameter; plain SQL (UNION, LEFT JOIN, IN) on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Connection, bindparam, select, union

from lodestore.catalog.records import LineageStep
from lodestore.catalog.schema import run_inputs, run_outputs, runs, versions
from lodestore.catalog.sql_rows import RUN_SELECT, run_record, versions_by_id
from lodestore.catalog.sql_values import batches

Link = tuple[str, int, int | None]  # (run_id, from_version, to_version)


def _up() -> Any:
    """(run, version, input's at, input) for each run that logged one of `ids` and each
    input it used (a run that used nothing: one row, input NULL)."""
    ids: BindParameter[Any] = bindparam("ids", expanding=True)
    producers = union(
        select(run_outputs.c.run_id, run_outputs.c.version_id).where(run_outputs.c.version_id.in_(ids)),
        select(versions.c.created_by_run.label("run_id"), versions.c.id.label("version_id"))
        .where(versions.c.id.in_(ids), versions.c.created_by_run.is_not(None)),
    ).subquery()
    return select(producers.c.run_id, producers.c.version_id, run_inputs.c.at, run_inputs.c.version_id) \
        .select_from(producers.outerjoin(run_inputs, run_inputs.c.run_id == producers.c.run_id))


def _down() -> Any:
    """(run, version, its use's at, output's at, output) for each run that used one of
    `ids` and each output it logged (none: one row, output NULL)."""
    ids: BindParameter[Any] = bindparam("ids", expanding=True)
    return select(run_inputs.c.run_id, run_inputs.c.version_id, run_inputs.c.at, run_outputs.c.at,
                  run_outputs.c.version_id) \
        .select_from(run_inputs.outerjoin(run_outputs, run_outputs.c.run_id == run_inputs.c.run_id)) \
        .where(run_inputs.c.version_id.in_(ids))


_UP, _DOWN = _up(), _down()
_RUNS = RUN_SELECT.where(runs.c.id.in_(bindparam("ids", expanding=True)))


def _when(at: datetime | None) -> tuple[bool, Any]:
    """A sort key for a link's time that a missing link (None, from the outer join) never
    compares with a real one: a row without a link is alone for its (run, version)."""
    return (at is not None, at if at is not None else 0)


def lineage_hop(conn: Connection, version_ids: set[int], direction: str) -> list[Link]:
    """One hop of the graph from a set of versions.

    "up": (run, version, input) for each producing run and each of its inputs (input may
    be None when the run used nothing), by run, version, then the run's inputs in the
    order it used them. "down": (run, version, output) for each run that used a version
    and each of its outputs, in the order of use, then of logging."""
    if not version_ids:
        return []
    ids = sorted(version_ids)
    if direction == "up":
        up = [tuple(r) for chunk in batches(ids) for r in conn.execute(_UP, {"ids": chunk})]
        up.sort(key=lambda r: (r[0], r[1], _when(r[2]), r[3] or 0))
        return [(rid, vid, src) for rid, vid, _at, src in up]
    down = [tuple(r) for chunk in batches(ids) for r in conn.execute(_DOWN, {"ids": chunk})]
    down.sort(key=lambda r: (r[2], r[0], r[1], _when(r[3]), r[4] or 0))
    return [(rid, vid, out) for rid, vid, _at, _out_at, out in down]


def lineage_step(conn: Connection, version_ids: Iterable[int], direction: str) -> LineageStep:
    """A hop from `version_ids` with the records of those versions, of the versions the
    hop reaches and of its runs (unknown ids left out), in the caller's transaction."""
    frontier = set(version_ids)
    links = lineage_hop(conn, frontier, direction)
    wanted = sorted(frontier | {other for _, _, other in links if other is not None})
    found = {v.id: v for chunk in batches(wanted) for v in versions_by_id(conn, chunk)}
    run_ids = sorted({rid for rid, _, _ in links})
    ran = {r.id: run_record(r) for chunk in batches(run_ids) for r in conn.execute(_RUNS, {"ids": chunk})}
    return LineageStep(links, found, ran)
