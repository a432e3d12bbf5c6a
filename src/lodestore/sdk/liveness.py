"""When is a "running" run really running: the heartbeat and crash rule, in one place.

A live run refreshes its heartbeat every `HEARTBEAT_SECONDS` ($LODESTORE_HEARTBEAT_SECONDS,
30 s). A run still marked "running" that has been silent for `STALE_AFTER`
($LODESTORE_STALE_SECONDS, 300 s) and whose process is gone (a dead pid on this host;
another host cannot be checked, so silence alone decides) is reported "crashed": killed
by SIGKILL, OOM, power loss. `effective_state` applies it to one record; `query_liveness`
hands the same rule to the catalog so searches filter on it in SQL.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

from lodestore import settings
from lodestore.catalog.query import Liveness
from lodestore.catalog.records import RunRecord
from lodestore.processes import pid_alive

HEARTBEAT_SECONDS = settings.heartbeat_seconds()
STALE_AFTER = timedelta(seconds=settings.stale_seconds())


def utc_now() -> datetime:
    return datetime.now(UTC)


def effective_state(record: RunRecord, now: datetime | None = None,
                    stale_after: timedelta | None = None) -> str:
    """The state to report for `record` (see the module docstring)."""
    if record.state != "running":
        return record.state
    at = now or utc_now()
    stale_after = STALE_AFTER if stale_after is None else stale_after
    beat = record.heartbeat_at or record.created_at
    if at - beat <= stale_after:
        return "running"
    if record.host == socket.gethostname() and record.pid is not None and pid_alive(record.pid):
        return "running"
    return "crashed"


def query_liveness() -> Liveness:
    """The crash rule of `effective_state`, as the bound values the catalog's queries use."""
    return Liveness(stale_before=utc_now() - STALE_AFTER, host=socket.gethostname(), pid_alive=pid_alive)
