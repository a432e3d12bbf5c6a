"""Faults with real processes: kill -9 during gc, repack and permanent delete; flipped
bytes found by fsck; repair quarantines and marks versions broken."""

from __future__ import annotations

import os
import signal

import pytest
from store.sql import index_sql

from lodestore.sdk import lifecycle
from lodestore.sdk.artifact import Artifact
from lodestore.sdk.repository import Repository

from .conftest import content, log, spawn

MB = 1_000_000


def _setup(repo):
    """v0 (big + small, one pack) and v2 (its own pack) are to go; v1 (small, inside
    v0's pack) and v3 stay: gc then repacks one pack and deletes another."""
    big, small, other, keep = os.urandom(MB), os.urandom(40_000), os.urandom(MB), os.urandom(200_000)
    log(repo, "animals", {"big.bin": big, "small.bin": small})
    log(repo, "animals", {"small.bin": small})
    log(repo, "animals", {"other.bin": other})
    log(repo, "animals", {"keep.bin": keep, "small.bin": small}, aliases=["best"])
    return {"v1": {"small.bin": small}, "v3": {"keep.bin": keep, "small.bin": small}}


def _check(store, tmp_path, expected):
    repo = Repository.open(store)
    for version, files in expected.items():
        rec = repo.catalog.get_version("zoo", "animals", version)
        assert content(Artifact._from_record(repo, rec), tmp_path) == files, version
    result = lifecycle.fsck(repo).to_dict()
    assert result["ok"], result
    return repo


def _kill_at(phase, *args):
    p = spawn(*args, env={"LODESTORE_TEST_PAUSE_AT": phase})
    line = p.stderr.readline()
    assert line.strip() == f"PAUSED {phase}", line + p.stderr.read()
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    p.stdout.close()
    p.stderr.close()


@pytest.mark.parametrize("phase", ["gc-pack-written", "gc-before-index", "gc-after-index", "gc-deleting"])
def test_kill_9_during_gc_and_repack(repo, store, tmp_path, phase):
    expected = _setup(repo)
    for v in ("v0", "v2"):
        lifecycle.delete_version(repo, repo.catalog.get_version("zoo", "animals", v), permanent=True)
    plan = lifecycle.gc(repo, grace=0, dry_run=True)
    assert plan.repack and plan.delete_packs
    repo.close()
    _kill_at(phase, "gc", store, 0, 1)
    repo = _check(store, tmp_path, expected)
    plan = lifecycle.gc(repo, grace=0)  # finishes the job: orphans and the dead gc's tmp folder go
    repo = _check(store, tmp_path, expected)
    after = lifecycle.fsck(repo).to_dict()
    assert not after["orphan_packs"] and not after["stale_tmp"]
    assert lifecycle.gc(repo, grace=0).bytes_freed == 0
    assert len(list(repo.store.packs_dir.glob("*/*.pack"))) == 2


def test_kill_9_during_permanent_delete(repo, store, tmp_path):
    expected = _setup(repo)
    repo.close()
    _kill_at("purge-before", "purge", store, "zoo/animals:v2")
    repo = _check(store, tmp_path, expected)
    assert repo.catalog.get_version("zoo", "animals", "v2", include_deleted=True).state == "deleted"
    lifecycle.delete_version(repo, repo.catalog.get_version("zoo", "animals", "v2", include_deleted=True),
                             permanent=True)
    lifecycle.gc(repo, grace=0)
    _check(store, tmp_path, expected)


def _flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["data", "header", "magic", "trailer", "footer"])
def test_fsck_finds_a_flipped_byte_anywhere(repo, lode, where):
    log(repo, "animals", {"a.bin": os.urandom(300_000)})
    pack = next(repo.store.packs_dir.glob("*/*.pack"))
    size = pack.stat().st_size
    offset = {"data": 1000, "header": 8 + 5, "magic": 2, "trailer": size - 30, "footer": size - 3}[where]
    assert lode("fsck").code == 0
    _flip(pack, offset)
    repo.store.close()
    repo.close()
    r = lode("fsck", "--json")
    assert r.code == 6
    assert r.json()["corrupt_packs"] == [pack.stem]


def test_fsck_repair_quarantines_and_marks_broken(repo, lode, store, tmp_path):
    a = os.urandom(300_000)
    keep = os.urandom(300_000)
    log(repo, "animals", {"a.bin": a})
    log(repo, "birds", {"keep.bin": keep, "x.bin": b"small"})
    # both versions share nothing; put a.bin's pack apart
    packs = sorted(repo.store.packs_dir.glob("*/*.pack"), key=lambda p: p.stat().st_mtime)
    victim = packs[0]
    repo.close()
    _flip(victim, 500)
    r = lode("fsck", "--json")
    assert r.code == 6
    assert r.json()["affected_versions"] == ["zoo/animals:v0"]
    r = lode("fsck", "--repair", "--json")
    assert r.code == 0, r.err
    rep = r.json()["repaired"]
    assert rep["quarantined"] == [victim.stem] and rep["marked_broken"] == ["zoo/animals:v0"]
    assert (store / "store" / "quarantine" / victim.name).exists()
    repo = Repository.open(store)
    assert repo.catalog.get_version("zoo", "animals", "v0").state == "broken"
    rec = repo.catalog.get_version("zoo", "birds", "v0")
    assert content(Artifact._from_record(repo, rec), tmp_path) == {"keep.bin": keep, "x.bin": b"small"}


def test_rebuild_index_from_packs(repo, tmp_path):
    from lodestore.store import integrity

    data = os.urandom(600_000)
    art = log(repo, "animals", {"a.bin": data, "b.txt": b"hello"})
    index_sql(repo.store, "DELETE FROM chunks")
    assert not lifecycle.fsck(repo).ok
    done = integrity.rebuild_index(repo.store)
    assert done.chunks >= 2
    assert lifecycle.fsck(repo).ok
    assert content(art, tmp_path) == {"a.bin": data, "b.txt": b"hello"}


def test_missing_pack_and_orphans(repo, lode, store):
    log(repo, "animals", {"a.bin": os.urandom(200_000)})
    log(repo, "birds", {"b.bin": os.urandom(200_000)})
    (repo.store.packs_dir / "ab").mkdir(exist_ok=True)
    (repo.store.packs_dir / "ab" / ("ab" + "0" * 30 + ".pack")).write_bytes(b"orphan")  # crash leftover
    r = lode("fsck", "--json")
    assert r.code == 0 and len(r.json()["orphan_packs"]) == 1  # reclaimable, not damage
    first = index_sql(repo.store, "SELECT pack_id FROM chunks")[0][0]
    victim = next(repo.store.packs_dir.glob(f"*/{first}.pack"))
    repo.close()
    victim.unlink()
    r = lode("fsck")
    assert r.code == 6 and "DAMAGE FOUND" in r.out
    r = lode("fsck", "--repair", "--json").json()
    assert r["missing_packs"] == [first]
    assert len(r["repaired"]["marked_broken"]) == 1
    repo = Repository.open(store)
    states = sorted(v.state for n in ("animals", "birds") for v in repo.catalog.list_versions("zoo", n))
    assert states == ["broken", "live"]


def test_manifest_file_missing_from_the_store(repo, lode, store, tmp_path):
    """A file a manifest names but the store does not know (its index row is gone). A
    chunked file (over 1 MiB): its recipe lived only in that row, so it is really lost
    (a small file would be rebuilt from its whole-file chunk: test_index_loss.py)."""
    a = log(repo, "animals", {"a.bin": os.urandom(1_500_000)})
    b = log(repo, "birds", {"b.bin": b"fine"})
    digest = a.files()[0].digest
    index_sql(repo.store, "DELETE FROM files WHERE digest=?", [bytes.fromhex(digest)])
    repo.close()
    r = lode("fsck", "--json")
    assert r.code == 6
    assert r.json()["missing_files"] == [digest] and r.json()["affected_versions"] == ["zoo/animals:v0"]
    assert r.json()["bad_files"] == []  # the store itself is consistent
    r = lode("fsck", "--repair", "--json")
    assert r.code == 0
    assert r.json()["repaired"]["marked_broken"] == ["zoo/animals:v0"]
    after = r.json()["repaired"]["after"]
    assert after["ok"] and after["known_broken_versions"] == ["zoo/animals:v0"] and not after["missing_files"]
    repo = Repository.open(store)
    assert content(Artifact._from_record(repo, repo.catalog.get_version("zoo", "birds", "v0")), tmp_path) == {
        "b.bin": b"fine"}
    assert b.version == "v0"


def test_bad_index_entry_is_rebuilt_from_the_pack(repo, lode, store, tmp_path):
    """An index row pointing at the wrong offset: fsck reports it; the pack's bytes are
    fine, so repair rebuilds the index and no version is lost."""
    data = {"a.bin": os.urandom(100_000), "b.bin": os.urandom(100_000)}
    art = log(repo, "animals", data)
    digest = art.files()[0].digest  # a small file is one chunk: its digest is the chunk's
    index_sql(repo.store, "UPDATE chunks SET offset = offset + 7 WHERE digest=?", [bytes.fromhex(digest)])
    repo.close()
    r = lode("fsck", "--json")
    assert r.code == 6
    assert r.json()["bad_index_entries"] == [digest]
    assert r.json()["affected_versions"] == ["zoo/animals:v0"]
    r = lode("fsck", "--repair", "--json")
    assert r.code == 0
    rep = r.json()["repaired"]
    assert rep["marked_broken"] == [] and rep["lost_files"] == [] and rep["salvaged_chunks"] == 2
    assert rep["after"]["ok"] and not rep["after"]["known_broken_versions"]
    repo = Repository.open(store)
    rec = repo.catalog.get_version("zoo", "animals", "v0")
    assert rec.state == "live" and content(Artifact._from_record(repo, rec), tmp_path) == data


def test_unknown_and_purged(repo):
    from lodestore.errors import NotFoundError

    art = log(repo, "animals", {"a": b"0"})
    art.delete(permanent=True)
    with pytest.raises(NotFoundError):
        lifecycle.restore_version(repo, "zoo", "animals", "v0")
    with pytest.raises(NotFoundError):
        repo.catalog.restore_version(art.id)
    with pytest.raises(NotFoundError):
        repo.catalog.get_version("zoo", "animals", "v5")
