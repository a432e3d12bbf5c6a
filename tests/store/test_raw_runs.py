"""Raw runs (pack version 2): the chunks a log appends together lie back to back in the
pack, so a download reads a 1 MiB piece of a raw file with one or two preadv calls,
hashes it and writes it from the same buffer, each piece at a multiple of PIECE in the
file (store/rawcopy.py); nothing wrong ever gets a file's name."""

from __future__ import annotations

import os
import threading

import pytest

from lodestore.errors import CorruptionError
from lodestore.store import atomic, local, packs, rawcopy, stream
from lodestore.store.layout import READ_WINDOW
from lodestore.store.local import LocalContentStore

from .contract import listing
from .data import MiB, random_bytes, text_bytes
from .test_local_store import add, chunk_rows, flip_byte, pack_file, recipe


@pytest.fixture
def store(tmp_path):
    s = LocalContentStore(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture
def piece_writes(monkeypatch) -> list[tuple[int, int]]:
    """(file position, length) of every write of a raw piece (the real call, recorded)."""
    calls: list[tuple[int, int]] = []
    real = os.write

    def recorded(fd, data):
        calls.append((os.lseek(fd, 0, os.SEEK_CUR), len(data)))
        return real(fd, data)

    monkeypatch.setattr(rawcopy.os, "write", recorded)
    return calls


@pytest.fixture
def piece_reads(monkeypatch) -> list[int]:
    """The bytes every preadv of the download asks for (the real call, counted)."""
    calls: list[int] = []
    real = os.preadv

    def counted(fd, buffers, offset, *flags):
        calls.append(sum(len(b) for b in buffers))
        return real(fd, buffers, offset, *flags)

    monkeypatch.setattr(rawcopy.os, "preadv", counted)
    return calls


def test_a_logged_checkpoint_is_written_in_aligned_pieces_each_read_at_once(store, tmp_path, piece_writes,
                                                                           piece_reads):
    """A buffered write that starts off a 64 KiB boundary leaves the file in small page
    cache folios (measured: ~35 % more time per GiB, rawcopy.py): every write is
    WRITE_MAX bytes at a multiple of WRITE_MAX (the last one shorter), and every piece is
    read with one preadv per run it takes."""
    data = random_bytes(2 * READ_WINDOW + 3 * MiB + 12345, 600)  # ~19 MiB: 19 windows of the write pipeline
    (tmp_path / "ckpt.bin").write_bytes(data)
    ref = add(store, tmp_path / "ckpt.bin")
    chunks = recipe(store, ref.digest)
    assert len(chunks) > 150 and {r[5] for r in chunk_rows(store)} == {0}  # all raw
    plan = store.index.locate_recipe(b"".join(chunks))
    runs = rawcopy.spans(plan)
    # a window's chunks are one extent: one run per window, not one per chunk
    assert len(runs) <= len(data) // stream.WINDOW + 2
    assert sum(r.length for r in runs) == len(data)

    store.materialize(ref.digest, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data
    pieces = -(-len(data) // rawcopy.PIECE)
    step = rawcopy.WRITE_MAX
    assert piece_writes == [(at, min(step, len(data) - at)) for at in range(0, len(data), step)]
    # (a read may run across a short block header between two runs: read into scrap)
    assert len(data) <= sum(piece_reads) <= len(data) + 64 * len(runs) and len(piece_reads) <= pieces + len(runs)


def test_a_flipped_byte_inside_a_run_read_at_once_is_refused(store, tmp_path, piece_reads):
    data = random_bytes(6 * MiB, 601)
    (tmp_path / "ckpt.bin").write_bytes(data)
    ref = add(store, tmp_path / "ckpt.bin")
    rows = chunk_rows(store)
    digest, pack_id, offset, stored_len, _, _ = rows[len(rows) // 2]
    flip_byte(pack_file(store, pack_id), offset + stored_len // 2)

    out = tmp_path / "out"
    out.mkdir()
    (out / "kept.bin").write_bytes(b"the version before")
    for dest in (out / "fresh.bin", out / "kept.bin"):
        piece_reads.clear()
        with pytest.raises(CorruptionError) as info:
            store.materialize(ref.digest, dest)
        # the damaged chunk was read inside a whole run (a read or two a piece, not one a chunk)
        assert len(piece_reads) <= 2 * (len(data) // rawcopy.PIECE + 1) < len(rows)
        assert pack_id in str(info.value) and digest.hex()[:16] in str(info.value)
    assert listing(out) == {"kept.bin"}  # no wrong file, no temp file
    assert (out / "kept.bin").read_bytes() == b"the version before"


def test_runs_survive_gc_repack(store, tmp_path, piece_reads):
    """gc's repack writes the chunks it keeps in blocks, in pack order: a file's raw
    chunks stay one run, one read a piece."""
    keep, drop = random_bytes(5 * MiB, 602), random_bytes(5 * MiB, 603)
    (tmp_path / "keep.bin").write_bytes(keep)
    (tmp_path / "drop.bin").write_bytes(drop)
    with store.session() as s:
        kept = s.add_file(tmp_path / "keep.bin")
        s.add_file(tmp_path / "drop.bin")
        s.commit()
    old_packs = {r[1] for r in chunk_rows(store)}
    store.gc(lambda: {kept.digest}, grace=0, repack_threshold=0.1)
    assert {r[1] for r in chunk_rows(store)}.isdisjoint(old_packs)  # repacked into a new pack
    store.materialize(kept.digest, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == keep
    assert len(piece_reads) == len(keep) // rawcopy.PIECE
    report = store.fsck()
    assert report.ok, report


def test_block_headers_recover_the_entries_of_a_pack_whose_trailer_is_lost(store, tmp_path):
    data = random_bytes(3 * MiB, 604)
    (tmp_path / "f.bin").write_bytes(data)
    add(store, tmp_path / "f.bin")
    ((pack_id, *_),) = {(r[1],) for r in chunk_rows(store)}
    path = pack_file(store, pack_id)
    assert path.read_bytes()[:12] == b"LODEPK02LPBK"  # version 2: the pack opens with a block
    entries = packs.read_trailer(path)
    assert list(packs.scan_records(path)) == sorted(entries, key=lambda e: e.offset)
    assert packs.layout_ok(path.read_bytes(), entries)
    blob = bytearray(path.read_bytes())
    blob[8 + 8 + 32] ^= 0xFF  # the codec byte of the block's first record header
    assert not packs.layout_ok(bytes(blob), entries)


def test_each_piece_is_read_once_and_every_byte_still_hashed(store, tmp_path, piece_reads):
    """A piece (at most PIECE bytes) is read once, across the ends of runs, and hashed
    and written from that buffer; a byte flipped anywhere is caught."""
    data = random_bytes(2 * READ_WINDOW + 3 * MiB, 605)
    (tmp_path / "ckpt.bin").write_bytes(data)
    ref = add(store, tmp_path / "ckpt.bin")
    store.materialize(ref.digest, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data
    assert len(data) <= sum(piece_reads) <= len(data) + 64 * len(piece_reads)
    assert max(piece_reads) <= rawcopy.PIECE + 64
    assert len(piece_reads) >= len(data) // rawcopy.PIECE

    rows = chunk_rows(store)
    digest, pack_id, offset, stored_len, _, _ = rows[-3]
    flip_byte(pack_file(store, pack_id), offset + stored_len - 1)  # the last byte of a chunk near the end
    with pytest.raises(CorruptionError) as info:
        store.materialize(ref.digest, tmp_path / "again.bin")
    assert digest.hex()[:16] in str(info.value)
    assert listing(tmp_path) == {"ckpt.bin", "out.bin", "store"}  # no wrong file, no temp file


def test_the_file_is_preallocated_before_its_first_byte_is_copied(store, tmp_path, monkeypatch):
    """The download reserves the file's disk space in one call before writing: the
    writes land in blocks already there (less work per page than growing the file), and
    a disk too small fails before a byte is written."""
    data = random_bytes(6 * MiB, 606)
    (tmp_path / "ckpt.bin").write_bytes(data)
    ref = add(store, tmp_path / "ckpt.bin")
    probe = os.open(tmp_path / "probe", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        atomic.preallocate(probe, MiB)
        if os.fstat(probe).st_blocks * 512 < MiB:
            pytest.skip("this file system does not preallocate")
    finally:
        os.close(probe)
        os.unlink(tmp_path / "probe")
    reserved: list[int] = []
    real = os.write

    def first_sees_reserved(fd, data):
        if not reserved:
            reserved.append(os.fstat(fd).st_blocks * 512)
        return real(fd, data)

    monkeypatch.setattr(rawcopy.os, "write", first_sees_reserved)
    store.materialize(ref.digest, tmp_path / "out.bin")
    assert reserved[0] >= len(data)
    assert (tmp_path / "out.bin").read_bytes() == data
    assert (tmp_path / "out.bin").stat().st_size == len(data)


def test_the_next_page_is_located_while_the_first_is_copied(store, tmp_path, monkeypatch):
    """Locating a 1 GiB file's ~13,000 chunks took ~30 ms before its first byte: now
    the first page is small and the next is located while it is copied. A file of raw
    and compressed chunks over many pages (raw pieces, then decoded writes, then raw
    pieces again, from an unaligned position) still reassembles in order."""
    data = random_bytes(3 * MiB, 607) + text_bytes(2 * MiB, 608) + random_bytes(3 * MiB, 609)
    (tmp_path / "mixed.bin").write_bytes(data)
    ref = add(store, tmp_path / "mixed.bin")
    assert len(recipe(store, ref.digest)) > 40
    monkeypatch.setattr(local, "FIRST_PLAN_PAGE", 4)
    monkeypatch.setattr(local, "PLAN_PAGE", 12)
    asked: list[int] = []
    second_asked = threading.Event()
    locate = store.index.locate_recipe

    def counted(part):
        asked.append(len(part) // 32)
        if len(asked) == 2:
            second_asked.set()
        return locate(part)

    monkeypatch.setattr(store.index, "locate_recipe", counted)
    planned_before_first_copy: list[bool] = []
    real = os.preadv

    def first_waits_for_the_second_page(fd, buffers, offset, *flags):
        if not planned_before_first_copy:
            planned_before_first_copy.append(second_asked.wait(timeout=10))
        return real(fd, buffers, offset, *flags)

    monkeypatch.setattr(rawcopy.os, "preadv", first_waits_for_the_second_page)
    store.materialize(ref.digest, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data
    assert planned_before_first_copy == [True]
    assert asked[0] == 4 and max(asked) == 12


def test_raw_pieces_after_a_decoded_page_still_write_within_aligned_stretches(store, tmp_path, monkeypatch,
                                                                             piece_writes):
    """Raw chunks, then compressed ones (decoded and written at the file's position, which
    then lies anywhere), then raw ones again: no raw write crosses a multiple of
    WRITE_MAX, and the file comes back whole."""
    data = random_bytes(3 * MiB, 610) + text_bytes(2 * MiB + 777, 611) + random_bytes(3 * MiB, 612)
    (tmp_path / "mixed.bin").write_bytes(data)
    ref = add(store, tmp_path / "mixed.bin")
    assert {r[5] for r in chunk_rows(store)} == {0, 1}
    monkeypatch.setattr(local, "FIRST_PLAN_PAGE", 4)
    monkeypatch.setattr(local, "PLAN_PAGE", 8)
    store.materialize(ref.digest, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data
    step = rawcopy.WRITE_MAX
    assert piece_writes and all(at // step == (at + n - 1) // step for at, n in piece_writes)
    assert any(at % step for at, _ in piece_writes)  # some raw page did start off a boundary
