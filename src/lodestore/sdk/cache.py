"""The download cache (<root>/cache/files/ab/<digest>): read-only copies hard-linked
into downloads, with a size cap and least-recently-used eviction.

Use is tracked in a small SQLite table (<root>/cache/cache.db), updated whenever
`materialize.cached_copy` serves or creates an entry, not from atime (often disabled).
Files found on disk but not tracked count as least recently used. Evicting a copy only
removes the cache's name: a download hard-linked to it keeps its bytes.

Cap: `$LODESTORE_CACHE_MAX_BYTES` (e.g. ``10GB``), enforced as entries are created;
`lode cache cleanup 1GB` trims on demand (like `wandb artifact cache cleanup`).
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import blake3

from lodestore.errors import InvalidInputError

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository

ENV_MAX = "LODESTORE_CACHE_MAX_BYTES"
_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
          "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4}


def parse_size(text: str | int) -> int:
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).upper() not in _UNITS:
        raise InvalidInputError(f"not a size: {text!r} (e.g. 500MB, 1GB, 2GiB, 1000)")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


@dataclass(frozen=True)
class CacheEntry:
    digest: str
    size: int
    last_used: float  # 0: never recorded
    path: Path
    links: int  # hard links beyond the cache's own name (downloads sharing the bytes)


def _db(cache_dir: Path) -> sqlite3.Connection:
    cache_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(cache_dir / "cache.db", timeout=30, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS entries (digest TEXT PRIMARY KEY, size INTEGER NOT NULL, "
               "last_used REAL NOT NULL)")
    return db


def touch(cache_dir: Path, digest: str, size: int, created: bool = False) -> None:
    """Record a use of a cache entry (called by materialize.cached_copy)."""
    db = _db(cache_dir)
    try:
        db.execute("INSERT INTO entries(digest, size, last_used) VALUES (?,?,?) "
                   "ON CONFLICT(digest) DO UPDATE SET last_used=excluded.last_used, size=excluded.size",
                   (digest, size, time.time()))
    finally:
        db.close()
    if created:
        cap = os.environ.get(ENV_MAX)
        if cap:
            # entries used in the last minute may be about to be linked by another thread
            cleanup(cache_dir, parse_size(cap), keep={digest}, min_idle=60.0)


def entries(cache_dir: Path) -> list[CacheEntry]:
    """Every cached file, least recently used first."""
    files = cache_dir / "files"
    db = _db(cache_dir)
    try:
        used = {d: t for d, t in db.execute("SELECT digest, last_used FROM entries")}
    finally:
        db.close()
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


def cleanup(cache_dir: Path, max_bytes: int, keep: set[str] = frozenset(), dry_run: bool = False,
            min_idle: float = 0.0) -> list[CacheEntry]:
    """Evict least recently used entries until the cache holds at most max_bytes
    (entries used less than min_idle seconds ago stay)."""
    all_entries = entries(cache_dir)
    recent = time.time() - min_idle
    total = sum(e.size for e in all_entries)
    evicted = []
    for e in all_entries:
        if total <= max_bytes:
            break
        if e.digest in keep or (min_idle and e.last_used > recent):
            continue
        if not dry_run:
            e.path.unlink(missing_ok=True)
        total -= e.size
        evicted.append(e)
    if evicted and not dry_run:
        db = _db(cache_dir)
        try:
            db.executemany("DELETE FROM entries WHERE digest=?", [(e.digest,) for e in evicted])
        finally:
            db.close()
    return evicted


def verify(cache_dir: Path, fix: bool = False) -> list[tuple[CacheEntry, str]]:
    """Check every cached copy against its digest (and read-only mark); with fix, remove
    bad ones (the next download writes them again)."""
    from lodestore.sdk.materialize import CACHE_MTIME_NS

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
    return bad


def cache_dir(repo: Repository) -> Path:
    return repo.root / "cache"
