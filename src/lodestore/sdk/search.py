"""Search versions and runs with the one query language (grammar: `lodestore.catalog.query_parse`).

Everything is filtered and ordered in SQL, run state included: "crashed" (running, but
silent past the heartbeat limit and, on this host, its process gone) is computed in the
query from a bound "stale before" instant and the few live pids this process checked::

    api.search("type=model metadata.val_acc>=0.9 tag:production created>2026-01-01")
    api.runs("zoo", filters={"group": "sweep-1", "summary.val_acc": {"$gte": 0.9}}, order="-summary.val_acc")
    api.runs("zoo", filters={"state": {"$in": ["crashed", "failed"]}})
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from lodestore.catalog.base import RunRecord, VersionRecord
from lodestore.catalog.query import Liveness

if TYPE_CHECKING:
    from lodestore.sdk.artifact import Artifact
    from lodestore.sdk.repository import Repository
    from lodestore.sdk.run import PublicRun


def liveness() -> Liveness:
    """The crash rule of `lodestore.sdk.run.effective_state`, as the catalog's bound values."""
    from lodestore.sdk import run

    return Liveness(stale_before=run._now() - run.STALE_AFTER, host=socket.gethostname(),
                    pid_alive=run._pid_alive)


def search_versions(repo: Repository, query: str, limit: int | None = None) -> list[VersionRecord]:
    return repo.catalog.search_versions(query, limit=limit, liveness=liveness())


def search_runs(repo: Repository, project: str | None = None, filters: dict[str, Any] | str | None = None,
                order: str | None = None, limit: int | None = None) -> list[RunRecord]:
    return repo.catalog.find_runs(filters, project=project, order=order, limit=limit, liveness=liveness())


def search(repo: Repository, query: str, limit: int | None = None) -> list[Artifact]:
    from lodestore.sdk.artifact import Artifact

    return [Artifact._from_record(repo, v) for v in search_versions(repo, query, limit)]


def find_runs(repo: Repository, project: str | None = None, filters: dict[str, Any] | str | None = None,
              order: str | None = None, limit: int | None = None) -> list[PublicRun]:
    from lodestore.sdk.run import PublicRun

    return [PublicRun(repo, r) for r in search_runs(repo, project, filters, order, limit)]
