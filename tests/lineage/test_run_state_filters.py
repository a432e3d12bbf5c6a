"""Run state in filters: "crashed" is computed in SQL (stale heartbeat, process gone on
this host), so every operator agrees with what each run reports as its state."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import lodestore
from lodestore.catalog.records import ManifestEntry, NewVersion, RunRecord
from lodestore.sdk.repository import Repository


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def states(store: Path) -> dict[str, str]:
    """One run per way of being in each state; returns id -> the state it reports."""
    lodestore.init(project="zoo", id="done").finish()
    lodestore.init(project="zoo", id="bad").finish(exit_code=2)
    live = lodestore.init(project="zoo", id="live")  # this process, fresh heartbeat
    catalog = Repository.open(store).catalog
    here, old, now = socket.gethostname(), datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)
    for rid, host, pid, beat in (
        ("dead-here", here, _dead_pid(), old),  # SIGKILLed on this host: crashed
        ("suspended", here, os.getpid(), old),  # silent, but its process lives: running
        ("far-fresh", "elsewhere", 1, now),  # another host, beating: running
        ("far-silent", "elsewhere", 1, old),  # another host, silent: crashed
        ("no-beat", None, None, None),  # an old record with no heartbeat/host: crashed
    ):
        catalog.create_run(RunRecord(
            id=rid, project="zoo", name=None, group=None, job_type=None, tags=(), notes=None, config={},
            summary={}, state="running", exit_code=None, created_at=beat or old, finished_at=None,
            heartbeat_at=beat, host=host, pid=pid))
        catalog.commit_version(NewVersion("zoo", f"out-{rid}", "model", [ManifestEntry("w", "d" * 64, 1)],
                                          f"digest-{rid}", run_id=rid))
    reported = {r.id: r.state for r in lodestore.Api().runs("zoo")}
    yield reported
    live.finish()


def _ids(filters) -> list[str]:
    return sorted(r.id for r in lodestore.Api().runs("zoo", filters=filters))


def test_the_fixture_covers_every_state(states: dict[str, str]) -> None:
    assert states == {"done": "finished", "bad": "failed", "live": "running", "dead-here": "crashed",
                      "suspended": "running", "far-fresh": "running", "far-silent": "crashed",
                      "no-beat": "crashed"}


@pytest.mark.parametrize("filters, keep", [
    ("state=crashed", lambda s: s == "crashed"),
    ("state=running", lambda s: s == "running"),
    ("state!=running", lambda s: s != "running"),
    ("-state=running", lambda s: s != "running"),
    ("NOT state=crashed", lambda s: s != "crashed"),
    ("state=crashed OR state=failed", lambda s: s in ("crashed", "failed")),
    ("state~ash", lambda s: s == "crashed"),
    ({"state": "crashed"}, lambda s: s == "crashed"),
    ({"state": {"$ne": "running"}}, lambda s: s != "running"),
    ({"state": {"$in": ["crashed", "failed"]}}, lambda s: s in ("crashed", "failed")),
    ({"state": {"$nin": ["crashed"]}}, lambda s: s != "crashed"),
    ({"$or": [{"state": "finished"}, {"state": "crashed"}]}, lambda s: s in ("finished", "crashed")),
])
def test_every_state_operator_agrees_with_the_reported_state(states: dict[str, str], filters, keep) -> None:
    assert _ids(filters) == sorted(rid for rid, s in states.items() if keep(s))


def test_limit_applies_after_the_state_filter(states: dict[str, str]) -> None:
    crashed = lodestore.Api().runs("zoo", filters={"state": "crashed"}, limit=2)
    assert len(crashed) == 2 and all(r.state == "crashed" for r in crashed)


def test_version_search_by_the_producing_runs_state(states: dict[str, str]) -> None:
    def found(query: str) -> list[str]:
        return sorted(a.source_name.removeprefix("out-") for a in lodestore.Api().search(query))

    assert found("run.state=crashed") == ["dead-here", "far-silent", "no-beat"]
    assert found("type=model run.state=running") == ["far-fresh", "suspended"]
    assert found("type=model -run.state=crashed") == ["far-fresh", "suspended"]


def test_order_by_state_uses_the_reported_state(states: dict[str, str]) -> None:
    ordered = [r.state for r in lodestore.Api().runs("zoo", order="state")]
    assert ordered == sorted(states.values())


def test_a_misspelt_state_is_an_error(states: dict[str, str]) -> None:
    with pytest.raises(lodestore.InvalidInputError, match="'crashd' is not a state"):
        lodestore.Api().runs("zoo", filters="state=crashd")
    with pytest.raises(lodestore.InvalidInputError, match="not a state"):
        lodestore.Api().search("state=gone")


def test_the_catalog_alone_compares_stored_states(states: dict[str, str], store: Path) -> None:
    """Without a Liveness (a bare catalog) nothing is inferred: the stored state counts."""
    catalog = Repository.open(store).catalog
    assert sorted(r.id for r in catalog.find_runs({"state": "crashed"}, project="zoo")) == []
    assert len(catalog.find_runs({"state": "running"}, project="zoo")) == 6
