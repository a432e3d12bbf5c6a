"""Store maintenance: garbage collection (plan, then execute) and repack; the store
lock every write session and every sweep takes. fsck, index rebuild and repair live in
integrity.py.

Store-level only: the caller passes the set of file digests that must stay (what the
catalog's live and soft-deleted versions reference); this module knows nothing else of
the catalog.

Safety against concurrent writers (restic/borg style):
- every write session holds a *shared* lock on ``<root>/gc.lock`` from its start until
  it is closed, after the caller has committed its catalog version; the sweep holds the
  *exclusive* lock, so no session dedups against a chunk while it is being removed, and
  the live set is read under the lock, after every such version is committed;
- a session re-touches (``files.created_at``) every already-indexed file it reuses, and
  files, packs and pack files younger than the grace period are never swept: a backstop
  for writers the lock cannot see.

Default grace: 10 minutes. The exclusive lock already keeps a sweep away from every
open session on this host, so the grace only has to cover the gap between a session's
store commit and its catalog commit (milliseconds to seconds) where the lock cannot
help: a writer on another host over a network file system, where flock may not be
honoured. Ten minutes is orders of magnitude above that gap, yet short enough that
`lode gc` soon after a permanent delete frees the bytes (an hour made it free nothing
for an hour, with no explanation). `LODESTORE_GC_GRACE_SECONDS` / `--grace` override it.

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
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import blake3

from lodestore.errors import ConflictError, CorruptionError
from lodestore.store import codec
from lodestore.store.packs import RECORD_HEADER, PackWriter, pack_path
from lodestore.testhooks import pause_point

DEFAULT_GRACE_SECONDS = 600.0
DEFAULT_REPACK_THRESHOLD = 0.5  # repack a pack when more than this fraction of it is dead
LOCK_TIMEOUT = 600.0
# Pack files dropped from the index stay on disk this long (capped by the grace period)
# so a reader that located its chunks just before the sweep can still read them; the
# next gc after that deletes them.
READER_GRACE_SECONDS = 300.0
DIGEST_LEN = 32


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
    """What a gc removes, and (once executed) what it did. Byte figures are pack bytes
    on disk (compressed), never logical sizes.

    Freed now vs later: packs dropped from the index stay on disk for a reader grace
    (min(grace, READER_GRACE_SECONDS)) so a reader that located its chunks a moment ago
    can still read them; the next gc after that deletes them. They are counted once, as
    `bytes_retired` by the gc that drops them and as `bytes_freed` by the gc that
    deletes them."""

    dead_files: int = 0
    dead_file_bytes: int = 0  # logical bytes of files no one references any more
    dead_chunks: int = 0
    delete_packs: list[str] = field(default_factory=list)  # indexed packs with no live chunk
    repack: list[str] = field(default_factory=list)  # packs mostly dead: live chunks copied out
    orphan_packs: list[str] = field(default_factory=list)  # pack files deleted now (not indexed)
    deferred_packs: list[str] = field(default_factory=list)  # retired, kept for readers until a later gc
    stale_tmp: list[str] = field(default_factory=list)
    bytes_freed: int = 0  # disk bytes this run deletes, net of repack writes (measured once executed)
    bytes_retired: int = 0  # dropped from the index now, deleted by a gc after the reader grace
    bytes_pending: int = 0  # retired by an earlier gc, still inside the reader grace
    bytes_held_by_grace: int = 0  # unreferenced but younger than the grace: kept (may be a log in flight)
    files_held_by_grace: int = 0
    live_bytes_moved: int = 0
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    reader_grace_seconds: float = READER_GRACE_SECONDS
    executed: bool = False
    planned: dict | None = None  # the plan as reported before executing

    @property
    def reclaimable_bytes(self) -> int:
        """Everything this gc frees now or sets up for deletion (not what grace holds)."""
        return self.bytes_freed + self.bytes_retired + self.bytes_pending

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "planned"}
        d["reclaimable_bytes"] = self.reclaimable_bytes
        return d


def _retired(store) -> dict[str, float]:
    store.index.execute("CREATE TABLE IF NOT EXISTS retired_packs (id TEXT PRIMARY KEY, retired_at REAL NOT NULL)")
    return dict(store.index.execute("SELECT id, retired_at FROM retired_packs"))


def _tree_size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            total += p.stat().st_size if p.is_file() else 0
        except OSError:
            pass
    return total


def plan_gc(store, keep: set[str], grace: float = DEFAULT_GRACE_SECONDS,
            repack_threshold: float = DEFAULT_REPACK_THRESHOLD,
            _state: dict | None = None) -> GcPlan:
    """What gc would remove, keeping files in `keep` (hex digests) and anything younger
    than `grace` seconds. Pure reads (besides creating the retired_packs table)."""
    now = time.time()
    cutoff = now - grace
    reader_grace = min(grace, READER_GRACE_SECONDS)
    reader_cutoff = now - reader_grace
    immediate = reader_grace <= 0
    retired = _retired(store)
    plan = GcPlan(grace_seconds=grace, reader_grace_seconds=reader_grace)
    keep_raw = {bytes.fromhex(d) for d in keep}
    live_chunks: set[bytes] = set()  # referenced, or held by the grace
    wanted: set[bytes] = set()  # referenced by a kept file
    dead_files: list[bytes] = []
    for d, size, n, recipe, created in store.index.execute(
            "SELECT digest, size, chunk_count, recipe, created_at FROM files"):
        chunks = _recipe(d, n, recipe)
        if d in keep_raw:
            wanted.update(chunks)
            live_chunks.update(chunks)
        elif created >= cutoff:
            plan.files_held_by_grace += 1
            live_chunks.update(chunks)
        else:
            dead_files.append(d)
            plan.dead_files += 1
            plan.dead_file_bytes += size
    packs = {pid: (size, created, count) for pid, size, count, created in store.index.execute(
        "SELECT id, size, entry_count, created_at FROM packs")}
    per_pack: dict[str, list[tuple[bytes, int]]] = {}
    dead_chunks: list[bytes] = []
    for d, pid, stored in store.index.execute("SELECT digest, pack_id, stored_len FROM chunks"):
        recent = pid in packs and packs[pid][1] >= cutoff
        live = d in live_chunks or recent
        if d not in wanted and live:
            plan.bytes_held_by_grace += stored + RECORD_HEADER.size
        per_pack.setdefault(pid, []).append((d, stored if live else -stored))
        if not live:
            dead_chunks.append(d)
    plan.dead_chunks = len(dead_chunks)
    for pid, (size, created, count) in packs.items():
        if created >= cutoff:
            continue
        rows = per_pack.get(pid, [])
        live_bytes = sum(s + RECORD_HEADER.size for _, s in rows if s >= 0)
        # dead records only (not the pack's fixed overhead): a pack of live chunks is never
        # rewritten, however small, so repeated gc runs settle
        dead_bytes = sum(-s + RECORD_HEADER.size for _, s in rows if s < 0)
        # records with no index row (a chunk two sessions wrote at once: the other copy
        # won) are dead too; bound the fixed overhead (magic, trailer, footer) generously
        overhead = 64 + 49 * count
        dead_bytes = max(dead_bytes, size - live_bytes - overhead)
        if live_bytes == 0:
            plan.delete_packs.append(pid)
        elif dead_bytes > size * repack_threshold:
            plan.repack.append(pid)
            plan.live_bytes_moved += live_bytes
        else:
            continue
        if immediate:
            plan.bytes_freed += size
        else:
            plan.bytes_retired += size
    # the repacked live bytes are written again (a new pack: records plus a trailer)
    plan.bytes_freed -= plan.live_bytes_moved + (64 if plan.repack else 0)
    for path in store.packs_dir.glob("*/*.pack"):
        pid = path.stem
        if pid in packs:
            continue
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
                plan.bytes_pending += st.st_size
        elif st.st_mtime < cutoff:
            plan.orphan_packs.append(pid)
            plan.bytes_freed += st.st_size
        else:
            plan.bytes_held_by_grace += st.st_size
    for d in stale_sessions(store):
        plan.stale_tmp.append(d.name)
        plan.bytes_freed += _tree_size(d)
    if _state is not None:
        _state.update(dead_files=dead_files, dead_chunks=dead_chunks, live_chunks=live_chunks, keep=keep_raw)
    return plan


def run_gc(store, keep_fn, grace: float = DEFAULT_GRACE_SECONDS, dry_run: bool = False,
           repack_threshold: float = DEFAULT_REPACK_THRESHOLD, on_plan=None,
           lock_timeout: float | None = None) -> GcPlan:
    """Plan, report (on_plan(plan)), then execute under the exclusive store lock.

    `keep_fn()` returns the digests to keep; it is called once the lock is held, so a
    version committed before then is seen. The returned plan carries the measured
    result; `plan.planned` is the plan as reported before executing."""
    if dry_run:
        plan = plan_gc(store, keep_fn(), grace, repack_threshold)
        if on_plan:
            on_plan(plan)
        return plan
    lock = acquire_store_lock(store.root, exclusive=True, timeout=lock_timeout)
    try:
        state: dict = {}
        plan = plan_gc(store, keep_fn(), grace, repack_threshold, _state=state)
        plan.planned = plan.as_dict()
        if on_plan:
            on_plan(plan)
        _execute(store, plan, state)
        plan.executed = True
        return plan
    finally:
        os.close(lock)


def _unlink_counted(path: Path) -> int:
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size


def _execute(store, plan: GcPlan, state: dict) -> None:
    live_chunks: set[bytes] = state["live_chunks"]
    tmpdir = None
    moves: list[tuple[bytes, str, int, int]] = []
    new_packs: list[tuple[str, int, int]] = []
    written = deleted = 0
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
            written += size
            moves = [(e.digest, new_id, e.offset, e.stored_len) for e in entries]
        pause_point("gc-before-index")
    # (2) one index transaction: new locations in, dead rows out
    gone = set(plan.delete_packs) | set(plan.repack)
    gone_sizes = {pid: size for pid, size in store.index.execute("SELECT id, size FROM packs") if pid in gone}
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
    immediate = plan.reader_grace_seconds <= 0
    doomed = (sorted(gone) if immediate else []) + plan.orphan_packs
    if not immediate:
        plan.deferred_packs.extend(sorted(gone))
    for i, pid in enumerate(doomed):
        deleted += _unlink_counted(pack_path(store.packs_dir, pid))
        if i == 0:
            pause_point("gc-deleting")
    with store.index.transaction() as db:
        db.executemany("DELETE FROM retired_packs WHERE id=?", [(pid,) for pid in doomed])
    for name in plan.stale_tmp:
        deleted += _tree_size(store.tmp_dir / name)
        shutil.rmtree(store.tmp_dir / name, ignore_errors=True)
    if tmpdir is not None:
        shutil.rmtree(tmpdir, ignore_errors=True)
    # forget cached descriptors of deleted packs
    with store._fd_lock:
        for pid in list(store._fds):
            if pid in gone:
                os.close(store._fds.pop(pid))
    from lodestore.store.integrity import forget_lost

    forget_lost(store, state["keep"])
    plan.bytes_freed = deleted - written
    plan.bytes_retired = 0 if immediate else sum(gone_sizes.values())
