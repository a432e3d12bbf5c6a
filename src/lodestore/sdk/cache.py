"""The download cache (<root>/cache/files/ab/<digest>): read-only copies hard-linked
into downloads, with a size cap and least-recently-used eviction.

Use is tracked in a small SQLite index (<root>/cache/cache.db), updated whenever
`materialize.cached_copy` serves or creates an entry, not from atime (often disabled).
The index keeps a running total of the bytes it tracks, updated in the same transaction
as each entry, so enforcing the cap costs one small query per new entry and eviction
picks victims from the index by last use: no listing of the cache folder. Files found on
disk but not tracked (copied in by hand, or from before the index) are adopted as least
recently used by `lode cache cleanup`, which also re-counts the total from the disk.
Evicting a copy only removes the cache's name: a download hard-linked to it keeps its
bytes, and the next download that needs it writes it again from the store.

Trust: a cached copy is handed out only while its content is known to match its digest.
Its size, read-only mode and mtime mark catch a careless edit, but root's `cp -p` over a
hard-linked download writes into the cache's inode and copies mode and mtime along. What
no user call can set is the inode's change time (ctime: the kernel sets it on every
write, chmod, utime and link), so the index keeps (inode, ctime, size) as they were when
the copy was last known good; a copy whose stamp differs is hashed again before use
(and written anew from the store if it does not match). Hashing on every hand-out
instead would cost ~0.36 s per GiB (measured, from the page cache) against ~0.1 ms for
a link. Our own links change the ctime too: the stamp is taken again right after each
link, so the next hand-out is cheap; a write landing in the microseconds between our
link and that stat would go unnoticed until `lode cache verify`, which hashes everything.

Cap: `$LODESTORE_CACHE_MAX_BYTES` (e.g. ``10GB``; ``off`` for no cap), default 10 GB:
enough for the working set of most projects, small next to the store itself (the cache
only duplicates bytes the store already holds). Enforced as entries are created
(entries used in the last minute stay: another thread may be linking them);
`lode cache cleanup 1GB` trims on demand (like `wandb artifact cache cleanup`).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import blake3

from lodestore import settings
from lodestore.config import parse_size
from lodestore.errors import InvalidInputError
from lodestore.sqlite_wal import use_wal

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository

ENV_MAX = settings.CACHE_MAX_BYTES
_BUSY_TIMEOUT_S = 30.0  # how long a statement waits for another process's write lock
DEFAULT_MAX_BYTES = 10 * 1000**3
# A cached copy carries this mtime (and no write bits): one edited through a hard link
# loses it, so it is no longer trusted. 2001-09-09, a date no write produces now.
CACHE_MTIME_NS = 1_000_000_000 * 1_000_000_000
AUTO_MIN_IDLE = 60.0  # automatic eviction spares entries used this recently
def max_bytes() -> int | None:
    """The automatic cap: $LODESTORE_CACHE_MAX_BYTES, "off" for none, default 10 GB."""
    v = settings.cache_max_bytes()
    if not v:
        return DEFAULT_MAX_BYTES
    if v.lower() in ("off", "none", "unlimited"):
        return None
    try:
        return parse_size(v)
    except InvalidInputError as e:
        raise InvalidInputError(f"{ENV_MAX}: {e}") from None


@dataclass(frozen=True)
class CacheEntry:
    digest: str
    size: int
    last_used: float  # 0: never recorded
    path: Path
    links: int  # hard links beyond the cache's own name (downloads sharing the bytes)


class _Index:
    """One connection per cache folder and process, shared by threads (downloads touch
    entries from a thread pool); opening SQLite per touch cost more than the touch."""

    def __init__(self, cache_dir: Path):
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.db = sqlite3.connect(cache_dir / "cache.db", timeout=_BUSY_TIMEOUT_S, isolation_level=None,
                                  check_same_thread=False)
        use_wal(self.db, _BUSY_TIMEOUT_S)
        self.db.execute("PRAGMA synchronous=NORMAL")  # derived data: a lost update costs a re-count
        self.db.execute("CREATE TABLE IF NOT EXISTS entries (digest TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                        "last_used REAL NOT NULL)")
        self.db.execute("CREATE INDEX IF NOT EXISTS entries_by_use ON entries(last_used)")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        # (inode, ctime, size) of each copy when its content was last known to match
        self.db.execute("CREATE TABLE IF NOT EXISTS verified (digest TEXT PRIMARY KEY, ino INTEGER NOT NULL, "
                        "ctime_ns INTEGER NOT NULL, size INTEGER NOT NULL)")
        with self.lock:
            self._begin()
            try:
                if self.db.execute("SELECT 1 FROM meta WHERE key='total'").fetchone() is None:
                    self.db.execute("INSERT INTO meta VALUES ('total', (SELECT coalesce(sum(size), 0) FROM entries))")
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def _begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def run(self, fn):
        """fn(db) inside one write transaction; returns its result."""
        with self.lock:
            self._begin()
            try:
                out = fn(self.db)
                self.db.execute("COMMIT")
                return out
            except BaseException:
                self.db.execute("ROLLBACK")
                raise


_indexes: dict[tuple[int, Path], _Index] = {}
_indexes_lock = threading.Lock()


def _index(cache_dir: Path) -> _Index:
    key = (os.getpid(), Path(cache_dir).resolve())  # a forked child opens its own connection
    with _indexes_lock:
        ix = _indexes.get(key)
        if ix is None:
            ix = _indexes[key] = _Index(Path(cache_dir))
        return ix


def _db(cache_dir: Path) -> sqlite3.Connection:
    """A separate connection (tests and tools poking at the index)."""
    _index(cache_dir)
    return sqlite3.connect(Path(cache_dir) / "cache.db", timeout=30, isolation_level=None)


def _upsert(db: sqlite3.Connection, digest: str, size: int, when: float) -> None:
    old = db.execute("SELECT size FROM entries WHERE digest=?", (digest,)).fetchone()
    db.execute("INSERT INTO entries(digest, size, last_used) VALUES (?,?,?) "
               "ON CONFLICT(digest) DO UPDATE SET last_used=excluded.last_used, size=excluded.size",
               (digest, size, when))
    delta = size - (old[0] if old else 0)
    if delta:
        db.execute("UPDATE meta SET value = value + ? WHERE key='total'", (delta,))


def total_bytes(cache_dir: Path) -> int:
    """The running total of tracked bytes."""
    ix = _index(cache_dir)
    with ix.lock:
        return ix.db.execute("SELECT value FROM meta WHERE key='total'").fetchone()[0]


Stamp = tuple[int, int, int]


def stamp(st: os.stat_result) -> Stamp:
    """What `cp -p`, utime and chmod cannot put back: inode, change time, size."""
    return (st.st_ino, st.st_ctime_ns, st.st_size)


def verified_stamp(cache_dir: Path, digest: str) -> Stamp | None:
    """The stamp the copy of `digest` had when its content was last known good."""
    ix = _index(cache_dir)
    with ix.lock:
        row = ix.db.execute("SELECT ino, ctime_ns, size FROM verified WHERE digest=?", (digest,)).fetchone()
    return None if row is None else tuple(row)


def touch(cache_dir: Path, digest: str, size: int, created: bool = False,
          verified: os.stat_result | None = None) -> None:
    """Record a use of a cache entry (called by materialize on each hand-out), and with
    `verified` the copy's stamp as known good; a new entry may push the cache over its
    cap, which evicts least recently used entries."""
    ix = _index(cache_dir)

    def record(db):
        _upsert(db, digest, size, time.time())
        if verified is not None:
            db.execute("INSERT OR REPLACE INTO verified(digest, ino, ctime_ns, size) VALUES (?,?,?,?)",
                       (digest, *stamp(verified)))
        return db.execute("SELECT value FROM meta WHERE key='total'").fetchone()[0]

    total = ix.run(record)
    if created:
        cap = max_bytes()
        if cap is not None and total > cap:
            _evict(cache_dir, cap, keep={digest}, min_idle=AUTO_MIN_IDLE)


def _evict(cache_dir: Path, cap: int, keep: AbstractSet[str] = frozenset(), dry_run: bool = False,
           min_idle: float = 0.0) -> list[CacheEntry]:
    """Evict from the index, least recently used first, until the total fits `cap`."""
    ix = _index(cache_dir)
    files = Path(cache_dir) / "files"
    recent = time.time() - min_idle if min_idle else None

    def pick(db):
        total = db.execute("SELECT value FROM meta WHERE key='total'").fetchone()[0]
        victims: list[CacheEntry] = []
        if total <= cap:
            return victims
        # Only entries idle long enough are candidates, oldest first (by the index): once
        # the cache is over its cap with every entry recent, each new copy must not scan
        # the whole table again (that made a large hard-linked download quadratic).
        rows = db.execute("SELECT digest, size, last_used FROM entries WHERE last_used <= ? "
                          "ORDER BY last_used, digest", (float("inf") if recent is None else recent,))
        for digest, size, used in rows:
            if total <= cap:
                break
            if digest in keep:
                continue
            path = files / digest[:2] / digest
            victims.append(CacheEntry(digest, size, used, path, 0))
            total -= size
        if not dry_run and victims:
            # the names go first: a crash in between leaves an untracked file (adopted by
            # the next cleanup), never a tracked entry counted but absent... which is also
            # harmless: the next eviction of it just drops the row
            for v in victims:
                v.path.unlink(missing_ok=True)
            db.executemany("DELETE FROM entries WHERE digest=?", [(v.digest,) for v in victims])
            db.executemany("DELETE FROM verified WHERE digest=?", [(v.digest,) for v in victims])
            db.execute("UPDATE meta SET value = value - ? WHERE key='total'", (sum(v.size for v in victims),))
        return victims

    return ix.run(pick)


def entries(cache_dir: Path) -> list[CacheEntry]:
    """Every cached file on disk, least recently used first (lists the folder: for
    `lode cache ls` and verify, not for the cap)."""
    files = Path(cache_dir) / "files"
    ix = _index(cache_dir)
    with ix.lock:
        used = {d: t for d, t in ix.db.execute("SELECT digest, last_used FROM entries")}
    out = []
    for p in files.glob("*/*") if files.exists() else []:
        if p.name.startswith("."):
            continue
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        out.append(CacheEntry(p.name, st.st_size, used.get(p.name, 0.0), p, st.st_nlink - 1))
    out.sort(key=lambda e: (e.last_used, e.digest))
    return out


def reconcile(cache_dir: Path) -> int:
    """Make the index match the disk: adopt untracked files (as least recently used),
    drop rows whose file is gone, re-count the total. Returns the total."""
    on_disk = {e.digest: e for e in entries(cache_dir)}

    def fix(db):
        tracked = dict(db.execute("SELECT digest, size FROM entries"))
        gone = [d for d in tracked if d not in on_disk]
        db.executemany("DELETE FROM entries WHERE digest=?", [(d,) for d in gone])
        db.execute("DELETE FROM verified WHERE digest NOT IN (SELECT digest FROM entries)")
        for d, e in on_disk.items():
            if tracked.get(d) != e.size:
                db.execute("INSERT INTO entries(digest, size, last_used) VALUES (?,?,?) "
                           "ON CONFLICT(digest) DO UPDATE SET size=excluded.size", (d, e.size, e.last_used))
        db.execute("UPDATE meta SET value = (SELECT coalesce(sum(size), 0) FROM entries) WHERE key='total'")
        return db.execute("SELECT value FROM meta WHERE key='total'").fetchone()[0]

    return _index(cache_dir).run(fix)


def cleanup(cache_dir: Path, max_bytes: int, keep: AbstractSet[str] = frozenset(), dry_run: bool = False,
            min_idle: float = 0.0) -> list[CacheEntry]:
    """Evict least recently used entries until the cache holds at most max_bytes
    (entries used less than min_idle seconds ago stay). Re-counts from the disk first."""
    reconcile(cache_dir)
    return _evict(cache_dir, max_bytes, keep=keep, dry_run=dry_run, min_idle=min_idle)


def verify(cache_dir: Path, fix: bool = False) -> list[tuple[CacheEntry, str]]:
    """Check every cached copy against its digest (and read-only mark); with fix, remove
    bad ones (the next download writes them again)."""
    bad = []
    for e in entries(cache_dir):
        st = e.path.stat()
        problem = None
        if st.st_mtime_ns != CACHE_MTIME_NS or st.st_mode & 0o222 or not stat.S_ISREG(st.st_mode):
            problem = "edited through a hard link (mtime mark or write bits changed)"
        h = blake3.blake3()
        with open(e.path, "rb") as f:
            while piece := f.read(8 * 1024 * 1024):
                h.update(piece)
        if h.hexdigest() != e.digest:
            problem = "content does not match its digest"
        if problem:
            bad.append((e, problem))
            if fix:
                e.path.unlink(missing_ok=True)
    if bad:  # kept or not, a bad copy is no longer vouched for: its next hand-out hashes it again
        _index(cache_dir).run(lambda db: db.executemany("DELETE FROM verified WHERE digest=?",
                                                        [(e.digest,) for e, _ in bad]))
    if fix and bad:
        reconcile(cache_dir)  # the removed copies leave the index and the total
    return bad


def cache_dir(repo: Repository) -> Path:
    return repo.root / "cache"
