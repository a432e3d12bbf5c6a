"""Storage accounting: logical and exclusive bytes per version (exclusive = stored bytes a
delete frees, measured against a real gc), `lode stats` figures and their definitions."""

from __future__ import annotations

import os
import random

from lodestore.sdk import lifecycle
from lodestore.sdk.api import Api
from lodestore.store.layout import CHUNK_MAX

from .conftest import content, log

MB = 1_000_000


def _pack_bytes(repo) -> int:
    return sum(p.stat().st_size for p in repo.store.packs_dir.glob("*/*.pack"))


def _text(n: int, seed: int) -> bytes:
    """Compressible bytes (words), distinct per seed."""
    rng = random.Random(seed)
    words = [f"w{seed}x{rng.randrange(10**6)}" for _ in range(300)]
    out = bytearray()
    while len(out) < n:
        out += (" ".join(rng.choice(words) for _ in range(50)) + "\n").encode()
    return bytes(out[:n])


def test_seed_storage_example(repo, lode):
    cat, dog, rat = os.urandom(2 * MB), os.urandom(1 * MB), os.urandom(3 * MB)
    v0 = log(repo, "animals", {"cat.png": cat, "dog.png": dog})
    v1 = log(repo, "animals", {"cat.png": cat, "dog.png": dog, "rat.png": rat})
    assert (v0.logical_size, v1.logical_size) == (3 * MB, 6 * MB)
    assert v0.exclusive_size == 0
    # random bytes do not compress: stored = raw plus record headers and the pack's trailer
    assert 3 * MB <= v1.exclusive_size < 3 * MB + 20_000
    assert lifecycle.version_usage(repo, v1.id).exclusive_logical == 3 * MB
    r = lode("versions", "zoo/animals", "--json")
    assert [v["exclusive_size"] for v in r.json()] == [0, v1.exclusive_size]
    assert "exclusive" in lode("versions", "zoo/animals").out
    assert lode("info", "zoo/animals:v1", "--json").json()["exclusive_size"] == v1.exclusive_size
    assert "exclusive" in lode("info", "zoo/animals:v1").out
    v0.delete()  # soft-deleted versions still hold their bytes
    assert 3 * MB <= v1.exclusive_size < 3 * MB + 20_000
    lode("rm", "zoo/animals:v0", "--permanent")
    assert 6 * MB <= v1.exclusive_size < 6 * MB + 40_000  # v1 now carries the chunks they shared


def test_exclusive_is_what_a_delete_frees_compressible(repo):
    """Exclusive bytes are stored (compressed) bytes: exactly what delete --permanent + gc
    frees when the version's own chunks sit in their own pack."""
    shared, own = _text(300_000, 1), _text(2 * MB, 2)
    log(repo, "animals", {"shared.txt": shared})
    v1 = log(repo, "animals", {"shared.txt": shared, "own.txt": own})
    use = lifecycle.version_usage(repo, v1.id)
    assert use.logical == 2 * MB + 300_000
    assert use.exclusive_logical == 2 * MB
    assert use.exclusive < MB  # it compresses: the raw size would overstate what a delete frees
    before = _pack_bytes(repo)
    v1.delete(permanent=True)
    plan = lifecycle.gc(repo, grace=0)
    assert before - _pack_bytes(repo) == use.exclusive == plan.bytes_freed


def test_exclusive_inside_a_shared_pack_matches_the_repack(repo):
    big, small = _text(MB, 3), os.urandom(30_000)
    v0 = log(repo, "animals", {"big.txt": big, "small.bin": small})  # one pack holds both
    log(repo, "animals", {"small.bin": small})
    excl = v0.exclusive_size
    before = _pack_bytes(repo)
    v0.delete(permanent=True)
    plan = lifecycle.gc(repo, grace=0)
    assert len(plan.repack) == 1
    freed = before - _pack_bytes(repo)
    assert freed == plan.bytes_freed
    assert abs(freed - excl) < 200  # the record bytes; only the trailer's compression differs


def test_stats(repo, store, lode):
    shared = os.urandom(MB)
    log(repo, "animals", {"a.bin": shared})
    log(repo, "animals", {"a.bin": shared, "b.bin": os.urandom(MB)})
    m = log(repo, "net", {"w.bin": shared})
    s = Api(store).stats().to_dict()
    assert s["logical_bytes"] == 4 * MB
    assert s["unique_bytes"] == 2 * MB
    assert s["dedup_saved_bytes"] == 2 * MB
    assert s["dedup_ratio"] == 2.0
    assert 2 * MB <= s["live_stored_bytes"] < 2 * MB + 10_000  # random bytes do not compress
    assert s["compression_saved_bytes"] == 0  # stored raw: no gain, no loss
    assert s["record_overhead_bytes"] == s["live_stored_bytes"] - s["unique_bytes"] > 0
    assert s["saved_bytes"] == s["dedup_saved_bytes"] + s["compression_saved_bytes"] - s["record_overhead_bytes"]
    d = s["disk"]
    assert d["packs"] == _pack_bytes(repo) and d["index"] > 0 and d["catalog"] > 0
    assert s["stored_bytes"] == sum(d.values())
    t = s["types"]["dataset"]
    assert (t["artifacts"], t["versions"], t["logical_bytes"], t["unique_bytes"]) == (2, 3, 4 * MB, 2 * MB)
    assert t["stored_bytes"] == s["live_stored_bytes"] and t["dedup_ratio"] == 2.0
    arts = {a["name"]: a for a in s["artifacts"]}
    assert {n: a["versions"] for n, a in arts.items()} == {"zoo/animals": 2, "zoo/net": 1}
    # a.bin is shared by both artifacts: its stored bytes are split between them
    assert abs(arts["zoo/animals"]["stored_bytes"] - 1.5 * MB) < 10_000
    assert abs(arts["zoo/net"]["stored_bytes"] - 0.5 * MB) < 10_000
    assert MB <= arts["zoo/animals"]["exclusive_bytes"] < MB + 10_000  # b.bin only
    assert arts["zoo/net"]["exclusive_bytes"] == 0
    assert s["soft_deleted_logical_bytes"] == 0 and s["deleted_versions"] == 0
    m.delete()
    s = Api(store).stats().to_dict()
    assert s["soft_deleted_logical_bytes"] == MB and s["soft_deleted_exclusive_bytes"] == 0
    assert s["logical_bytes"] == 3 * MB and s["deleted_versions"] == 1
    assert {a["name"]: a["deleted_versions"] for a in s["artifacts"]} == {"zoo/animals": 0, "zoo/net": 1}
    r = lode("stats", "--json")
    assert r.code == 0 and r.json()["logical_bytes"] == 3 * MB
    r = lode("stats")
    assert r.code == 0 and "dedup ratio" in r.out and "zoo/animals" in r.out and "compression" in r.out


def test_stats_soft_deleted_and_dead_bytes(repo, store, monkeypatch):
    keep = _text(500_000, 4)
    log(repo, "animals", {"keep.txt": keep})
    gone = log(repo, "animals", {"keep.txt": keep, "gone.bin": os.urandom(400_000)})
    soft = log(repo, "birds", {"soft.bin": os.urandom(300_000)})
    log(repo, "birds", {"other.bin": os.urandom(1000)})
    soft.delete()
    s = Api(store).stats().to_dict()
    # bytes held only by soft-deleted versions: freed if they were purged
    assert 300_000 <= s["soft_deleted_exclusive_bytes"] < 310_000
    assert s["gc_reclaimable_bytes"] == 0  # nothing is unreferenced yet
    gone.delete(permanent=True)
    s = Api(store).stats().to_dict()
    # just written: the default grace holds the dead bytes back, and stats says so
    assert s["gc_reclaimable_bytes"] == 0 and 400_000 <= s["gc_held_by_grace_bytes"] < 410_000
    assert s["dead_pack_bytes"] >= 400_000
    assert s["saved_bytes"] == s["logical_bytes"] - s["live_stored_bytes"] > 0  # dead bytes do not count
    assert s["compression_saved_bytes"] > 0  # keep.txt compresses
    monkeypatch.setenv("LODESTORE_GC_GRACE_SECONDS", "0")
    s = Api(store).stats().to_dict()
    before = _pack_bytes(repo)
    plan = lifecycle.gc(repo)
    assert s["gc_reclaimable_bytes"] == plan.bytes_freed == before - _pack_bytes(repo) > 400_000
    s = Api(store).stats().to_dict()
    assert s["gc_reclaimable_bytes"] == 0 and s["gc_held_by_grace_bytes"] == 0


def test_usage_of_some_versions_matches_the_full_pass(repo):
    """`usage(repo, ids)` (what `lode versions`/`info` need) looks up only what shares
    with the given versions; it must agree with the pass over every version, including
    chunk-level sharing between different files and soft-deleted holders."""
    base = os.urandom(3 * MB)  # above the whole-file limit: content-defined chunks
    edited = base[: MB + 500_000] + os.urandom(5000) + base[MB + 505_000 :]  # shares most chunks
    small = os.urandom(5000)
    log(repo, "animals", {"a.bin": base, "s.bin": small})
    log(repo, "animals", {"a.bin": edited})
    log(repo, "birds", {"s.bin": small, "t.txt": _text(200_000, 7)})
    v3 = log(repo, "birds", {"u.bin": os.urandom(70_000)})
    v3.delete()
    full = lifecycle.usage(repo)
    assert len(full) == 4
    for vid in full:
        assert lifecycle.usage(repo, [vid]) == {vid: full[vid]}, vid
    assert lifecycle.usage(repo, list(full)) == full
    assert all(u.exclusive > 0 for u in full.values())  # each holds something of its own
    v1 = next(v for v in full if full[v].logical == len(edited))
    assert full[v1].exclusive < 600_000  # only the chunks around the edit are its own


def test_duplicate_chunks_from_concurrent_sessions_are_dead_bytes_not_negative_savings(repo, store):
    """Two sessions storing the same new bytes at once: the index keeps one copy, the
    other is dead bytes in its pack. Savings stay honest (never below zero from that),
    the duplicate shows as dead pack bytes and gc reclaims it."""
    data = os.urandom(400_000)
    with repo.store.session() as s1, repo.store.session() as s2:
        s1.add_bytes(data)
        s2.add_bytes(data)
        s1.commit()
        s2.commit()
    log(repo, "animals", {"d.bin": data})
    s = Api(store).stats().to_dict()
    assert len(list(repo.store.packs_dir.glob("*/*.pack"))) >= 2
    assert s["logical_bytes"] == s["unique_bytes"] == 400_000
    assert s["saved_bytes"] == -s["record_overhead_bytes"]  # nothing shared, nothing compressed
    assert s["dead_pack_bytes"] >= 400_000  # the losing copy
    plan = lifecycle.gc(repo, grace=0)
    assert plan.bytes_freed >= 400_000
    assert Api(store).stats().dead_pack_bytes < 1000


def test_exclusive_in_a_mostly_live_pack_is_freed_with_repack_threshold_zero(repo, store, lode):
    """The seed's edit-10 % case: v0's own chunks are a small part of a pack that stays
    mostly live, so the default gc (repack past 50 % dead) keeps them as dead bytes and
    says so; `--repack-threshold 0` frees exactly what `exclusive` promised."""
    rng = random.Random(7)  # fixed content: the chunk boundaries around the edit are the same every run
    base = rng.randbytes(4 * MB)
    edited = bytearray(base)
    edited[MB : MB + 400_000] = rng.randbytes(400_000)
    v0 = log(repo, "model", {"w.bin": base})
    log(repo, "model", {"w.bin": bytes(edited)})
    excl = v0.exclusive_size
    # every edited byte sits in a chunk of v0 that v1 lacks; the chunks cut across the
    # edit's two ends (and one to resynchronise after it) add at most CHUNK_MAX each
    assert 400_000 <= excl < 400_000 + 3 * CHUNK_MAX
    before = _pack_bytes(repo)
    assert lode("rm", "zoo/model:v0", "--permanent").code == 0
    r = lode("gc", "--grace", "0", "--json")
    assert r.code == 0, r.err
    assert _pack_bytes(repo) == before  # under the threshold: nothing rewritten
    assert Api(store).stats().dead_pack_bytes >= excl - 200
    assert lode("gc", "--grace", "0", "--repack-threshold", "2").code == 2  # a fraction, 0 to 1
    r = lode("gc", "--grace", "0", "--repack-threshold", "0", "--json")
    assert r.code == 0, r.err
    assert abs((before - _pack_bytes(repo)) - excl) < 1_000  # + the dropped chunks' trailer entries
    assert content(Api(store).artifact("zoo/model:latest"), repo.root.parent) == {"w.bin": bytes(edited)}
