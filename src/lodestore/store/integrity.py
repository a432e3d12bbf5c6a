"""Store integrity: fsck (check every pack, chunk, index entry and file recipe), index
rebuild from the packs, and repair (salvage, quarantine, forget what is lost).

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

import os
import shutil
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import blake3

from lodestore.errors import CorruptionError
from lodestore.store import codec
from lodestore.store.index import corrupt_index_error
from lodestore.store.layout import WHOLE_FILE_LIMIT
from lodestore.store.maintenance import (
    _new_tmp_session,
    _recipe,
    _retired,
    _write_pack,
    acquire_store_lock,
    stale_sessions,
)
from lodestore.store.packs import FOOTER, MAGIC, RECORD_HEADER, pack_path, read_trailer, scan_records

_LOST_DDL = ("CREATE TABLE IF NOT EXISTS lost_files (digest BLOB PRIMARY KEY, size INTEGER NOT NULL, "
             "lost_at REAL NOT NULL) WITHOUT ROWID")


@dataclass
class FsckReport:
    packs_checked: int = 0
    chunks_checked: int = 0
    files_checked: int = 0
    corrupt_packs: list[str] = field(default_factory=list)  # packs with a bad chunk or trailer
    corrupt_chunks: list[str] = field(default_factory=list)  # hex digests
    missing_packs: list[str] = field(default_factory=list)  # indexed, absent on disk
    bad_index_entries: list[str] = field(default_factory=list)  # chunk row not matching its pack
    missing_chunks: list[str] = field(default_factory=list)  # referenced by a file, not indexed
    bad_files: list[str] = field(default_factory=list)  # hex file digests whose bytes are lost
    orphan_packs: list[str] = field(default_factory=list)  # on disk, not indexed (gc reclaims)
    stale_tmp: list[str] = field(default_factory=list)
    lost_files: list[str] = field(default_factory=list)  # forgotten by an earlier repair (known)
    repaired: dict = field(default_factory=dict)
    # hex digests of every file the index knows, in the same snapshot (not reported)
    indexed_files: set[str] = field(default_factory=set, repr=False)

    @property
    def ok(self) -> bool:
        return not (self.corrupt_packs or self.corrupt_chunks or self.missing_packs or self.bad_index_entries
                    or self.missing_chunks or self.bad_files)

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "indexed_files"}
        d["ok"] = self.ok
        return d


def lost_files(store) -> dict[str, int]:
    """hex digest -> size of files an earlier repair found unrecoverable and that have
    not been stored again since."""
    store.index.execute(_LOST_DDL)
    return {d.hex(): n for d, n in store.index.execute(
        "SELECT digest, size FROM lost_files WHERE digest NOT IN (SELECT digest FROM files)")}


def forget_lost(store, keep: set[bytes]) -> None:
    """Drop lost-file records no version refers to any more (called by gc)."""
    store.index.execute(_LOST_DDL)
    rows = [d for (d,) in store.index.execute("SELECT digest FROM lost_files") if d not in keep]
    if rows:
        with store.index.transaction() as db:
            db.executemany("DELETE FROM lost_files WHERE digest=?", [(d,) for d in rows])


def index_problem(store) -> str | None:
    """What is wrong with index.db as a database file (it does not open, or
    `PRAGMA quick_check` finds damaged pages), or None."""
    try:
        index = store.index
    except CorruptionError as e:
        return str(e)
    found = index.integrity_problem()
    return None if found is None else str(corrupt_index_error(index.path, found))


def _pack_entries(path: Path):
    """(entries, trailer_ok)."""
    try:
        return read_trailer(path), True
    except CorruptionError:
        try:
            return list(scan_records(path)), False
        except CorruptionError:
            return [], False


def _layout_ok(data: bytes, entries) -> bool:
    """Every byte of the pack is accounted for: record headers agree with the trailer
    and records follow each other up to the trailer (so a flipped byte anywhere shows)."""
    if len(data) < len(MAGIC) + FOOTER.size:
        return False
    trailer_offset = FOOTER.unpack_from(data, len(data) - FOOTER.size)[0]
    pos = len(MAGIC)
    for e in sorted(entries, key=lambda e: e.offset):
        if e.offset != pos + RECORD_HEADER.size:
            return False
        if RECORD_HEADER.unpack_from(data, pos) != (e.digest, e.codec, e.raw_len, e.stored_len):
            return False
        pos = e.offset + e.stored_len
    return pos == trailer_offset


def _decodes_to(cid: int, stored: bytes, raw_len: int, digest: bytes) -> bool:
    try:
        raw = codec.decode(cid, stored, raw_len)
    except CorruptionError:
        return False
    return blake3.blake3(raw).digest() == digest


def fsck(store, db: sqlite3.Connection | None = None) -> FsckReport:
    """Check every pack against its digests, every index entry against its pack, every
    file recipe against the index. Reads only. `db`: a read snapshot of the index
    (StoreIndex.snapshot) so that writers committing meanwhile cannot make the tables
    read disagree; without it, one is taken here."""
    if db is None:
        with store.index.snapshot() as snap:
            return fsck(store, snap)

    def rows_of(sql: str) -> list[tuple]:
        return db.execute(sql).fetchall()

    rep = FsckReport()
    indexed = {pid for (pid,) in rows_of("SELECT id FROM packs")}
    rows: dict[str, list] = {}
    for d, pid, off, slen, rlen, cid in rows_of(
            "SELECT digest, pack_id, offset, stored_len, raw_len, codec FROM chunks"):
        rows.setdefault(pid, []).append((d, off, slen, rlen, cid))
    bad_chunks: set[bytes] = set()
    on_disk = {p.stem: p for p in store.packs_dir.glob("*/*.pack")}
    for pid, path in sorted(on_disk.items()):
        if pid not in indexed:
            rep.orphan_packs.append(pid)
            continue
        rep.packs_checked += 1
        entries, trailer_ok = _pack_entries(path)
        data = path.read_bytes()
        corrupt = not trailer_ok or not _layout_ok(data, entries)
        by_offset = {e.offset: e for e in entries}
        for e in entries:  # every record of the pack, live or dead
            if not _decodes_to(e.codec, data[e.offset : e.offset + e.stored_len], e.raw_len, e.digest):
                corrupt = True
                bad_chunks.add(e.digest)
        for d, off, slen, rlen, cid in rows.get(pid, []):
            rep.chunks_checked += 1
            e = by_offset.get(off)
            if e is None or e.digest != d or e.stored_len != slen or e.raw_len != rlen or e.codec != cid:
                # the trailer may be damaged: check the bytes at the indexed location directly
                if not _decodes_to(cid, data[off : off + slen], rlen, d):
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
    for d, n, recipe in rows_of("SELECT digest, chunk_count, recipe FROM files"):
        rep.files_checked += 1
        rep.indexed_files.add(d.hex())
        chunks = _recipe(d, n, recipe)
        missing = [c for c in chunks if c not in known]
        if missing:
            rep.missing_chunks.extend(c.hex() for c in missing)
        if missing or any(c in indexed_bad for c in chunks):
            rep.bad_files.append(d.hex())
    rep.missing_chunks = sorted(set(rep.missing_chunks))
    rep.stale_tmp = [p.name for p in stale_sessions(store)]
    rep.lost_files = sorted(d.hex() for (d,) in rows_of(
        "SELECT digest FROM lost_files WHERE digest NOT IN (SELECT digest FROM files)"))
    return rep


def rebuild_index(store, quarantined: Iterable[str] = ()) -> dict:
    """Recreate the packs and chunks tables from the pack files (trailers, falling back
    to a record scan), keeping only records whose bytes verify. File recipes stay (a
    repair then forgets those whose chunks did not come back)."""
    skip = set(quarantined) | set(_retired(store))  # retired by gc: dead, awaiting deletion
    packs, chunks = [], {}
    for path in sorted(store.packs_dir.glob("*/*.pack")):
        pid = path.stem
        if pid in skip:
            continue
        entries, _ = _pack_entries(path)
        data = path.read_bytes()
        for e in entries:
            if e.digest not in chunks and _decodes_to(e.codec, data[e.offset : e.offset + e.stored_len],
                                                       e.raw_len, e.digest):
                chunks[e.digest] = (e.digest, pid, e.offset, e.stored_len, e.raw_len, e.codec)
        packs.append((pid, len(data), len(entries), path.stat().st_mtime))
    with store.index.transaction() as db:
        db.execute("DELETE FROM chunks")
        db.execute("DELETE FROM packs")
        db.executemany("INSERT INTO packs(id, size, entry_count, created_at) VALUES (?,?,?,?)", packs)
        db.executemany("INSERT INTO chunks(digest, pack_id, offset, stored_len, raw_len, codec) VALUES (?,?,?,?,?,?)",
                       list(chunks.values()))
    with store._fd_lock:
        for fd in store._fds.values():
            os.close(fd)
        store._fds.clear()
    return {"packs": len(packs), "chunks": len(chunks)}


def _forget_unrecoverable(store) -> list[str]:
    """Delete the rows of files whose chunks are not indexed (after a rebuild: their
    bytes did not verify anywhere) and record them as lost, in one transaction."""
    known = {d for (d,) in store.index.execute("SELECT digest FROM chunks")}
    lost = [(d, size) for d, size, n, recipe in store.index.execute(
        "SELECT digest, size, chunk_count, recipe FROM files") if any(c not in known for c in _recipe(d, n, recipe))]
    now = time.time()
    store.index.execute(_LOST_DDL)
    with store.index.transaction() as db:
        db.executemany("DELETE FROM files WHERE digest=?", [(d,) for d, _ in lost])
        db.executemany("DELETE FROM statcache WHERE digest=?", [(d,) for d, _ in lost])
        db.executemany("INSERT OR REPLACE INTO lost_files(digest, size, lost_at) VALUES (?,?,?)",
                       [(d, n, now) for d, n in lost])
        # stored again since an earlier repair: no longer lost
        db.execute("DELETE FROM lost_files WHERE digest IN (SELECT digest FROM files)")
    return sorted(d.hex() for d, _ in lost)


def _restore_whole_files(store, wanted: dict[str, int]) -> list[str]:
    """Index rows for wanted files the packs prove: a file of up to WHOLE_FILE_LIMIT
    bytes is stored as one chunk named by the file's own digest, so a verified chunk of
    that digest and size *is* the file (after index.db was lost, that is every small
    file). A chunked file's recipe lives only in index.db: it cannot be rebuilt."""
    if not wanted:
        return []
    raw = {bytes.fromhex(d): n for d, n in wanted.items() if n <= WHOLE_FILE_LIMIT}
    found = store.index.locate(list(raw))
    rows = [(d, raw[d], 1, None, time.time()) for d, loc in found.items() if loc.raw_len == raw[d]]
    if rows:
        with store.index.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO files(digest, size, chunk_count, recipe, created_at) "
                           "VALUES (?,?,?,?,?)", rows)
    return sorted(d.hex() for d, *_ in rows)


def repair(store, report: FsckReport, absent: dict[str, int] | None = None, lock_held: bool = False) -> dict:
    """Salvage the good chunks of corrupt packs into a new pack, move the corrupt packs
    to store/quarantine/, rebuild the chunk index from the packs, rebuild the rows of the
    `absent` files the packs still hold whole (`_restore_whole_files`), forget the files
    whose bytes are lost (so a later log stores them again). `absent`: {hex digest: size}
    of files the caller knows are referenced but not in the index (those not rebuilt are
    recorded as lost). `lock_held`: the caller holds the exclusive store lock already.
    Returns what was done; "lost_files" lists the files forgotten now, "restored_files"
    the files rebuilt from the packs."""
    lock = None if lock_held else acquire_store_lock(store.root, exclusive=True)
    try:
        qdir = store.root / "quarantine"
        salvaged = 0
        if report.corrupt_packs:
            tmpdir = _new_tmp_session(store, "fsck")
            records = []
            for pid in report.corrupt_packs:
                path = pack_path(store.packs_dir, pid)
                entries, _ = _pack_entries(path)
                data = path.read_bytes()
                for e in entries:
                    stored = data[e.offset : e.offset + e.stored_len]
                    if _decodes_to(e.codec, stored, e.raw_len, e.digest):
                        records.append((e.digest, e.codec, e.raw_len, stored))
            if records:
                new_id, entries, _size = _write_pack(store, tmpdir, records)
                final = pack_path(store.packs_dir, new_id)
                final.parent.mkdir(exist_ok=True)
                os.replace(tmpdir / f"{new_id}.pack", final)
                salvaged = len(entries)
            qdir.mkdir(exist_ok=True)
            for pid in report.corrupt_packs:
                src = pack_path(store.packs_dir, pid)
                if src.exists():
                    os.replace(src, qdir / src.name)
            shutil.rmtree(tmpdir, ignore_errors=True)
        rebuilt = rebuild_index(store)
        restored = _restore_whole_files(store, absent or {})
        forgotten = _forget_unrecoverable(store)
        if absent:
            with store.index.transaction() as db:
                db.executemany("INSERT OR IGNORE INTO lost_files(digest, size, lost_at) VALUES (?,?,?)",
                               [(bytes.fromhex(d), n, time.time()) for d, n in absent.items()])
                db.execute("DELETE FROM lost_files WHERE digest IN (SELECT digest FROM files)")
        for name in report.stale_tmp:
            shutil.rmtree(store.tmp_dir / name, ignore_errors=True)
    finally:
        if lock is not None:
            os.close(lock)
    return {"quarantined": list(report.corrupt_packs), "salvaged_chunks": salvaged, "index": rebuilt,
            "lost_files": forgotten, "restored_files": restored}
