"""Parallel writers to one version: `run.upsert_artifact` / `run.finish_artifact` with
part ids, expected parts, deterministic merges, conflicts, and drafts that can be
listed, aborted, and expire (kept alive against gc until then). Real processes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

import lodestore
from lodestore.sdk.service import Service

from ._writers import finish, write_part

# Parallel writers on the embedded store and on the team pair (tests/conftest.py).
pytestmark = pytest.mark.team_too

SPAWN = multiprocessing.get_context("spawn")


@contextmanager
def _pool(n: int):
    """A spawn pool closed and joined, never terminated: its workers run lodestore runs,
    whose SIGTERM hook (sdk/run_end.py) would be what Pool.terminate meets."""
    pool = SPAWN.Pool(n)
    try:
        yield pool
    finally:
        pool.close()
        pool.join()


def _wait_for(path: Path, text: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.02)
    raise AssertionError(f"{text!r} never appeared in {path}")


def _draft(group: str):
    return next(d for d in Service.open().drafts("par") if d.distributed_id == group)


def test_eight_processes_one_version_with_a_killed_and_retried_worker(store, tmp_path, lode):
    group = "writers-8"
    # worker 7 is killed after its bytes are stored, before its part is recorded
    log = tmp_path / "killed.log"
    victim = SPAWN.Process(target=write_part, args=(group, 7, "part-7", str(log), "part-before-catalog"))
    victim.start()
    _wait_for(log, "PAUSED part-before-catalog")
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    with _pool(8) as pool:
        results = pool.starmap(write_part, [(group, i, f"part-{i}") for i in range(8)])
        # a retry of a worker whose part did land is a no-op
        assert pool.starmap(write_part, [(group, 3, "part-3")]) == ["resent"]
    assert results == ["added"] * 8
    assert _draft(group).part_count == 8
    shown = lode("drafts", "ls")
    assert shown.code == 0 and f"par/parallel-artifact@{group}" in shown.out and "open" in shown.out

    name = finish(group, expected=8)
    assert name == "par/parallel-artifact:v0"
    art = lodestore.Api().artifact(name)
    paths = [f.path for f in art.files()]
    assert paths == sorted(["distributed_table.partitioned-table.json"]
                           + [f"parts/table_{i}.table.parquet" for i in range(8)]
                           + [f"shards/shard_{i}.txt" for i in range(8)])
    assert art.get("distributed_table").data == [[i, i * 2, 2**i] for i in range(8)]
    assert len({r.id for r in art.logged_by().used_artifacts()} | {1}) >= 1  # the finisher run exists
    assert lode("drafts", "ls").out.count(group) == 0  # finished: no longer listed as open
    assert _draft(group).state == "finished"
    # upserts after finish never start a new version by themselves
    refused = write_part(group, 9, "part-9")
    assert refused.startswith("refused:") and "new_version=True" in refused


def test_a_late_part_racing_finish_is_refused_never_lost(store, tmp_path):
    group = "race"
    for i in range(3):
        assert write_part(group, i, f"p{i}") == "added"
    log = tmp_path / "finisher.log"
    finisher = SPAWN.Process(target=finish, args=(group, str(log), "finish-before-commit"))
    finisher.start()
    _wait_for(log, "PAUSED finish-before-commit")  # sealed, not committed yet
    late = write_part(group, 5, "p5")
    assert late.startswith("refused:") and "being finished" in late
    os.kill(finisher.pid, signal.SIGKILL)  # the finisher dies while the draft is sealed...
    finisher.join()
    assert finish(group) == "par/parallel-artifact:v0"  # ...and a new finish completes it
    paths = [f.path for f in lodestore.Api().artifact("par/parallel-artifact:v0").files()]
    assert "shards/shard_5.txt" not in paths and "shards/shard_2.txt" in paths


def test_concurrent_parts_and_finish_each_part_merged_or_refused(store):
    group = "concurrent"
    assert write_part(group, 0, "p0") == "added"
    with _pool(4) as pool:
        parts = [pool.apply_async(write_part, (group, i, f"p{i}")) for i in range(1, 7)]
        done = pool.apply_async(finish, (group,))
        outcomes = {i: p.get(120) for i, p in enumerate(parts, start=1)}
        name = done.get(120)
    paths = {f.path for f in lodestore.Api().artifact(name).files()}
    for i, outcome in outcomes.items():
        merged = f"shards/shard_{i}.txt" in paths
        assert merged == (outcome == "added"), (i, outcome)
        assert merged or "cannot take part" in outcome


def test_conflicting_parts_fail_finish_listing_paths_unless_a_policy_is_chosen(store):
    group = "clash"
    assert write_part(group, 1, "a", content="one") == "added"
    assert write_part(group, 1, "b", content="two") == "added"  # same path, other bytes
    with lodestore.init(project="par", group=group) as run:
        art = lodestore.Artifact("parallel-artifact", type="dataset")
        with pytest.raises(lodestore.ConflictError, match=r"shards/shard_1.txt: part 'a' vs part 'b'"):
            run.finish_artifact(art)
        assert _draft(group).state == "open"  # a refused finish reopens the draft
        done = run.finish_artifact(art, on_conflict="last")
    assert (done.download() / "shards/shard_1.txt").read_text() == "two"  # the highest part id wins


def test_part_ids_expected_parts_and_new_versions(store):
    group = "ids"
    assert write_part(group, 1, "x") == "added"
    assert write_part(group, 1, "x") == "resent"
    clash = write_part(group, 1, "x", content="other bytes")
    assert clash.startswith("refused:") and "part 'x' was already sent with other content" in clash
    with lodestore.init(project="par", group=group) as run:
        art = lodestore.Artifact("parallel-artifact", type="dataset")
        with pytest.raises(lodestore.ConflictError, match="parts not in yet: y"):
            run.finish_artifact(art, expected_parts=["x", "y"])
        with pytest.raises(lodestore.ConflictError, match="1 of 2 expected parts"):
            run.finish_artifact(art, expected_parts=2)
    assert write_part(group, 2, "y") == "added"
    assert finish(group, expected=2) == "par/parallel-artifact:v0"
    with lodestore.init(project="par", group=group) as run:
        art = lodestore.Artifact("parallel-artifact", type="dataset")
        art.add(lodestore.Table(columns=["a"], data=[[1]]), "t")
        run.upsert_artifact(art, part_id="x", new_version=True)  # asked for explicitly
        assert run.finish_artifact(lodestore.Artifact("parallel-artifact", type="dataset")).version == "v1"
    with lodestore.init(project="par") as run, pytest.raises(lodestore.InvalidInputError, match="group"):
        run.upsert_artifact(lodestore.Artifact("parallel-artifact", type="dataset"))


def test_drafts_show_abort_expire_and_gc(store, lode):
    assert write_part("keep", 1, "p", content="kept bytes " * 100) == "added"
    assert write_part("drop", 2, "p", content="dropped bytes " * 100) == "added"
    svc = Service.open()
    kept_digest, dropped_digest = (next(e.digest for e in svc.draft_parts(_draft(g))[0].entries
                                        if e.path.startswith("shards/")) for g in ("keep", "drop"))
    shown = lode("drafts", "show", "par/parallel-artifact@keep")
    assert shown.code == 0 and "p " in shown.out and "shards" not in shown.out
    assert lode("drafts", "show", "par/parallel-artifact@keep", "--json").json()["parts"][0]["paths"] == [
        "parts/table_1.table.parquet", "shards/shard_1.txt"]
    aborted = lode("drafts", "abort", str(_draft("drop").id))
    assert aborted.code == 0 and "aborted draft" in aborted.out
    api = lodestore.Api()
    api.gc(grace=0)
    store_has = svc._repo.store.has  # the content store itself: are the bytes still there?
    assert store_has(kept_digest)  # an open draft keeps its parts' bytes against gc
    assert not store_has(dropped_digest)  # an aborted draft's go
    assert lode("drafts", "abort", str(_draft("drop").id)).code == 4  # aborted already

    # a draft expires after its ttl: refused, shown as expired, and gc may take its bytes
    with lodestore.init(project="par", group="short") as run:
        art = lodestore.Artifact("parallel-artifact", type="dataset")
        Path("s.txt").write_text("short-lived " * 50)
        art.add_file("s.txt")
        run.upsert_artifact(art, ttl=1)
        short = next(e.digest for e in svc.draft_parts(_draft("short"))[0].entries)
        time.sleep(1.2)
        with pytest.raises(lodestore.ConflictError, match="expired"):
            run.upsert_artifact(art, part_id="again")
    assert "expired" in lode("drafts", "ls").out
    api.gc(grace=0)
    assert not store_has(short) and store_has(kept_digest)


def test_stats_reclaimable_matches_gc_dry_run_with_an_open_draft(store, lode, monkeypatch):
    """Bytes an open draft holds (its parts, kept until its TTL) are not reclaimable:
    `lode stats` says what `lode gc --dry-run` would free, before and after an abort."""
    monkeypatch.setenv("LODESTORE_GC_GRACE_SECONDS", "0")  # stats and gc: nothing held by grace
    assert write_part("open", 1, "p", content=os.urandom(150_000).hex()) == "added"

    def reclaimable() -> tuple[int, int]:
        stats = lode("stats", "--json").json()["gc_reclaimable_bytes"]
        planned = lode("gc", "--dry-run", "--json").json()["plan"]["reclaimable_bytes"]
        return stats, planned

    held = reclaimable()
    assert held == (0, 0)  # the draft's parts are all there is, and it is open
    assert lode("drafts", "abort", str(_draft("open").id)).code == 0
    freed = reclaimable()
    assert freed[0] == freed[1] > 100_000  # both rise by the aborted draft's parts
