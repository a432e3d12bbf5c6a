"""The local store's index: which pack holds each chunk, which chunks make each file,
and the stat cache. SQLite (stdlib) in WAL mode, next to the packs.

This module owns index.db: it creates every table (packs, chunks, files, statcache,
lost_files, retired_packs) and runs every query; the rest of the store calls its
methods (there is no raw-SQL escape hatch). A session's own staged.db is staging.py's.

The chunk tables are derived data: integrity.rebuild_index (fsck --repair) recreates
them from pack trailers. File recipes are not in packs; they are kept here and
are also what the catalog's manifests point at.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from lodestore.errors import CorruptionError, InvalidInputError, is_database_damage, is_disk_full
from lodestore.read_only import sqlite_file_uri, sqlite_read_only_query
from lodestore.sqlite_rows import insert_values
from lodestore.sqlite_wal import use_wal

if TYPE_CHECKING:
    from lodestore.store.packs import PackEntry

SCHEMA = """
CREATE TABLE IF NOT EXISTS packs (
    id TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    entry_count INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    digest BLOB PRIMARY KEY,
    pack_id TEXT NOT NULL,
    offset INTEGER NOT NULL,
    stored_len INTEGER NOT NULL,
    raw_len INTEGER NOT NULL,
    codec INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunks_by_pack ON chunks(pack_id);
CREATE TABLE IF NOT EXISTS files (
    digest BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL,
    recipe BLOB,              -- concatenated 32-byte chunk digests; NULL: one chunk = the file digest
    created_at REAL NOT NULL
) WITHOUT ROWID;
-- "is there any stored file of this size?": a file no stored file matches in size cannot
-- be a duplicate, so it is chunked in one pass; otherwise it is hashed first (local.py)
CREATE INDEX IF NOT EXISTS files_by_size ON files(size);
-- the files made of several chunks (the only ones with a recipe): "which files share
-- these chunks?" (accounting) reads their recipes alone, not every file's row. Created
-- on the first writable open of an older index.db too (IF NOT EXISTS), in one pass.
CREATE INDEX IF NOT EXISTS files_chunked ON files(digest) WHERE recipe IS NOT NULL;
CREATE TABLE IF NOT EXISTS statcache (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    dev INTEGER NOT NULL,
    digest BLOB NOT NULL,
    recorded_ns INTEGER NOT NULL
) WITHOUT ROWID;
-- files an fsck repair found unrecoverable (integrity.py) and packs gc dropped from the
-- index but keeps on disk a while for readers (maintenance.py); created here like every
-- table of index.db: this module is the only one that speaks SQL to it
CREATE TABLE IF NOT EXISTS lost_files (
    digest BLOB PRIMARY KEY, size INTEGER NOT NULL, lost_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS retired_packs (id TEXT PRIMARY KEY, retired_at REAL NOT NULL);
-- a store whose index is shared through objects (s3_index.py): the objects merged here
CREATE TABLE IF NOT EXISTS shared_indexes (name TEXT PRIMARY KEY) WITHOUT ROWID;
"""
# The indexes of SCHEMA beside the tables' keys, by name: a bulk merge into an empty
# index drops them and creates them again from these statements (merge_shared_indexes).
_SECONDARY_INDEXES = {m.group(1): m.group(0) for m in re.finditer(r"CREATE INDEX IF NOT EXISTS (\w+) ON [^;]+", SCHEMA)}
# Every table and index SCHEMA creates, by name (StoreIndex._schema_complete)
_SCHEMA_NAMES = frozenset(re.findall(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)", SCHEMA))
REBUILD_ROWS = 10_000  # rows a merge into an empty index inserts at least to build its indexes after


def corrupt_index_error(path: Path, e: BaseException | str) -> CorruptionError:
    return CorruptionError(f"the store index {path} is corrupted ({e}); it is derived data: "
                           "`lode fsck --repair` sets it aside and rebuilds it from the packs")


DIGEST_LEN = 32  # BLAKE3-256
BUSY_TIMEOUT_S = 60.0  # how long a statement waits for another process's write lock


def digest_bytes(digest: str) -> bytes:
    """A hex digest as the index keys it. Only the canonical spelling (64 lowercase hex
    characters, as b3sum prints) is a digest: bytes.fromhex alone would also take upper
    case and embedded spaces, and the same content would then go by several names (and
    fail the final hexdigest check). Checked by the round trip (the spelling .hex()
    gives back is the canonical one): a pull converts ~7 digests per chunk, and this is
    a quarter of the cost of checking the characters first (0.34 vs 1.24 us)."""
    try:
        raw = bytes.fromhex(digest)
    except (TypeError, ValueError):
        raw = b""
    if len(raw) != DIGEST_LEN or raw.hex() != digest:
        raise InvalidInputError(f"not a content digest (64 lowercase hex characters): {digest!r}")
    return raw


def joined_digests(digests: list[str]) -> bytes:
    """Hex digests as one blob of their raw bytes, each checked as `digest_bytes` checks
    one, but converted in one call (a transfer's page: 1,024 conversions of 0.34 us and
    as many Python calls, then one bound parameter each). A query walks the blob itself
    (`_EACH_DIGEST`). Any that is not a digest: InvalidInputError naming it."""
    # every one 64 characters and the joined spelling .hex() gives back the joined input:
    # each is canonical (a non-string or a short one joins as "" and fails the length)
    text = "".join(d if isinstance(d, str) and len(d) == 2 * DIGEST_LEN else "" for d in digests)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != DIGEST_LEN * len(digests) or raw.hex() != text:
        for d in digests:
            digest_bytes(d)  # raises, naming the first that is not a digest
    return raw


def split_digests(raw: bytes) -> list[bytes]:
    """The 32-byte digests of a joined_digests blob, in order."""
    return [raw[i : i + DIGEST_LEN] for i in range(0, len(raw), DIGEST_LEN)]


# The rows of a query joined to each 32-byte digest of a blob (joined_digests), in blob
# order: the blob is one bound parameter however many digests it holds (no IN (...)
# batches), and SQLite reads each digest's slice itself (as locate_recipe does).
_EACH_DIGEST = "WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i + 1 < ?) "
_SLICE = "substr(?, i * 32 + 1, 32)"
# sqlite caps bound parameters at 32,766 (3.32+); stay well below for IN (...) batches.
# A transfer's page of 1,024 files (or 4,096 chunks) is one query, not two to five:
# every statement gives up the GIL, and getting it back from threads that hash and
# decode costs the calling thread up to a switch interval (5 ms) each time.
_BATCH = 4096
# A file re-used within this many seconds of its last touch keeps its created_at: gc's
# grace (minutes, store/maintenance.py) is not shortened in any way that matters.
TOUCH_FRESH_SECONDS = 60.0
# A stat-cache row as statcache_lookup hands it out (StatRow).
_STATCACHE_SELECT = "SELECT path, size, mtime_ns, ctime_ns, ino, dev, digest, recorded_ns FROM statcache"
# (path, size, mtime_ns, ctime_ns, ino, dev, digest, recorded_ns): the row as SQLite returns
# it, not rebuilt into other tuples (a re-log of 100,000 files reads 100,000 of them).
StatRow = tuple[str, int, int, int, int, int, bytes, int]


class ChunkLocation(NamedTuple):
    """Where one chunk's bytes are (a tuple: a 1 GiB file is ~13,000 of them, built on
    every download; a frozen dataclass cost ~2 us each)."""

    digest: bytes
    pack_id: str
    offset: int
    stored_len: int
    raw_len: int
    codec: int


class StatKey(NamedTuple):
    """What must be unchanged for a stat-cache entry to hold (a tuple: built per file,
    20,000 times per dataset log, where a frozen dataclass cost 1.5 us each)."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int


@dataclass
class SharedState:
    """Rows of the index as one shared index object carries them (s3_index.py): lists
    when decoded; the encoder reads each field once, so a writer may hand iterators."""

    packs: list[tuple[str, int, int, float]] = field(default_factory=list)  # id, size, entries, created_at
    chunks: list[tuple[bytes, str, int, int, int, int]] = field(default_factory=list)  # as ChunkLocation
    files: list[tuple[bytes, int, int, bytes | None, float]] = field(default_factory=list)  # + created_at
    touched: list[tuple[bytes, float]] = field(default_factory=list)  # files reused: created_at raised
    lost: list[tuple[bytes, int, float]] = field(default_factory=list)
    retired: list[tuple[str, float]] = field(default_factory=list)

    def row_count(self) -> int:
        return (len(self.packs) + len(self.chunks) + len(self.files) + len(self.touched) + len(self.lost)
                + len(self.retired))


@dataclass
class UnitedRows:
    """The rows of several shared index objects united (`of`): a chunk or a file several
    of them hold (a file every version of a dataset holds) once, a file with the latest
    created_at of all. What `StoreIndex.merge_united` inserts; before that, a cache that
    held nothing can already be asked which packs hold a version's files
    (local.united_file_packs), while the merge runs."""

    chunks: dict[bytes, tuple[bytes, str, int, int, int, int]]  # digest -> chunk row (ChunkLocation's fields)
    files: dict[bytes, tuple[bytes, int, int, bytes | None, float]]  # digest -> file row
    pack_sizes: dict[str, int]  # pack id -> its size
    states: list[SharedState]  # for the rest of their rows (packs, touched, lost, retired)

    @classmethod
    def of(cls, states: list[SharedState]) -> UnitedRows:
        chunks: dict[bytes, tuple] = {}
        files: dict[bytes, tuple] = {}
        pack_sizes: dict[str, int] = {}
        for state in states:
            for row in state.chunks:
                chunks.setdefault(row[0], row)
            for file_row in state.files:
                held = files.setdefault(file_row[0], file_row)
                if held is not file_row and file_row[4] > held[4]:
                    files[file_row[0]] = held[:4] + file_row[4:]
            for pack_id, size, _, _ in state.packs:
                pack_sizes.setdefault(pack_id, size)
        return cls(chunks, files, pack_sizes, states)


class StoreIndex:
    """Thread-safe wrapper over one SQLite connection for writes and the write path,
    plus one read connection per downloading thread (see _reader)."""

    def __init__(self, path: Path, durable: bool = True):
        self.path = path
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        # a store folder this process cannot write is read as it is (read_only.py)
        self._read_only_query = sqlite_read_only_query(path)
        self.read_only = self._read_only_query is not None
        self._db = self._connect(check_same_thread=False)
        try:
            if self.read_only:  # as it is: nothing to create, and a damaged file is found now
                self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return
            use_wal(self._db, BUSY_TIMEOUT_S)
            # FULL: a session's commit must survive a power cut once it returns (base.py's
            # contract), because the catalog commits a version pointing at these digests
            # right after; with NORMAL, WAL mode may drop the last commits on power loss
            # while the catalog's later commit survives. One WAL fsync per session.
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            if not self._schema_complete():
                with self._lock:  # one transaction: a new index.db costs one WAL fsync, not one per table
                    # IMMEDIATE: a deferred transaction that read the schema and then found
                    # another process's commit would fail at once (SQLITE_BUSY_SNAPSHOT),
                    # without waiting on the busy handler
                    self._db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")
        except sqlite3.DatabaseError as e:
            self._db.close()
            if not is_database_damage(e):
                raise
            raise corrupt_index_error(path, e) from None

    def _schema_complete(self) -> bool:
        """Every table and index of SCHEMA is there (one read): then opening writes
        nothing, and never waits for the write lock a committing writer holds (a reader
        opening a store mid-commit would otherwise wait for the commit to end)."""
        names = {n for (n,) in self._db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
        return names >= _SCHEMA_NAMES

    def _connect(self, **kwargs: bool) -> sqlite3.Connection:
        if self._read_only_query is None:
            return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, **kwargs)
        uri = sqlite_file_uri(self.path, self._read_only_query)
        return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, **kwargs)

    def integrity_problem(self) -> str | None:
        """What `PRAGMA quick_check` finds wrong with the file (a damaged page that
        opening alone does not notice), or None. Reads the whole index: fsck only."""
        try:
            with self._lock:
                rows = self._db.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as e:
            return str(e)
        found = [r[0] for r in rows]
        return None if found == ["ok"] else "; ".join(found[:3])

    def close(self) -> None:
        with self._lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._local = threading.local()
            self._db.close()

    def _reader(self) -> sqlite3.Connection:
        """This thread's own read connection. Downloads of many small files run on
        several threads, each asking for a file's recipe and chunk locations; through the
        one locked connection they queued behind each other (measured: most of their time
        was spent waiting for that lock). WAL lets readers run side by side, and each
        statement sees the latest commit."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(check_same_thread=False)
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        return conn

    # --- reads ------------------------------------------------------------------
    def has_chunk(self, digest: bytes) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM chunks WHERE digest=?", (digest,)).fetchone() is not None

    def file_row(self, digest: bytes) -> tuple[int, int, bytes | None] | None:
        """(size, chunk_count, recipe) or None."""
        return self._reader().execute(
            "SELECT size, chunk_count, recipe FROM files WHERE digest=?", (digest,)
        ).fetchone()

    def file_rows(self, digests: list[bytes]) -> dict[bytes, tuple[int, int, bytes | None]]:
        """file_row for many digests: one query per 900, not one per file (downloads)."""
        out: dict[bytes, tuple[int, int, bytes | None]] = {}
        db = self._reader()
        for i in range(0, len(digests), _BATCH):
            batch = digests[i : i + _BATCH]
            q = f"SELECT digest, size, chunk_count, recipe FROM files WHERE digest IN ({','.join('?' * len(batch))})"
            for row in db.execute(q, batch):
                out[row[0]] = row[1:]
        return out

    def recipe_rows(self, joined: bytes, chunked_only: bool = False) -> list[tuple[int, int, int, bytes | None]]:
        """(position in `joined`, size, chunk_count, recipe) of each known file among the
        digests of `joined` (joined_digests; each once), in one query that walks the blob
        (`_EACH_DIGEST`). The caller has the digests' hex already: a position names each,
        so no digest is converted back (21 pages of 1,024 files: 0.025 s, against 0.047 s
        for IN batches answering the digests; a JSON array built by SQLite, 0.028 s).
        `chunked_only`: the files of several chunks alone (those with a recipe)."""
        count = len(joined) // DIGEST_LEN
        if count == 0:
            return []
        return self._reader().execute(
            _EACH_DIGEST + "SELECT i, f.size, f.chunk_count, f.recipe "
            f"FROM r CROSS JOIN files f ON f.digest = {_SLICE}"
            + (" WHERE f.recipe IS NOT NULL" if chunked_only else ""), (count, joined)).fetchall()

    def whole_file_sizes(self, joined: bytes) -> list[tuple[int, int]]:
        """(position in `joined`, size) of each known file of ONE chunk (no recipe: the
        file is its chunk) among the digests of `joined` (joined_digests; each once), as
        `recipe_rows` walks them but answered in one row: every step of a query hands
        the GIL over, and a transfer asks this on its calling thread while its download
        and check threads keep the GIL busy (a page of 1,024 files as rows: ~6-12 ms
        there, most of it waiting to get the GIL back)."""
        return self._pairs(_EACH_DIGEST + "SELECT group_concat(i || ' ' || f.size, ' ') "
                           f"FROM r CROSS JOIN files f ON f.digest = {_SLICE} WHERE f.recipe IS NULL", joined)

    def chunk_raw_sizes(self, joined: bytes) -> list[tuple[int, int]]:
        """(position in `joined`, raw size) of each indexed chunk among the digests of
        `joined` (joined_digests; each once), in one row (as `whole_file_sizes`)."""
        return self._pairs(_EACH_DIGEST + "SELECT group_concat(i || ' ' || c.raw_len, ' ') "
                           f"FROM r CROSS JOIN chunks c ON c.digest = {_SLICE}", joined)

    def _pairs(self, sql: str, joined: bytes) -> list[tuple[int, int]]:
        """The pairs of integers a query over the digests of `joined` answers as one text
        row ("a b a b ..."; NULL when none)."""
        count = len(joined) // DIGEST_LEN
        if count == 0:
            return []
        (text,) = self._reader().execute(sql, (count, joined)).fetchone()
        if not text:
            return []
        numbers = list(map(int, text.split(" ")))
        return list(zip(numbers[0::2], numbers[1::2], strict=True))

    def holds_nothing(self) -> bool:
        """No chunk and no file indexed (a store just made: ContentStore.holds_nothing)."""
        with self._lock:
            return not self._db.execute(
                "SELECT EXISTS(SELECT 1 FROM chunks) OR EXISTS(SELECT 1 FROM files)").fetchone()[0]

    def known_files(self, digests: Iterable[bytes]) -> set[bytes]:
        return self._known("files", digests)

    def known_chunks(self, digests: Iterable[bytes]) -> set[bytes]:
        return self._known("chunks", digests)

    def chunk_digests(self, at_most: int) -> set[bytes] | None:
        """Every chunk digest indexed, if there are at most `at_most` (else None, having
        counted no further than at_most + 1 in SQLite). A write session chunking a large
        file then finds its chunks in memory instead of by one query a window
        (session._index_snapshot). Loading costs ~0.4-1 us a digest."""
        with self._lock:
            held = self._db.execute("SELECT count(*) FROM (SELECT 1 FROM chunks LIMIT ?)", (at_most + 1,)).fetchone()[0]
            if held > at_most:
                return None
            # LIMIT again: a commit by another process between the two statements may add rows
            digests = set(map(itemgetter(0), self._db.execute("SELECT digest FROM chunks LIMIT ?", (at_most + 1,))))
        return digests if len(digests) <= at_most else None

    def _known(self, table: str, digests: Iterable[bytes]) -> set[bytes]:
        """The subset of `digests` present in `table` (files or chunks), in batches of IN (...)."""
        found: set[bytes] = set()
        items = list(digests)
        with self._lock:
            for i in range(0, len(items), _BATCH):
                batch = items[i : i + _BATCH]
                q = f"SELECT digest FROM {table} WHERE digest IN ({','.join('?' * len(batch))})"
                found.update(r[0] for r in self._db.execute(q, batch))
        return found

    def touched_since(self, digests: list[bytes], since: float) -> set[bytes]:
        """The files among `digests` whose gc grace clock restarted at `since` or later
        (created_at): a write session re-using them needs not restart it again."""
        found: set[bytes] = set()
        with self._lock:
            for i in range(0, len(digests), _BATCH):
                batch = digests[i : i + _BATCH]
                q = f"SELECT digest FROM files WHERE digest IN ({','.join('?' * len(batch))}) AND created_at >= ?"
                found.update(r[0] for r in self._db.execute(q, [*batch, since]))
        return found

    def has_file_of_size(self, size: int) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM files WHERE size=? LIMIT 1", (size,)).fetchone() is not None

    def locate(self, digests: list[bytes]) -> dict[bytes, ChunkLocation]:
        out: dict[bytes, ChunkLocation] = {}
        unique = list(dict.fromkeys(digests))
        db = self._reader()
        for i in range(0, len(unique), _BATCH):
            batch = unique[i : i + _BATCH]
            q = (
                "SELECT digest, pack_id, offset, stored_len, raw_len, codec FROM chunks "
                f"WHERE digest IN ({','.join('?' * len(batch))})"
            )
            for row in db.execute(q, batch):
                out[row[0]] = ChunkLocation(*row)
        return out

    def locate_recipe(self, recipe: bytes) -> list[ChunkLocation]:
        """The location of every chunk of a recipe (concatenated 32-byte digests), in
        recipe order, in one query: SQLite walks the recipe itself (a recursive CTE over
        its 32-byte slices) and looks each slice up in the chunks table. A chunk missing
        from the index is left out, so a short answer means a damaged index.
        Measured, 13,485 chunks (1 GiB): 0.03-0.06 s; 900-digest IN batches + a dict 0.09-0.12 s."""
        count = len(recipe) // DIGEST_LEN
        if count == 0:
            return []
        q = (
            "WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i + 1 < ?) "
            "SELECT i, c.digest, c.pack_id, c.offset, c.stored_len, c.raw_len, c.codec "
            "FROM r CROSS JOIN chunks c ON c.digest = substr(?, i * 32 + 1, 32)"
        )
        # CROSS JOIN keeps r (ascending i) as the outer loop, so rows come in recipe
        # order without an ORDER BY (which cost a temp b-tree); checked, and sorted if not.
        rows = self._reader().execute(q, (count, recipe)).fetchall()
        if any(rows[k][0] <= rows[k - 1][0] for k in range(1, len(rows))):
            rows.sort()
        make = ChunkLocation._make
        return [make(row[1:]) for row in rows]

    def change_counter(self) -> int:
        """A number that moves whenever index.db changes: SQLite's data_version, read on
        a connection that never writes, so every commit (this process's writes too, made
        on other connections, and any other process's) counts. Microseconds: the web
        server asks it before trusting figures it measured earlier."""
        with self._lock:
            conn = self.__dict__.get("_watcher")
            if conn is None:
                conn = self._watcher = self._connect(check_same_thread=False)
                self._readers.append(conn)  # closed with the others
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

    def has_pack(self, pack_id: str) -> bool:
        """Whether the index lists the pack, as of the latest commit."""
        return self._reader().execute("SELECT 1 FROM packs WHERE id=?", (pack_id,)).fetchone() is not None

    def iter_files(self) -> Iterator[tuple[bytes, int]]:
        with self._lock:
            rows = self._db.execute("SELECT digest, size FROM files").fetchall()
        yield from rows

    def counts(self) -> tuple[int, int, int, int, int]:
        """(stored pack bytes, files, chunks, packs, raw chunk bytes)."""
        with self._lock:
            packs, stored = self._db.execute("SELECT count(*), coalesce(sum(size),0) FROM packs").fetchone()
            files = self._db.execute("SELECT count(*) FROM files").fetchone()[0]
            chunks, raw = self._db.execute("SELECT count(*), coalesce(sum(raw_len),0) FROM chunks").fetchone()
        return stored, files, chunks, packs, raw

    def statcache_lookup(self, paths: list[str]) -> dict[str, StatRow]:
        """The stat-cache rows of `paths` (those that have one), by path. Every row names a
        file the index holds: a row is written in the same transaction as its file's row
        (commit_session), and whatever deletes a file's row (gc, a repair) deletes its
        stat-cache rows in the same transaction, so no join to `files` is needed (it was
        half of a re-log's lookup). One range scan, or one query per 900 paths; a write
        session holds the gc lock, so the answer stays true for the session's life."""
        if len(paths) >= 2000:
            # The folder holding them all, from the smallest and largest path alone (every
            # string between them shares their common prefix): 1 ms for 21,000 paths,
            # where os.path.commonpath took 30 ms. Paths are absolute and normal here.
            first, last = min(paths), max(paths)
            common = os.path.commonprefix([first, last])  # noqa: RUF071 (a string prefix on purpose, cut at "/" below)
            prefix = common[: common.rfind("/")]
            if prefix.count("/") >= 2:  # a real folder, not "/" or "/home"
                found = self._statcache_between(first, last)
                if len(found) > len(paths):  # the range holds other files too: keep the ones asked
                    found = {p: found[p] for p in paths if p in found}
                return found
        out: dict[str, StatRow] = {}
        with self._lock:
            for i in range(0, len(paths), _BATCH):
                batch = paths[i : i + _BATCH]
                q = f"{_STATCACHE_SELECT} WHERE path IN ({','.join('?' * len(batch))})"
                out.update({row[0]: row for row in self._db.execute(q, batch)})
        return out

    def _statcache_between(self, first: str, last: str) -> dict[str, StatRow]:
        """statcache_lookup by one scan of the primary key's range from the first path to
        the last, inside one folder (measured, 21,000 paths: 0.07 s against 0.10 s for 24
        IN lists of 900). The range, not the whole folder: a log of 1,000,000 files asks a
        sorted batch at a time, and each scan then reads its batch's rows alone."""
        with self._lock:
            rows = self._db.execute(f"{_STATCACHE_SELECT} WHERE path >= ? AND path <= ?", (first, last))
            return {row[0]: row for row in rows}

    # --- writes -----------------------------------------------------------------
    def commit_session(
        self,
        packs: list[tuple[str, int, int]],
        staged: Path | None,
        files: list[tuple[bytes, int, int, bytes | None]],
        stat_entries: list[tuple[str, StatKey, bytes, int]],
        reused: Iterable[bytes] = (),
        received: Iterable[tuple[str, list[PackEntry]]] = (),
    ) -> None:
        """Make a session's packs, chunks and files known, in one transaction.

        Chunk locations come from the session's staging database (`staged`, a SQLite
        file in its tmp folder, so a session's memory does not grow with its chunks);
        it is attached for one INSERT ... SELECT, as are the file, stat-cache and re-used
        rows a large session spilled there (staging.py); `files`, `stat_entries` and
        `reused` are the rest, still in memory, written after them, as are the entries of
        the packs the session received whole and held in memory (`received`: (pack id,
        entries) each, inserted once, not staged first). INSERT OR IGNORE: a concurrent session
        may have indexed the same chunk first; its copy wins and ours becomes dead bytes
        in our pack, reclaimed by gc. `reused` files get created_at reset (gc's grace
        period counts from the last write or reuse) in the same transaction: one fsync,
        not one per file.
        """
        now = time.time()
        with self._lock:
            db = self._db
            if staged is not None:
                db.execute("ATTACH DATABASE ? AS staged", (str(staged),))
            try:
                with _write_transaction(db, self.path):
                    db.executemany(
                        "INSERT OR IGNORE INTO packs(id, size, entry_count, created_at) VALUES (?,?,?,?)",
                        [(p, s, n, now) for p, s, n in packs],
                    )
                    if staged is not None:
                        db.execute(
                            "INSERT OR IGNORE INTO chunks(digest, pack_id, offset, stored_len, raw_len, codec) "
                            "SELECT digest, pack_id, offset, stored_len, raw_len, codec FROM staged.chunks "
                            "ORDER BY digest"
                        )
                    insert_values(  # the columns in PackEntry's order, then the pack's id
                        db, "INSERT OR IGNORE INTO chunks(digest, codec, offset, raw_len, stored_len, pack_id)",
                        sorted((*e, pack_id) for pack_id, entries in received for e in entries), 6)  # key order
                    if staged is not None:
                        self._move_spilled_rows(now)
                    # a file already indexed (stored by a concurrent session, or re-used
                    # without the session asking) keeps its row; its grace clock restarts
                    insert_values(
                        db, "INSERT INTO files(digest, size, chunk_count, recipe, created_at)",
                        sorted((d, s, n, r, now) for d, s, n, r in files), 5,  # key order: fewer page splits
                        " ON CONFLICT(digest) DO UPDATE SET created_at=excluded.created_at")
                    insert_values(
                        db, "INSERT OR REPLACE INTO statcache(path, size, mtime_ns, ctime_ns, ino, dev, digest, "
                        "recorded_ns)", ((p, *k, d, r) for p, k, d, r in stat_entries), 8)
                    self._touch(now, reused)
            finally:
                if staged is not None:
                    db.execute("DETACH DATABASE staged")

    def _move_spilled_rows(self, now: float) -> None:
        """Inside commit_session's transaction, with the staging database attached: its
        spilled file, stat-cache and re-used rows, each in one statement (same rules as
        the in-memory rows: `WHERE true` lets SQLite parse the upsert after a SELECT)."""
        db = self._db
        db.execute(
            "INSERT INTO main.files(digest, size, chunk_count, recipe, created_at) "
            "SELECT digest, size, chunk_count, recipe, ? FROM staged.files WHERE true ORDER BY digest "
            "ON CONFLICT(digest) DO UPDATE SET created_at=excluded.created_at", (now,))
        db.execute(
            "INSERT OR REPLACE INTO main.statcache(path, size, mtime_ns, ctime_ns, ino, dev, digest, recorded_ns) "
            "SELECT path, size, mtime_ns, ctime_ns, ino, dev, digest, recorded_ns FROM staged.statcache ORDER BY rowid")
        db.execute("UPDATE main.files SET created_at=? WHERE digest IN (SELECT digest FROM staged.reused) "
                   "AND created_at < ?", (now, now - TOUCH_FRESH_SECONDS))

    def touch_files(self, digests: Iterable[bytes]) -> None:
        """Reset created_at of files (see commit_session), in one transaction."""
        now = time.time()
        with self._lock, _write_transaction(self._db, self.path):
            self._touch(now, digests)

    def _touch(self, now: float, digests: Iterable[bytes]) -> None:
        """Inside the caller's transaction: one UPDATE per 900 files, not one per file.
        A file touched in the last minute is left as it is (no page to rewrite: re-logging
        an unchanged 20,000-file folder right after logging it writes nothing here)."""
        items = list(digests)
        for i in range(0, len(items), _BATCH):
            batch = items[i : i + _BATCH]
            self._db.execute(f"UPDATE files SET created_at=? WHERE digest IN ({','.join('?' * len(batch))}) "
                             "AND created_at < ?", [now, *batch, now - TOUCH_FRESH_SECONDS])

    @contextmanager
    def snapshot(self) -> Iterator[IndexSnapshot]:
        """A connection of its own inside one read transaction: every query sees the same
        commit, whatever writers commit meanwhile (WAL), so a check that reads several
        tables (fsck) never sees a file whose chunks arrived after it read the chunks."""
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM packs").fetchone()  # the snapshot starts here
            yield IndexSnapshot(conn)
        finally:
            conn.close()  # ends the read transaction

    # --- maintenance: gc (maintenance.py), fsck and repair (integrity.py), usage ----
    def all_files(self) -> list[tuple[bytes, int, int, bytes | None, float]]:
        """(digest, size, chunk_count, recipe, created_at) of every file."""
        return self._all("SELECT digest, size, chunk_count, recipe, created_at FROM files")

    def all_chunks(self) -> list[tuple[bytes, str, int, int]]:
        """(digest, pack id, stored_len, raw_len) of every chunk."""
        return self._all("SELECT digest, pack_id, stored_len, raw_len FROM chunks")

    def all_packs(self) -> list[tuple[str, int, int, float]]:
        """(id, size, entry_count, created_at) of every indexed pack."""
        return self._all("SELECT id, size, entry_count, created_at FROM packs")

    def chunks_of_packs(self, pack_ids: Iterable[str]) -> list[tuple[bytes, str, int, int]]:
        """(digest, pack id, stored_len, raw_len) of every chunk the index lists in these packs."""
        ids = sorted(set(pack_ids))
        out: list[tuple[bytes, str, int, int]] = []
        for i in range(0, len(ids), _BATCH):
            batch = ids[i : i + _BATCH]
            out += self._all("SELECT digest, pack_id, stored_len, raw_len FROM chunks "
                             f"WHERE pack_id IN ({','.join('?' * len(batch))})", batch)
        return out

    def pack_chunk_locations(self, pack_id: str) -> list[ChunkLocation]:
        """Every chunk the index places in one pack."""
        return [ChunkLocation(*r) for r in self._all(
            "SELECT digest, pack_id, offset, stored_len, raw_len, codec FROM chunks WHERE pack_id=?", (pack_id,))]

    def recipes(self, digests: Iterable[bytes]) -> dict[bytes, list[bytes]]:
        """The chunk list of each known file among `digests` (unknown ones left out)."""
        return {d: recipe_chunks(d, n, r) for d, (_, n, r) in self.file_rows(list(digests)).items()}

    def chunk_rows(self, digests: Iterable[bytes]) -> Iterator[tuple[bytes, str, int, int]]:
        """(digest, pack id, stored_len, raw_len) of each indexed chunk among `digests`,
        streamed a batch at a time (accounting sums them without keeping them). A batch
        is one blob walked by SQLite (`_EACH_DIGEST`), not an IN list of parameters: a
        pull's receiver asks this for every page (21 pages of 1,024: 0.035 -> 0.03 s)."""
        items = list(dict.fromkeys(digests))
        db = self._reader()
        for i in range(0, len(items), _BATCH):
            batch = items[i : i + _BATCH]
            yield from db.execute(_EACH_DIGEST + "SELECT c.digest, c.pack_id, c.stored_len, c.raw_len "
                                  f"FROM r CROSS JOIN chunks c ON c.digest = {_SLICE}",
                                  (len(batch), b"".join(batch))).fetchall()

    def pack_holdings(self, joined: bytes) -> dict[str, tuple[int, int, int]]:
        """Per indexed pack holding some of the digests of `joined` (joined_digests; each
        once): (the pack's file size, how many of them it holds, their stored bytes), in
        the order of the first digest each holds (a transfer fetches the packs its first
        files need first). A transfer weighs whole packs by these: one grouped query
        returns a row a pack, not a row a chunk (each row a GIL handoff of the calling
        thread, which the download threads keep busy), and binds one blob, not a
        parameter a chunk."""
        count = len(joined) // DIGEST_LEN
        if count == 0:
            return {}
        rows = self._reader().execute(
            _EACH_DIGEST + "SELECT c.pack_id, coalesce(p.size, 0), count(*), sum(c.stored_len) "
            f"FROM r CROSS JOIN chunks c ON c.digest = {_SLICE} LEFT JOIN packs p ON p.id = c.pack_id "
            "GROUP BY c.pack_id ORDER BY min(i)", (count, joined)).fetchall()
        return {pack_id: (size, n, stored) for pack_id, size, n, stored in rows}

    def pack_totals(self, pack_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
        """Per pack: (file size, chunks the index places in it), for these packs only."""
        ids = sorted(set(pack_ids))
        out: dict[str, tuple[int, int]] = {}
        db = self._reader()
        for i in range(0, len(ids), _BATCH):
            batch = ids[i : i + _BATCH]
            marks = ",".join("?" * len(batch))
            sizes = dict(db.execute(f"SELECT id, size FROM packs WHERE id IN ({marks})", batch).fetchall())
            for pid, n in db.execute(f"SELECT pack_id, count(*) FROM chunks WHERE pack_id IN ({marks}) "
                                     "GROUP BY pack_id", batch):
                out[pid] = (sizes.get(pid, 0), n)
        return out

    def chunked_files_holding(self, chunks: set[bytes]) -> set[bytes]:
        """The files made of several chunks (the files_chunked index) holding any of
        `chunks`, their recipes read a row at a time (none kept)."""
        found: set[bytes] = set()
        with self._lock:
            for d, n, recipe in self._db.execute(
                    "SELECT digest, chunk_count, recipe FROM files WHERE recipe IS NOT NULL"):
                if any(c in chunks for c in recipe_chunks(d, n, recipe)):
                    found.add(d)
        return found

    def files_sharing(self, chunks: set[bytes]) -> dict[bytes, list[bytes]]:
        """Files holding any of `chunks`: file digest -> those of its chunks that are in
        `chunks`. Scans the recipes of chunked files (their own index, files_chunked); a
        one-chunk file is named by its chunk."""
        out: dict[bytes, list[bytes]] = {}
        for d, n, recipe in self._all("SELECT digest, chunk_count, recipe FROM files WHERE recipe IS NOT NULL"):
            common = [c for c in recipe_chunks(d, n, recipe) if c in chunks]
            if common:
                out[d] = common
        for c in self.known_files(chunks):
            out.setdefault(c, [c])
        return out

    def retired_packs(self) -> dict[str, float]:
        """Packs gc dropped from the index and keeps on disk a while for readers."""
        return dict(self._all("SELECT id, retired_at FROM retired_packs"))

    def lost_files(self) -> dict[bytes, int]:
        """Files an earlier repair recorded as lost and nobody stored again since."""
        return dict(self._all("SELECT digest, size FROM lost_files WHERE digest NOT IN (SELECT digest FROM files)"))

    def apply_gc(self, new_packs: list[tuple[str, int, int]], moves: list[tuple[bytes, str, int, int]],
                 dead_files: list[bytes], dead_chunks: list[bytes], gone: set[str], now: float) -> None:
        """gc's one transaction: new packs and chunk locations in, dead rows out, the
        packs given up marked retired. CorruptionError (nothing changed) if a pack given
        up still holds a chunk."""
        with self._transaction() as db:
            db.executemany("INSERT INTO packs(id, size, entry_count, created_at) VALUES (?,?,?,?)",
                           [(p, s, n, now) for p, s, n in new_packs])
            db.executemany("UPDATE chunks SET pack_id=?, offset=? WHERE digest=? AND stored_len=?",
                           [(p, o, d, s) for d, p, o, s in moves])
            db.executemany("DELETE FROM files WHERE digest=?", [(d,) for d in dead_files])
            db.executemany("DELETE FROM statcache WHERE digest=?", [(d,) for d in dead_files])
            db.executemany("DELETE FROM chunks WHERE digest=?", [(d,) for d in dead_chunks])
            for pid in gone:
                left = db.execute("SELECT count(*) FROM chunks WHERE pack_id=?", (pid,)).fetchone()[0]
                if left:
                    raise CorruptionError(f"gc: pack {pid} still holds {left} live chunk(s); nothing was changed")
                db.execute("DELETE FROM packs WHERE id=?", (pid,))
            db.executemany("INSERT OR REPLACE INTO retired_packs(id, retired_at) VALUES (?,?)",
                           [(pid, now) for pid in gone])

    def forget_retired(self, pack_ids: Iterable[str]) -> None:
        """The retired packs' files are deleted: drop their records."""
        with self._transaction() as db:
            db.executemany("DELETE FROM retired_packs WHERE id=?", [(pid,) for pid in pack_ids])

    def forget_lost(self, keep: set[bytes]) -> None:
        """Drop lost-file records no version refers to any more (gc)."""
        rows = [d for (d,) in self._all("SELECT digest FROM lost_files") if d not in keep]
        if rows:
            with self._transaction() as db:
                db.executemany("DELETE FROM lost_files WHERE digest=?", [(d,) for d in rows])

    def replace_chunk_tables(self, packs: list[tuple[str, int, int, float]],
                             chunks: list[tuple[bytes, str, int, int, int, int]]) -> None:
        """Rebuild from the packs: the packs and chunks tables become exactly these rows."""
        with self._transaction() as db:
            db.execute("DELETE FROM chunks")
            db.execute("DELETE FROM packs")
            db.executemany("INSERT INTO packs(id, size, entry_count, created_at) VALUES (?,?,?,?)", packs)
            db.executemany("INSERT INTO chunks(digest, pack_id, offset, stored_len, raw_len, codec) "
                           "VALUES (?,?,?,?,?,?)", chunks)

    def add_whole_files(self, files: list[tuple[bytes, int]]) -> None:
        """Rows of one-chunk files (digest, size) rebuilt from the packs (repair)."""
        now = time.time()
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO files(digest, size, chunk_count, recipe, created_at) "
                           "VALUES (?,?,1,NULL,?)", [(d, n, now) for d, n in files])

    def record_lost(self, lost: list[tuple[bytes, int]], drop_rows: bool) -> None:
        """Record files as lost (repair); with `drop_rows`, delete their rows (and
        stat-cache rows) in the same transaction, so the next log of the same data
        stores the bytes again. A lost file stored again since is no longer lost."""
        now = time.time()
        with self._transaction() as db:
            if drop_rows:
                db.executemany("DELETE FROM files WHERE digest=?", [(d,) for d, _ in lost])
                db.executemany("DELETE FROM statcache WHERE digest=?", [(d,) for d, _ in lost])
            db.executemany(f"INSERT OR {'REPLACE' if drop_rows else 'IGNORE'} INTO lost_files(digest, size, lost_at) "
                           "VALUES (?,?,?)", [(d, n, now) for d, n in lost])
            db.execute("DELETE FROM lost_files WHERE digest IN (SELECT digest FROM files)")

    # --- an index shared through objects (s3_index.py): this file is their cache ------
    def shared_index_names(self) -> set[str]:
        """Names of the shared index objects merged into this index."""
        return {name for (name,) in self._all("SELECT name FROM shared_indexes")}

    def merge_shared_indexes(self, names: list[str], states: list[SharedState]) -> None:
        """Merge shared index objects' rows (`merge_united` of their `UnitedRows`)."""
        self.merge_united(names, UnitedRows.of(states))

    def merge_united(self, names: list[str], united: UnitedRows) -> None:
        """Merge the united rows of shared index objects in one transaction (a half-merged
        cache is never trusted: their names are recorded in the same one). Rows already
        here stay (the first copy of a chunk wins, like commit_session); a file's
        created_at becomes the latest of all (gc's grace counts from the last write or
        reuse). Each table is inserted in key order (its b-tree appended to, not split
        at random pages)."""
        chunks, files, states = united.chunks, united.files, united.states
        with self._transaction() as db:
            # Into an empty index, the secondary indexes are built once at the end (a sort),
            # not kept up to date row by row; in the same transaction, so no reader sees
            # the tables without them.
            rebuild = len(chunks) + len(files) >= REBUILD_ROWS and not db.execute(
                "SELECT EXISTS(SELECT 1 FROM chunks) OR EXISTS(SELECT 1 FROM files)").fetchone()[0]
            if rebuild:
                for name in _SECONDARY_INDEXES:
                    db.execute(f"DROP INDEX IF EXISTS {name}")
            # many rows a statement (sqlite_rows.py): 21,000 rows each of chunks and files
            # merged in ~0.05 s less than by executemany
            insert_values(db, "INSERT OR IGNORE INTO packs(id, size, entry_count, created_at)",
                          [row for state in states for row in state.packs], 4)
            insert_values(db, "INSERT OR IGNORE INTO chunks(digest, pack_id, offset, stored_len, raw_len, codec)",
                          sorted(chunks.values()), 6)
            insert_values(db, "INSERT INTO files(digest, size, chunk_count, recipe, created_at)",
                          sorted(files.values()), 5,
                          " ON CONFLICT(digest) DO UPDATE SET created_at=max(created_at, excluded.created_at)")
            for state in states:
                db.executemany("UPDATE files SET created_at=max(created_at, ?) WHERE digest=?",
                               [(at, d) for d, at in state.touched])
                db.executemany("INSERT OR IGNORE INTO lost_files(digest, size, lost_at) VALUES (?,?,?)", state.lost)
                db.executemany("INSERT OR IGNORE INTO retired_packs(id, retired_at) VALUES (?,?)", state.retired)
            db.executemany("INSERT OR IGNORE INTO shared_indexes(name) VALUES (?)", [(n,) for n in names])
            if rebuild:
                for statement in _SECONDARY_INDEXES.values():
                    db.execute(statement)

    def mark_shared_index(self, name: str, replaced: Iterable[str] = ()) -> None:
        """Record a shared index object whose rows this index already holds (its writer's,
        or a gc's that holds the whole index), dropping the names it `replaced`."""
        with self._transaction() as db:
            db.executemany("DELETE FROM shared_indexes WHERE name=?", [(n,) for n in replaced])
            db.execute("INSERT OR IGNORE INTO shared_indexes(name) VALUES (?)", (name,))

    def forget_shared_state(self) -> None:
        """Empty every table the shared objects fill (not the stat cache, which is this
        machine's own), so they can be merged again from scratch: after a gc or repair
        replaced some of them by one object holding the whole index."""
        with self._transaction() as db:
            for table in ("chunks", "packs", "files", "lost_files", "retired_packs", "shared_indexes"):
                db.execute(f"DELETE FROM {table}")

    def shared_state(self) -> SharedState:
        """Every row a shared index object holds, from one read transaction."""
        with self._lock:
            db = self._db
            db.execute("BEGIN")
            try:
                return SharedState(
                    packs=db.execute("SELECT id, size, entry_count, created_at FROM packs").fetchall(),
                    # a pack's chunks together: an index object names each pack once a block
                    chunks=db.execute("SELECT digest, pack_id, offset, stored_len, raw_len, codec FROM chunks "
                                      "ORDER BY pack_id").fetchall(),
                    files=db.execute("SELECT digest, size, chunk_count, recipe, created_at FROM files").fetchall(),
                    lost=db.execute("SELECT digest, size, lost_at FROM lost_files").fetchall(),
                    retired=db.execute("SELECT id, retired_at FROM retired_packs").fetchall(),
                )
            finally:
                db.execute("COMMIT")

    def synchronous_level(self) -> int:
        """PRAGMA synchronous of the write connection (2: FULL, 1: NORMAL)."""
        with self._lock:
            return int(self._db.execute("PRAGMA synchronous").fetchone()[0])

    def _all(self, sql: str, params: Iterable = ()) -> list:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error; see
        `_write_transaction`) on the index's connection."""
        with self._lock, _write_transaction(self._db, self.path):
            yield self._db


@contextmanager
def _write_transaction(db: sqlite3.Connection, path: Path) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error.

    SQLite rolls a transaction back by itself after some errors, a full disk among them:
    ROLLBACK is sent only if one is still open (a second one failed with "cannot
    rollback" and hid the real error). A full disk, found by the COMMIT or by a statement
    before it, is raised as the OSError it is (ENOSPC, naming index.db), so the SDK lets
    it through as the operating system's refusal and the CLI prints one line (exit 9);
    nothing of the transaction is kept."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException as e:
        if db.in_transaction:
            db.execute("ROLLBACK")
        if is_disk_full(e):
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: the store index could not record the "
                          "change, nothing of it was kept", str(path)) from None
        raise


class IndexSnapshot:
    """Reads of one index snapshot (StoreIndex.snapshot): fsck's view."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def pack_ids(self) -> set[str]:
        return {pid for (pid,) in self._conn.execute("SELECT id FROM packs")}

    def chunk_locations(self) -> list[ChunkLocation]:
        return [ChunkLocation(*r) for r in self._conn.execute(
            "SELECT digest, pack_id, offset, stored_len, raw_len, codec FROM chunks")]

    def file_recipes(self) -> list[tuple[bytes, list[bytes]]]:
        return [(d, recipe_chunks(d, n, r)) for d, n, r in self._conn.execute(
            "SELECT digest, chunk_count, recipe FROM files")]

    def lost_files(self) -> list[bytes]:
        return [d for (d,) in self._conn.execute(
            "SELECT digest FROM lost_files WHERE digest NOT IN (SELECT digest FROM files)")]


def recipe_chunks(digest: bytes, count: int, recipe: bytes | None) -> list[bytes]:
    """A file's chunk digests from its row: NULL recipe means one chunk, the file itself."""
    if recipe is None:
        return [digest]
    return [recipe[i : i + DIGEST_LEN] for i in range(0, count * DIGEST_LEN, DIGEST_LEN)]
