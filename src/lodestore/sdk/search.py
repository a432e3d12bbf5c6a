"""Search versions and runs with the one query language (grammar: `lodestore.catalog.query`).

Everything is filtered and ordered in SQL; the only Python step is telling "crashed"
from "running", which depends on whether a process is alive and so cannot be stored::

    api.search("type=model metadata.val_acc>=0.9 tag:production created>2026-01-01")
    api.runs("zoo", filters={"group": "sweep-1", "summary.val_acc": {"$gte": 0.9}}, order="-summary.val_acc")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lodestore.catalog.query import terms_from_filters

if TYPE_CHECKING:
    from lodestore.sdk.artifact import Artifact
    from lodestore.sdk.repository import Repository
    from lodestore.sdk.run import PublicRun


def search(repo: Repository, query: str, limit: int | None = None) -> list[Artifact]:
    from lodestore.sdk.artifact import Artifact

    return [Artifact._from_record(repo, v) for v in repo.catalog.search_versions(query, limit=limit)]


def find_runs(repo: Repository, project: str | None = None, filters: dict[str, Any] | str | None = None,
              order: str | None = None, limit: int | None = None) -> list[PublicRun]:
    from lodestore.sdk.run import PublicRun

    _, terms = terms_from_filters(filters)
    # "running"/"crashed" are decided per run (heartbeat + pid), so those filters are
    # widened in SQL (to stored state "running") and refined here.
    wanted_states = [(t.op, t.value, t.negate) for t in terms if t.key.lower() == "state"
                     and str(t.value) in ("running", "crashed")]
    refine = bool(wanted_states)
    records = repo.catalog.find_runs(filters, project=project, order=order, limit=None if refine else limit)
    runs = [PublicRun(repo, r) for r in records]
    for op, value, negate in wanted_states:
        want_equal = (op in ("=", ":")) != negate
        runs = [r for r in runs if (r.state == value) == want_equal]
    return runs[:limit] if limit is not None else runs
