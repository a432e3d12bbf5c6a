"""The S3 content store: the same chunks, packs and index as the local store, kept in an
S3-compatible bucket (AWS S3, SeaweedFS, ...) that many machines share.

``S3ContentStore("s3://bucket/prefix", cache_dir)``; the endpoint and credentials come
from the usual AWS_* variables (AWS_ENDPOINT_URL for an S3-compatible server).

Bucket layout (docs/storage.md says why it is safe with many machines)::

    <prefix>/format.json              chunking and pack format (layout.py), checked on open
    <prefix>/packs/ab/<id>.pack       write-once packs, the local store's format (s3_packs.py)
    <prefix>/index/<id>.idx           the index: one object per committed session, and
                                      one per gc or repair replacing those (s3_index.py)
    <prefix>/writers/<id>.json        leases of writers in flight (s3_leases.py)
    <prefix>/locks/gc.json            gc's and repair's exclusive lock (s3_leases.py)
    <prefix>/catalog-binding.json     which catalog the bytes belong to (binding.py's rule)
    <prefix>/quarantine/<id>.pack     corrupt packs a repair set aside

Locally, `cache_dir` holds a local store (local.py) used as a cache: its index.db is the
union of the bucket's index objects, its packs/ the packs read or written lately (LRU,
capped), its tmp/ the sessions in flight. Reading and writing are the local store's own
code paths (`BucketCacheStore`), with the bucket behind its pack reader (s3_packs.py)
and its write session (s3_session.py). What this class adds: a lookup that finds
nothing syncs the index cache and asks again before saying NotFound (another machine may
have committed it), and maintenance under the bucket's leases and lock.
"""

from __future__ import annotations

import json
import operator
import os
import threading
import weakref
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from lodestore.errors import ConflictError, CorruptionError, NotFoundError, StoreFormatError
from lodestore.store import integrity, maintenance
from lodestore.store.base import (
    DEFAULT_GRACE_SECONDS,
    DEFAULT_REPACK_THRESHOLD,
    CatalogBinding,
    ChunkFrame,
    ContentStore,
    DiskUsage,
    FilePacks,
    FileRecipe,
    FileRef,
    FsckReport,
    GcPlan,
    GroupUsage,
    PackShare,
    ProgressCallback,
    RepairResult,
    StoreStats,
)
from lodestore.store.binding import BINDING_FILE
from lodestore.store.index import DIGEST_LEN, ChunkLocation, UnitedRows, digest_bytes, joined_digests, recipe_chunks
from lodestore.store.layout import format_description, previous_format_description
from lodestore.store.local import LocalContentStore, file_packs, pack_shares, united_file_packs
from lodestore.store.packs import PackMissingError
from lodestore.store.s3_index import INDEX_PREFIX, IndexSync
from lodestore.store.s3_index import OBJECT_FORMAT as INDEX_OBJECT_FORMAT
from lodestore.store.s3_index import decode as decode_index
from lodestore.store.s3_leases import GcLock, WriterLease
from lodestore.store.s3_objects import Bucket, PreconditionFailed
from lodestore.store.s3_packs import (
    PACK_PREFIX,
    QUARANTINE_PREFIX,
    RANGE_GAP,
    RANGE_PIECE,
    BucketPackReader,
    pack_name,
)
from lodestore.store.s3_session import S3WriteSession
from lodestore.store.workdirs import tree_size

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
FORMAT_FILE = "format.json"
MULTIPART_PREFIXES = (PACK_PREFIX,)  # where uploads in parts happen (gc aborts stale ones)
LOCATE_PAGE = 4096  # chunks a read_chunks stream locates at once (~1 MB of locations)


def bucket_format_description() -> dict:
    """A bucket's format.json: the local store's format (layout.py) and the format of its
    index objects (s3_index.py). A bucket without the latter (index objects of format 1,
    JSON) is read, and upgraded on open (`S3ContentStore._check_format`)."""
    return {**format_description(), "index_objects": INDEX_OBJECT_FORMAT}


class BucketCacheStore(LocalContentStore):
    """A local store in the cache folder whose packs and index live in the bucket."""

    packs: BucketPackReader

    def __init__(self, root: Path, bucket: Bucket):
        super().__init__(root)
        self.bucket = bucket
        self.packs = BucketPackReader(self.packs_dir, bucket)
        self.index_sync = IndexSync(bucket, self.index)

    def sync(self) -> None:
        self.index_sync.sync()

    def session(self) -> S3WriteSession:
        return S3WriteSession(self)

    def _retry_if_repacked(self, attempt: Callable[[], T]) -> T:
        """A pack gone from the bucket: another machine's gc may have moved its chunks
        (the index cache learns where by a sync); if the index still lists it, it is damage."""
        try:
            return attempt()
        except PackMissingError as e:
            self.sync()
            if self.index.has_pack(e.pack_id):
                raise
            return attempt()

    def share_index(self) -> None:
        """gc and repair changed the index: publish it whole, replacing every object it
        was made of (the caller holds the gc lock)."""
        self.index_sync.replace_all(self.index.shared_index_names())


class S3ContentStore(ContentStore):
    read_only = False
    # read_frames reads ahead of its caller on READ_THREADS threads of its own (a copy
    # out of this store adds no reading thread: transfer.py)
    reads_ahead = True

    def __init__(self, url: str, cache_dir: str | os.PathLike[str]):
        self.bucket = Bucket(url)
        self._check_format()
        self.cache = BucketCacheStore(Path(cache_dir), self.bucket)
        self._exclusive_owner: int | None = None
        self._sessions: weakref.WeakSet[S3WriteSession] = weakref.WeakSet()
        self._prepared: threading.Thread | None = None  # prepare_transfer's sync
        # prepare_transfer's sync into a cache that held nothing: the whole index's rows
        # before they are merged (IndexSync.sync's `early`), and when they, or the end of
        # that sync, came
        self._early_rows: UnitedRows | None = None
        self._early_ready = threading.Event()

    def _check_format(self) -> None:
        """The first request: a wrong endpoint or credentials fail here, in one line. A
        bucket of an earlier format this code still reads (the previous pack format, or
        index objects of format 1) is upgraded in place with a conditional replace, so
        an older lodestore refuses it from then on rather than misread what this one
        writes (its index objects of format 2 would look damaged to it)."""
        expected = bucket_format_description()
        got = self.bucket.get_with_etag(FORMAT_FILE)
        data = None if got is None else got[0]
        if data is None:
            try:
                self.bucket.put(FORMAT_FILE, json.dumps(expected, indent=2).encode() + b"\n", if_absent=True)
                return
            except PreconditionFailed:  # another machine created the store meanwhile
                data = self.bucket.get(FORMAT_FILE) or b""
        try:
            found = json.loads(data)
        except ValueError:
            found = None
        if found in (previous_format_description(), format_description()) and got is not None:
            try:
                self.bucket.put_if_match(FORMAT_FILE, json.dumps(expected, indent=2).encode() + b"\n", got[1])
            except PreconditionFailed:  # another machine changed it meanwhile: judge what it wrote
                self._check_format()
            return
        if found != expected:
            raise StoreFormatError(f"the store {self.location} was written in another format ({found}); "
                                   f"this lodestore writes {expected}: refusing to mix them")

    @property
    def location(self) -> str:
        return self.bucket.url

    @property
    def counters(self):
        """Requests and bytes this object sent and received (tests and the bench)."""
        return self.bucket.counters

    def sync(self) -> None:
        """Bring the index cache up to date with the bucket."""
        self.cache.sync()

    def _synced(self, attempt: Callable[[], T]) -> T:
        """`attempt`; if it found nothing, sync and try once more."""
        try:
            return attempt()
        except NotFoundError:
            self.sync()
            return attempt()

    # --- writing and reading ---------------------------------------------------------
    def session(self) -> S3WriteSession:
        session = self.cache.session()
        self._sessions.add(session)
        return session

    def _leased(self) -> bool:
        """Whether a write session of this store holds its lease (S3WriteSession.holds_lease):
        then the index cache cannot list a chunk that is gone, and a lookup needs no sync."""
        return any(s.holds_lease for s in list(self._sessions))

    # has() and missing() sync first (one LIST when nothing changed): a "yes" from a cache
    # that missed another machine's gc would let a caller skip storing what is gone
    def has(self, digest: str) -> bool:
        self.cache.has(digest)  # a malformed digest is refused before any request
        self.sync()
        return self.cache.has(digest)

    def missing(self, digests: Iterable[str]) -> set[str]:
        digests = list(digests)
        self.cache.missing(digests)
        self.sync()
        return self.cache.missing(digests)

    def file_size(self, digest: str) -> int:
        return self._synced(lambda: self.cache.file_size(digest))

    def read_bytes(self, digest: str) -> bytes:
        return self._synced(lambda: self.cache.read_bytes(digest))

    def iter_content(self, digest: str) -> Iterator[bytes]:
        self.has(digest)  # syncs: then the cache knows what the bucket holds
        yield from self.cache.iter_content(digest)

    def materialize(self, digest: str, dest: str | os.PathLike[str], progress: ProgressCallback | None = None) -> None:
        def attempt() -> None:
            with self._prefetching(digest):
                self.cache.materialize(digest, dest, progress)

        self._synced(attempt)

    @contextmanager
    def _prefetching(self, digest: str) -> Iterator[None]:
        """Fetch a large file's packs PREFETCH_PACKS at a time ahead of the reader (each
        pack itself comes in parallel parts), so the download overlaps with the copy and
        the verification. Only when they fit in half the cache: a larger file is read
        pack by pack as it goes, never evicting what it is about to read."""
        packs = self.cache.packs
        pack_ids = self._packs_of(digest)
        sizes = packs.listing() if len(pack_ids) > 1 else {}
        if len(pack_ids) < 2 or sum(sizes.get(p, (0, 0))[0] for p in pack_ids) > packs.max_bytes // 2:
            yield
            return
        with packs.prefetching([p for p in pack_ids if p in sizes]):
            yield

    def _packs_of(self, digest: str) -> list[str]:
        """The packs holding a file's chunks, in the order the file reads them (none for a
        file of one chunk or one not known here)."""
        try:
            raw = bytes.fromhex(digest)
        except (TypeError, ValueError):
            return []  # malformed: the read refuses it in its own words
        row = self.cache.index.file_row(raw)
        if row is None or row[2] is None:
            return []
        chunks = recipe_chunks(raw, row[1], row[2])
        where = self.cache.index.locate(chunks)
        return list(dict.fromkeys(where[c].pack_id for c in chunks if c in where))

    def materialize_many(self, items: list[tuple[str, str]], progress: ProgressCallback | None = None,
                         threads: int = 1) -> None:
        self._synced(lambda: self.cache.materialize_many(items, progress, threads))

    def iter_files(self) -> Iterator[FileRef]:
        self.sync()
        return self.cache.iter_files()

    def prepare_transfer(self) -> None:
        """Sync the index cache on a thread of its own (a pull reads the version's manifest
        from the catalog meanwhile); the first `recipes` waits for it, and `file_packs`
        for the rows it is about to merge when the cache held nothing. An error there is
        left for that call's own sync to meet, in its own words."""
        if self._prepared is None:
            self._prepared = threading.Thread(target=self._sync_quietly, name="lodestore-s3-index-sync",
                                              daemon=True)
            self._prepared.start()

    def _sync_quietly(self) -> None:
        try:
            self.cache.index_sync.sync(early=self._rows_before_merge)
        except Exception:  # met again by the caller's own sync, in its own words
            pass
        finally:
            self._early_rows = None  # merged (or failed): the cache answers from now on
            self._early_ready.set()

    def _rows_before_merge(self, united: UnitedRows) -> None:
        self._early_rows = united
        self._early_ready.set()

    def recipes(self, digests: Iterable[str]) -> dict[str, FileRecipe]:
        """From the index cache, synced once if some are not there (one query a page of
        files when they are: a pull asks for every file's recipe); after
        `prepare_transfer`, its sync is waited for first."""
        digests = list(digests)
        self._wait_prepared()
        found = self.cache.recipes(digests)
        if len(found) < len(set(digests)):
            self.sync()
            found = self.cache.recipes(digests)
        return found

    def missing_chunks(self, chunk_digests: Iterable[str]) -> set[str]:
        """Synced first, like `missing`, unless a write session of this store holds its
        lease (a transfer into this store: it asks a window of chunks at a time inside
        its session; one sync per transfer, not one LIST per window)."""
        if not self._leased():
            self.sync()
        return self.cache.missing_chunks(list(chunk_digests))

    def read_chunks(self, chunk_digests: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Every chunk asked for, verified, in pack order: located in the index cache (one
        sync only if some are not there: one per transfer, not one per call), then read
        as ranges of neighbouring chunks (`remote_pieces`), READ_THREADS ranged GETs in
        flight ahead of the caller, each range's chunks decoded and verified on the
        thread that fetched it. A pack another machine's gc repacked meanwhile: the index
        learns where its chunks went (a sync) and the rest is read from there, once."""
        wanted = list(dict.fromkeys(digest_bytes(d) for d in chunk_digests))
        return self._read_chunks(wanted)

    def read_frames(self, chunk_digests: Iterable[str]) -> Iterator[ChunkFrame]:
        """As read_chunks, each chunk as its pack holds it: the fetching threads only copy
        the frames out of their buffers, the receiver decodes and verifies (base.py)."""
        wanted = list(dict.fromkeys(digest_bytes(d) for d in chunk_digests))
        for _, frame in self._read_chunks(wanted, self._frames):
            yield frame

    def pack_shares(self, chunk_digests: Iterable[str]) -> list[PackShare]:
        """From the index cache, synced once if some chunks are not there (as `recipes`)."""
        wanted = joined_digests(list(dict.fromkeys(chunk_digests)))
        shares = pack_shares(self.cache.index, wanted)
        if sum(s.wanted_chunks for s in shares) < len(wanted) // DIGEST_LEN:
            self.sync()
            shares = pack_shares(self.cache.index, wanted)
        return shares

    def file_packs(self, digests: Iterable[str]) -> FilePacks:
        """From the index cache, synced once if some files are not there (as `recipes`;
        after `prepare_transfer`, its sync is waited for first). Into a cache that held
        nothing, that sync's rows answer before they are merged (local.united_file_packs):
        a new machine's pull starts its downloads while its cache merges."""
        wanted = list(dict.fromkeys(digests))
        if self._prepared is not None:
            self._early_ready.wait()
            early = self._early_rows
            if early is not None and not (found := united_file_packs(early, wanted)).absent:
                return found
        self._wait_prepared()
        found = file_packs(self.cache.index, wanted)
        if found.absent:
            self.sync()
            found = file_packs(self.cache.index, wanted)
        return found

    def _wait_prepared(self) -> None:
        if self._prepared is not None:
            self._prepared.join()

    def copy_pack(self, pack_id: str, dest: str | os.PathLike[str]) -> None:
        """The cached copy if there is one (copied by the kernel), else the object streamed
        straight to `dest` (not into the cache: the receiver keeps it); a transfer
        fetches several packs at once."""
        if self.cache.packs.path(pack_id).exists():
            try:
                self.cache.copy_pack(pack_id, dest)
                return
            except NotFoundError:  # evicted meanwhile: fetched from the bucket
                pass
        try:
            self.bucket.download_to(pack_name(pack_id), Path(dest))
        except NotFoundError:
            Path(dest).unlink(missing_ok=True)
            raise NotFoundError(f"pack {pack_id} is not in the store {self.location}") from None

    def _read_chunks(self, wanted: list[bytes], work: Callable | None = None) -> Iterator[tuple[str, Any]]:
        done: set[bytes] = set()
        for attempt in (0, 1):
            todo = [c for c in wanted if c not in done] if attempt else wanted
            try:
                for chunks in self.cache.packs.read_pieces(self._pieces(todo), work or self._verified):
                    for digest, data in chunks:
                        done.add(digest)
                        yield (digest.hex() if work is None else digest), data
                return
            except PackMissingError as e:
                self.sync()
                if attempt or self.cache.index.has_pack(e.pack_id):
                    raise

    def _pieces(self, wanted: list[bytes]) -> Iterator[tuple[str, int, int, list[ChunkLocation]]]:
        """The ranges to read for `wanted`, located a page (LOCATE_PAGE) at a time."""
        for start in range(0, len(wanted), LOCATE_PAGE):
            page = wanted[start : start + LOCATE_PAGE]
            where = self.cache.index.locate(page)
            if len(where) < len(page):
                self.sync()
                where = self.cache.index.locate(page)
            if absent := [c for c in page if c not in where]:
                raise NotFoundError(f"chunk {absent[0].hex()[:16]}... is not in the store at {self.location} "
                                    f"({len(absent)} of {len(page)} asked are not)")
            yield from remote_pieces(list(where.values()))

    def _verified(self, piece: tuple[str, int, int, list[ChunkLocation]],
                  data: bytes | memoryview) -> list[tuple[bytes, bytes]]:
        """The chunks of one range, each decoded, checked against its digest and copied
        out (`data` is the reading thread's buffer, reused for its next range)."""
        run = piece[3]
        view = memoryview(data)[run[0].offset - piece[1]:]
        out = []
        for loc, raw in self.cache._decoded(run, view):
            self.cache._check_chunk(loc, raw)
            out.append((loc.digest, bytes(raw)))
        return out

    @staticmethod
    def _frames(piece: tuple[str, int, int, list[ChunkLocation]],
                data: bytes | memoryview) -> list[tuple[bytes, ChunkFrame]]:
        """The chunks of one range as frames whose stored bytes are views into the
        range's own buffer (not copied: the buffer lives as long as a frame of it)."""
        run = piece[3]
        view = memoryview(data)
        base = piece[1]
        return [(loc.digest, ChunkFrame(loc.digest, loc.codec, loc.raw_len,
                                        view[loc.offset - base : loc.offset - base + loc.stored_len]))
                for loc in run]

    def stats(self) -> StoreStats:
        self.sync()
        return self.cache.stats()

    # --- maintenance ------------------------------------------------------------------
    @contextmanager
    def maintenance_lock(self, exclusive: bool, timeout: float | None = None) -> Iterator[None]:
        """Exclusive: the bucket's gc lock, once every writer left; shared: a writer lease."""
        if exclusive:
            lock = GcLock(self.bucket, timeout)
            self._exclusive_owner = threading.get_ident()
            try:
                yield
            finally:
                self._exclusive_owner = None
                lock.release()
        else:
            lease = WriterLease(self.bucket, timeout)
            try:
                yield
            finally:
                lease.release()

    @contextmanager
    def _exclusive(self, timeout: float | None = None) -> Iterator[None]:
        if self._exclusive_owner == threading.get_ident():
            yield
        else:
            with self.maintenance_lock(exclusive=True, timeout=timeout):
                yield

    def plan_gc(self, keep: set[str], grace: float = DEFAULT_GRACE_SECONDS,
                repack_threshold: float = DEFAULT_REPACK_THRESHOLD) -> GcPlan:
        self.sync()
        plan = maintenance.plan_gc(self.cache, keep, grace, repack_threshold)
        plan.stale_tmp += [f"upload:{u.name}" for u in self._stale_uploads(grace)]
        return plan

    def gc(self, keep: Callable[[], set[str]], grace: float = DEFAULT_GRACE_SECONDS, dry_run: bool = False,
           repack_threshold: float = DEFAULT_REPACK_THRESHOLD, on_plan: Callable[[GcPlan], None] | None = None,
           lock_timeout: float | None = None) -> GcPlan:
        """The local gc (maintenance.py) over the bucket: under the gc lock once every
        writer left, on a freshly synced index; the sweep is published as one index
        object before any pack is deleted (BucketCacheStore.share_index). Multipart
        uploads begun before the grace and never finished are aborted."""
        if dry_run:
            self.sync()
            plan = maintenance.run_gc(self.cache, keep, grace, True, repack_threshold, on_plan)
            plan.stale_tmp += [f"upload:{u.name}" for u in self._stale_uploads(grace)]
            return plan
        with self._exclusive(lock_timeout):
            self.sync()
            plan = maintenance.run_gc(self.cache, keep, grace, False, repack_threshold, on_plan, lock_held=True)
            for upload in self._stale_uploads(grace):
                self.bucket.abort_upload(upload)
                plan.stale_tmp.append(f"upload:{upload.name}")
            self.cache.share_index()  # what the sweep forgot after deleting (retired, lost rows)
            return plan

    def _stale_uploads(self, grace: float):
        cutoff = self.bucket.server_now() - grace
        return [u for prefix in MULTIPART_PREFIXES for u in self.bucket.pending_uploads(prefix)
                if u.initiated < cutoff]

    def fsck(self) -> FsckReport:
        self.sync()
        return integrity.fsck(self.cache)

    def index_problem(self) -> str | None:
        """The local index cache damaged, or an index object in the bucket that does not
        decode (its zstd checksum or content is wrong), or None."""
        found = integrity.index_problem(self.cache)
        if found is not None:
            return found
        try:
            self.sync()
        except CorruptionError as e:
            return str(e)
        return None

    def set_aside_damaged_index(self) -> str:
        """Damaged index objects go to ``quarantine/index/`` (kept, not deleted) and a damaged
        index cache aside in the cache folder; the next sync rebuilds the cache from the
        objects left, and a repair rebuilds the chunk index from the packs."""
        moved = []
        for name in sorted(self.cache.index_sync.listed()):
            data = self.bucket.get(name)
            if data is None:
                continue
            try:
                decode_index(data, name)
            except CorruptionError:
                self.bucket.copy(name, f"{QUARANTINE_PREFIX}{name}")
                self.bucket.delete([name])
                moved.append(f"{self.location}/{QUARANTINE_PREFIX}{name}")
        if integrity.index_problem(self.cache) is not None:
            moved.append(str(self.cache.set_aside_corrupt_index()))
        self.cache.index_sync = IndexSync(self.bucket, self.cache.index)
        return ", ".join(moved) or "nothing"

    def repair(self, report: FsckReport, absent: Mapping[str, int] | None = None) -> RepairResult:
        with self._exclusive():
            self.sync()
            return integrity.repair(self.cache, report, absent)

    def lost_files(self) -> dict[str, int]:
        self.sync()
        return integrity.lost_files(self.cache)

    def usage(self, groups: Mapping[K, Iterable[str]]) -> dict[K, GroupUsage]:
        self.sync()
        return self.cache.usage(groups)

    def files_sharing_chunks(self, digests: Iterable[str]) -> set[str]:
        self.sync()
        return self.cache.files_sharing_chunks(digests)

    def disk_usage(self) -> DiskUsage:
        """Bytes in the bucket: packs, index objects, and the local sessions in flight."""
        packs = sum(size for size, _ in self.cache.packs.listing().values())
        index = sum(o.size for o in self.bucket.objects(INDEX_PREFIX))
        return DiskUsage(packs=packs, index=index, tmp=tree_size(self.cache.tmp_dir))

    def holds_content(self) -> bool:
        return self.cache.packs.any_on_disk()

    # --- catalog binding (binding.py's rules, on one object replaced by If-Match) -----
    def catalog_binding(self) -> CatalogBinding | None:
        found = self._read_binding()
        return None if found is None else found[0]

    def _read_binding(self) -> tuple[CatalogBinding | None, str] | None:
        got = self.bucket.get_with_etag(BINDING_FILE)
        if got is None:
            return None
        try:
            data = json.loads(got[0])
            return CatalogBinding(str(data["catalog_id"]), int(data["generation"])), got[1]
        except (ValueError, KeyError, TypeError):
            return None, got[1]  # not a binding: counts as none, rewritten by the next bind

    def bind_catalog(self, catalog_id: str, generation: int) -> None:
        self.bucket.put(BINDING_FILE, _binding_json(catalog_id, generation))

    def advance_catalog(self, catalog_id: str, generation: int) -> None:
        for _ in range(100):  # a concurrent advance changed it: read again
            found = self._read_binding()
            if found is None:
                return
            binding, etag = found
            if binding is None or binding.catalog_id != catalog_id or generation <= binding.generation:
                return
            try:
                self.bucket.put_if_match(BINDING_FILE, _binding_json(catalog_id, generation), etag)
                return
            except PreconditionFailed:
                continue
        raise ConflictError(f"the catalog binding of the store {self.location} keeps changing; try again")

    def close(self) -> None:
        self.cache.close()
        self.bucket.close()


_PACK_ORDER = operator.attrgetter("pack_id", "offset")  # a key made in C: a pull sorts every chunk it moves


def remote_pieces(locs: list[ChunkLocation]) -> Iterator[tuple[str, int, int, list[ChunkLocation]]]:
    """(pack id, offset, length, chunks) ranges covering `locs` in pack order: neighbours
    in one pack share a range up to RANGE_PIECE bytes, across gaps of up to RANGE_GAP
    bytes of chunks not wanted (one GET reads through them instead of two GETs)."""
    run: list[ChunkLocation] = []
    for loc in sorted(locs, key=_PACK_ORDER):
        if run and (loc.pack_id != run[0].pack_id or loc.offset - (run[-1].offset + run[-1].stored_len) > RANGE_GAP
                    or loc.offset + loc.stored_len - run[0].offset > RANGE_PIECE):
            yield _piece(run)
            run = []
        run.append(loc)
    if run:
        yield _piece(run)


def _piece(run: list[ChunkLocation]) -> tuple[str, int, int, list[ChunkLocation]]:
    first, last = run[0], run[-1]
    return first.pack_id, first.offset, last.offset + last.stored_len - first.offset, run


def _binding_json(catalog_id: str, generation: int) -> bytes:
    return json.dumps({"catalog_id": catalog_id, "generation": generation}).encode()
