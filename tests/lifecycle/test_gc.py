"""Garbage collection: reclaims only dead bytes, plan first, repack, stale tmp folders,
grace period, and safety with a real writer process logging at the same time."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from lodestore.sdk import lifecycle
from lodestore.sdk.artifact import Artifact
from lodestore.store import maintenance

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
    assert r.code == 0 and "plan:" in r.out and "done: freed" in r.out
    assert _files_on_disk(repo) < before - MB * 0.9
    assert list(content(v1, tmp_path)) == ["b.bin"]
    assert lifecycle.fsck(repo)["ok"]
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
    assert lifecycle.fsck(repo)["ok"]


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
    repo.store.index.execute("UPDATE files SET created_at=0")
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
            maintenance.run_gc(repo.store, set, grace=0, lock_timeout=0.2)
    finally:
        s.abort()
    maintenance.run_gc(repo.store, set, grace=0, lock_timeout=0.2)


def test_gc_concurrent_with_writers(repo, store, tmp_path):
    """Real processes: two writers log (and purge half of) versions while gc loops with a
    tiny grace period; every version a writer committed materializes byte-identical."""
    log(repo, "animals", {"seed.bin": os.urandom(300_000)})
    repo.close()
    writers = [spawn("writer", store, f"w{i}", 8, i) for i in range(2)]
    gcs = spawn("gc", store, 0.5, 25)
    committed = []
    for w in writers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
        committed += [(f"w{writers.index(w)}", line.split()[1], line.split()[2])
                      for line in out.splitlines() if line.startswith("COMMITTED")]
    out, err = gcs.communicate(timeout=120)
    assert gcs.returncode == 0, err
    assert int(out.split()[-1]) > 0  # gc did reclaim bytes while the writers ran
    assert len(committed) == 8
    from lodestore.sdk.repository import Repository

    repo = Repository.open(store)
    lifecycle.gc(repo, grace=0)  # a final sweep with writers gone
    import hashlib

    for name, version, sha in committed:
        rec = repo.catalog.get_version("zoo", name, version)
        files = content(Artifact._from_record(repo, rec), tmp_path)
        h = hashlib.sha256()
        for path in sorted(files):
            h.update(path.encode() + b"\0" + files[path])
        assert h.hexdigest() == sha, f"{name}:{version} lost bytes"
    assert lifecycle.fsck(repo)["ok"]


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
    r = lifecycle.fsck(repo)
    assert r["ok"] and r["orphan_packs"] == [located[0].pack_id]
    assert content(v1, tmp_path) == {"b.bin": v1.files()[0].download(tmp_path / "x").read_bytes()}
    time.sleep(0.3)
    plan = lifecycle.gc(repo, grace=0.2)
    assert plan.orphan_packs == [located[0].pack_id] and not path.exists()
    r = lifecycle.fsck(repo)
    assert r["ok"] and not r["orphan_packs"]
