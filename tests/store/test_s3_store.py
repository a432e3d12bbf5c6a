"""S3ContentStore on a real SeaweedFS: the whole ContentStore contract, then what only a
store shared by many machines has (cross-machine dedup, request counts, gc with
writers on other machines, faults of the server)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import blake3
import pytest

from lodestore.errors import ConflictError, CorruptionError, InvalidInputError

pytest.importorskip("boto3")

from lodestore.store import s3_leases
from lodestore.store.s3 import S3ContentStore
from lodestore.store.s3_leases import GC_LOCK
from lodestore.store.s3_packs import RANGE_PIECE, pack_name

from .contract import ContentStoreContract, put
from .data import MiB, random_bytes


def open_store(url: str, cache: Path) -> S3ContentStore:
    return S3ContentStore(url, cache)


@pytest.fixture
def store(tmp_path, s3_store_url):
    s = open_store(s3_store_url, tmp_path / "cache-a")
    yield s
    s.close()


def flip_object_byte(store: S3ContentStore, name: str, offset: int) -> None:
    """Damage the real object in the bucket (and drop the store's cached copy, as a
    machine that never read it would have none)."""
    data = bytearray(store.bucket.get(name))
    data[offset] ^= 0xFF
    store.bucket.put(name, bytes(data))


class TestS3ContentStore(ContentStoreContract):
    """The whole ContentStore contract on S3ContentStore over a fresh bucket."""

    def corrupt_stored_bytes(self, store, digest):
        chunks = _recipe(store, digest)
        loc = store.cache.index.locate([bytes.fromhex(chunks[len(chunks) // 2])])
        (where,) = loc.values()
        flip_object_byte(store, pack_name(where.pack_id), where.offset + where.stored_len // 2)
        store.cache.packs.evict(where.pack_id)

    def leftover_temp_paths(self, store):
        return [p for p in Path(store.cache.tmp_dir).rglob("*")] + [
            Path(o.name) for o in store.bucket.objects("packs/")]


def _recipe(store: S3ContentStore, digest: str) -> list[str]:
    store.sync()
    row = store.cache.index.file_row(bytes.fromhex(digest))
    _size, count, recipe = row
    if recipe is None:
        return [digest]
    return [recipe[i : i + 32].hex() for i in range(0, count * 32, 32)]


# --- many machines on one bucket ------------------------------------------------------
@pytest.fixture
def teammate(tmp_path, s3_store_url):
    """A second S3ContentStore on the same bucket with its own cache: another machine."""
    s = open_store(s3_store_url, tmp_path / "cache-b")
    yield s
    s.close()


def uploaded_bytes(store: S3ContentStore) -> int:
    return store.counters.bytes_sent


def test_a_teammate_logging_v2_uploads_only_the_changed_chunks(store, teammate, tmp_path):
    v1 = random_bytes(24 * MiB, 300)
    changed = random_bytes(len(v1) // 10, 301)  # 10 % of the file rewritten in the middle
    middle = len(v1) // 2
    v2 = v1[:middle] + changed + v1[middle + len(changed):]
    (tmp_path / "ckpt_v1.pt").write_bytes(v1)
    (tmp_path / "ckpt_v2.pt").write_bytes(v2)
    (ref1,) = put(store, tmp_path / "ckpt_v1.pt")
    teammate.counters.reset()
    (ref2,) = put(teammate, tmp_path / "ckpt_v2.pt")
    sent = uploaded_bytes(teammate)
    assert sent <= 0.15 * len(v2), f"uploaded {sent} bytes for a 10 %-changed {len(v2)}-byte file"
    assert teammate.read_bytes(ref1.digest) == v1 and store.read_bytes(ref2.digest) == v2  # each sees the other's


def test_twenty_thousand_small_files_take_few_requests(store, tmp_path):
    folder = tmp_path / "dataset"
    folder.mkdir()
    paths = []
    for i in range(20_000):
        p = folder / f"{i:05d}.json"
        p.write_bytes(b'{"sample": %d, "pad": "%s"}' % (i, b"x" * (i % 700)))
        paths.append(p)
    store.counters.reset()
    with store.session() as s:
        refs = s.add_files(paths)
        s.commit()
    requests = store.counters.total
    assert requests <= 200, dict(store.counters.requests)
    assert store.missing([r.digest for r in refs]) == set()
    assert store.read_bytes(refs[12_345].digest) == paths[12_345].read_bytes()


def test_a_transfer_reads_a_pack_it_lacks_as_ranges_received_once(store, teammate, s3_store_url, tmp_path):
    """read_chunks (what push and pull read) of chunks filling most of a pack this machine
    has not cached: ranged GETs of up to RANGE_PIECE bytes, fetched ahead in parallel,
    every byte received once (a HEAD's Content-Length is not a body) and nothing cached
    (the transfer's destination keeps the bytes: caching them too wrote them twice); a
    few chunks of a pack are one range."""
    data = random_bytes(20 * MiB, 340)
    (ref,) = put(store, data)
    chunks = store.recipes([ref.digest])[ref.digest].chunks
    teammate.sync()
    teammate.counters.reset()
    got = dict(teammate.read_chunks(chunks))
    assert b"".join(got[c] for c in chunks) == data
    assert teammate.cache.packs.cached_bytes() == 0
    assert teammate.counters.bytes_received < 1.1 * len(data), dict(teammate.counters.requests)
    assert teammate.counters.requests["GetObject"] <= len(data) // RANGE_PIECE + 2  # ranges of neighbours
    third = open_store(s3_store_url, tmp_path / "cache-c")
    try:
        third.sync()
        third.counters.reset()
        few = dict(third.read_chunks(chunks[:3]))
        assert [few[c] for c in chunks[:3]] == [got[c] for c in chunks[:3]]
        assert third.counters.requests["GetObject"] == 1 and third.cache.packs.cached_bytes() == 0
    finally:
        third.close()


def test_a_teammates_commit_is_found_without_asking_for_a_sync(store, teammate):
    (ref,) = put(teammate, b"logged on another machine")
    assert store.has(ref.digest) and store.read_bytes(ref.digest) == b"logged on another machine"
    assert store.missing([ref.digest]) == set()


# --- gc with writers on other machines ------------------------------------------------------
def test_gc_waits_for_a_writer_on_another_machine_and_keeps_what_it_committed(store, teammate):
    """The teammate's session dedups against a file nobody references yet (garbage to a
    gc with no grace); a gc started meanwhile waits for the teammate's lease, then keeps
    the version the teammate committed before closing its session."""
    shared = random_bytes(300_000, 310)
    (orphan,) = put(store, shared)  # unreferenced: gc with grace 0 would sweep it
    (garbage,) = put(store, random_bytes(200_000, 311))
    live: set[str] = set()
    session = teammate.session()  # the lease is registered before any lookup
    ref = session.add_bytes(shared)  # dedups against the orphan's chunk
    assert ref.digest == orphan.digest
    done: list = []
    gc = threading.Thread(target=lambda: done.append(store.gc(lambda: set(live), grace=0, repack_threshold=0)))
    gc.start()
    time.sleep(1.0)
    assert gc.is_alive() and not done  # waiting for the teammate's lease
    session.commit()
    live.add(ref.digest)  # the teammate's catalog commits its version...
    session.close()  # ...then the session ends
    gc.join(timeout=60)
    assert done and done[0].executed
    assert teammate.read_bytes(ref.digest) == shared and store.read_bytes(ref.digest) == shared
    assert not store.has(garbage.digest) and not teammate.has(garbage.digest)
    assert store.fsck().ok


def test_gc_gives_up_with_a_conflict_while_a_writer_stays(store, teammate):
    session = teammate.session()
    try:
        started = time.monotonic()
        with pytest.raises(ConflictError, match="writers"):
            store.gc(set, grace=0, lock_timeout=1.0)
        assert time.monotonic() - started < 10
    finally:
        session.abort()
    store.gc(set, grace=0)  # the lease is gone: gc runs
    assert store.bucket.head(GC_LOCK) is None


def test_a_writer_waits_for_a_running_gc_and_then_sees_its_result(store, teammate, tmp_path, monkeypatch):
    """gc paused after publishing its sweep; a teammate's session started meanwhile waits
    until gc is done, then dedups only against what survived."""
    (garbage,) = put(store, random_bytes(250_000, 320))
    hold = tmp_path / "hold"
    hold.touch()
    monkeypatch.setenv("LODESTORE_TEST_PAUSE_AT", "gc-deleting")
    monkeypatch.setenv("LODESTORE_TEST_PAUSE_FILE", str(hold))
    gc = threading.Thread(target=lambda: store.gc(set, grace=0))
    gc.start()
    deadline = time.monotonic() + 30
    while store.bucket.head(GC_LOCK) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # gc is at its pause point, holding the lock
    opened: list = []
    writer = threading.Thread(target=lambda: opened.append(teammate.session()))
    writer.start()
    time.sleep(1.0)
    assert not opened  # waiting for gc
    hold.unlink()
    gc.join(timeout=60)
    writer.join(timeout=60)
    (session,) = opened
    with session:
        ref = session.add_bytes(random_bytes(250_000, 320))  # the garbage's bytes: stored again
        session.commit()
    assert ref.digest == garbage.digest
    assert teammate.read_bytes(ref.digest) == random_bytes(250_000, 320)
    assert store.read_bytes(ref.digest) == random_bytes(250_000, 320)
    assert store.fsck().ok


def test_gc_aborts_stale_multipart_uploads_and_dry_run_changes_nothing(store, tmp_path):
    (dead,) = put(store, random_bytes(100_000, 330))
    client = store.bucket.client
    key = store.bucket.key("packs/ab/abandoned.pack")
    upload = client.create_multipart_upload(Bucket=store.bucket.bucket, Key=key)["UploadId"]
    client.upload_part(Bucket=store.bucket.bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * 1000)
    before = sorted(o.name for o in store.bucket.objects())
    plan = store.gc(set, grace=0, dry_run=True)
    assert plan.dead_files == 1 and "upload:packs/ab/abandoned.pack" in plan.stale_tmp and not plan.executed
    assert sorted(o.name for o in store.bucket.objects()) == before and store.has(dead.digest)
    assert store.bucket.pending_uploads("packs/")
    done = store.gc(set, grace=0)
    assert done.executed and "upload:packs/ab/abandoned.pack" in done.stale_tmp
    assert not store.bucket.pending_uploads("packs/") and not store.has(dead.digest)
    assert not list(store.bucket.objects("packs/"))  # its pack went too (no reader grace at grace 0)


def test_gc_with_grace_keeps_young_content_another_machine_reads(store, teammate):
    (young,) = put(store, random_bytes(100_000, 340))
    plan = store.gc(set, grace=3600)
    assert plan.files_held_by_grace == 1 and store.has(young.digest)
    assert teammate.read_bytes(young.digest) == random_bytes(100_000, 340)


def test_a_crashed_gcs_lock_is_broken_after_it_expires(store, monkeypatch):
    monkeypatch.setattr(s3_leases, "LOCK_SECONDS", 2.0)
    store.bucket.put(GC_LOCK, b'{"host": "crashed"}', if_absent=True)
    started = time.monotonic()
    store.gc(set, grace=0, lock_timeout=30)
    assert 1.0 <= time.monotonic() - started < 30
    assert store.bucket.head(GC_LOCK) is None


def test_the_pack_cache_stays_under_its_cap_and_reads_still_verify(tmp_path, s3_store_url, monkeypatch):
    monkeypatch.setenv("LODESTORE_S3_CACHE_MAX_BYTES", "1MB")
    s = open_store(s3_store_url, tmp_path / "capped")
    try:
        items = [random_bytes(2 * MiB + i, 350 + i) for i in range(3)]  # chunked: reads fetch whole packs
        refs = [put(s, data)[0] for data in items]
        for _ in range(2):
            for ref, data in zip(refs, items, strict=True):
                s.materialize(ref.digest, tmp_path / "out.bin")
                assert (tmp_path / "out.bin").read_bytes() == data
                assert s.cache.packs.cached_bytes() <= 1_000_000 + 2 * MiB + 4096  # at most the one just read over
    finally:
        s.close()


def test_a_cache_size_setting_that_is_not_a_size_is_refused(tmp_path, s3_store_url, monkeypatch):
    monkeypatch.setenv("LODESTORE_S3_CACHE_MAX_BYTES", "lots")
    with pytest.raises(InvalidInputError, match="LODESTORE_S3_CACHE_MAX_BYTES"):
        open_store(s3_store_url, tmp_path / "c")


def test_packs_dropped_by_gc_stay_for_readers_then_another_machines_gc_deletes_them(store, teammate):
    (dead,) = put(store, random_bytes(150_000, 360))
    (live,) = put(store, random_bytes(120_000, 361))
    time.sleep(2.2)  # both older than the grace below
    first = store.gc(lambda: {live.digest}, grace=2.0)
    dead_pack = first.deferred_packs
    assert len(dead_pack) == 1 and first.bytes_retired > 0
    assert store.bucket.head(pack_name(dead_pack[0])) is not None  # kept for readers a while
    assert not teammate.has(dead.digest) and teammate.read_bytes(live.digest) == random_bytes(120_000, 361)
    time.sleep(2.2)
    second = teammate.gc(lambda: {live.digest}, grace=2.0)  # the retirement is shared through the index
    assert dead_pack[0] in second.orphan_packs and second.bytes_freed > 0
    assert store.bucket.head(pack_name(dead_pack[0])) is None
    assert store.read_bytes(live.digest) == random_bytes(120_000, 361) and store.fsck().ok


def test_a_large_file_of_several_packs_logged_on_one_machine_downloads_on_another(store, teammate, big_file,
                                                                                  tmp_path):
    (ref,) = put(store, big_file)
    packs = {o.name for o in store.bucket.objects("packs/")}
    assert len(packs) >= 3  # 200 MiB: several 64 MiB packs, fetched ahead of the reader
    seen: list[int] = []
    teammate.materialize(ref.digest, tmp_path / "big.out", progress=seen.append)
    assert sum(seen) == ref.size
    assert blake3.blake3((tmp_path / "big.out").read_bytes()).hexdigest() == ref.digest


def test_a_damaged_index_object_is_named_set_aside_and_repaired_from_the_packs(store, teammate):
    data = random_bytes(200_000, 370)
    (ref,) = put(store, data)
    (name,) = [o.name for o in store.bucket.objects("index/")]
    store.bucket.put(name, b"not an index object")
    with pytest.raises(CorruptionError, match=name):
        teammate.has(ref.digest)  # never half merged, never taken as "absent"
    assert name in teammate.index_problem()
    aside = teammate.set_aside_damaged_index()
    assert "quarantine/index/" in aside and store.bucket.get(f"quarantine/{name}") == b"not an index object"
    assert teammate.index_problem() is None and not teammate.has(ref.digest)
    result = teammate.repair(teammate.fsck(), absent={ref.digest: len(data)})
    assert result.restored_files == [ref.digest]  # a one-chunk file is its chunk: rebuilt from the pack
    assert teammate.read_bytes(ref.digest) == data and store.read_bytes(ref.digest) == data
    assert store.fsck().ok


def test_an_aborted_session_deletes_the_packs_it_uploaded(store, teammate, big_file):
    with store.session() as s:
        ref = s.add_file(big_file)  # several packs: the full ones are uploaded already
        assert list(store.bucket.objects("packs/"))
        assert not teammate.has(ref.digest)  # uploaded is not visible: no index object yet
        s.abort()
    assert not list(store.bucket.objects("packs/")) and not list(store.bucket.objects("index/"))
    assert not list(store.bucket.objects("writers/"))
