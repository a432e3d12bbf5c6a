"""Store integrity: fsck (check every pack, chunk, index entry and file recipe), index
rebuild from the packs, and repair (salvage, quarantine, forget what is lost).
LocalContentStore.fsck / .repair / .lost_files are the interface to this module.

Store-level only, like maintenance.py: the SDK (sdk/lifecycle.py) joins these reports
with the catalog's manifests to name the versions affected.

Lost files: a repair that cannot recover a file's bytes deletes the file's row (and
its stat-cache rows) and records its digest in ``lost_files``. Deleting the row matters:
the next log of the same data must store the bytes again instead of deduplicating
against a recipe whose chunks are gone. The record lets fsck tell damage it already
reported (versions marked broken) from new damage, and lets a restore of a
soft-deleted version know that its bytes are gone. A lost digest stored again later
(the user logged the same data) is no longer lost.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import blake3

from lodestore.errors import CorruptionError
from lodestore.store import codec
from lodestore.store.base import FsckReport, RebuiltIndex, RepairResult
from lodestore.store.index import IndexSnapshot, corrupt_index_error, recipe_chunks
from lodestore.store.layout import WHOLE_FILE_LIMIT
from lodestore.store.maintenance import stale_sessions, write_pack
from lodestore.store.packs import layout_ok
from lodestore.store.workdirs import new_work_dir

if TYPE_CHECKING:
    from lodestore.store.local import LocalContentStore

QUARANTINE_DIR = "quarantine"


def lost_files(store: LocalContentStore) -> dict[str, int]:
    """hex digest -> size of files an earlier repair found unrecoverable and that have
    not been stored again since."""
    return {d.hex(): n for d, n in store.index.lost_files().items()}


def index_problem(store: LocalContentStore) -> str | None:
    """What is wrong with index.db as a database file (it does not open, or
    `PRAGMA quick_check` finds damaged pages), or None."""
    try:
        index = store.index
    except CorruptionError as e:
        return str(e)
    found = index.integrity_problem()
    return None if found is None else str(corrupt_index_error(index.path, found))


def _decodes_to(cid: int, stored: bytes, raw_len: int, digest: bytes) -> bool:
    try:
        raw = codec.decode(cid, stored, raw_len)
    except CorruptionError:
        return False
    return blake3.blake3(raw).digest() == digest


def fsck(store: LocalContentStore, snap: IndexSnapshot | None = None) -> FsckReport:
    """Check every pack against its digests, every index entry against its pack, every
    file recipe against the index. Reads only. `snap`: a read snapshot of the index
    (StoreIndex.snapshot) so that writers committing meanwhile cannot make the tables
    read disagree; without it, one is taken here."""
    if snap is None:
        with store.index.snapshot() as taken:
            return fsck(store, taken)
    rep = FsckReport()
    indexed = snap.pack_ids()
    rows: dict[str, list] = {}
    for loc in snap.chunk_locations():
        rows.setdefault(loc.pack_id, []).append((loc.digest, loc.offset, loc.stored_len, loc.raw_len, loc.codec))
    bad_chunks: set[bytes] = set()
    on_disk = store.packs.on_disk()
    for pid in sorted(on_disk):
        if pid not in indexed:
            rep.orphan_packs.append(pid)
            continue
        rep.packs_checked += 1
        entries, trailer_ok = store.packs.entries(pid)
        data = store.packs.read_all(pid)
        corrupt = not trailer_ok or not layout_ok(data, entries)
        by_offset = {e.offset: e for e in entries}
        for e in entries:  # every record of the pack, live or dead
            if not _decodes_to(e.codec, data[e.offset : e.offset + e.stored_len], e.raw_len, e.digest):
                corrupt = True
                bad_chunks.add(e.digest)
        for d, off, slen, rlen, cid in rows.get(pid, []):
            rep.chunks_checked += 1
            found = by_offset.get(off)
            agrees = found is not None and (found.digest, found.stored_len, found.raw_len, found.codec) == (
                d, slen, rlen, cid)
            # if not, the trailer may be damaged: check the bytes at the indexed location directly
            if not agrees and not _decodes_to(cid, data[off : off + slen], rlen, d):
                rep.bad_index_entries.append(d.hex())
                bad_chunks.add(d)
                corrupt = True
        if corrupt:
            rep.corrupt_packs.append(pid)
    for pid in sorted(indexed - set(on_disk)):
        rep.missing_packs.append(pid)
        for d, *_ in rows.get(pid, []):
            bad_chunks.add(d)
    # a chunk is only really bad if the index points at a bad copy (a good copy of the
    # same digest elsewhere does not help the index: keep it strict)
    indexed_bad = set()
    for pid, items in rows.items():
        for d, *_ in items:
            if d in bad_chunks and (pid in rep.corrupt_packs or pid in rep.missing_packs):
                indexed_bad.add(d)
    rep.corrupt_chunks = sorted(d.hex() for d in indexed_bad)
    known = {d for items in rows.values() for d, *_ in items}
    for d, chunks in snap.file_recipes():
        rep.files_checked += 1
        rep.indexed_files.add(d.hex())
        missing = [c for c in chunks if c not in known]
        if missing:
            rep.missing_chunks.extend(c.hex() for c in missing)
        if missing or any(c in indexed_bad for c in chunks):
            rep.bad_files.append(d.hex())
    rep.missing_chunks = sorted(set(rep.missing_chunks))
    rep.stale_tmp = [p.name for p in stale_sessions(store)]
    rep.lost_files = sorted(d.hex() for d in snap.lost_files())
    return rep


def rebuild_index(store: LocalContentStore, quarantined: Iterable[str] = ()) -> RebuiltIndex:
    """Recreate the packs and chunks tables from the pack files (trailers, falling back
    to a record scan), keeping only records whose bytes verify. File recipes stay (a
    repair then forgets those whose chunks did not come back)."""
    skip = set(quarantined) | set(store.index.retired_packs())  # retired by gc: dead, awaiting deletion
    packs, chunks = [], {}
    for pid, (_size, mtime) in sorted(store.packs.listing().items()):
        if pid in skip:
            continue
        entries, _ = store.packs.entries(pid)
        data = store.packs.read_all(pid)
        for e in entries:
            if e.digest not in chunks and _decodes_to(e.codec, data[e.offset : e.offset + e.stored_len],
                                                       e.raw_len, e.digest):
                chunks[e.digest] = (e.digest, pid, e.offset, e.stored_len, e.raw_len, e.codec)
        packs.append((pid, len(data), len(entries), mtime))
    store.index.replace_chunk_tables(packs, list(chunks.values()))
    store.packs.forget()
    return RebuiltIndex(packs=len(packs), chunks=len(chunks))


def _forget_unrecoverable(store: LocalContentStore) -> list[str]:
    """Delete the rows of files whose chunks are not indexed (after a rebuild: their
    bytes did not verify anywhere) and record them as lost, in one transaction."""
    known = {d for d, *_ in store.index.all_chunks()}
    lost = [(d, size) for d, size, n, recipe, _ in store.index.all_files()
            if any(c not in known for c in recipe_chunks(d, n, recipe))]
    store.index.record_lost(lost, drop_rows=True)
    return sorted(d.hex() for d, _ in lost)


def _restore_whole_files(store: LocalContentStore, wanted: Mapping[str, int]) -> list[str]:
    """Index rows for wanted files the packs prove: a file of up to WHOLE_FILE_LIMIT
    bytes is stored as one chunk named by the file's own digest, so a verified chunk of
    that digest and size *is* the file (after index.db was lost, that is every small
    file). A chunked file's recipe lives only in index.db: it cannot be rebuilt."""
    if not wanted:
        return []
    raw = {bytes.fromhex(d): n for d, n in wanted.items() if n <= WHOLE_FILE_LIMIT}
    found = store.index.locate(list(raw))
    rows = [(d, raw[d]) for d, loc in found.items() if loc.raw_len == raw[d]]
    if rows:
        store.index.add_whole_files(rows)
    return sorted(d.hex() for d, _ in rows)


def _salvage(store: LocalContentStore, corrupt_packs: list[str]) -> int:
    """Copy the chunks of corrupt packs that still verify into a new pack (durably, like
    gc's repack), then move the corrupt packs to quarantine/. Returns the chunks saved."""
    qdir = store.root / QUARANTINE_DIR
    tmpdir = new_work_dir(store.tmp_dir, "fsck")
    salvaged = 0
    try:
        records = []
        for pid in corrupt_packs:
            entries, _ = store.packs.entries(pid)
            data = store.packs.read_all(pid)
            for e in entries:
                stored = data[e.offset : e.offset + e.stored_len]
                if _decodes_to(e.codec, stored, e.raw_len, e.digest):
                    records.append((e.digest, e.codec, e.raw_len, stored))
        if records:
            _new_id, entries, _size = write_pack(store, tmpdir, records)
            salvaged = len(entries)
        for pid in corrupt_packs:
            store.packs.quarantine(pid, qdir, durable=store.fsync)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return salvaged


def repair(store: LocalContentStore, report: FsckReport, absent: Mapping[str, int] | None = None) -> RepairResult:
    """Salvage the good chunks of corrupt packs into a new pack, move the corrupt packs
    to store/quarantine/, rebuild the chunk index from the packs, rebuild the rows of the
    `absent` files the packs still hold whole (`_restore_whole_files`), forget the files
    whose bytes are lost (so a later log stores them again). `absent`: {hex digest: size}
    of files the caller knows are referenced but not in the index (those not rebuilt are
    recorded as lost). The caller holds the exclusive store lock."""
    salvaged = _salvage(store, report.corrupt_packs) if report.corrupt_packs else 0
    rebuilt = rebuild_index(store)
    restored = _restore_whole_files(store, absent or {})
    forgotten = _forget_unrecoverable(store)
    if absent:
        store.index.record_lost([(bytes.fromhex(d), n) for d, n in absent.items()], drop_rows=False)
    for name in report.stale_tmp:
        shutil.rmtree(store.tmp_dir / name, ignore_errors=True)
    store.share_index()
    return RepairResult(quarantined=list(report.corrupt_packs), salvaged_chunks=salvaged, index=rebuilt,
                        lost_files=forgotten, restored_files=restored)
