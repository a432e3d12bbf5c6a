"""Store maintenance: garbage collection (plan, then execute) and repack. The lock every
write session and every sweep takes is in locks.py; fsck, index rebuild and repair live
in integrity.py. LocalContentStore.plan_gc / .gc are the interface to this module.

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

Test pause points (lodestore.testhooks): gc-pack-written, gc-before-index, gc-after-index,
gc-deleting.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import blake3

from lodestore.errors import CorruptionError
from lodestore.store import codec
from lodestore.store.base import DEFAULT_GRACE_SECONDS, DEFAULT_REPACK_THRESHOLD, GcPlan
from lodestore.store.index import recipe_chunks
from lodestore.store.locks import acquire_store_lock
from lodestore.store.packs import RECORD_HEADER, PackEntry, PackWriter
from lodestore.store.workdirs import new_work_dir, stale_work_dirs, tree_size
from lodestore.testhooks import pause_point

if TYPE_CHECKING:
    from lodestore.store.local import LocalContentStore

__all__ = ["DEFAULT_GRACE_SECONDS", "DEFAULT_REPACK_THRESHOLD", "GcPlan", "plan_gc", "run_gc"]

# Pack files dropped from the index stay on disk this long (capped by the grace period)
# so a reader that located its chunks just before the sweep can still read them; the
# next gc after that deletes them.
READER_GRACE_SECONDS = 300.0


def stale_sessions(store: LocalContentStore, grace: float = 0.0) -> list[Path]:
    """tmp/<session> folders whose owner process (on this host) is dead."""
    return stale_work_dirs(store.tmp_dir, grace)


# Records per block of a repacked pack: the chunks gc moves keep their order (pack order),
# so a file's raw chunks stay one run that a download copies at once.
_REPACK_BLOCK = 256


def write_pack(store: LocalContentStore, tmpdir: Path, chunks: list[tuple[bytes, int, int, bytes]],
               pause_at: str | None = None) -> tuple[str, list[PackEntry], int]:
    """Write (digest, codec, raw_len, stored) records into a new pack under tmpdir and
    move it into packs/ (durably: the pack is fsynced, then its folder). Returns (pack
    id, entries, size). Used by gc's repack and fsck's salvage."""
    pack_id = uuid.uuid4().hex
    writer = PackWriter(tmpdir / f"{pack_id}.pack", fsync=store.fsync)
    entries = []
    for start in range(0, len(chunks), _REPACK_BLOCK):  # blocks: raw runs stay back to back (packs.py)
        entries += writer.append_block(chunks[start : start + _REPACK_BLOCK])
    writer.finish()
    if pause_at:
        pause_point(pause_at)
    store.packs.put(pack_id, writer.tmp_path, durable=store.fsync)
    return pack_id, entries, writer.size


@dataclass
class _Sweep:
    """What plan_gc decided, row by row, for the sweep that follows under the same lock."""

    dead_files: list[bytes] = field(default_factory=list)
    dead_chunks: list[bytes] = field(default_factory=list)
    live_chunks: set[bytes] = field(default_factory=set)  # referenced, or held by the grace
    keep: set[bytes] = field(default_factory=set)


def plan_gc(store: LocalContentStore, keep: set[str], grace: float = DEFAULT_GRACE_SECONDS,
            repack_threshold: float = DEFAULT_REPACK_THRESHOLD, _sweep: _Sweep | None = None) -> GcPlan:
    """What gc would remove, keeping files in `keep` (hex digests) and anything younger
    than `grace` seconds. Reads only."""
    now = time.time()
    cutoff = now - grace
    reader_grace = min(grace, READER_GRACE_SECONDS)
    reader_cutoff = now - reader_grace
    immediate = reader_grace <= 0
    retired = store.index.retired_packs()
    plan = GcPlan(grace_seconds=grace, reader_grace_seconds=reader_grace)
    sweep = _sweep if _sweep is not None else _Sweep()
    sweep.keep = {bytes.fromhex(d) for d in keep}
    live_chunks = sweep.live_chunks
    wanted: set[bytes] = set()  # referenced by a kept file
    for d, size, n, recipe, created in store.index.all_files():
        chunks = recipe_chunks(d, n, recipe)
        if d in sweep.keep:
            wanted.update(chunks)
            live_chunks.update(chunks)
        elif created >= cutoff:
            plan.files_held_by_grace += 1
            live_chunks.update(chunks)
        else:
            sweep.dead_files.append(d)
            plan.dead_files += 1
            plan.dead_file_bytes += size
    packs = {pid: (size, created, count) for pid, size, count, created in store.index.all_packs()}
    per_pack: dict[str, list[tuple[bytes, int]]] = {}
    for d, pid, stored, _raw in store.index.all_chunks():
        recent = pid in packs and packs[pid][1] >= cutoff
        live = d in live_chunks or recent
        if d not in wanted and live:
            plan.bytes_held_by_grace += stored + RECORD_HEADER.size
        per_pack.setdefault(pid, []).append((d, stored if live else -stored))
        if not live:
            sweep.dead_chunks.append(d)
    plan.dead_chunks = len(sweep.dead_chunks)
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
    for pid, (size, mtime) in store.packs.listing().items():
        if pid in packs:
            continue
        if pid in retired:
            if retired[pid] <= reader_cutoff:
                plan.orphan_packs.append(pid)
                plan.bytes_freed += size
            else:
                plan.deferred_packs.append(pid)
                plan.bytes_pending += size
        elif mtime < cutoff:
            plan.orphan_packs.append(pid)
            plan.bytes_freed += size
        else:
            plan.bytes_held_by_grace += size
    for stale in stale_sessions(store):
        plan.stale_tmp.append(stale.name)
        plan.bytes_freed += tree_size(stale)
    return plan


def run_gc(store: LocalContentStore, keep_fn: Callable[[], set[str]], grace: float = DEFAULT_GRACE_SECONDS,
           dry_run: bool = False, repack_threshold: float = DEFAULT_REPACK_THRESHOLD,
           on_plan: Callable[[GcPlan], None] | None = None, lock_timeout: float | None = None,
           lock_held: bool = False) -> GcPlan:
    """Plan, report (on_plan(plan)), then execute under the exclusive store lock.

    `keep_fn()` returns the digests to keep; it is called once the lock is held, so a
    version committed before then is seen. The returned plan carries the measured
    result; `plan.planned` is the plan as reported before executing. `lock_held`: the
    caller holds the exclusive lock already."""
    if dry_run:
        plan = plan_gc(store, keep_fn(), grace, repack_threshold)
        if on_plan:
            on_plan(plan)
        return plan
    lock = None if lock_held else acquire_store_lock(store.root, exclusive=True, timeout=lock_timeout)
    try:
        sweep = _Sweep()
        plan = plan_gc(store, keep_fn(), grace, repack_threshold, _sweep=sweep)
        plan.planned = copy.deepcopy(plan)
        if on_plan:
            on_plan(plan)
        _execute(store, plan, sweep)
        plan.executed = True
        return plan
    finally:
        if lock is not None:
            os.close(lock)


def _repack(store: LocalContentStore, plan: GcPlan, live_chunks: set[bytes]
            ) -> tuple[list[tuple[str, int, int]], list[tuple[bytes, str, int, int]], int]:
    """Copy the live chunks of mostly-dead packs into one new pack, durable before the
    index learns of it. Returns (new packs, moves (digest, pack, offset, stored_len), bytes written)."""
    tmpdir = new_work_dir(store.tmp_dir, "gc")
    try:
        records = []
        for pid in plan.repack:
            # in pack order: a file's chunks that were back to back stay so (raw runs, packs.py)
            for loc in sorted(store.index.pack_chunk_locations(pid), key=lambda loc: loc.offset):
                if loc.digest not in live_chunks:
                    continue
                stored = store.packs.pread(pid, loc.stored_len, loc.offset)
                raw = codec.decode(loc.codec, stored, loc.raw_len)
                if blake3.blake3(raw).digest() != loc.digest:
                    raise CorruptionError(f"chunk {loc.digest.hex()[:16]}... in pack {pid} is corrupted; "
                                          "gc stopped before changing anything: run `lode fsck --repair`")
                records.append((loc.digest, loc.codec, loc.raw_len, stored))
        if not records:
            return [], [], 0
        new_id, entries, size = write_pack(store, tmpdir, records, pause_at="gc-pack-written")
        return [(new_id, size, len(entries))], [(e.digest, new_id, e.offset, e.stored_len) for e in entries], size
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _execute(store: LocalContentStore, plan: GcPlan, sweep: _Sweep) -> None:
    new_packs: list[tuple[str, int, int]] = []
    moves: list[tuple[bytes, str, int, int]] = []
    written = deleted = 0
    # (1) repack: copy live chunks of mostly-dead packs into new packs, durable first
    if plan.repack:
        new_packs, moves, written = _repack(store, plan, sweep.live_chunks)
        pause_point("gc-before-index")
    # (2) one index transaction: new locations in, dead rows out
    gone = set(plan.delete_packs) | set(plan.repack)
    gone_sizes = {pid: size for pid, size, _n, _c in store.index.all_packs() if pid in gone}
    store.index.apply_gc(new_packs, moves, sweep.dead_files, sweep.dead_chunks, gone, time.time())
    store.share_index()  # an index shared with other machines learns of the sweep before any pack goes
    pause_point("gc-after-index")
    # (3) only now delete pack files: retired ones at once if no reader grace applies,
    # else at a later gc (readers may have located chunks in them a moment ago)
    immediate = plan.reader_grace_seconds <= 0
    doomed = (sorted(gone) if immediate else []) + plan.orphan_packs
    if not immediate:
        plan.deferred_packs.extend(sorted(gone))
    for i, pid in enumerate(doomed):
        deleted += store.packs.delete(pid)
        if i == 0:
            pause_point("gc-deleting")
    store.index.forget_retired(doomed)
    for name in plan.stale_tmp:
        deleted += tree_size(store.tmp_dir / name)
        shutil.rmtree(store.tmp_dir / name, ignore_errors=True)
    store.packs.forget(gone)  # cached descriptors of packs given up
    store.index.forget_lost(sweep.keep)
    plan.bytes_freed = deleted - written
    plan.bytes_retired = 0 if immediate else sum(gone_sizes.values())
