"""The S3 store's index objects (s3_index.py): format 2 (binary rows, written as a
stream) reads back exactly what was written, a damaged or truncated one is refused, a
bucket of format-1 objects (JSON, written by an earlier lodestore) is still read and
its format.json upgraded, and merging several objects unites their rows."""

from __future__ import annotations

import io
import json
import sqlite3
import threading

import pytest
import zstandard

from lodestore.errors import CorruptionError
from lodestore.store.base import FilePacks
from lodestore.store.index import SharedState, StoreIndex, UnitedRows
from lodestore.store.local import LocalContentStore, file_packs, united_file_packs

pytest.importorskip("boto3")

from lodestore.store import s3_index
from lodestore.store.layout import format_description
from lodestore.store.s3 import S3ContentStore, bucket_format_description

from .contract import put
from .data import MiB, random_bytes


def digest(i: int) -> bytes:
    return i.to_bytes(4, "big") * 8


def sample_state() -> SharedState:
    """Every table, more rows than one block holds, chunks of packs interleaved."""
    packs = [(f"pack{p:02d}" + "0" * 26, 64 * MiB + p, 1000 + p, 1.5e9 + p) for p in range(3)]
    chunks = [(digest(i), packs[(i // 700) % 3][0], i * 10, 900 + i % 7, 1000 + i, i % 2) for i in range(9000)]
    files = [(digest(i), 1000 + i, 1, None, 1.7e9 + i / 8) for i in range(9000)]
    files += [(digest(100_000 + i), 5 * MiB, 3, digest(i) + digest(i + 1) + digest(i + 2), 1.7e9) for i in range(50)]
    return SharedState(
        packs=packs, chunks=chunks, files=files,
        touched=[(digest(200_000 + i), 1.8e9 + i) for i in range(5000)],
        lost=[(digest(300_000 + i), i, 1.6e9) for i in range(10)],
        retired=[("old" + "0" * 29, 1.2e9), ("older" + "0" * 27, 1.1e9)],
    )


def tables(state: SharedState) -> dict[str, list]:
    return {t: sorted(getattr(state, t), key=repr) for t in ("packs", "chunks", "files", "touched", "lost", "retired")}


def json_object(state: SharedState) -> bytes:
    """An index object as lodestore wrote them before format 2 (its encoder, kept here)."""
    doc = {
        "format": 1,
        "packs": state.packs,
        "chunks": [(d.hex(), p, o, s, r, c) for d, p, o, s, r, c in state.chunks],
        "files": [(d.hex(), n, k, None if r is None else r.hex(), t) for d, n, k, r, t in state.files],
        "touched": [(d.hex(), t) for d, t in state.touched],
        "lost": [(d.hex(), n, t) for d, n, t in state.lost],
        "retired": state.retired,
    }
    return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(json.dumps(doc).encode())


def test_an_object_written_as_a_stream_of_rows_reads_back_identically():
    state = sample_state()
    streamed = SharedState(**{t: iter(rows) for t, rows in vars(state).items()})  # read once, as a session hands them
    out = io.BytesIO()
    s3_index.write_object(out, streamed)
    assert tables(s3_index.decode(out.getvalue(), "index/x.idx")) == tables(state)
    assert tables(s3_index.decode(json_object(state), "index/old.idx")) == tables(state)  # format 1 still read


@pytest.mark.parametrize("damage", ["frame cut", "rows cut", "byte flipped", "bytes after the end"])
def test_a_damaged_or_truncated_object_is_refused_naming_it(damage):
    data = s3_index.encode(sample_state())
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    recompress = zstandard.ZstdCompressor(write_checksum=True).compress
    bad = {"frame cut": lambda: data[: len(data) // 2],
           "rows cut": lambda: recompress(raw[: len(raw) - 100]),
           "byte flipped": lambda: data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:],
           "bytes after the end": lambda: recompress(raw + b"\0" * 5)}[damage]()
    with pytest.raises(CorruptionError, match="index/x.idx"):
        s3_index.decode(bad, "index/x.idx")


def test_merged_objects_unite_their_rows_first_chunk_and_latest_file_time_win(tmp_path):
    a = SharedState(packs=[("pa", 10, 1, 1.0)], chunks=[(digest(1), "pa", 0, 5, 5, 0)],
                    files=[(digest(1), 5, 1, None, 100.0)])
    b = SharedState(packs=[("pb", 10, 1, 2.0)], chunks=[(digest(1), "pb", 0, 5, 5, 0), (digest(2), "pb", 5, 5, 5, 0)],
                    files=[(digest(1), 5, 1, None, 300.0), (digest(2), 5, 1, None, 200.0)],
                    touched=[(digest(2), 250.0)])
    index = StoreIndex(tmp_path / "index.db")
    index.merge_shared_indexes(["index/a.idx", "index/b.idx"], [a, b])
    merged = index.shared_state()
    assert sorted(merged.chunks) == [(digest(1), "pa", 0, 5, 5, 0), (digest(2), "pb", 5, 5, 5, 0)]
    assert sorted(merged.files) == [(digest(1), 5, 1, None, 300.0), (digest(2), 5, 1, None, 250.0)]
    assert index.shared_index_names() == {"index/a.idx", "index/b.idx"}
    index.close()


def test_a_bucket_of_json_index_objects_is_read_and_upgraded(s3_store_url, tmp_path):
    """A bucket an earlier lodestore wrote (index objects of format 1, format.json without
    their format) is read by a machine that never saw it, and its format.json upgraded,
    so that earlier lodestore now refuses the bucket instead of calling our objects damaged."""
    files = [random_bytes(3 * MiB, 40), random_bytes(2000, 41), random_bytes(5000, 42)]
    writer = S3ContentStore(s3_store_url, tmp_path / "cache-a")
    refs = put(writer, *files)
    for name in [o.name for o in writer.bucket.objects("index/")]:  # what the earlier code wrote
        writer.bucket.put(name, json_object(s3_index.decode(writer.bucket.get(name), name)))
    writer.bucket.put("format.json", json.dumps(format_description()).encode())
    writer.close()

    reader = S3ContentStore(s3_store_url, tmp_path / "cache-b")
    assert [reader.read_bytes(r.digest) for r in refs] == files
    assert json.loads(reader.bucket.get("format.json")) == bucket_format_description() != format_description()
    reader.close()


def secondary_indexes(index: StoreIndex) -> set[str]:
    return {n for (n,) in index._all("SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL")}


def test_a_bulk_merge_into_an_empty_index_keeps_its_indexes_and_is_all_or_nothing(tmp_path):
    """Into an empty index the secondary indexes are built after the rows (one transaction):
    they are there after it, and a merge that fails midway leaves the index as it was."""
    index = StoreIndex(tmp_path / "index.db")
    before = secondary_indexes(index)
    state = sample_state()
    broken = SharedState(files=[*state.files[:5000], (digest(999_999), 1)])  # a row SQLite cannot bind
    with pytest.raises(sqlite3.ProgrammingError):
        index.merge_shared_indexes(["index/broken.idx"], [broken])
    assert secondary_indexes(index) == before and index.holds_nothing() and not index.shared_index_names()
    index.merge_shared_indexes(["index/a.idx"], [state])
    assert secondary_indexes(index) == before == {"chunks_by_pack", "files_by_size", "files_chunked"}
    assert index.has_file_of_size(1000 + 17) and not index.has_file_of_size(3)
    assert tables(index.shared_state())["files"] == tables(state)["files"]
    index.close()


def test_united_rows_answer_file_packs_as_the_merged_index_does(tmp_path):
    """A new machine's pull weighs the packs from the rows its cache is about to merge
    (local.united_file_packs): the same packs, counts, order, chunked and absent files
    as `file_packs` over the merged index, for one-chunk files, files of several chunks,
    a file that is also a chunk of another, rows two objects share, and a file not held."""
    store = LocalContentStore(tmp_path / "store")
    small = [random_bytes(3000 + i, 60 + i) for i in range(40)]
    large = random_bytes(3 * MiB, 70)
    refs = put(store, *small[:20])
    refs += put(store, large, *small[20:])
    (chunk_of_large,) = [d for _, d in store.read_chunks([store.recipes([refs[20].digest])[refs[20].digest].chunks[1]])]
    refs += put(store, chunk_of_large)
    whole = store.index.shared_state()
    # two objects, as two sessions' would be, sharing some rows
    first = SharedState(packs=whole.packs, chunks=whole.chunks[: len(whole.chunks) // 2 + 5],
                        files=whole.files[: len(whole.files) // 2 + 3])
    second = SharedState(packs=whole.packs[1:], chunks=whole.chunks[len(whole.chunks) // 2 :],
                         files=whole.files[len(whole.files) // 2 :])
    absent = "ab" * 32
    asked = [refs[30].digest, absent, *(r.digest for r in refs[:30]), refs[-1].digest, *(r.digest for r in refs[31:-1])]

    early = united_file_packs(UnitedRows.of([first, second]), asked)

    assert early == file_packs(store.index, asked)
    assert early.chunked == [refs[20].digest] and early.absent == [absent] and len(early.shares) >= 2
    assert united_file_packs(UnitedRows.of([first, second]), []) == FilePacks([], [], [])
    store.close()


def test_a_new_machine_weighs_its_packs_before_its_index_cache_is_merged(s3_store_url, tmp_path, monkeypatch):
    """After prepare_transfer on a machine whose cache holds nothing, file_packs answers
    from the rows being merged while the merge itself is held (a pull's downloads start
    without waiting for it), the same answer as the merged cache gives after."""
    writer = S3ContentStore(s3_store_url, tmp_path / "cache-a")
    refs = put(writer, *(random_bytes(5000 + i, 80 + i) for i in range(30)), random_bytes(2 * MiB, 79))
    writer.close()
    hold = tmp_path / "hold"
    hold.touch()
    monkeypatch.setenv("LODESTORE_TEST_PAUSE_AT", "index-merge-after-early-rows")
    monkeypatch.setenv("LODESTORE_TEST_PAUSE_FILE", str(hold))
    reader = S3ContentStore(s3_store_url, tmp_path / "cache-b")
    asked = [r.digest for r in refs]  # all held (an absent one is asked of the merged cache, after a sync)
    answers: list[FilePacks] = []
    try:
        reader.prepare_transfer()
        asking = threading.Thread(target=lambda: answers.append(reader.file_packs(asked)))
        asking.start()
        asking.join(timeout=60)
        assert answers, "file_packs waited for the merge"
        assert reader.cache.index.holds_nothing()  # still held: answered from the rows alone
    finally:
        hold.unlink()
    reader._wait_prepared()
    assert not reader.cache.index.holds_nothing()
    merged = file_packs(reader.cache.index, asked)
    assert answers[0] == merged and merged.chunked == [refs[-1].digest] and len(merged.shares) >= 1
    reader.close()
