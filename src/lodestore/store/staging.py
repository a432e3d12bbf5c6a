"""Chunk locations of a write session, staged on disk until the session commits.

A session that writes 100 GiB writes ~1.3 million chunks; keeping their locations in
memory until commit (the earlier design) grew ~280 bytes per chunk without bound. They
go instead into a small SQLite file in the session's own tmp folder, flushed once per
pack: memory stays flat, the commit moves them into the index with one
``INSERT ... SELECT`` (index.commit_session), and a crashed session's file goes away
with its tmp folder (gc removes stale sessions). Nothing here needs to survive a power
cut, so the file is written without journal or fsync.

The same goes for the per-file rows a session writes at commit (new files, stat-cache
entries, files re-used): past SPILL_ROWS in memory they move here (`spill_*`), and the
commit moves them into the index with an ``INSERT ... SELECT`` each, so logging
1,000,000 small files holds no per-file row in memory (it held ~600 bytes a file).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from lodestore.sqlite_rows import insert_values
from lodestore.store.packs import PackEntry

_BATCH = 4096  # as index.py: one query a transfer page


# An in-memory Bloom filter (2 MiB, 2 probes taken from the digest itself, which is
# uniformly random) answers "certainly not staged" for almost every new chunk without a
# query: measured, the per-window staged query was ~8 % of logging a new 1 GiB file.
# False positives only cost a query: 1.3 million staged chunks (100 GiB) give ~2 %.
_FILTER_BITS = 1 << 24


def _probes(digest: bytes) -> tuple[int, int]:
    mask = _FILTER_BITS - 1
    return int.from_bytes(digest[:4], "little") & mask, int.from_bytes(digest[4:8], "little") & mask


def _set_bits(bits: bytearray, digests: Iterable[bytes]) -> None:
    for d in digests:
        a, b = _probes(d)
        bits[a >> 3] |= 1 << (a & 7)
        bits[b >> 3] |= 1 << (b & 7)


def _maybe_held(bits: bytearray, digests: Iterable[bytes]) -> list[bytes]:
    """The digests the filter `bits` may hold (all it holds, and ~2 % false positives)."""
    maybe = []
    for d in digests:
        a, b = _probes(d)
        if bits[a >> 3] & (1 << (a & 7)) and bits[b >> 3] & (1 << (b & 7)):
            maybe.append(d)
    return maybe


class StagedChunks:
    def __init__(self, path: Path):
        # made on the first lookup (_filter_made): a session of small files never asks,
        # and filling it cost ~0.15 s per 100,000 chunks (a Python pass per digest)
        self._filter: bytearray | None = None
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        # chunks and files: appended in the order stored, with no key. Their digests are
        # looked up only where the filters say they may be there (rare: a session of small
        # files never asks), so each table's digest index is made the first time one is
        # (_indexed): keeping a key in order cost ~40 % more per row than an append
        # (100,000 small files: ~0.2 s). The commit reads both sorted by digest anyway.
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS chunks (digest BLOB NOT NULL, pack_id TEXT NOT NULL, "
            "offset INTEGER NOT NULL, stored_len INTEGER NOT NULL, raw_len INTEGER NOT NULL, "
            "codec INTEGER NOT NULL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS files (digest BLOB NOT NULL, size INTEGER NOT NULL, "
                         "chunk_count INTEGER NOT NULL, recipe BLOB)")
        self._indexed: set[str] = set()
        # append-only (rowid order is the order spilled: a path spilled twice keeps its
        # last row when the index reads them in that order); no key to keep in order
        self._db.execute("CREATE TABLE IF NOT EXISTS statcache (path TEXT, size INTEGER, mtime_ns INTEGER, "
                         "ctime_ns INTEGER, ino INTEGER, dev INTEGER, digest BLOB, recorded_ns INTEGER)")
        self._db.execute("CREATE TABLE IF NOT EXISTS reused (digest BLOB)")
        self.count = 0
        self.files_spilled = 0  # rows in files (new files moved out of the session's memory)
        self.spilled = False  # any per-file row here (the commit must read this file)

    def _index(self, table: str) -> None:
        """Make `table`'s digest index before its first lookup (see __init__)."""
        if table not in self._indexed:
            self._db.execute(f"CREATE INDEX IF NOT EXISTS {table}_by_digest ON {table}(digest)")
            self._indexed.add(table)

    def _filter_made(self) -> bytearray:
        """The filter of every staged chunk, filled from the table the first time."""
        if self._filter is None:
            self._filter = bytearray(_FILTER_BITS // 8)
            _set_bits(self._filter, (row[0] for row in self._db.execute("SELECT digest FROM chunks")))
        return self._filter

    def add(self, pack_id: str, entries: Iterable[PackEntry]) -> None:
        """Stage a full pack's chunk locations. A chunk staged twice (a whole small file
        that is byte-identical to a chunk staged before: small files are not looked up
        here) has two rows, both valid; the commit keeps one."""
        entries = list(entries)
        if self._filter is not None:
            _set_bits(self._filter, (e.digest for e in entries))
        self._db.execute("BEGIN")
        insert_values(self._db, "INSERT INTO chunks",
                      [(e.digest, pack_id, e.offset, e.stored_len, e.raw_len, e.codec) for e in entries], 6)
        self.count += len(entries)
        self._db.execute("COMMIT")

    def unknown(self, digests: list[bytes]) -> list[bytes]:
        """The digests of `digests` not staged here (order kept)."""
        if not self.count or not digests:
            return digests
        maybe = _maybe_held(self._filter_made(), digests)
        if not maybe:
            return digests
        found = self._held("chunks", maybe)
        return [d for d in digests if d not in found] if found else digests

    def locate(self, digests: list[bytes]) -> dict[bytes, tuple[str, int, int, int, int]]:
        """(pack id, offset, stored_len, raw_len, codec) of the staged chunks among
        `digests` (a session checking a received recipe reads its own chunks back)."""
        found: dict[bytes, tuple[str, int, int, int, int]] = {}
        if not self.count:
            return found
        self._index("chunks")
        for i in range(0, len(digests), _BATCH):
            batch = digests[i : i + _BATCH]
            q = ("SELECT digest, pack_id, offset, stored_len, raw_len, codec FROM chunks "
                 f"WHERE digest IN ({','.join('?' * len(batch))})")
            for row in self._db.execute(q, batch):
                found[row[0]] = row[1:]
        return found

    # --- per-file rows spilled out of a session's memory (see the module docstring) ------
    def _spill(self, head: str, rows: list[tuple], width: int) -> int:
        self._db.execute("BEGIN")
        insert_values(self._db, head, rows, width)
        self._db.execute("COMMIT")
        self.spilled = True
        return len(rows)

    def spill_files(self, rows: list[tuple[bytes, int, int, bytes | None]]) -> None:
        """New files of the session: (digest, size, chunk_count, recipe)."""
        self.files_spilled += self._spill("INSERT INTO files", rows, 4)

    def spill_stat_entries(self, rows: list[tuple], whole_file_limit: int) -> None:
        """Stat-cache rows (path, size, mtime_ns, ctime_ns, ino, dev, digest, recorded_ns);
        a path spilled twice keeps its last row (the index reads them in rowid order).
        The file row of each small file among them (at most `whole_file_limit` bytes: one
        chunk named by its digest, no recipe) is derived from them here, by one INSERT ...
        SELECT in SQLite: the session hands over no row of its own for those (100,000
        small files: ~0.2 s less). A content read twice may have two rows; the commit
        keeps one."""
        self._db.execute("BEGIN")
        last = self._db.execute("SELECT coalesce(max(rowid), 0) FROM statcache").fetchone()[0]
        insert_values(self._db, "INSERT INTO statcache", rows, 8)
        cur = self._db.execute("INSERT INTO files SELECT DISTINCT digest, size, 1, NULL FROM statcache "
                               "WHERE rowid > ? AND size <= ?", (last, whole_file_limit))
        self.files_spilled += max(cur.rowcount, 0)
        self._db.execute("COMMIT")
        self.spilled = True

    def spill_reused(self, digests: Iterable[bytes]) -> None:
        self._spill("INSERT INTO reused", [(d,) for d in digests], 1)

    def known_files(self, digests: Iterable[bytes]) -> set[bytes]:
        """Which of `digests` are spilled new files (none asked while nothing is spilled)."""
        items = list(digests) if self.files_spilled else []
        return self._held("files", items) if items else set()

    def _held(self, table: str, digests: list[bytes]) -> set[bytes]:
        """Which of `digests` the staging table `table` holds (its digest index made
        first, on the first lookup that needs it), _BATCH at a time."""
        self._index(table)
        found: set[bytes] = set()
        for i in range(0, len(digests), _BATCH):
            batch = digests[i : i + _BATCH]
            q = f"SELECT digest FROM {table} WHERE digest IN ({','.join('?' * len(batch))})"
            found.update(r[0] for r in self._db.execute(q, batch))
        return found

    def spilled_files(self) -> Iterable[tuple[bytes, int, int, bytes | None]]:
        return self._db.execute("SELECT DISTINCT digest, size, chunk_count, recipe FROM files ORDER BY digest")

    def spilled_reused(self) -> Iterable[bytes]:
        return (r[0] for r in self._db.execute("SELECT DISTINCT digest FROM reused"))

    def close(self) -> None:
        self._db.close()
