"""Building a manifest from local files, and its digest."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path

import blake3

from lodestore.catalog.base import ManifestEntry

# Entries a log keeps in memory before ManifestBuffer moves them to a temp file: 32,768
# entries are ~3 MB; a log of 1,000,000 files held ~100 MB of them until its commit.
SPILL_ENTRIES = 32_768
_READ_PAGE = 4096


def manifest_digest(entries: Iterable[ManifestEntry]) -> str:
    """BLAKE3 of the sorted (path, digest, size) lines: identical content, identical digest."""
    return sorted_manifest_digest(sorted(entries, key=lambda e: e.path))


def sorted_manifest_digest(entries: Iterable[ManifestEntry]) -> str:
    """manifest_digest of entries already in path order (read once, never held)."""
    h = blake3.blake3()
    for e in entries:
        h.update(f"{e.path}\x00{e.digest}\x00{e.size}\n".encode())
    return h.hexdigest()


class ManifestHasher:
    """manifest_digest fed as a log stores its files: batches of entries in path order,
    with `others` (the references' lines, any order) merged in where their paths fall, so
    the manifest is not read again to hash it."""

    def __init__(self, others: Iterable[ManifestEntry] = ()) -> None:
        self._hash = blake3.blake3()
        self._others = sorted(others, key=lambda e: e.path)
        self._next = 0  # the first line of `others` not hashed yet

    def _line(self, e: ManifestEntry) -> None:
        self._hash.update(f"{e.path}\x00{e.digest}\x00{e.size}\n".encode())

    def add(self, entries: Iterable[ManifestEntry]) -> None:
        others = self._others
        for e in entries:
            while self._next < len(others) and others[self._next].path < e.path:
                self._line(others[self._next])
                self._next += 1
            self._line(e)

    def hexdigest(self) -> str:
        for e in self._others[self._next :]:
            self._line(e)
        self._next = len(self._others)
        return self._hash.hexdigest()


class ManifestBuffer:
    """A log's manifest entries, appended in path order as their files are stored: in
    memory while few, in a SQLite file of a temp folder past SPILL_ENTRIES, so what a log
    holds does not grow with its number of files. Sized and iterable again and again in
    the order appended (path order), which is what the catalog's commit reads. `close()` removes the
    file (also done when the buffer is dropped)."""

    def __init__(self) -> None:
        self._rows: list[tuple[str, str, int]] = []  # not spilled yet
        self._db: sqlite3.Connection | None = None
        self._spilled = 0
        self._drop: weakref.finalize | None = None

    def extend(self, entries: Iterable[ManifestEntry]) -> None:
        self._rows.extend((e.path, e.digest, e.size) for e in entries)
        if len(self._rows) >= SPILL_ENTRIES:
            self._spill()

    def _spill(self) -> None:
        if self._db is None:
            folder = Path(tempfile.mkdtemp(prefix="lodestore-manifest-"))
            self._db = sqlite3.connect(folder / "manifest.db", isolation_level=None)
            self._drop = weakref.finalize(self, _drop, self._db, folder)
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            # appended in path order: rowid order is path order, no key to keep sorted
            self._db.execute("CREATE TABLE entries (path TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL)")
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO entries VALUES (?,?,?)", self._rows)
        self._db.execute("COMMIT")
        self._spilled += len(self._rows)
        self._rows = []

    def __len__(self) -> int:
        return self._spilled + len(self._rows)

    def __iter__(self) -> Iterator[ManifestEntry]:
        if self._db is not None:
            cursor = self._db.execute("SELECT path, digest, size FROM entries ORDER BY rowid")
            while page := cursor.fetchmany(_READ_PAGE):
                for row in page:
                    yield ManifestEntry(*row)
        for row in self._rows:  # appended after every spilled row: later in path order
            yield ManifestEntry(*row)

    def __contains__(self, entry: object) -> bool:
        return any(e == entry for e in self)

    def close(self) -> None:
        if self._drop is not None:
            self._drop()
        self._db = None
        self._rows = []
        self._spilled = 0


def _drop(db: sqlite3.Connection, folder: Path) -> None:
    db.close()
    shutil.rmtree(folder, ignore_errors=True)
