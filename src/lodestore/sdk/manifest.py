"""Building a manifest from local files, and its digest."""

from __future__ import annotations

import bisect
import marshal
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO

import blake3

from lodestore.catalog.records import ManifestEntry

# Entries a log keeps in memory before ManifestBuffer moves them to a temp file: 32,768
# entries are ~3 MB; a log of 1,000,000 files held ~100 MB of them until its commit.
SPILL_ENTRIES = 32_768


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
        self.add_rows([(e.path, e.digest, e.size) for e in entries])

    def add_rows(self, rows: list[tuple[str, str, int]]) -> None:
        """add() of (path, digest, size) rows: a batch of lines is hashed as one buffer
        (one update, not one per file) up to the next line of `others` it must let in."""
        others, start = self._others, 0
        while self._next < len(others) and start < len(rows):
            first_other = others[self._next].path
            end = bisect.bisect_left(rows, first_other, lo=start, key=itemgetter(0))
            self._lines(rows[start:end])
            start = end
            if end < len(rows):
                self._line(others[self._next])
                self._next += 1
        self._lines(rows[start:])

    def _lines(self, rows: list[tuple[str, str, int]]) -> None:
        if rows:
            self._hash.update("".join([f"{p}\x00{d}\x00{n}\n" for p, d, n in rows]).encode())

    def hexdigest(self) -> str:
        for e in self._others[self._next :]:
            self._line(e)
        self._next = len(self._others)
        return self._hash.hexdigest()


class ManifestBuffer:
    """A log's manifest entries, appended in path order as their files are stored: in
    memory while few, then in pages written to a file of a temp folder (marshal, one page
    per SPILL_ENTRIES: a sequential append, cheaper than any index), so what a log holds
    does not grow with its number of files. Sized, and iterable again and again in the
    order appended (path order), which is what the catalog's commit reads. `close()`
    removes the file (also done when the buffer is dropped)."""

    def __init__(self) -> None:
        self._rows: list[tuple[str, str, int]] = []  # not spilled yet
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._spilled = 0
        self._drop: weakref.finalize | None = None

    def extend(self, entries: Iterable[ManifestEntry]) -> None:
        self.extend_rows([(e.path, e.digest, e.size) for e in entries])

    def extend_rows(self, rows: list[tuple[str, str, int]]) -> None:
        """extend() of (path, digest, size) rows, in path order."""
        self._rows.extend(rows)
        if len(self._rows) >= SPILL_ENTRIES:
            self._spill()

    def _spill(self) -> None:
        if self._file is None:
            folder = Path(tempfile.mkdtemp(prefix="lodestore-manifest-"))
            self._path = folder / "entries.pages"
            self._file = open(self._path, "wb")  # noqa: SIM115  (closed by close() or the finalizer)
            self._drop = weakref.finalize(self, _drop, self._file, folder)
        page = marshal.dumps(self._rows)
        self._file.write(len(page).to_bytes(8, "little") + page)
        self._spilled += len(self._rows)
        self._rows = []

    def __len__(self) -> int:
        return self._spilled + len(self._rows)

    def __iter__(self) -> Iterator[ManifestEntry]:
        if self._file is not None and self._path is not None:
            self._file.flush()
            with open(self._path, "rb") as f:
                while head := f.read(8):
                    for row in marshal.loads(f.read(int.from_bytes(head, "little"))):
                        yield ManifestEntry(*row)
        for row in self._rows:  # appended after every spilled row: later in path order
            yield ManifestEntry(*row)

    def __contains__(self, entry: object) -> bool:
        return any(e == entry for e in self)

    def close(self) -> None:
        if self._drop is not None:
            self._drop()
        self._file, self._path, self._drop = None, None, None
        self._rows = []
        self._spilled = 0


def _drop(file: BinaryIO, folder: Path) -> None:
    file.close()
    shutil.rmtree(folder, ignore_errors=True)
