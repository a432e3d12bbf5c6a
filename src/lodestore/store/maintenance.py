"""Store maintenance: garbage collection (plan, then execute), repack, fsck, index rebuild.

Store-level only: the caller passes the set of file digests that must stay (what the
catalog's live and soft-deleted versions reference); this module knows nothing else of
the catalog.

Safety against concurrent writers (restic/borg style):
- every write session holds a *shared* lock on ``<root>/gc.lock`` from its start to its
  commit; the sweep holds the *exclusive* lock, so no session dedups against a chunk
  while it is being removed, and the live set is read under the lock;
- a session re-touches (``files.created_at``) every already-indexed file it reuses, and
  files, packs and pack files younger than the grace period are never swept: this
  covers the moment between a session's commit and the catalog committing its version.

Execution order never leaves an index entry pointing at missing bytes: (1) new packs
are written and fsynced in tmp/, renamed into packs/, (2) one index transaction adds
the new locations and drops dead rows, (3) only then are old pack files deleted. A
crash leaves at most unindexed pack files or a stale tmp folder, which the next gc
removes and fsck reports as reclaimable, not as damage.

``LODESTORE_TEST_PAUSE_AT=<phase>`` makes the code print ``PAUSED <phase>`` to stderr and
sleep at that phase, so tests can SIGKILL a real process there.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import blake3

from lodestore.errors import ConflictError, CorruptionError
from lodestore.store import codec
from lodestore.store.packs import RECORD_HEADER, PackWriter, pack_path, read_trailer, scan_records

DEFAULT_GRACE_SECONDS = 3600.0
DEFAULT_REPACK_THRESHOLD = 0.5  # repack a pack when more than this fraction of it is dead
LOCK_TIMEOUT = 600.0
# Pack files dropped from the index stay on disk this long (capped by the grace period)
# so a reader that located its chunks just before the sweep can still read them; the
# next gc after that deletes them.
READER_GRACE_SECONDS = 300.0
DIGEST_LEN = 32


def pause_point(phase: str) -> None:
    """Test hook: sleep forever-ish at `phase` if LODESTORE_TEST_PAUSE_AT names it."""
    if os.environ.get("LODESTORE_TEST_PAUSE_AT") == phase:
        sys.stderr.write(f"PAUSED {phase}\n")
        sys.stderr.flush()
        time.sleep(600)


def acquire_store_lock(root: Path, exclusive: bool, timeout: float | None = None) -> int:
    """flock on <root>/gc.lock; returns the fd (closing it releases the lock)."""
    fd = os.open(Path(root) / "gc.lock", os.O_RDWR | os.O_CREAT, 0o644)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    deadline = time.monotonic() + (LOCK_TIMEOUT if timeout is None else timeout)
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                what = "write sessions are in progress" if exclusive else "garbage collection is running"
                raise ConflictError(f"store {root} is busy: {what}; try again later") from None
            time.sleep(0.02)


# ----------------------------------------------------------------------------- helpers
def _recipe(digest: bytes, count: int, recipe: bytes | None) -> list[bytes]:
    if recipe is None:
        return [digest]
    return [recipe[i : i + DIGEST_LEN] for i in range(0, count * DIGEST_LEN, DIGEST_LEN)]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_sessions(store, grace: float = 0.0) -> list[Path]:
    """tmp/<session> folders whose owner process (on this host) is dead."""
    out = []
    host = socket.gethostname()
    for d in sorted(store.tmp_dir.iterdir()) if store.tmp_dir.exists() else []:
        if not d.is_dir():
            continue
        try:
            owner = json.loads((d / "owner.json").read_text())
        except (OSError, ValueError):
            owner = None
        if owner is None:
            if time.time() - d.stat().st_mtime > max(grace, 60.0):
                out.append(d)
            continue
        if owner.get("host") == host and not _pid_alive(int(owner.get("pid", -1))):
            out.append(d)
    return out


def chunk_sizes(store) -> dict[bytes, int]:
    return {d: n for d, n in store.index.execute("SELECT digest, raw_len FROM chunks")}


def file_chunks(store, digests: Iterable[str]) -> dict[str, list[bytes]]:
    """Chunk list of each known file (unknown digests are left out)."""
    out = {}
    items = list(digests)
    for i in range(0, len(items), 900):
        batch = items[i : i + 900]
        rows = store.index.execute(
            f"SELECT digest, chunk_count, recipe FROM files WHERE digest IN ({','.join('?' * len(batch))})",
            [bytes.fromhex(d) for d in batch],
        )
        for d, n, r in rows:
            out[d.hex()] = _recipe(d, n, r)
    return out


def _write_pack(store, tmpdir: Path, chunks: list[tuple[bytes, int, int, bytes]]) -> tuple[str, list, int]:
    """Write (digest, codec, raw_len, stored) records into a new pack under tmpdir."""
    pack_id = uuid.uuid4().hex
    writer = PackWriter(tmpdir / f"{pack_id}.pack", fsync=store.fsync)
    entries = [writer.append(d, c, n, s) for d, c, n, s in chunks]
    writer.finish()
    return pack_id, entries, writer.size


def _new_tmp_session(store, kind: str) -> Path:
    d = store.tmp_dir / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{kind}-{uuid.uuid4().hex[:8]}"
    d.mkdir(parents=True)
    (d / "owner.json").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                               "started": time.time(), "kind": kind}))
    return d


def _read_stored(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- gc
@dataclass
class GcPlan:
    dead_files: int = 0
    dead_file_bytes: int = 0  # logical bytes of files no one references any more
    dead_chunks: int = 0
    delete_packs: list[str] = field(default_factory=list)  # indexed packs with no live chunk
    repack: list[str] = field(default_factory=list)  # packs mostly dead: live chunks copied out
    orphan_packs: list[str] = field(default_factory=list)  # pack files not in the index
    deferred_packs: list[str] = field(default_factory=list)  # retired, kept for readers until a later gc
    stale_tmp: list[str] = field(default_factory=list)
    bytes_freed: int = 0  # on-disk bytes reclaimed (estimate for repacks: their dead bytes)
    live_bytes_moved: int = 0
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    executed: bool = False

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _retired(store) -> dict[str, float]:
    store.index.execute("CREATE TABLE IF NOT EXISTS retired_packs (id TEXT PRIMARY KEY, retired_at REAL NOT NULL)")
    return dict(store.index.execute("SELECT id, retired_at FROM retired_packs"))


def plan_gc(store, keep: set[str], grace: float = DEFAULT_GRACE_SECONDS,
            repack_threshold: float = DEFAULT_REPACK_THRESHOLD,
            _state: dict | None = None) -> GcPlan:
    """What gc would remove, keeping files in `keep` (hex digests) and anything younger
    than `grace` seconds. Pure reads (besides creating the retired_packs table)."""
    cutoff = time.time() - grace
    reader_cutoff = time.time() - min(grace, READER_GRACE_SECONDS)
    retired = _retired(store)
    plan = GcPlan(grace_seconds=grace)
    keep_raw = {bytes.fromhex(d) for d in keep}
    live_chunks: set[bytes] = set()
    dead_files: list[bytes] = []
    for d, size, n, recipe, created in store.index.execute(
            "SELECT digest, size, chunk_count, recipe, created_at FROM files"):
        if d in keep_raw or created >= cutoff:
            live_chunks.update(_recipe(d, n, recipe))
        else:
            dead_files.append(d)
            plan.dead_files += 1
            plan.dead_file_bytes += size
    packs = {pid: (size, created) for pid, size, created in store.index.execute(
        "SELECT id, size, created_at FROM packs")}
    entry_counts = dict(store.index.execute("SELECT id, entry_count FROM packs"))
    per_pack: dict[str, list[tuple[bytes, int]]] = {}
    dead_chunks: list[bytes] = []
    for d, pid, stored in store.index.execute("SELECT digest, pack_id, stored_len FROM chunks"):
        recent = pid in packs and packs[pid][1] >= cutoff
        live = d in live_chunks or recent
        per_pack.setdefault(pid, []).append((d, stored if live else -stored))
        if not live:
            dead_chunks.append(d)
    plan.dead_chunks = len(dead_chunks)
    for pid, (size, created) in packs.items():
        if created >= cutoff:
            continue
        rows = per_pack.get(pid, [])
        live_bytes = sum(s + RECORD_HEADER.size for _, s in rows if s >= 0)
        # dead records only (not the pack's fixed overhead): a pack of live chunks is never
        # rewritten, however small, so repeated gc runs settle
        dead_bytes = sum(-s + RECORD_HEADER.size for _, s in rows if s < 0)
        # records with no index row (a chunk two sessions wrote at once: the other copy
        # won) are dead too; bound the fixed overhead (magic, trailer, footer) generously
        overhead = 64 + 49 * entry_counts.get(pid, 0)
        dead_bytes = max(dead_bytes, size - live_bytes - overhead)
        if live_bytes == 0:
            plan.delete_packs.append(pid)
            plan.bytes_freed += size
        elif dead_bytes > size * repack_threshold:
            plan.repack.append(pid)
            plan.bytes_freed += size - live_bytes
            plan.live_bytes_moved += live_bytes
    for path in store.packs_dir.glob("*/*.pack"):
        pid = path.stem
        if pid not in packs:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if pid in retired:
                if retired[pid] <= reader_cutoff:
                    plan.orphan_packs.append(pid)
                    plan.bytes_freed += st.st_size
                else:
                    plan.deferred_packs.append(pid)
            elif st.st_mtime < cutoff:
                plan.orphan_packs.append(pid)
                plan.bytes_freed += st.st_size
    plan.stale_tmp = [p.name for p in stale_sessions(store)]
    if _state is not None:
        _state.update(dead_files=dead_files, dead_chunks=dead_chunks, live_chunks=live_chunks)
    return plan


def run_gc(store, keep_fn, grace: float = DEFAULT_GRACE_SECONDS, dry_run: bool = False,
           repack_threshold: float = DEFAULT_REPACK_THRESHOLD, on_plan=None,
           lock_timeout: float | None = None) -> GcPlan:
    """Plan, report (on_plan(plan)), then execute under the exclusive store lock.

    `keep_fn()` returns the digests to keep; it is called once the lock is held, so a
    version committed before then is seen."""
    if dry_run:
        plan = plan_gc(store, keep_fn(), grace, repack_threshold)
        if on_plan:
            on_plan(plan)
        return plan
    lock = acquire_store_lock(store.root, exclusive=True, timeout=lock_timeout)
    try:
        state: dict = {}
        plan = plan_gc(store, keep_fn(), grace, repack_threshold, _state=state)
        if on_plan:
            on_plan(plan)
        _execute(store, plan, state)
        plan.executed = True
        return plan
    finally:
        os.close(lock)


def _execute(store, plan: GcPlan, state: dict) -> None:
    live_chunks: set[bytes] = state["live_chunks"]
    tmpdir = None
    moves: list[tuple[bytes, str, int, int]] = []
    new_packs: list[tuple[str, int, int]] = []
    # (1) repack: copy live chunks of mostly-dead packs into new packs, durable first
    if plan.repack:
        tmpdir = _new_tmp_session(store, "gc")
        records = []
        for pid in plan.repack:
            path = pack_path(store.packs_dir, pid)
            rows = store.index.execute(
                "SELECT digest, offset, stored_len, raw_len, codec FROM chunks WHERE pack_id=?", (pid,))
            with open(path, "rb") as f:
                for d, off, slen, rlen, cid in rows:
                    if d not in live_chunks:
                        continue
                    f.seek(off)
                    stored = f.read(slen)
                    raw = codec.decode(cid, stored, rlen)
                    if blake3.blake3(raw).digest() != d:
                        raise CorruptionError(f"chunk {d.hex()[:16]}... in pack {pid} is corrupted; "
                                              "gc stopped before changing anything: run `lode fsck --repair`")
                    records.append((d, cid, rlen, stored))
        if records:
            new_id, entries, size = _write_pack(store, tmpdir, records)
            final = pack_path(store.packs_dir, new_id)
            final.parent.mkdir(exist_ok=True)
            pause_point("gc-pack-written")
            os.replace(tmpdir / f"{new_id}.pack", final)
            if store.fsync:
                _fsync_dir(final.parent)
            new_packs.append((new_id, size, len(entries)))
            moves = [(e.digest, new_id, e.offset, e.stored_len) for e in entries]
        pause_point("gc-before-index")
    # (2) one index transaction: new locations in, dead rows out
    gone = set(plan.delete_packs) | set(plan.repack)
    now = time.time()
    with store.index.transaction() as db:
        db.executemany("INSERT INTO packs(id, size, entry_count, created_at) VALUES (?,?,?,?)",
                       [(p, s, n, now) for p, s, n in new_packs])
        db.executemany("UPDATE chunks SET pack_id=?, offset=? WHERE digest=? AND stored_len=?",
                       [(p, o, d, s) for d, p, o, s in moves])
        db.executemany("DELETE FROM files WHERE digest=?", [(d,) for d in state["dead_files"]])
        db.executemany("DELETE FROM statcache WHERE digest=?", [(d,) for d in state["dead_files"]])
        db.executemany("DELETE FROM chunks WHERE digest=?", [(d,) for d in state["dead_chunks"]])
        for pid in gone:
            left = db.execute("SELECT count(*) FROM chunks WHERE pack_id=?", (pid,)).fetchone()[0]
            if left:
                raise CorruptionError(f"gc: pack {pid} still holds {left} live chunk(s); nothing was changed")
            db.execute("DELETE FROM packs WHERE id=?", (pid,))
        db.executemany("INSERT OR REPLACE INTO retired_packs(id, retired_at) VALUES (?,?)",
                       [(pid, now) for pid in gone])
    pause_point("gc-after-index")
    # (3) only now delete pack files: retired ones at once if no reader grace applies,
    # else at a later gc (readers may have located chunks in them a moment ago)
    immediate = min(plan.grace_seconds, READER_GRACE_SECONDS) <= 0
    doomed = (sorted(gone) if immediate else []) + plan.orphan_packs
    if not immediate:
        plan.deferred_packs.extend(sorted(gone))
    for i, pid in enumerate(doomed):
        pack_path(store.packs_dir, pid).unlink(missing_ok=True)
        if i == 0:
            pause_point("gc-deleting")
    with store.index.transaction() as db:
        db.executemany("DELETE FROM retired_packs WHERE id=?", [(pid,) for pid in doomed])
    for name in plan.stale_tmp:
        shutil.rmtree(store.tmp_dir / name, ignore_errors=True)
    if tmpdir is not None:
        shutil.rmtree(tmpdir, ignore_errors=True)
    # forget cached descriptors of deleted packs
    with store._fd_lock:
        for pid in list(store._fds):
            if pid in gone:
                os.close(store._fds.pop(pid))


# ----------------------------------------------------------------------------- fsck
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
    repaired: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.corrupt_packs or self.corrupt_chunks or self.missing_packs or self.bad_index_entries
                    or self.missing_chunks or self.bad_files)

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["ok"] = self.ok
        return d


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
    from lodestore.store.packs import FOOTER, MAGIC

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


def fsck(store) -> FsckReport:
    """Check every pack against its digests, every index entry against its pack, every
    file recipe against the index. Reads only."""
    rep = FsckReport()
    indexed = {pid for (pid,) in store.index.execute("SELECT id FROM packs")}
    rows: dict[str, list] = {}
    for d, pid, off, slen, rlen, cid in store.index.execute(
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
            raw = None
            try:
                raw = codec.decode(e.codec, data[e.offset : e.offset + e.stored_len], e.raw_len)
            except CorruptionError:
                pass
            if raw is None or blake3.blake3(raw).digest() != e.digest:
                corrupt = True
                bad_chunks.add(e.digest)
        for d, off, slen, rlen, cid in rows.get(pid, []):
            rep.chunks_checked += 1
            e = by_offset.get(off)
            if e is None or e.digest != d or e.stored_len != slen or e.raw_len != rlen or e.codec != cid:
                # the trailer may be damaged: check the bytes at the indexed location directly
                raw = None
                try:
                    raw = codec.decode(cid, data[off : off + slen], rlen)
                except CorruptionError:
                    pass
                if raw is None or blake3.blake3(raw).digest() != d:
                    rep.bad_index_entries.append(d.hex())
                    bad_chunks.add(d)
                    corrupt = True
        if corrupt:
            rep.corrupt_packs.append(pid)
    for pid in sorted(indexed - set(on_disk)):
        rep.missing_packs.append(pid)
        for d, *_ in rows.get(pid, []):
            bad_chunks.add(d)
    # a chunk is only really bad if the index points at a bad copy
    indexed_bad = set()
    for pid, items in rows.items():
        for d, *_ in items:
            if d in bad_chunks and (pid in rep.corrupt_packs or pid in rep.missing_packs):
                indexed_bad.add(d)
    # a good copy of the same digest elsewhere does not help the index: keep it strict
    rep.corrupt_chunks = sorted(d.hex() for d in indexed_bad)
    known = {d for items in rows.values() for d, *_ in items}
    for d, n, recipe in store.index.execute("SELECT digest, chunk_count, recipe FROM files"):
        rep.files_checked += 1
        chunks = _recipe(d, n, recipe)
        missing = [c for c in chunks if c not in known]
        if missing:
            rep.missing_chunks.extend(c.hex() for c in missing)
        if missing or any(c in indexed_bad for c in chunks):
            rep.bad_files.append(d.hex())
    rep.missing_chunks = sorted(set(rep.missing_chunks))
    rep.stale_tmp = [p.name for p in stale_sessions(store)]
    return rep


def rebuild_index(store, quarantined: Iterable[str] = ()) -> dict:
    """Recreate the packs and chunks tables from the pack files (trailers, falling back
    to a record scan), keeping only records whose bytes verify. File recipes stay."""
    skip = set(quarantined) | set(_retired(store))  # retired by gc: dead, awaiting deletion
    packs, chunks = [], {}
    for path in sorted(store.packs_dir.glob("*/*.pack")):
        pid = path.stem
        if pid in skip:
            continue
        entries, _ = _pack_entries(path)
        data = path.read_bytes()
        good = 0
        for e in entries:
            try:
                raw = codec.decode(e.codec, data[e.offset : e.offset + e.stored_len], e.raw_len)
            except CorruptionError:
                continue
            if blake3.blake3(raw).digest() == e.digest and e.digest not in chunks:
                chunks[e.digest] = (e.digest, pid, e.offset, e.stored_len, e.raw_len, e.codec)
                good += 1
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


def repair(store, report: FsckReport) -> dict:
    """Salvage the good chunks of corrupt packs into a new pack, move the corrupt packs
    to store/quarantine/, rebuild the chunk index from the packs. Returns what was done;
    files whose bytes are still lost are listed under "bad_files"."""
    lock = acquire_store_lock(store.root, exclusive=True)
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
                    try:
                        raw = codec.decode(e.codec, stored, e.raw_len)
                    except CorruptionError:
                        continue
                    if blake3.blake3(raw).digest() == e.digest:
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
        for name in report.stale_tmp:
            shutil.rmtree(store.tmp_dir / name, ignore_errors=True)
    finally:
        os.close(lock)
    after = fsck(store)
    return {"quarantined": list(report.corrupt_packs), "salvaged_chunks": salvaged, "index": rebuilt,
            "bad_files": after.bad_files}
