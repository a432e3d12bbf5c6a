"""Garbage collection: reclaims only dead bytes, plan first, repack, stale tmp folders,
grace period, and safety with a real writer process logging at the same time."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from store.sql import index_sql

from lodestore.sdk import lifecycle
from lodestore.sdk.artifact import Artifact

from .conftest import content, log, spawn

MB = 1_000_000


def _files_on_disk(repo):
    return sum(p.stat().st_size for p in repo.store.packs_dir.glob("*/*.pack"))


def test_gc_keeps_soft_deleted_until_purged(repo, tmp_path, lode):
    v0 = log(repo, "animals", {"a.bin": os.urandom(MB)})
    v1 = log(repo, "animals", {"b.bin": os.urandom(MB)})
    before = _files_on_disk(repo)
    v0.delete()
    plan = lifecycle.gc(repo, grace=0)
    assert plan.bytes_freed == 0 and _files_on_disk(repo) == before
    v0.restore()
    assert content(v0, tmp_path)["a.bin"]
    v0.delete(permanent=True)
    r = lode("gc", "--dry-run", "--grace", "0")
    assert r.code == 0 and "would remove 1 unreferenced file" in r.out
    assert _files_on_disk(repo) == before  # dry run changed nothing
    r = lode("gc", "--grace", "0")
    assert r.code == 0 and "plan:" in r.out and "done:\n  freed 1.0 MB on disk now" in r.out
    assert _files_on_disk(repo) < before - MB * 0.9
    assert list(content(v1, tmp_path)) == ["b.bin"]
    assert lifecycle.fsck(repo).ok
    assert lifecycle.gc(repo, grace=0).bytes_freed == 0  # nothing left to do


def test_gc_repacks_mostly_dead_packs(repo, tmp_path):
    big, small = os.urandom(2 * MB), os.urandom(50_000)
    v0 = log(repo, "animals", {"big.bin": big, "small.bin": small})  # one pack holds both
    v1 = log(repo, "animals", {"small.bin": small})  # dedups into v0's pack
    assert len(list(repo.store.packs_dir.glob("*/*.pack"))) == 1
    v0.delete(permanent=True)
    plan = lifecycle.gc(repo, grace=0)
    assert len(plan.repack) == 1 and not plan.delete_packs
    packs = list(repo.store.packs_dir.glob("*/*.pack"))
    assert len(packs) == 1 and packs[0].stat().st_size < 100_000
    assert content(v1, tmp_path) == {"small.bin": small}
    assert lifecycle.fsck(repo).ok


def test_grace_protects_recent_unreferenced_bytes(repo):
    with repo.store.session() as s:  # indexed, but no version refers to it (an in-flight log)
        ref = s.add_bytes(os.urandom(100_000))
        s.commit()
    plan = lifecycle.gc(repo, grace=3600)
    assert plan.dead_files == 0 and repo.store.has(ref.digest)
    plan = lifecycle.gc(repo, grace=0)
    assert plan.dead_files == 1 and not repo.store.has(ref.digest)


def test_reused_old_file_is_retouched(repo):
    """A session that dedups against an old unreferenced file resets its grace clock."""
    with repo.store.session() as s:
        ref = s.add_bytes(b"x" * 5000)
        s.commit()
    index_sql(repo.store, "UPDATE files SET created_at=0")
    with repo.store.session() as s:
        s.add_bytes(b"x" * 5000)
        s.commit()
    assert lifecycle.gc(repo, grace=3600).dead_files == 0 and repo.store.has(ref.digest)


def test_stale_tmp_sessions_removed(repo):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          check=True, capture_output=True, text=True)
    stale = repo.store.tmp_dir / "stale-session"
    stale.mkdir()
    (stale / "owner.json").write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(),
                                                  "started": 0}))
    (stale / "x.pack").write_bytes(b"junk")
    alive = repo.store.tmp_dir / "alive-session"
    alive.mkdir()
    (alive / "owner.json").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": 0}))
    plan = lifecycle.gc(repo, grace=0)
    assert plan.stale_tmp == ["stale-session"]
    assert not stale.exists() and alive.exists()


def test_gc_blocks_while_a_session_is_open(repo):
    s = repo.store.session()
    try:
        import pytest

        from lodestore.errors import ConflictError

        with pytest.raises(ConflictError, match="busy"):
            repo.store.gc(set, grace=0, lock_timeout=0.2)
    finally:
        s.abort()
    repo.store.gc(set, grace=0, lock_timeout=0.2)


def test_gc_concurrent_with_writers(repo, store, tmp_path):
    """Real processes: two writers log for several seconds (well past the gc grace),
    permanently deleting every other version they write, while gc sweeps in a loop.
    gc must free bytes while the writers are still writing, and every version a writer
    committed must materialize byte-identical afterwards."""
    import hashlib
    import time

    from lodestore.sdk.repository import Repository

    log(repo, "animals", {"seed.bin": os.urandom(300_000)})
    repo.close()
    grace, seconds = 0.5, 6.0
    start = time.time()
    writers = [spawn("writer", store, f"w{i}", 4, i, seconds) for i in range(2)]
    gcs = spawn("gc", store, grace, 0, seconds + 1)
    committed, writer_done = [], []
    for i, w in enumerate(writers):
        out, err = w.communicate(timeout=180)
        assert w.returncode == 0, err
        for line in out.splitlines():
            if line.startswith("COMMITTED"):
                committed.append((f"w{i}", line.split()[1], line.split()[2]))
            elif line.startswith("WRITER DONE"):
                writer_done.append(float(line.split()[2]))
    out, err = gcs.communicate(timeout=180)
    assert gcs.returncode == 0, err
    freed_at = [float(line.split()[2]) for line in out.splitlines() if line.startswith("FREED")]
    assert len(writer_done) == 2 and min(writer_done) - start > 3 * grace  # writers ran well past the grace
    during = [t for t in freed_at if t < min(writer_done)]
    assert during, f"no sweep freed bytes while writers ran (frees at {freed_at}, writers done {writer_done})"
    assert len(committed) >= 4
    repo = Repository.open(store)
    lifecycle.gc(repo, grace=0)  # a final sweep with writers gone
    for name, version, sha in committed:
        rec = repo.catalog.get_version("zoo", name, version)
        files = content(Artifact._from_record(repo, rec), tmp_path)
        h = hashlib.sha256()
        for path in sorted(files):
            h.update(path.encode() + b"\0" + files[path])
        assert h.hexdigest() == sha, f"{name}:{version} lost bytes"
    assert lifecycle.fsck(repo).ok


def test_gc_counts_bytes_once_and_says_what_waits(repo, lode):
    """A retired pack stays for readers: the gc that retires it says so (freed 0 now),
    the gc that deletes it counts it; nothing is counted twice."""
    import time

    log(repo, "animals", {"a.bin": os.urandom(MB)})
    log(repo, "animals", {"b.bin": os.urandom(1000)})
    lode("rm", "zoo/animals:v0", "--permanent")
    time.sleep(0.4)
    before = _files_on_disk(repo)
    r = lode("gc", "--grace", "0.3", "--json")
    assert r.code == 0, r.err
    plan, result = r.json()["plan"], r.json()["result"]
    assert plan["bytes_freed"] == 0 and plan["bytes_retired"] > MB * 0.99
    assert result["bytes_freed"] == 0 and result["bytes_retired"] == plan["bytes_retired"]
    assert _files_on_disk(repo) == before  # nothing deleted yet, and nothing claimed
    r = lode("gc", "--grace", "0.3")
    assert "freed 0 B on disk now" in r.out and "still inside the" in r.out
    time.sleep(0.35)
    r = lode("gc", "--grace", "0.3", "--json").json()["result"]
    assert r["bytes_freed"] == before - _files_on_disk(repo) > MB * 0.99
    r = lode("gc", "--grace", "0.3", "--json").json()["result"]
    assert r["bytes_freed"] == r["bytes_retired"] == r["bytes_pending"] == 0


def test_default_grace_holds_fresh_bytes_and_says_why(repo, lode):
    log(repo, "animals", {"a.bin": os.urandom(MB)})
    log(repo, "animals", {"b.bin": os.urandom(1000)})
    lode("rm", "zoo/animals:v0", "--permanent")
    before = _files_on_disk(repo)
    r = lode("gc")
    assert r.code == 0
    assert "held back: 1.0 MB" in r.out and "10 min" in r.out and "--grace 0" in r.out
    assert _files_on_disk(repo) == before
    j = lode("gc", "--dry-run", "--json").json()
    assert j["dry_run"] and j["result"] is None
    assert j["plan"]["bytes_held_by_grace"] > MB * 0.99 and j["plan"]["grace_seconds"] == 600
    r = lode("gc", "--grace", "0")
    assert "freed 1.0 MB on disk now" in r.out and "held back" not in r.out
    assert _files_on_disk(repo) < before - MB * 0.99
    assert lode("gc", "--grace", "-1").code == 2


def test_plan_is_printed_before_anything_is_deleted(repo, store):
    """A real `lode gc` paused right after its plan: the plan is on stdout, every pack
    file is still on disk."""
    import signal
    import subprocess

    log(repo, "animals", {"a.bin": os.urandom(MB)})
    log(repo, "animals", {"b.bin": os.urandom(1000)})
    lifecycle.delete_version(repo, repo.catalog.get_version("zoo", "animals", "v0"), permanent=True)
    before = _files_on_disk(repo)
    repo.close()
    p = subprocess.Popen([sys.executable, "-c", "from lodestore.cli.main import main; main()", "gc", "--grace", "0"],
                         env={**os.environ, "LODESTORE_TEST_PAUSE_AT": "gc-after-index"},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stderr.readline().strip() == "PAUSED gc-after-index"
        first = p.stdout.readline()
        assert first.startswith("plan: 1 unreferenced file(s)") and "retire 1 pack(s)" in first
        assert "frees 1.0 MB on disk now" in p.stdout.readline()
        assert _files_on_disk(repo) == before
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        p.stdout.close()
        p.stderr.close()


def test_retired_packs_stay_for_readers_until_a_later_gc(repo, tmp_path):
    import time

    v0 = log(repo, "animals", {"a.bin": os.urandom(MB)})
    v1 = log(repo, "animals", {"b.bin": os.urandom(1000)})
    _, located = repo.store._plan(v0.files()[0].digest)  # a reader that located its chunks
    v0.delete(permanent=True)
    time.sleep(0.3)
    plan = lifecycle.gc(repo, grace=0.2)  # reader grace: min(grace, 300 s)
    assert plan.deferred_packs == [located[0].pack_id]
    path = next(repo.store.packs_dir.glob(f"*/{located[0].pack_id}.pack"))
    assert path.exists()  # no longer indexed, still readable by the late reader
    r = lifecycle.fsck(repo).to_dict()
    assert r["ok"] and r["orphan_packs"] == [located[0].pack_id]
    assert content(v1, tmp_path) == {"b.bin": v1.files()[0].download(tmp_path / "x").read_bytes()}
    time.sleep(0.3)
    plan = lifecycle.gc(repo, grace=0.2)
    assert plan.orphan_packs == [located[0].pack_id] and not path.exists()
    r = lifecycle.fsck(repo).to_dict()
    assert r["ok"] and not r["orphan_packs"]
