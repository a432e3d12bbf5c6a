"""The local store's write path and format checks: the whole format.json is enforced,
git's racy-timestamp rule is what guards a same-size/mtime/ctime rewrite, identical large
files are found without being chunked, many files go through batched lookups, a session's
memory does not grow with its chunks, and temp files never lengthen a long name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lodestore.errors import FileChangedError, SourceFileNotFoundError, StoreFormatError
from lodestore.store import session as session_mod
from lodestore.store import stream as stream_mod
from lodestore.store.chunking import chunk_bytes, cut_window, make_chunker
from lodestore.store.layout import CHUNK_MAX
from lodestore.store.local import RACY_WINDOW_NS, LocalContentStore

from .contract import b3, listing, put
from .data import KiB, MiB, random_bytes, text_bytes
from .sql import index_sql


@pytest.fixture
def store(tmp_path):
    s = LocalContentStore(tmp_path / "store")
    yield s
    s.close()


def add(store, path):
    with store.session() as s:
        ref = s.add_file(path)
        s.commit()
    return ref


# --- format.json ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "edit",
    [
        lambda d: {**d, "format": 99},
        lambda d: {**d, "hash": "sha256"},
        lambda d: {**d, "chunker": {**d["chunker"], "avg": 2 * d["chunker"]["avg"]}},
        lambda d: {**d, "pack": {**d["pack"], "version": 3}},
        lambda d: {**d, "pack": {**d["pack"], "version": 1}},  # format 2 with version-1 packs: no lodestore wrote it
        lambda d: {**d, "pack": {**d["pack"], "compression": "lz4"}},
        lambda d: {**d, "pack": {**d["pack"], "target_size": 1024}},
        lambda d: {k: v for k, v in d.items() if k != "pack"},
        lambda d: {**d, "chunker": {**d["chunker"], "whole_file_limit": 4096}},
        lambda d: {**d, "encryption": "aes"},
        lambda d: [d],
    ],
    ids=["format-99", "other-hash", "other-chunker", "pack-version-3", "format-2-pack-version-1", "lz4", "pack-size",
         "no-pack", "whole-file-limit", "unknown-part", "not-an-object"],
)
def test_every_part_of_the_format_is_checked_on_open(tmp_path, edit):
    LocalContentStore(tmp_path / "store").close()
    fmt = tmp_path / "store" / "format.json"
    fmt.write_text(json.dumps(edit(json.loads(fmt.read_text()))))
    with pytest.raises(StoreFormatError):
        LocalContentStore(tmp_path / "store")


def test_untouched_format_file_opens(tmp_path):
    LocalContentStore(tmp_path / "store").close()
    LocalContentStore(tmp_path / "store").close()


# --- racy timestamps ----------------------------------------------------------------------
def plant_stale_entry(store, f: Path, stale_digest: bytes, recorded_ns: int) -> None:
    """Make the stat cache describe f's *current* size, mtime, ctime and inode exactly, but
    with an old digest: what a rewrite inside one coarse timestamp tick (size, mtime and
    ctime all unchanged) leaves behind. Only recorded_ns can then tell it is not safe."""
    st = f.stat()
    index_sql(store,
        "UPDATE statcache SET size=?, mtime_ns=?, ctime_ns=?, ino=?, dev=?, digest=?, recorded_ns=? WHERE path=?",
        [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, stale_digest, recorded_ns,
         os.path.abspath(f)],
    )


def test_racy_rule_alone_catches_rewrite_with_size_mtime_and_ctime_unchanged(store, tmp_path):
    f = tmp_path / "f.bin"
    old = random_bytes(200 * KiB, 1)
    f.write_bytes(old)
    first = add(store, f)
    new = random_bytes(200 * KiB, 2)
    f.write_bytes(new)  # same size, written now: its mtime is "now"
    mtime = f.stat().st_mtime_ns
    # recorded within the racy window of the mtime: not trusted, the file is read again
    plant_stale_entry(store, f, bytes.fromhex(first.digest), recorded_ns=mtime + RACY_WINDOW_NS // 2)
    assert add(store, f).digest == b3(new)
    # the same planted entry recorded after the window would be believed: the racy rule
    # (not ctime or size) is what decided above
    plant_stale_entry(store, f, bytes.fromhex(first.digest), recorded_ns=mtime + 2 * RACY_WINDOW_NS)
    assert add(store, f).digest == first.digest


def test_stat_cache_entry_is_recorded_before_the_read(store, tmp_path):
    """recorded_ns must not postdate the read: a rewrite right after the read would fall
    outside the racy window of a later timestamp and be trusted."""
    f = tmp_path / "f.bin"
    f.write_bytes(random_bytes(100 * KiB, 3))
    before = time.time_ns()
    with store.session() as s:
        s.add_file(f)
        read_done = time.time_ns()
        time.sleep(0.05)
        s.commit()
    ((recorded,),) = index_sql(store, "SELECT recorded_ns FROM statcache WHERE path=?", [str(f)])
    assert before <= recorded <= read_done


# --- identical large files ----------------------------------------------------------------------
def count_cuts(monkeypatch) -> list[int]:
    """A spy (the real chunker still runs) counting calls to the chunker."""
    calls: list[int] = []
    real = session_mod.cut_window

    def counting(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(session_mod, "cut_window", counting)
    monkeypatch.setattr(stream_mod, "cut_window", counting)
    return calls


def test_identical_large_file_is_found_by_digest_without_chunking(store, tmp_path, monkeypatch):
    data = random_bytes(6 * MiB, 4)
    (tmp_path / "a.bin").write_bytes(data)
    os.link(tmp_path / "a.bin", tmp_path / "hardlink.bin")
    (tmp_path / "copy.bin").write_bytes(data)
    first = add(store, tmp_path / "a.bin")
    stored = store.stats()
    cuts = count_cuts(monkeypatch)
    assert add(store, tmp_path / "hardlink.bin") == first
    assert add(store, tmp_path / "copy.bin") == first
    assert cuts == []  # hashed, found, never chunked
    assert store.stats() == stored


def test_same_size_other_content_is_hashed_then_chunked(store, tmp_path, monkeypatch):
    v1 = random_bytes(6 * MiB, 5)
    v2 = bytearray(v1)
    v2[3 * MiB : 3 * MiB + 100] = random_bytes(100, 6)
    (tmp_path / "v1").write_bytes(v1)
    (tmp_path / "v2").write_bytes(bytes(v2))
    add(store, tmp_path / "v1")
    before = store.stats().stored_bytes
    cuts = count_cuts(monkeypatch)
    ref = add(store, tmp_path / "v2")
    assert cuts and ref.digest == b3(bytes(v2))
    assert store.read_bytes(ref.digest) == bytes(v2)
    assert store.stats().stored_bytes - before < MiB  # only the chunks around the edit


# --- many files -----------------------------------------------------------------------------------
def make_files(folder: Path, n: int) -> list[Path]:
    folder.mkdir()
    paths = []
    for i in range(n):
        p = folder / f"f{i:04d}.bin"
        p.write_bytes(random_bytes(2000 + i, i) if i % 3 else text_bytes(3000, i))
        paths.append(p)
    past = time.time_ns() - 10 * 10**9  # old enough for the stat cache to trust
    for p in paths:
        os.utime(p, ns=(past, past))
    return paths


def test_add_files_returns_refs_in_order_and_stores_every_byte(store, tmp_path):
    paths = make_files(tmp_path / "d", 300)
    big = tmp_path / "big.bin"
    big.write_bytes(random_bytes(3 * MiB, 99))
    mixed = [*paths[:150], big, *paths[150:], paths[0]]
    seen: list[int] = []
    with store.session() as s:
        refs = s.add_files(mixed, progress=seen.append)
        s.commit()
    assert [r.digest for r in refs] == [b3(p.read_bytes()) for p in mixed]
    assert sum(seen) == sum(p.stat().st_size for p in mixed)
    for p, r in zip(mixed, refs, strict=True):
        assert store.read_bytes(r.digest) == p.read_bytes()


def test_relogging_many_unchanged_files_takes_a_few_queries(store, tmp_path):
    paths = make_files(tmp_path / "d", 2000)
    with store.session() as s:
        first = s.add_files(paths)
        s.commit()
    statements: list[str] = []
    store.index._db.set_trace_callback(statements.append)
    try:
        with store.session() as s:
            again = s.add_files(paths)
            s.commit()
    finally:
        store.index._db.set_trace_callback(None)
    assert again == first
    # one stat-cache query and one file query per 900 paths, one commit: not one per file
    assert len(statements) < 40, statements[:50]


def test_first_log_of_many_new_paths_takes_a_few_queries(store, tmp_path):
    """No stat-cache entry for any path: one prefetch per 900 paths answers all of them
    (a miss is remembered, not asked again per file)."""
    paths = make_files(tmp_path / "d", 2000)
    statements: list[str] = []
    store.index._db.set_trace_callback(statements.append)
    try:
        with store.session() as s:
            s.add_files(paths)
            s.commit()
    finally:
        store.index._db.set_trace_callback(None)
    lookups = [q for q in statements if q.startswith("SELECT")]
    assert len(lookups) < 20, lookups[:30]


def test_add_files_error_stops_at_the_bad_file_and_session_stays_usable(store, tmp_path):
    paths = make_files(tmp_path / "d", 50)
    with store.session() as s:
        with pytest.raises(SourceFileNotFoundError, match="nope"):
            s.add_files([*paths[:20], tmp_path / "nope", *paths[20:]])
        ref = s.add_bytes(b"still usable")
        s.commit()
    assert store.has(ref.digest)


def test_small_file_changing_size_while_read_is_refused(store, tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x" * 5000)
    with store.session() as s:
        key = session_mod.stat_key(f.stat())
        f.write_bytes(b"y" * 6000)
        with pytest.raises(FileChangedError):
            s._read_small(str(f), key)


# --- memory -----------------------------------------------------------------------------------------
MEASURE = """
import sys
from pathlib import Path
from lodestore.store.local import LocalContentStore
store = LocalContentStore(sys.argv[1], fsync=False)
with store.session() as s:
    s.add_file(sys.argv[2])
    open_chunks, staged = len(s._open), s._staged.count
    s.commit()
for line in Path("/proc/self/status").read_text().splitlines():
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]) // 1024, open_chunks, staged)
"""


def test_session_memory_does_not_grow_with_the_file(tmp_path, big_file):
    out = subprocess.run([sys.executable, "-c", MEASURE, str(tmp_path / "store"), str(big_file)],
                         check=True, capture_output=True, text=True).stdout.split()
    peak_mb, open_chunks, staged = map(int, out)
    assert staged > 1000  # 200 MiB of ~80 KiB chunks went to the on-disk staging table
    assert open_chunks < staged  # only the current pack's chunks are held in memory
    assert peak_mb < 120  # interpreter + imports ~45 MB, 3 windows of 8 MiB, SQLite caches


# --- temp names -----------------------------------------------------------------------------------
def test_a_255_byte_file_name_materializes(store, tmp_path):
    (ref,) = put(store, random_bytes(2 * MiB, 7))
    (small,) = put(store, b"tiny")
    out = tmp_path / "out"
    out.mkdir()
    long_name = "w" * 251 + ".bin"
    assert len(long_name.encode()) == 255
    store.materialize(ref.digest, out / long_name)
    store.materialize(small.digest, out / ("s" * 255))
    assert listing(out) == {long_name, "s" * 255}
    assert (out / long_name).read_bytes() == store.read_bytes(ref.digest)


def test_re_reading_an_indexed_file_restarts_its_gc_grace_clock(store, tmp_path):
    """A file read again (new path, so no stat-cache entry) that the index already holds
    gets its created_at reset at commit: gc's grace counts from the last reuse."""
    (tmp_path / "a").write_bytes(b"same bytes" * 100)
    (tmp_path / "b").write_bytes(b"same bytes" * 100)
    ref = add(store, tmp_path / "a")
    index_sql(store, "UPDATE files SET created_at=0")
    assert add(store, tmp_path / "b") == ref
    ((created,),) = index_sql(store, "SELECT created_at FROM files WHERE digest=?", [bytes.fromhex(ref.digest)])
    assert created > time.time() - 60


def test_a_stat_cache_hit_restarts_a_stale_files_gc_grace_clock(store, tmp_path, monkeypatch):
    """Unchanged files re-added through the stat cache (no read) still restart the gc
    grace clock of files last touched long ago, also past SPILL_ROWS (the rows spill);
    only files touched within the last minute are left as they are."""
    monkeypatch.setattr(session_mod, "SPILL_ROWS", 8)
    paths = make_files(tmp_path / "d", 30)
    past = time.time_ns() - 600 * 10**9
    for p in paths:
        os.utime(p, ns=(past, past))
    with store.session() as s:
        refs = s.add_files(paths)
        s.commit()
    # as if logged ten minutes ago (rows recorded then, after the racy window of the mtime)
    index_sql(store, "UPDATE files SET created_at=0")
    index_sql(store, "UPDATE statcache SET recorded_ns = mtime_ns + 5000000000")
    with store.session() as s:
        assert s.add_files(paths) == refs
        assert not s._stat_entries  # every file was a stat-cache hit: none was read
        s.commit()
    stale = index_sql(store, "SELECT count(*) FROM files WHERE created_at < ?", [time.time() - 60])
    assert stale == [(0,)]


def test_stat_cache_entry_of_a_file_gc_removed_is_not_trusted(store, tmp_path):
    paths = make_files(tmp_path / "d", 10)
    with store.session() as s:
        first = s.add_files(paths)
        s.commit()
    gone = bytes.fromhex(first[3].digest)
    # gc's own transaction for an unreferenced file: its file, chunk and stat-cache rows go
    store.index.apply_gc([], [], [gone], [gone], set(), time.time())
    with store.session() as s:
        again = s.add_files(paths)
        s.commit()
    assert again == first
    assert store.read_bytes(first[3].digest) == paths[3].read_bytes()  # read and stored again


def test_staged_chunks_are_found_across_packs(tmp_path):
    """The session's on-disk staging (with its in-memory filter) answers exactly which
    digests it holds, however many packs were staged."""
    from lodestore.store.packs import PackEntry
    from lodestore.store.staging import StagedChunks

    staged = StagedChunks(tmp_path / "staged.db")
    try:
        digests = [os.urandom(32) for _ in range(5000)]
        for p in range(5):
            page = digests[p * 1000 : (p + 1) * 1000]
            staged.add(f"pack{p}", [PackEntry(d, 0, i, 10, 10) for i, d in enumerate(page)])
        others = [os.urandom(32) for _ in range(1000)]
        asked = digests[::7] + others
        assert staged.unknown(asked) == others
        assert staged.unknown(others[:3]) == others[:3]
    finally:
        staged.close()


# --- a large file's chunks found in a snapshot of the index ---------------------------------
def chunk_lookups(store, run) -> list[str]:
    """The index queries asking which of some chunk digests are indexed, while `run()` runs."""
    statements: list[str] = []
    store.index._db.set_trace_callback(statements.append)
    try:
        run()
    finally:
        store.index._db.set_trace_callback(None)
    return [q for q in statements if q.startswith("SELECT digest FROM chunks WHERE digest IN")]


def edited(data: bytes, at: int, seed: int) -> bytes:
    out = bytearray(data)
    out[at : at + 100] = random_bytes(100, seed)
    return bytes(out)


def test_a_large_file_in_a_store_of_few_chunks_is_looked_up_in_memory(store, tmp_path):
    """The index's chunk digests are loaded once (one set) when few enough, not asked
    one query a 1 MiB window (each query gives the GIL up to the cutter and writer
    threads); the chunks it holds are still found: only those around the edit are new."""
    v1 = random_bytes(8 * MiB, 70)
    (tmp_path / "v1.bin").write_bytes(v1)
    (tmp_path / "v2.bin").write_bytes(edited(v1, 5 * MiB, 71) + b"tail")  # other size: chunked, not hashed first
    add(store, tmp_path / "v1.bin")
    before = store.stats().stored_bytes
    refs = []
    assert chunk_lookups(store, lambda: refs.append(add(store, tmp_path / "v2.bin"))) == []
    assert store.read_bytes(refs[0].digest) == (tmp_path / "v2.bin").read_bytes()
    assert store.stats().stored_bytes - before < MiB


def test_a_store_of_more_chunks_than_pay_to_load_is_asked_a_window_at_a_time(store, tmp_path, monkeypatch):
    """Past the snapshot's limit (SNAPSHOT_MAX_DIGESTS, or 64 digests a window of the file
    for a small one) the index is asked as before, and finds the same chunks."""
    monkeypatch.setattr(session_mod, "SNAPSHOT_MAX_DIGESTS", 20)
    v1 = random_bytes(8 * MiB, 72)
    (tmp_path / "v1.bin").write_bytes(v1)
    (tmp_path / "v2.bin").write_bytes(edited(v1, 2 * MiB, 73) + b"tail")
    add(store, tmp_path / "v1.bin")
    assert store.stats().chunk_count > 20
    before = store.stats().stored_bytes
    refs = []
    assert len(chunk_lookups(store, lambda: refs.append(add(store, tmp_path / "v2.bin")))) >= 8  # one a window
    assert store.read_bytes(refs[0].digest) == (tmp_path / "v2.bin").read_bytes()
    assert store.stats().stored_bytes - before < MiB


def test_chunks_another_session_commits_after_the_snapshot_are_stored_again_and_gc_reclaims_them(store, tmp_path):
    """A snapshot does not see what other sessions commit after it was loaded: a chunk
    stored by both is a valid copy either way, the index keeps one, and gc's repack
    reclaims the other's dead bytes."""
    x, y = random_bytes(4 * MiB, 74), random_bytes(4 * MiB, 75)
    (tmp_path / "x.bin").write_bytes(x)
    (tmp_path / "y.bin").write_bytes(y)
    (tmp_path / "y_longer.bin").write_bytes(y + b"more")  # y's chunks but the last
    with store.session() as first:
        ref_x = first.add_file(tmp_path / "x.bin")  # its snapshot: the index as it is now (empty)
        ref_y = add(store, tmp_path / "y.bin")  # another session stores and commits y meanwhile
        ref_longer = first.add_file(tmp_path / "y_longer.bin")  # y's chunks stored again
        first.commit()
    assert store.stats().stored_bytes > len(x) + 2 * len(y) - MiB
    every = {ref_x.digest: x, ref_y.digest: y, ref_longer.digest: y + b"more"}
    assert all(store.read_bytes(d) == data for d, data in every.items())
    assert store.fsck().ok
    store.gc(lambda: set(every), grace=0, repack_threshold=0.1)
    assert store.stats().stored_bytes < len(x) + len(y) + MiB
    assert all(store.read_bytes(d) == data for d, data in every.items())
    assert store.fsck().ok


# --- compressibility probes of a large file ----------------------------------------------
def count_probes(monkeypatch) -> list[int]:
    """A spy (the real probe still runs) counting the compressibility probes."""
    calls: list[int] = []
    real = stream_mod.codec.probe_says_raw

    def counting(chunk):
        calls.append(1)
        return real(chunk)

    monkeypatch.setattr(stream_mod.codec, "probe_says_raw", counting)
    return calls


def test_a_run_of_incompressible_chunks_is_probed_on_a_sample(store, tmp_path, monkeypatch):
    """Float weights: every probe would say "raw"; once a run is established only one
    chunk in stream._PROBE_EVERY is probed (a probe is ~5 us a chunk on the busiest thread)."""
    data = random_bytes(16 * MiB, 31)
    (tmp_path / "w.bin").write_bytes(data)
    probes = count_probes(monkeypatch)
    ref = add(store, tmp_path / "w.bin")
    chunks = store.stats().chunk_count
    assert chunks > 150
    assert len(probes) <= stream_mod._RAW_RUN + chunks // stream_mod._PROBE_EVERY + 1
    store.materialize(ref.digest, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data


def test_text_after_a_run_of_incompressible_chunks_is_still_compressed(store, tmp_path):
    """A compressible region after the sampled run is found by the next probe: it is
    stored compressed, but for at most stream._PROBE_EVERY chunks at its start."""
    text = text_bytes(8 * MiB, 32)
    data = random_bytes(8 * MiB, 33) + text + random_bytes(2 * MiB, 34)
    (tmp_path / "mixed.bin").write_bytes(data)
    ref = add(store, tmp_path / "mixed.bin")
    stored = store.stats().stored_bytes
    assert stored < 10 * MiB + len(text) // 2  # the text compresses ~5x; raw it would be 18 MiB
    store.materialize(ref.digest, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data


# --- windows of a large file: what the cutter carries ------------------------------------
def cut_in_windows(data: bytes, window: int) -> tuple[list[bytes], list[int]]:
    """Chunk `data` as the large-file cutter does (stream.py: each window's unfinished
    bytes carried into the next); returns the chunks and the bytes carried each time."""
    chunker = make_chunker()
    chunks: list[bytes] = []
    carried: list[int] = []
    tail, pos = b"", 0
    while True:
        fresh = data[pos : pos + window]
        pos += len(fresh)
        final = pos >= len(data)
        view = memoryview(tail + fresh)
        done = 0
        for chunk in cut_window(chunker, view, final):
            chunks.append(bytes(chunk))
            done += len(chunk)
        if final:
            return chunks, carried
        tail = bytes(view[done:])
        carried.append(len(tail))


@pytest.mark.parametrize("window", [100_003, stream_mod.WINDOW])
def test_a_window_carries_only_its_last_unfinished_chunk(window):
    """A chunk cut on a hash match or at CHUNK_MAX inside the window is the whole file's
    cut and is final at once; only the last one, cut because the window ended, is carried
    and cut again (it was every chunk starting in the window's last CHUNK_MAX bytes: ~4x
    the bytes re-cut and copied on the busiest thread). Boundaries stay those of the
    whole file, in random bytes, zeros (cut at CHUNK_MAX) and text."""
    data = b"".join([random_bytes(3 * MiB + 17, 41), bytes(5 * CHUNK_MAX + 3), text_bytes(2 * MiB, 42),
                     random_bytes(700_001, 43), bytes(4 * CHUNK_MAX), random_bytes(MiB, 44)])
    whole = chunk_bytes(data)
    chunks, carried = cut_in_windows(data, window)
    assert chunks == whole
    ends, end = {0}, 0
    for chunk in whole:
        end += len(chunk)
        ends.add(end)
    for i, tail in enumerate(carried):
        window_end = (i + 1) * window
        last_cut = max(e for e in ends if e <= window_end - tail)  # where the carried bytes start
        assert last_cut == window_end - tail
        following = min(e for e in ends if e > last_cut)
        # carried: the one chunk the window ended inside (or at, unless it was a CHUNK_MAX cut)
        assert following >= window_end
        assert tail < CHUNK_MAX
