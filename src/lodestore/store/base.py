"""The content-store interface: files in, files out, addressed by content digest.

A file's digest is the BLAKE3-256 of its whole content (hex), so anyone can check a
downloaded file with `b3sum`. How a backend keeps the bytes (whole, chunked, packed,
compressed, local or remote) is its own business behind this interface.

Contract (tested for every backend by ``tests/store/contract.py``):
- Writes go through a `WriteSession`; nothing a session wrote is visible (`has()` is
  False) until `commit()` returns, and after it returns every byte is durable. Bytes a
  committed session stored are safe from gc until the session is closed (the with
  block's end); after that, only gc's grace period protects them until referenced.
- Objects are write-once: storing the same content twice stores it once.
- Every read is verified against the digest; corrupt bytes raise CorruptionError and
  are never written to a destination under its final name (or left beside it). The
  exceptions are a transfer's reads, `read_frames` and `copy_pack`: the receiver
  verifies every frame (`ChunkFrame.raw()`) and every record of a pack it adopts
  (`WriteSession.check_pack`), so each byte is checked once, at the receiving end.

Maintenance is part of the interface too, so every backend provides it and the SDK
never reaches behind it: gc (plan, then sweep, keeping the file digests the caller
says are live), fsck and repair, the record of lost files, usage of groups of files
(exclusive and shared bytes), disk usage, and the catalog binding. The store knows
nothing of versions: callers hand it file digests (and groups of them, keyed as they
like). The results are the dataclasses below.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import blake3

from lodestore.errors import CorruptionError
from lodestore.store import codec

ProgressCallback = Callable[[int], None]  # called with a number of bytes just processed
K = TypeVar("K", bound=Hashable)

# gc keeps unreferenced bytes younger than this (seconds): they may belong to a version
# being committed right now (store/maintenance.py explains the figure).
DEFAULT_GRACE_SECONDS = 600.0
DEFAULT_REPACK_THRESHOLD = 0.5  # repack a pack when more than this fraction of it is dead


@dataclass(frozen=True, slots=True)
class FileRef:
    """What the store returns for a stored file: its content digest and size."""

    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class FileRecipe:
    """How a stored file is made: its size and its chunks' digests (BLAKE3-256 of each
    chunk's raw bytes, hex) in order. A file of one chunk (every file up to the whole-file
    limit) has that one chunk, whose digest is the file's own."""

    digest: str
    size: int
    chunks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChunkFrame:
    """A chunk in its stored form, as it lies in its pack: what a transfer moves
    (`ContentStore.read_frames` -> `WriteSession.add_frames`), so the receiver stores
    the frame as is (no compression probe, no recompression). `digest` is the
    BLAKE3-256 of the raw bytes as 32 bytes (not hex: it goes straight into a pack
    record); `stored` is `raw_len` bytes encoded with `codec` (codec.py).

    The sender does not vouch for the frame: whoever receives it calls `raw()`, which
    decodes and checks it, so every byte is verified once, at the receiving end."""

    digest: bytes
    codec: int
    raw_len: int
    stored: bytes | memoryview  # a view into a range read from S3 (not copied)

    def raw(self) -> bytes | memoryview:
        """The raw bytes, checked: decoded to `raw_len` bytes whose BLAKE3 is `digest`
        (CorruptionError otherwise; a frame larger than MAX_FRAME is refused unread)."""
        if len(self.stored) > MAX_FRAME or self.raw_len > MAX_FRAME:
            name = self.digest.hex()[:16]
            raise CorruptionError(f"chunk {name}... received is larger than any chunk a store holds "
                                  f"({MAX_FRAME} bytes); refused")
        try:
            data = codec.decode(self.codec, self.stored, self.raw_len)
        except CorruptionError as e:
            name = self.digest.hex()[:16]
            raise CorruptionError(f"chunk {name}... received does not match its digest ({e}): refused, "
                                  "nothing of it was stored") from None
        if len(data) != self.raw_len or blake3.blake3(data).digest() != self.digest:
            name = self.digest.hex()[:16]
            raise CorruptionError(f"chunk {name}... received does not match its digest: refused, "
                                  "nothing of it was stored")
        return data

    @classmethod
    def of_raw(cls, digest: str, data: bytes) -> ChunkFrame:
        """A raw chunk (hex digest, bytes) as a frame of codec RAW."""
        return cls(bytes.fromhex(digest), codec.RAW, len(data), data)


@dataclass(frozen=True, slots=True)
class PackShare:
    """A stored pack holding chunks a transfer wants (`ContentStore.pack_shares`): where
    the receiver wants most of a pack, the pack moves whole (`ContentStore.copy_pack` ->
    `WriteSession.adopt_pack`: one download, one check loop, one bulk insert of its
    entries) instead of chunk by chunk."""

    pack_id: str
    size: int  # the pack's bytes
    wanted_chunks: int  # how many of the chunks asked for it holds
    wanted_bytes: int  # their stored bytes

    @property
    def wanted_fraction(self) -> float:
        return self.wanted_bytes / self.size if self.size else 0.0


@dataclass(frozen=True)
class FilePacks:
    """What a copy into a store holding nothing needs of the source before it reads a
    recipe (`ContentStore.file_packs`): the packs holding the files' chunks, and which
    of the files are made of several chunks (their recipes are asked: `recipes`) or not
    held at all. Every other file asked is one chunk, whose digest is the file's own."""

    shares: list[PackShare]
    chunked: list[str]  # hex digests of the files of several chunks among those asked
    absent: list[str]  # hex digests of the files asked the store does not hold


@dataclass(frozen=True)
class CheckedPack:
    """A pack received whole whose every record `WriteSession.check_pack` checked: what
    `adopt_pack` takes (the file at `path` is not to change until then)."""

    path: Path
    size: int
    entries: list[Any]  # the backend's entries of the pack (packs.PackEntry: digest, codec, offset, ...)

    def chunks(self) -> dict[bytes, int]:
        """32-byte digest -> raw size of every chunk it holds."""
        return {e.digest: e.raw_len for e in self.entries}


# A chunk received from another store larger than this is refused unread: no store
# writes one (chunks are at most CHUNK_MAX, whole files at most WHOLE_FILE_LIMIT), and
# pack records carry 32-bit lengths.
MAX_FRAME = 64 * 1024 * 1024


@dataclass(frozen=True)
class StoreStats:
    """Physical accounting of a store."""

    stored_bytes: int  # bytes on disk in packs (after compression, including dead bytes)
    file_count: int  # distinct files known to the index
    chunk_count: int
    pack_count: int
    chunk_bytes: int  # raw (uncompressed) bytes of all distinct chunks


@dataclass
class GcPlan:
    """What a gc removes, and (once executed) what it did. Byte figures are stored bytes
    on disk (compressed), never logical sizes.

    Freed now vs later: containers (packs) dropped from the index stay on disk for a
    reader grace (min(grace, the backend's reader grace)) so a reader that located its
    chunks a moment ago can still read them; the next gc after that deletes them. They
    are counted once, as `bytes_retired` by the gc that drops them and as `bytes_freed`
    by the gc that deletes them."""

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
    reader_grace_seconds: float = 0.0
    executed: bool = False
    planned: GcPlan | None = None  # the plan as reported before executing

    @property
    def reclaimable_bytes(self) -> int:
        """Everything this gc frees now or sets up for deletion (not what grace holds)."""
        return self.bytes_freed + self.bytes_retired + self.bytes_pending

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`lode gc --json`): every field but `planned`, plus reclaimable_bytes."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "planned"}
        d["reclaimable_bytes"] = self.reclaimable_bytes
        return {k: _plain(v) for k, v in d.items()}


@dataclass
class FsckReport:
    """What a store check found. Digests are hex; pack ids are the backend's names."""

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
    lost_files: list[str] = field(default_factory=list)  # forgotten by an earlier repair (known)
    # hex digests of every file the index knows, in the same snapshot (not reported)
    indexed_files: set[str] = field(default_factory=set, repr=False)

    @property
    def ok(self) -> bool:
        return not (self.corrupt_packs or self.corrupt_chunks or self.missing_packs or self.bad_index_entries
                    or self.missing_chunks or self.bad_files)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every reported field (not indexed_files), in order."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "indexed_files"}


@dataclass(frozen=True)
class RebuiltIndex:
    packs: int
    chunks: int


@dataclass
class RepairResult:
    """What a store repair did."""

    quarantined: list[str] = field(default_factory=list)  # corrupt packs moved aside
    salvaged_chunks: int = 0  # good chunks of them copied into a new pack
    index: RebuiltIndex = RebuiltIndex(0, 0)  # rebuilt from the packs
    lost_files: list[str] = field(default_factory=list)  # forgotten now (logging the data stores them again)
    restored_files: list[str] = field(default_factory=list)  # rows rebuilt from whole-file chunks

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class GroupUsage:
    """What one group of files (a version, an artifact, ...) holds, chunk by chunk.

    Each distinct chunk counts once per group. Stored bytes are on-disk bytes (after
    compression) with their per-chunk overhead (a pack record header)."""

    raw_bytes: int = 0  # raw bytes of the distinct chunks the group's files are made of
    stored_bytes: int = 0  # their stored bytes, overhead included
    overhead_bytes: int = 0  # of which per-chunk overhead
    shared_stored_bytes: float = 0.0  # stored bytes, each chunk split evenly among the groups holding it
    exclusive_stored_bytes: int = 0  # what deleting only this group's files, then gc, frees
    exclusive_raw_bytes: int = 0  # raw bytes of the chunks no other group holds


@dataclass(frozen=True)
class DiskUsage:
    """Bytes the store takes on disk, by part."""

    packs: int  # content (dead bytes included)
    index: int  # the store's own metadata
    tmp: int  # in-flight and stale work files


@dataclass(frozen=True)
class CatalogBinding:
    """Which catalog a store belongs to: its instance id and the highest generation seen."""

    catalog_id: str
    generation: int


def _plain(value: Any) -> Any:
    """A field value as JSON-ready data (lists copied, dataclasses as dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return list(value)
    return value


class WriteSession(abc.ABC):
    """Collects files into the store; `commit()` makes them visible all at once.

    Used as a context manager: leaving the block without commit() (or with an exception)
    aborts, removing whatever the session had written but not committed.
    """

    @abc.abstractmethod
    def add_file(self, path: str | os.PathLike[str], progress: ProgressCallback | None = None) -> FileRef:
        """Store a local file. Raises FileChangedError if the file changes while read."""

    def add_files(self, paths: Iterable[str | os.PathLike[str]],
                  progress: ProgressCallback | None = None) -> list[FileRef]:
        """Store many local files, refs in order. Backends override it to pipeline the
        reads and batch their lookups (the local store does); semantics as add_file."""
        return [self.add_file(p, progress) for p in paths]

    def add_file_rows(self, paths: list[str | Path], progress: ProgressCallback | None = None) -> list[tuple[str, int]]:
        """add_files' answer as (hex digest, size) pairs, what a log's manifest rows take:
        the local store builds them without a FileRef per file (100,000 of them were
        ~0.1 s of a log)."""
        return [(ref.digest, ref.size) for ref in self.add_files(paths, progress)]

    @abc.abstractmethod
    def add_bytes(self, data: bytes) -> FileRef:
        """Store an in-memory file."""

    # --- transfer between stores (push, pull, import) ------------------------------
    @abc.abstractmethod
    def add_chunks(self, chunks: Iterable[tuple[str, bytes]]) -> None:
        """Store raw chunks as received from another store: each (hex digest, raw bytes)
        is verified (BLAKE3 of the bytes == digest, CorruptionError otherwise, nothing of
        that chunk kept) and stored once. Chunks become visible with commit(), like files."""

    @abc.abstractmethod
    def add_frames(self, frames: Iterable[ChunkFrame]) -> None:
        """Store chunks received in their stored form (`ContentStore.read_frames`): each
        frame is verified (`ChunkFrame.raw()`: decoded, BLAKE3 == digest; CorruptionError
        otherwise, nothing of that chunk kept) and the new ones appended as they are,
        not compressed again. Visible with commit(), like files."""

    @abc.abstractmethod
    def received_pack_path(self) -> Path:
        """Where a pack received whole is to be written before `check_pack` (a temp path
        of the session, removed with it)."""

    @abc.abstractmethod
    def check_pack(self, path: str | os.PathLike[str]) -> CheckedPack:
        """Check every record of the pack written at `path` (trailer, layout, each chunk
        decoded and hashed against its digest): CorruptionError, the file deleted, if
        any fails. Safe on any thread while the session is used (it touches nothing of
        the session); only what it returns can be adopted."""

    @abc.abstractmethod
    def adopt_pack(self, pack: CheckedPack) -> dict[bytes, int]:
        """Make a checked pack one of this session's (moved from the path `check_pack`
        checked, under this session's temp folder); its chunks become visible with
        commit(), like frames. Chunks of it the store holds already are dead bytes gc's
        repack reclaims. Returns the chunks it holds: 32-byte digest -> raw size."""

    @abc.abstractmethod
    def add_recipes(self, recipes: Iterable[FileRecipe]) -> list[FileRef]:
        """Record files made of chunks this store holds or this session added: each
        recipe's chunks must all be there (NotFoundError naming the first missing one)
        and their sizes must add up to the file's size (CorruptionError); the file's
        digest is verified by hashing its chunks in order (a file of one chunk named by
        that chunk's digest is verified already: its chunk was). Visible with commit()."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Make everything added durable and visible."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Drop everything added and not committed."""

    def close(self) -> None:  # noqa: B027 (optional: a backend without locks has nothing to release)
        """Release what the session still holds after commit (the local store: its shared
        gc lock). The with block calls it on exit, so a caller that commits a catalog
        version inside the block keeps gc away until that version exists."""

    def __enter__(self) -> WriteSession:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self.committed:
            self.abort()
        self.close()

    committed: bool = False


class ContentStore(abc.ABC):
    """Bytes by digest. See the module docstring for the contract."""

    @abc.abstractmethod
    def session(self) -> WriteSession:
        """Start a write session."""

    @abc.abstractmethod
    def has(self, digest: str) -> bool: ...

    @abc.abstractmethod
    def missing(self, digests: Iterable[str]) -> set[str]:
        """The subset of `digests` the store does not hold (one round trip, not N)."""

    @abc.abstractmethod
    def file_size(self, digest: str) -> int:
        """NotFoundError if absent."""

    @abc.abstractmethod
    def read_bytes(self, digest: str) -> bytes:
        """Whole content, verified. For small files; use materialize for large ones."""

    @abc.abstractmethod
    def iter_content(self, digest: str) -> Iterator[bytes]:
        """Content in pieces, each chunk verified before it is yielded."""

    @abc.abstractmethod
    def materialize(self, digest: str, dest: str | os.PathLike[str],
                    progress: ProgressCallback | None = None) -> None:
        """Write the file to `dest` atomically (temp file + rename) after verifying it.

        On CorruptionError nothing is left at `dest` (an older file there is untouched).
        """

    def materialize_many(self, items: list[tuple[str, str]], progress: ProgressCallback | None = None,
                         threads: int = 1) -> None:
        """materialize() each (digest, destination) pair, each file atomic and verified;
        the destinations' folders exist. A store may batch its lookups and reads. An
        error carries the failed pair's index in `err.item`."""
        for i, (digest, dest) in enumerate(items):
            try:
                self.materialize(digest, dest, progress=progress)
            except Exception as err:
                err.item = i  # type: ignore[attr-defined]
                raise

    @abc.abstractmethod
    def iter_files(self) -> Iterator[FileRef]:
        """Every file the store holds."""

    # --- transfer between stores (push, pull, export) --------------------------------
    # A transfer asks the destination which files it lacks (`missing`), asks the source
    # for their recipes, asks the destination which of those chunks it lacks
    # (`missing_chunks`, in batches), then moves only those: `read_frames` here,
    # `WriteSession.add_frames` + `add_recipes` there (chunks in their stored form,
    # verified once, by the receiver; `read_chunks` / `add_chunks` move raw bytes, each
    # side verifying). Every backend implements them (abstract). Where the receiver wants
    # most of a stored pack, the pack moves whole: `pack_shares` and `copy_pack` here,
    # `WriteSession.received_pack_path` + `adopt_pack` there (optional: a backend
    # without them moves frames).
    @abc.abstractmethod
    def recipes(self, digests: Iterable[str]) -> dict[str, FileRecipe]:
        """The recipes of the given files (hex digests) the store holds; absent ones are
        left out of the result."""

    @abc.abstractmethod
    def missing_chunks(self, chunk_digests: Iterable[str]) -> set[str]:
        """The subset of chunk digests (hex) the store does not hold (one round trip per
        batch, never one per chunk)."""

    @abc.abstractmethod
    def read_chunks(self, chunk_digests: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """(hex digest, raw bytes) of each chunk asked for, each verified against its
        digest before it is yielded, in an order the store chooses (pack order: cheap
        reads); NotFoundError for a chunk it does not hold."""

    @abc.abstractmethod
    def read_frames(self, chunk_digests: Iterable[str]) -> Iterator[ChunkFrame]:
        """Each chunk asked for (hex digests) in its stored form, as read_chunks orders
        them, NOT verified here: the receiver checks each frame (`ChunkFrame.raw()`), so
        a transfer hashes every byte once, at the receiving end. NotFoundError for a
        chunk the store does not hold; a pack shorter than its index says: CorruptionError."""

    def prepare_transfer(self) -> None:  # noqa: B027 (optional: a local store has nothing to prepare)
        """A transfer out of this store is starting (its recipes are asked next): a remote
        store may bring what it reads from up to date now, in the background, while the
        caller reads its catalog."""

    def holds_nothing(self) -> bool:
        """Whether the store holds no chunk and no file at all right now: a copy into it
        then needs not ask which of its files and chunks it lacks (all of them, but what
        the copy itself sent). A concurrent writer storing some of them meanwhile is
        harmless: a chunk indexed twice keeps its first copy (the second is dead bytes
        gc reclaims), a file recorded twice its first row. False when not known cheaply
        (the default: the copy asks)."""
        return False

    @abc.abstractmethod
    def pack_shares(self, chunk_digests: Iterable[str]) -> list[PackShare]:
        """The stored packs holding some of these chunks (hex digests), for a transfer to
        move whole where it wants most of one (`copy_pack`); chunks not found are left
        out."""

    @abc.abstractmethod
    def file_packs(self, digests: Iterable[str]) -> FilePacks:
        """`pack_shares` of every chunk of these files (hex file digests), asked by file,
        with which files are of several chunks or not held (FilePacks): a copy into a
        store that holds nothing wants every chunk of every file it copies, so it can
        weigh the source's packs before it reads a recipe, start downloading them at
        once, and ask recipes of the files of several chunks alone. Each chunk is counted
        once per call, in the pack the index places it in; the packs come in the order
        of the first file needing each. A caller bounds a call (a transfer: `PLAN_FILES`
        files, `PLAN_BYTES` of them): a chunk shared by files of two calls is counted in
        both."""

    @abc.abstractmethod
    def copy_pack(self, pack_id: str, dest: str | os.PathLike[str]) -> None:
        """Write the pack's bytes, as stored, to `dest` (a receiver's `received_pack_path`),
        NOT verified here: the receiver checks every record (`WriteSession.adopt_pack`).
        NotFoundError if the store does not hold it."""

    @abc.abstractmethod
    def stats(self) -> StoreStats: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    # --- maintenance --------------------------------------------------------------
    @abc.abstractmethod
    def maintenance_lock(self, exclusive: bool, timeout: float | None = None) -> AbstractContextManager[None]:
        """Hold the store's maintenance lock: shared keeps gc and repair away (fsck's
        check), exclusive keeps every writer away (gc, repair). ConflictError on timeout.
        Inside an exclusive hold, `repair` and `gc` of this object do not lock again."""

    @abc.abstractmethod
    def plan_gc(self, keep: set[str], grace: float = DEFAULT_GRACE_SECONDS,
                repack_threshold: float = DEFAULT_REPACK_THRESHOLD) -> GcPlan:
        """What gc would remove, keeping files in `keep` (hex digests) and anything
        younger than `grace` seconds. Reads only."""

    @abc.abstractmethod
    def gc(self, keep: Callable[[], set[str]], grace: float = DEFAULT_GRACE_SECONDS, dry_run: bool = False,
           repack_threshold: float = DEFAULT_REPACK_THRESHOLD, on_plan: Callable[[GcPlan], None] | None = None,
           lock_timeout: float | None = None) -> GcPlan:
        """Plan, report (on_plan(plan)), then sweep under the exclusive lock. `keep()`
        returns the live file digests; it is called once the lock is held, so whatever
        a writer committed (and closed its session) before then is kept. The returned
        plan carries the measured result; `plan.planned` is the plan as reported."""

    @abc.abstractmethod
    def fsck(self) -> FsckReport:
        """Check every stored byte, index entry and file recipe, from one consistent
        snapshot (writers may commit meanwhile). Reads only."""

    @abc.abstractmethod
    def index_problem(self) -> str | None:
        """What is wrong with the store's own metadata as a database (it does not open,
        or a check finds damaged pages), or None."""

    @abc.abstractmethod
    def set_aside_damaged_index(self) -> str:
        """Move damaged metadata aside (kept, not deleted) so the next use starts empty
        and a repair rebuilds it; returns where it went."""

    @abc.abstractmethod
    def repair(self, report: FsckReport, absent: Mapping[str, int] | None = None) -> RepairResult:
        """Salvage what verifies, quarantine the rest, rebuild the index, rebuild the
        rows of `absent` files ({hex digest: size}: referenced but not indexed) that the
        content still holds whole, and forget (record as lost) files whose bytes are gone."""

    @abc.abstractmethod
    def lost_files(self) -> dict[str, int]:
        """hex digest -> size of files a repair found unrecoverable, not stored again since."""

    @abc.abstractmethod
    def usage(self, groups: Mapping[K, Iterable[str]]) -> dict[K, GroupUsage]:
        """What each group of files (hex digests) holds; see GroupUsage. A chunk held by
        files outside every group counts as held by nobody."""

    @abc.abstractmethod
    def files_sharing_chunks(self, digests: Iterable[str]) -> set[str]:
        """Files other than `digests` that hold at least one chunk of them (exclusive
        bytes of a few versions are judged against the versions holding those files)."""

    @abc.abstractmethod
    def disk_usage(self) -> DiskUsage: ...

    def change_stamp(self) -> Hashable | None:
        """A cheap value that changes whenever the store's content or index changes (any
        process's commit, gc, repair), so a caller may keep figures measured from it
        until it moves; None: this backend cannot tell (measure every time)."""
        return None

    @abc.abstractmethod
    def holds_content(self) -> bool:
        """Whether any content is stored (even with the index lost)."""

    @abc.abstractmethod
    def catalog_binding(self) -> CatalogBinding | None:
        """The catalog this store is bound to, None if none is recorded."""

    @abc.abstractmethod
    def bind_catalog(self, catalog_id: str, generation: int) -> None:
        """Record (catalog_id, generation) whatever was recorded before."""

    @abc.abstractmethod
    def advance_catalog(self, catalog_id: str, generation: int) -> None:
        """Raise the recorded generation of the same catalog (never another id's)."""

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the store is, for messages."""
