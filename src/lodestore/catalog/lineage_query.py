"""One hop of the lineage graph, for many versions at once, in a few queries."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Connection, select

from lodestore.catalog.schema import run_inputs, run_outputs, versions
from lodestore.catalog.sql_values import batches


def lineage_hop(conn: Connection, version_ids: set[int], direction: str) -> list[tuple[str, int, int | None]]:
    """One hop of the graph from a set of versions, in a few queries whatever its size
    (one per `IN_BATCH` ids: a bound on parameters per statement on every backend).

    "up": (run, version, input) for each producing run and each of its inputs (input may
    be None when the run used nothing). "down": (run, version, output) for each run that
    used a version and each of its outputs. Returned as (run_id, from_version, to_version).
    """
    if not version_ids:
        return []
    ids = sorted(version_ids)
    out: list[tuple[str, int, int | None]] = []
    if direction == "up":
        producers = [tuple(r) for chunk in batches(ids) for r in conn.execute(
            select(run_outputs.c.run_id, run_outputs.c.version_id).where(run_outputs.c.version_id.in_(chunk)))]
        # versions committed by a run that is not (or no longer) linked in run_outputs
        producers += [tuple(r) for chunk in batches(ids) for r in conn.execute(
            select(versions.c.created_by_run, versions.c.id).where(
                versions.c.id.in_(chunk), versions.c.created_by_run.is_not(None)))]
        producers = sorted(set(producers))
        inputs = _links_of_runs(conn, run_inputs, {r for r, _ in producers})
        for rid, vid in producers:
            if inputs[rid]:
                out.extend((rid, vid, src) for src in inputs[rid])
            else:
                out.append((rid, vid, None))
    else:
        users = sorted(r for chunk in batches(ids) for r in conn.execute(
            select(run_inputs.c.at, run_inputs.c.run_id, run_inputs.c.version_id)
            .where(run_inputs.c.version_id.in_(chunk))))
        outputs = _links_of_runs(conn, run_outputs, {r for _, r, _ in users})
        for _at, rid, vid in users:
            out.extend((rid, vid, o) for o in outputs[rid]) if outputs[rid] else out.append((rid, vid, None))
    return out


def _links_of_runs(conn, table, run_ids: set[str]) -> dict[str, list[int]]:
    """run id -> version ids it used (run_inputs) or logged (run_outputs), in link order."""
    links: dict[str, list[int]] = defaultdict(list)
    rows = sorted(r for chunk in batches(sorted(run_ids)) for r in conn.execute(
        select(table.c.at, table.c.version_id, table.c.run_id).where(table.c.run_id.in_(chunk))))
    for _at, vid, rid in rows:
        links[rid].append(vid)
    return links
