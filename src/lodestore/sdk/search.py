"""Search versions and runs with the one query language (grammar: `lodestore.catalog.query_parse`).

Everything is filtered and ordered in SQL, run state included: "crashed" (running, but
silent past the heartbeat limit and, on this host, its process gone) is computed in the
query from a bound "stale before" instant and the few live pids this process checked
(`lodestore.sdk.liveness`)::

    api.search("type=model metadata.val_acc>=0.9 tag:production created>2026-01-01")
    api.runs("zoo", filters={"group": "sweep-1", "summary.val_acc": {"$gte": 0.9}}, order="-summary.val_acc")
    api.runs("zoo", filters={"state": {"$in": ["crashed", "failed"]}})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lodestore.catalog.records import RunRecord, VersionRecord
from lodestore.sdk.liveness import query_liveness

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository


def search_versions(repo: Repository, query: str, limit: int | None = None) -> list[VersionRecord]:
    return repo.catalog.search_versions(query, limit=limit, liveness=query_liveness())


def search_runs(repo: Repository, project: str | None = None, filters: dict[str, Any] | str | None = None,
                order: str | None = None, limit: int | None = None) -> list[RunRecord]:
    return repo.catalog.find_runs(filters, project=project, order=order, limit=limit, liveness=query_liveness())
