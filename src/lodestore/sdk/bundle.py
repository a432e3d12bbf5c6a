"""Bundles: versions in one self-contained file for air-gapped transfer (`lode export`,
`lode import`; the door's `export_bundle` and `import_bundle`).

Layout (version 1), written front to back by streaming (memory flat in the data's size)::

    b"LODEBNDL" u16 format                                    header
    record*:
      b"C" digest(32) codec(u8) raw_len(u32) stored_len(u32) stored-bytes    a chunk (zstd where it pays)
      b"R" digest(32) size(u64) count(u32) chunk-digest(32)*count          a file's recipe
    b"M" length(u64) zstd(JSON)        the catalog part: versions with their manifests and
                                       references, runs, lineage links (one, the last record)
    b"E" blake3-256(32)                the digest of every byte before this "E"
    b"LODEBEND"                        and nothing after it

A bundle is a source like any store (`BundleSource`, a `TransferSource`): import is
`transfer.copy_versions` from it, and export writes through `transfer.move_files`, so
push, pull, export and import follow one set of rules. Import reads the whole file once
first: the trailing digest must match (a flipped byte, a truncated tail: CorruptionError,
nothing imported) while chunk and recipe positions go into a temp index (SQLite, on
disk: memory stays flat); then the copy reads chunks from their positions, and the
destination verifies each chunk and file before its one session commits.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import blake3
import zstandard

from lodestore.catalog.records import ManifestEntry, ReferenceEntry, RunRecord, VersionRecord
from lodestore.errors import CorruptionError, InvalidInputError, NotFoundError
from lodestore.names import temp_name
from lodestore.sdk import ui
from lodestore.sdk.transfer import (
    ChunkSink,
    Lineage,
    RepositorySource,
    RunLink,
    TransferResult,
    TransferSource,
    VersionKey,
    copy_versions,
    move_files,
)
from lodestore.store.base import ChunkFrame, FileRecipe

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository

MAGIC = b"LODEBNDL"
END_MAGIC = b"LODEBEND"
FORMAT = 1
HEADER = struct.Struct("<8sH")
CHUNK = struct.Struct("<32sBII")
RECIPE = struct.Struct("<32sQI")
LENGTH = struct.Struct("<Q")
DIGEST_LEN = 32
TRAILER_LEN = 1 + DIGEST_LEN + len(END_MAGIC)
MAX_CHUNK = 64 * 1024 * 1024  # as a store refuses (store/session.py MAX_RECEIVED_CHUNK)
_READ = 1024 * 1024
_BATCH = 900


@dataclass(frozen=True)
class BundleResult:
    """What an export wrote."""

    path: str
    versions: list[str]
    files: int
    chunks: int
    chunk_bytes: int  # raw bytes of the chunks in the bundle
    bundle_bytes: int  # the file's size
    runs: int


# ----------------------------------------------------------------------------- export
def export_bundle(repo: Repository, versions: list[VersionRecord], path: Path) -> BundleResult:
    """Write `versions` (their files, manifests, metadata, runs and lineage) to `path`:
    a temp file beside it, renamed onto it once complete and fsynced."""
    source = RepositorySource(repo, versions)
    path = Path(path)
    if path.is_dir():
        raise InvalidInputError(f"{path} is a folder; name the bundle file to write (e.g. {path / 'export.lode'})")
    tmp = path.parent / temp_name()
    files = chunks = chunk_bytes = 0
    try:
        with open(tmp, "wb") as raw_out:
            out = _HashingWriter(raw_out)
            out.write(HEADER.pack(MAGIC, FORMAT))
            sink = _BundleSink(out)
            catalog_part = []
            total = sum(v.size for v in versions) if ui.interactive() else 0
            with ui.byte_progress(f"export {len(versions)} version(s)", total) as advance:
                for v in versions:
                    entries = source.entries(v)
                    moved = move_files(source, sink, entries, v.qualified_name, progress=advance)
                    files += moved.files
                    chunks += moved.chunks
                    chunk_bytes += moved.chunk_bytes
                    catalog_part.append(_version_json(v, entries, source.references(v)))
            lineage = source.lineage(versions)
            manifest = {"format": FORMAT, "versions": catalog_part,
                        "runs": [_run_json(r) for r in lineage.runs.values()],
                        "links": [[link.run_id, link.kind, link.version.project, link.version.name,
                                   link.version.digest] for link in lineage.links]}
            packed = zstandard.ZstdCompressor(level=3).compress(json.dumps(manifest).encode())
            out.write(b"M" + LENGTH.pack(len(packed)) + packed)
            out.write(b"E")
            raw_out.write(out.digest() + END_MAGIC)
            raw_out.flush()
            os.fsync(raw_out.fileno())
            size = raw_out.tell()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BundleResult(str(path), [v.qualified_name for v in versions], files, chunks, chunk_bytes, size,
                        len(lineage.runs))


class _HashingWriter:
    def __init__(self, f: BinaryIO):
        self.f = f
        self.hasher = blake3.blake3()

    def write(self, data: bytes | memoryview) -> None:
        self.hasher.update(data)
        self.f.write(data)

    def digest(self) -> bytes:
        return self.hasher.digest()


class _BundleSink(ChunkSink):
    """A bundle being written, as the place a copy sends files to: it holds what it wrote."""

    def __init__(self, out: _HashingWriter):
        self.out = out
        self.written: set[str] = set()  # chunks
        self.files: set[str] = set()

    def missing(self, digests: Iterable[str]) -> set[str]:
        return {d for d in digests if d not in self.files}

    def missing_chunks(self, chunk_digests: Iterable[str]) -> set[str]:
        return {c for c in chunk_digests if c not in self.written}

    def add_frames(self, frames: list[ChunkFrame]) -> None:
        """Each frame verified (the store read it unchecked), then written as it is."""
        for frame in frames:
            digest = frame.digest.hex()
            if digest in self.written:
                continue
            frame.raw()
            self.out.write(b"C" + CHUNK.pack(frame.digest, frame.codec, frame.raw_len, len(frame.stored)))
            self.out.write(frame.stored)
            self.written.add(digest)

    def add_recipes(self, recipes: list[FileRecipe]) -> None:
        for r in recipes:
            if r.digest in self.files:
                continue
            self.out.write(b"R" + RECIPE.pack(bytes.fromhex(r.digest), r.size, len(r.chunks)))
            self.out.write(b"".join(bytes.fromhex(c) for c in r.chunks))
            self.files.add(r.digest)


def _version_json(v: VersionRecord, entries: list[ManifestEntry], refs: list[ReferenceEntry]) -> dict[str, Any]:
    return {"project": v.project, "name": v.name, "type": v.type, "index": v.index, "digest": v.digest,
            "description": v.description, "metadata": v.metadata, "tags": list(v.tags), "aliases": list(v.aliases),
            "created_at": v.created_at.isoformat(), "created_by_run": v.created_by_run,
            "ttl_seconds": v.ttl_seconds,
            "entries": [[e.path, e.digest, e.size] for e in entries], "references": [asdict(r) for r in refs]}


def _run_json(r: RunRecord) -> dict[str, Any]:
    d = asdict(r)
    for k in ("created_at", "finished_at", "heartbeat_at"):
        d[k] = None if d[k] is None else d[k].isoformat()
    d["tags"] = list(r.tags)
    return d


# ----------------------------------------------------------------------------- import
def import_bundle(repo: Repository, path: Path, dry_run: bool = False) -> TransferResult:
    """Check the whole bundle, then copy its versions into `repo` (one store session per
    version: nothing of a version is visible before every chunk and file of it verified)."""
    calls: Counter = Counter()
    source = BundleSource(Path(path))
    try:
        return copy_versions(source, repo, dry_run=dry_run, commit_bytes=None, label="import", calls=calls)
    finally:
        source.close()


class BundleSource(TransferSource):
    """A bundle file, checked whole when opened (see the module docstring)."""

    def __init__(self, path: Path):
        self.path = path
        self.location = str(path)
        if not path.exists():
            raise NotFoundError(f"no bundle at {path}")
        if path.is_dir():
            raise InvalidInputError(f"{path} is a folder, not a bundle file")
        # Where each chunk and recipe lies in THIS FILE (the bundle format's own table of
        # contents, not a content store's index: a bundle is read by position, whatever
        # store it is imported into): a temp database on disk, deleted when closed, so a
        # bundle of millions of chunks keeps memory flat. read_frames runs on the copy's
        # read-ahead thread, so every use of the connection holds the lock.
        self._index = sqlite3.connect("", check_same_thread=False)
        self._lock = threading.Lock()
        self._index.execute("CREATE TABLE bundle_chunks (digest BLOB PRIMARY KEY, pos INTEGER, codec INTEGER, "
                            "raw_len INTEGER, stored_len INTEGER) WITHOUT ROWID")
        self._index.execute("CREATE TABLE bundle_recipes (digest BLOB PRIMARY KEY, size INTEGER, chunks BLOB) "
                            "WITHOUT ROWID")
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close())
        try:
            manifest = self._check()
            self._load(manifest)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._file.close()
        self._index.close()

    def _corrupt(self, why: str) -> CorruptionError:
        return CorruptionError(f"the bundle {self.path} {why}; nothing was imported")

    def _check(self) -> dict[str, Any]:
        """One pass over the file: hash every byte, index every record, and hold the
        catalog part; CorruptionError unless the trailing digest matches."""
        size = os.fstat(self._file.fileno()).st_size
        reader = _Reader(self._file, size, self)
        if self._file.read(len(MAGIC)) != MAGIC:
            raise self._corrupt("is not a lodestore bundle (it does not start as one)")
        self._file.seek(0)
        if size < HEADER.size + TRAILER_LEN:
            raise self._corrupt(f"is truncated ({size} bytes)")
        _, fmt = HEADER.unpack(reader.take(HEADER.size))
        if fmt != FORMAT:
            raise self._corrupt(f"has format {fmt}; this lodestore reads format {FORMAT}")
        packed: bytes | None = None
        rows: list[tuple] = []
        while True:
            tag = reader.take(1)
            if tag == b"C":
                digest, codec_id, raw_len, stored_len = CHUNK.unpack(reader.take(CHUNK.size))
                if stored_len > MAX_CHUNK or raw_len > MAX_CHUNK:
                    raise self._corrupt("holds a chunk record of an impossible size")
                rows.append((digest, reader.pos, codec_id, raw_len, stored_len))
                reader.skip(stored_len)
                if len(rows) >= _BATCH:
                    self._index.executemany("INSERT OR IGNORE INTO bundle_chunks VALUES (?,?,?,?,?)", rows)
                    rows = []
            elif tag == b"R":
                digest, file_size, count = RECIPE.unpack(reader.take(RECIPE.size))
                if count * DIGEST_LEN > size:
                    raise self._corrupt("holds a recipe of an impossible length")
                self._index.execute("INSERT OR IGNORE INTO bundle_recipes VALUES (?,?,?)",
                                    (digest, file_size, reader.take(count * DIGEST_LEN)))
            elif tag == b"M":
                (length,) = LENGTH.unpack(reader.take(LENGTH.size))
                if length > size:
                    raise self._corrupt("holds a catalog part of an impossible length")
                packed = reader.take(length)
            elif tag == b"E":
                break
            else:
                raise self._corrupt(f"holds an unknown record at byte {reader.pos - 1}")
        self._index.executemany("INSERT OR IGNORE INTO bundle_chunks VALUES (?,?,?,?,?)", rows)
        expected = reader.hasher.digest()
        digest, end = self._file.read(DIGEST_LEN), self._file.read(len(END_MAGIC) + 1)
        if len(digest) < DIGEST_LEN or end[: len(END_MAGIC)] != END_MAGIC:
            raise self._corrupt("is truncated (its trailing digest is missing)")
        if len(end) > len(END_MAGIC):
            raise self._corrupt("has bytes after its end")
        if digest != expected:
            raise self._corrupt("is corrupted: its bytes do not match its trailing digest")
        if packed is None:
            raise self._corrupt("has no catalog part")
        try:
            return json.loads(zstandard.ZstdDecompressor().decompress(packed, max_output_size=1 << 34))
        except (zstandard.ZstdError, ValueError) as e:
            raise self._corrupt(f"has an unreadable catalog part ({e})") from None

    def _load(self, manifest: dict[str, Any]) -> None:
        """The catalog part as records (malformed fields: CorruptionError, not a traceback)."""
        try:
            self._versions = []
            self._entries: dict[int, list[ManifestEntry]] = {}
            self._references: dict[int, list[ReferenceEntry]] = {}
            for i, d in enumerate(manifest["versions"]):
                self._versions.append(VersionRecord(
                    id=i, artifact_id=0, project=d["project"], name=d["name"], type=d["type"], index=d["index"],
                    digest=d["digest"], size=sum(e[2] for e in d["entries"]), file_count=len(d["entries"]),
                    description=d["description"], metadata=d["metadata"], tags=tuple(d["tags"]),
                    aliases=tuple(d["aliases"]), created_at=datetime.fromisoformat(d["created_at"]),
                    created_by_run=d["created_by_run"], ttl_seconds=d["ttl_seconds"]))
                self._entries[i] = [ManifestEntry(p, dg, s) for p, dg, s in d["entries"]]
                self._references[i] = [ReferenceEntry(**r) for r in d["references"]]
            runs = {}
            for r in manifest["runs"]:
                for k in ("created_at", "finished_at", "heartbeat_at"):
                    r[k] = None if r[k] is None else datetime.fromisoformat(r[k])
                r["tags"] = tuple(r["tags"])
                runs[r["id"]] = RunRecord(**r)
            links = [RunLink(run_id, kind, VersionKey(p, n, dg)) for run_id, kind, p, n, dg in manifest["links"]]
            self._lineage = Lineage(runs, links)
        except (KeyError, TypeError, ValueError) as e:
            raise self._corrupt(f"has a malformed catalog part ({type(e).__name__}: {e})") from None

    # --- TransferSource ----------------------------------------------------------------
    def versions(self) -> list[VersionRecord]:
        return self._versions

    def entries(self, version: VersionRecord) -> list[ManifestEntry]:
        return self._entries[version.id]

    def references(self, version: VersionRecord) -> list[ReferenceEntry]:
        return self._references[version.id]

    def lineage(self, versions: list[VersionRecord]) -> Lineage:
        return self._lineage

    def recipes(self, digests: Iterable[str]) -> dict[str, FileRecipe]:
        items = list(digests)
        out = {}
        for start in range(0, len(items), _BATCH):
            batch = items[start : start + _BATCH]
            for raw, size, chunks in self._rows("SELECT digest, size, chunks FROM bundle_recipes", batch):
                out[raw.hex()] = FileRecipe(raw.hex(), size, tuple(chunks[i : i + DIGEST_LEN].hex()
                                                                   for i in range(0, len(chunks), DIGEST_LEN)))
        return out

    def read_frames(self, chunk_digests: Iterable[str]) -> Iterator[ChunkFrame]:
        """A batch at a time, in bundle order, as the bundle holds them (the receiving
        store verifies each; the bundle's own digest was checked when it was opened)."""
        wanted = list(dict.fromkeys(chunk_digests))
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            rows = self._rows("SELECT digest, pos, codec, raw_len, stored_len FROM bundle_chunks", batch)
            if len(rows) != len(batch):
                found = {r[0].hex() for r in rows}
                raise self._corrupt(f"lacks chunk {next(c for c in batch if c not in found)[:16]}... a recipe names")
            for raw, pos, codec_id, raw_len, stored_len in sorted(rows, key=lambda r: r[1]):
                stored = os.pread(self._file.fileno(), stored_len, pos)
                if len(stored) != stored_len:
                    raise self._corrupt("is truncated")
                yield ChunkFrame(raw, codec_id, raw_len, stored)

    def _rows(self, select: str, digests: list[str]) -> list[tuple]:
        with self._lock:
            return self._index.execute(f"{select} WHERE digest IN ({','.join('?' * len(digests))})",
                                       [bytes.fromhex(d) for d in digests]).fetchall()


class _Reader:
    """Sequential reads of the bundle that hash every byte taken; a read past the end
    is a truncated bundle."""

    def __init__(self, f: BinaryIO, size: int, source: BundleSource):
        self.f, self.size, self.source = f, size, source
        self.pos = 0
        self.hasher = blake3.blake3()
        self.limit = size - TRAILER_LEN + 1  # the "E" tag is hashed, the digest and end magic are not

    def take(self, n: int) -> bytes:
        if self.pos + n > self.limit:
            raise self.source._corrupt(f"is truncated or damaged (a record runs past byte {self.size - TRAILER_LEN}, "
                                       "where its trailing digest starts)")
        data = self.f.read(n)
        if len(data) != n:
            raise self.source._corrupt("is truncated")
        self.hasher.update(data)
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        """Hash `n` bytes without keeping them (a chunk's stored bytes)."""
        while n:
            piece = self.take(min(n, _READ))
            n -= len(piece)
