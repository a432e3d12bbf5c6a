"""The local content store: chunked, deduplicated, packed, compressed, verified.

Layout under ``<root>`` (readable with ``ls``)::

    format.json             on-disk format parameters (layout.py), checked on open
    index.db                chunk -> pack location, file -> chunk recipe, stat cache (index.py)
    packs/ab/<id>.pack      write-once pack files (packs.py: PackWriter, PackReader)
    tmp/<session>/          in-flight packs of a write session, with owner.json (workdirs.py)
    gc.lock                 the maintenance lock (locks.py)
    catalog-binding.json    which catalog the bytes belong to (binding.py)
    quarantine/             corrupt packs a repair set aside (integrity.py)

Maintenance (the ContentStore interface's second half) is delegated: gc to
maintenance.py, fsck and repair to integrity.py, usage to usage.py.

Write order keeps every pointer valid after a crash: packs are written and fsynced in
the session's tmp folder, renamed into packs/, then indexed in one transaction, and only
then can the catalog commit a version pointing at them. A crash leaves at most unindexed
packs or a stale tmp folder, which gc removes; never an index entry for missing bytes.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TypeVar

import blake3

from lodestore.errors import (
    CorruptionError,
    InvalidInputError,
    NotFoundError,
    ReadOnlyStoreError,
)
from lodestore.read_only import writable_folder
from lodestore.store import atomic, batch_read, binding, codec, integrity, maintenance, rawcopy, usage
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
from lodestore.store.index import (
    ChunkLocation,
    StoreIndex,
    UnitedRows,
    digest_bytes,
    joined_digests,
    recipe_chunks,
    split_digests,
)
from lodestore.store.layout import WHOLE_FILE_LIMIT, ensure_format_file
from lodestore.store.locks import acquire_shared_lock_read_only, acquire_store_lock
from lodestore.store.packs import OPEN_PACKS, PackMissingError, PackReader
from lodestore.store.session import DIGEST_LEN, RACY_WINDOW_NS, LocalWriteSession, stat_key
from lodestore.store.workdirs import tree_size
from lodestore.testhooks import delay_point

__all__ = ["OPEN_PACKS", "RACY_WINDOW_NS", "LocalContentStore", "LocalWriteSession", "PackMissingError", "stat_key"]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
# Downloads read runs of neighbouring chunks with one pread of at most this much (two in
# flight: one being written, one being hashed); the size downloads were measured with.
READ_RUN = 16 * 1024 * 1024
# Chunk locations a download holds at once (~1.3 GiB of file at the ~80 KiB mean chunk).
PLAN_PAGE = 16384
# The first page is small (~80 MiB of file, ~2 ms to locate) so the copy starts at once;
# the next pages are located while it is copied (LocalContentStore._planned_ahead).
FIRST_PLAN_PAGE = 1024


def _hex(d: bytes) -> str:
    return d.hex()


_raw = digest_bytes  # the one rule for what a digest is (index.py)


# Files materialize_many plans and writes at a time: memory flat in file count, while a
# page is still large enough (16 MiB of 1 KiB files) for reads in pack order to pay.
MATERIALIZE_PAGE = 16_384


class LocalContentStore(ContentStore):
    def __init__(self, root: str | os.PathLike[str], fsync: bool = True):
        self.root = Path(root)
        if not self.root.is_dir():
            self.root.mkdir(parents=True, exist_ok=True)
        # A store this process cannot write (a read-only mount, a snapshot, someone
        # else's store) is read as it is: nothing is created in it (read_only.py), and
        # a write session is refused with one clear error.
        self.read_only = not writable_folder(self.root)
        ensure_format_file(self.root, upgrade=not self.read_only)
        self.packs_dir = self.root / "packs"
        self.tmp_dir = self.root / "tmp"
        if not self.read_only:
            self.packs_dir.mkdir(exist_ok=True)
            self.tmp_dir.mkdir(exist_ok=True)
        self.fsync = fsync
        self.packs = PackReader(self.packs_dir)
        self._index: StoreIndex | None = None
        self._index_lock = threading.Lock()
        self._exclusive_owner: int | None = None  # thread holding the exclusive maintenance lock
        self._hash_pool = ThreadPoolExecutor(1, thread_name_prefix="lodestore-hash")
        self._plan_pool = ThreadPoolExecutor(1, thread_name_prefix="lodestore-plan")

    @property
    def index(self) -> StoreIndex:
        """The index, opened on first use: commands that never touch the bytes (`lode ls`,
        `versions`, `info`) do not open it, so a damaged index.db does not stop them.
        CorruptionError if index.db is not a readable database."""
        with self._index_lock:
            if self._index is None:
                self._index = StoreIndex(self.root / "index.db", durable=self.fsync)
            return self._index

    def set_aside_corrupt_index(self) -> Path:
        """Move a corrupt index.db (and its WAL) aside as index.db.corrupt-<time>, not
        deleting it, so the next use starts an empty index (fsck --repair then rebuilds
        it from the packs). Returns where it went."""
        with self._index_lock:
            if self._index is not None:
                self._index.close()
                self._index = None
            aside = self.root / f"index.db.corrupt-{time.strftime('%Y%m%dT%H%M%S')}"
            for suffix in ("", "-wal", "-shm"):
                src = self.root / f"index.db{suffix}"
                if src.exists():
                    os.replace(src, aside.with_name(aside.name + suffix))
            return aside

    # --- writing ----------------------------------------------------------------
    def session(self) -> LocalWriteSession:
        if self.read_only:
            raise ReadOnlyStoreError(self.root, "store files")
        return LocalWriteSession(self)

    # --- lookups ----------------------------------------------------------------
    def has(self, digest: str) -> bool:
        return self.index.file_row(_raw(digest)) is not None

    def missing(self, digests: Iterable[str]) -> set[str]:
        wanted = {_raw(d): d for d in digests}
        known = self.index.known_files(wanted)
        return {d for raw, d in wanted.items() if raw not in known}

    def file_size(self, digest: str) -> int:
        return self._file_row(digest)[0]

    def iter_files(self) -> Iterator[FileRef]:
        for d, size in self.index.iter_files():
            yield FileRef(_hex(d), size)

    def stats(self) -> StoreStats:
        stored, files, chunks, packs, raw = self.index.counts()
        return StoreStats(stored_bytes=stored, file_count=files, chunk_count=chunks, pack_count=packs, chunk_bytes=raw)

    def _file_row(self, digest: str) -> tuple[int, list[bytes]]:
        raw = _raw(digest)
        row = self.index.file_row(raw)
        if row is None:
            raise NotFoundError(f"content {digest[:16]}... is not in the store at {self.root}")
        size, count, recipe = row
        if recipe is None:
            return size, [raw]
        return size, [recipe[i : i + DIGEST_LEN] for i in range(0, count * DIGEST_LEN, DIGEST_LEN)]

    def _plan(self, digest: str) -> tuple[int, list[ChunkLocation]]:
        """Every chunk location of a file at once (small files, and tests)."""
        size, pages = self._plan_pages(digest)
        return size, [loc for page in pages() for loc in page]

    def _plan_pages(self, digest: str) -> tuple[int, Callable[[], Iterator[list[ChunkLocation]]]]:
        """(size, pages): `pages()` yields the file's chunk locations in order, PLAN_PAGE
        at a time, so a download holds ~5 MB of them whatever the file size (a 100 GiB
        file is 1.3 million chunks: ~400 MB as one list). Only the recipe itself (32
        bytes a chunk) is read whole. CorruptionError names chunks missing from the index."""
        raw = _raw(digest)
        row = self.index.file_row(raw)
        if row is None:
            raise NotFoundError(f"content {digest[:16]}... is not in the store at {self.root}")
        size, count, recipe = row
        chunks_blob = raw if recipe is None else recipe[: count * DIGEST_LEN]

        def pages() -> Iterator[list[ChunkLocation]]:
            start, step = 0, min(FIRST_PLAN_PAGE, PLAN_PAGE) * DIGEST_LEN
            while start < len(chunks_blob):
                part = chunks_blob[start : start + step]
                start, step = start + step, PLAN_PAGE * DIGEST_LEN
                plan = self.index.locate_recipe(part)
                if len(plan) != len(part) // DIGEST_LEN:
                    self._raise_missing(digest, part)
                yield plan

        return size, pages

    def _raise_missing(self, digest: str, part: bytes) -> None:
        chunks = [part[i : i + DIGEST_LEN] for i in range(0, len(part), DIGEST_LEN)]
        where = self.index.locate(chunks)
        missing = [c for c in chunks if c not in where]
        raise CorruptionError(
            f"content {digest[:16]}... refers to {len(missing)} chunk(s) missing from the index "
            f"(first {missing[0].hex()[:16] if missing else '?'}...); run `lode fsck`"
        )

    # --- reading ----------------------------------------------------------------
    def _read_runs(self, plan: list[ChunkLocation]) -> Iterator[tuple[list[ChunkLocation], memoryview]]:
        """Group consecutive chunks stored back to back in one pack into one large pread."""
        i = 0
        while i < len(plan):
            first = plan[i]
            run = [first]
            end = first.offset + first.stored_len
            j = i + 1
            # a record header (41 bytes) separates neighbours; read across it
            while j < len(plan):
                nxt = plan[j]
                if nxt.pack_id != first.pack_id or not (0 <= nxt.offset - end <= 64) or (
                    nxt.offset + nxt.stored_len - first.offset > READ_RUN
                ):
                    break
                run.append(nxt)
                end = nxt.offset + nxt.stored_len
                j += 1
            data = self.packs.pread(first.pack_id, end - first.offset, first.offset)
            yield run, memoryview(data)
            i = j

    def _decoded(self, run: list[ChunkLocation], data: memoryview) -> Iterator[tuple[ChunkLocation, memoryview]]:
        base = run[0].offset
        for loc in run:
            stored = data[loc.offset - base : loc.offset - base + loc.stored_len]
            try:
                raw = codec.decode(loc.codec, stored, loc.raw_len)
            except CorruptionError as e:
                raise CorruptionError(
                    f"chunk {loc.digest.hex()[:16]}... in pack {loc.pack_id} (offset {loc.offset}): {e}; "
                    "run `lode fsck`"
                ) from None
            if len(raw) != loc.raw_len:
                raise CorruptionError(f"chunk {loc.digest.hex()[:16]}... in pack {loc.pack_id} has the wrong length")
            yield loc, memoryview(raw)

    def _check_chunk(self, loc: ChunkLocation, raw: memoryview) -> None:
        if blake3.blake3(raw).digest() != loc.digest:
            raise CorruptionError(
                f"chunk {loc.digest.hex()[:16]}... in pack {loc.pack_id} (offset {loc.offset}) "
                "does not match its digest: the pack is corrupted; run `lode fsck`"
            )

    def iter_content(self, digest: str) -> Iterator[bytes]:
        _, pages = self._plan_pages(digest)
        hasher = blake3.blake3()
        for plan in pages():
            for run, data in self._read_runs(plan):
                for loc, raw in self._decoded(run, data):
                    self._check_chunk(loc, raw)
                    hasher.update(raw)
                    yield bytes(raw)
        if hasher.hexdigest() != digest:
            raise CorruptionError(f"content {digest[:16]}... reassembles to other bytes: its recipe is corrupted")

    def read_bytes(self, digest: str) -> bytes:
        return self._retry_if_repacked(lambda: b"".join(self.iter_content(digest)))

    def _retry_if_repacked(self, attempt: Callable[[], T]) -> T:
        """Run `attempt`; if it found a pack gone that the index no longer lists (gc moved
        its chunks meanwhile: gc drops a pack from the index before deleting its file, so
        the new locations are visible by then), run it once more. A pack still indexed
        but absent is real damage. Each attempt writes atomically (temp + rename), so a
        retry never leaves half a file; progress may count the retried bytes twice."""
        try:
            return attempt()
        except PackMissingError as e:
            if self.index.has_pack(e.pack_id):
                raise
            return attempt()

    def materialize(self, digest: str, dest: str | os.PathLike[str], progress: ProgressCallback | None = None) -> None:
        self._retry_if_repacked(lambda: self._materialize_once(digest, dest, progress))

    def _materialize_once(self, digest: str, dest: str | os.PathLike[str],
                          progress: ProgressCallback | None = None) -> None:
        """Reassemble into a temp file beside `dest`, hashing on a second thread while
        writing, and rename only if the whole-file digest matches. A mismatch is then
        narrowed to the guilty chunk for the error message.

        Pages of raw chunks (float weights) go store/rawcopy.py's way: a 1 MiB piece of
        the file at a time, read from the packs into a buffer, hashed and written from
        it (0.23-0.24 s a GiB here against 0.25 s for `cp`); pages with compressed
        chunks are read a run at a time, decoded and written (`_write_decoded`).
        Reflinks would need the chunk bytes aligned and uncompressed in their own
        extents; ext4 has none anyway."""
        size, pages = self._plan_pages(digest)
        dest = Path(dest)
        tmp = atomic.temp_beside(str(dest))
        if size <= WHOLE_FILE_LIMIT:
            plan = [loc for page in pages() for loc in page]
            delay_point("read-after-plan")
            self._materialize_small(digest, size, plan, dest, tmp)
            if progress:
                progress(size)
            return
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        ok = False
        try:
            hasher = blake3.blake3()
            decoded = 0
            with rawcopy.RawCopy(self, fd, hasher, progress) as raw:
                for plan in self._planned_ahead(pages(), meanwhile=partial(atomic.preallocate, fd, size)):
                    if all(loc.codec == codec.RAW for loc in plan):  # float weights
                        raw.copy(plan)
                        continue
                    raw.finish()  # the file and the hash must have the raw pages before this one
                    decoded += self._write_decoded(plan, fd, hasher, progress)
                written = raw.finish() + decoded
            if written != size or hasher.hexdigest() != digest:
                for plan in pages():
                    self._find_bad_chunk(plan)
                raise CorruptionError(f"content {digest[:16]}... reassembles to other bytes: its recipe is corrupted")
            os.close(fd)
            fd = -1
            atomic.replace(tmp, dest, durable=False)  # a download: no fsync, like cp
            ok = True
        finally:
            if fd >= 0:
                os.close(fd)
            if not ok and os.path.exists(tmp):
                os.unlink(tmp)

    def _planned_ahead(self, pages: Iterator[list[ChunkLocation]],
                       meanwhile: Callable[[], None]) -> Iterator[list[ChunkLocation]]:
        """`pages`, each next one located on the planning thread while the caller copies
        this one: a 1 GiB file's ~13,000 locations cost ~30 ms of SQLite and tuples,
        which no longer come before the first byte (the first page is FIRST_PLAN_PAGE,
        located while `meanwhile` runs)."""
        ahead = self._plan_pool.submit(next, pages, None)
        try:
            meanwhile()
            while (page := ahead.result()) is not None:
                ahead = self._plan_pool.submit(next, pages, None)
                yield page
        finally:
            ahead.cancel() or ahead.exception()  # a download that failed leaves no planning behind

    def _write_decoded(self, plan: list[ChunkLocation], fd: int, hasher, progress: ProgressCallback | None) -> int:
        """pread + decode + writev, hashing each run on the hash thread while the next is
        written; returns the bytes written (all hashed by the time it returns)."""
        pending: Future | None = None
        written = 0
        try:
            for run, data in self._read_runs(plan):
                pieces = [raw for _, raw in self._decoded(run, data)]
                if pending is not None:
                    pending.result()
                pending = self._hash_pool.submit(_update_all, hasher, pieces)
                written += _writev_all(fd, pieces)
                if progress:
                    progress(sum(loc.raw_len for loc in run))
        finally:
            if pending is not None:
                pending.result()
        return written

    def materialize_many(self, items: list[tuple[str, str]], progress: ProgressCallback | None = None,
                         threads: int = 1) -> None:
        """materialize() for many files at once, each (digest, destination path); the
        destinations' folders must exist. Small files go the batch path (store/batch_read.py),
        others one by one. An error names the failed item's index in `err.item`.

        Items go a page at a time (planned, located, read in disk order and written), so
        what a download holds does not grow with its number of files: planning 100,000
        files at once held ~48 MB of locations and destinations (tracemalloc, 1 KiB
        files), a page holds ~8 MB."""
        for start in range(0, len(items), MATERIALIZE_PAGE):
            page = items[start : start + MATERIALIZE_PAGE]
            try:
                self._retry_if_repacked(partial(self._materialize_many_once, page, progress, threads))
            except Exception as err:
                if isinstance(getattr(err, "item", None), int):
                    err.item += start  # type: ignore[attr-defined]
                raise

    def _materialize_many_once(self, items: list[tuple[str, str]], progress: ProgressCallback | None,
                               threads: int) -> None:
        raws = []
        for i, (d, _) in enumerate(items):
            try:
                raws.append(_raw(d))
            except InvalidInputError as err:
                err.item = i  # type: ignore[attr-defined]
                raise
        multi, where = batch_read.plan_batch(self, raws)
        delay_point("read-after-plan")
        dests: dict[bytes, list[tuple[int, str]]] = {}
        multi_set = set(multi)
        for i, raw in enumerate(raws):
            if i not in multi_set:
                dests.setdefault(raw, []).append((i, items[i][1]))
        runs = batch_read.runs_in_disk_order([where[r] for r in dests], batch_read.BATCH_RUN)
        if threads > 1 and len(runs) > 1:
            # contiguous shares: each thread reads its part of the packs in disk order
            share = -(-len(runs) // threads)
            with ThreadPoolExecutor(threads, thread_name_prefix="lodestore-download") as pool:
                jobs = [pool.submit(batch_read.write_runs, self, runs[k : k + share], dests, progress)
                        for k in range(0, len(runs), share)]
                for job in jobs:
                    job.result()
        else:
            batch_read.write_runs(self, runs, dests, progress)
        for i in multi:
            try:
                self._materialize_once(items[i][0], items[i][1], progress=progress)
            except Exception as err:
                err.item = i  # type: ignore[attr-defined]
                raise

    def _materialize_small(self, digest: str, size: int, plan: list[ChunkLocation], dest: Path, tmp: str) -> None:
        """Small files are verified in memory before a byte reaches the disk: no hand-off
        to the hash thread (it costs more than hashing 16 KiB) and safe to run from many
        threads at once, which is how downloads of many small files go faster than cp -r."""
        pieces = [raw for run, data in self._read_runs(plan) for _, raw in self._decoded(run, data)]
        hasher = blake3.blake3()
        for piece in pieces:
            hasher.update(piece)
        if hasher.hexdigest() != digest or sum(len(p) for p in pieces) != size:
            self._find_bad_chunk(plan)
            raise CorruptionError(f"content {digest[:16]}... reassembles to other bytes: its recipe is corrupted")
        atomic.write_bytes(dest, b"".join(pieces) if len(pieces) != 1 else pieces[0], durable=False, tmp=tmp)

    def _find_bad_chunk(self, plan: list[ChunkLocation]) -> None:
        for run, data in self._read_runs(plan):
            for loc, raw in self._decoded(run, data):
                self._check_chunk(loc, raw)

    # --- transfer between stores (push, pull, export; base.py) ------------------------
    def recipes(self, digests: Iterable[str]) -> dict[str, FileRecipe]:
        """Two queries for them all, whatever their count (the digests bound as one blob):
        the files of one chunk answered in one row (index.whole_file_sizes), the files of
        several chunks a row each (index.recipe_rows). A file of one chunk (no recipe) is
        that chunk: its digest is not converted again."""
        wanted = list(dict.fromkeys(digests))
        joined = joined_digests(wanted)
        found: dict[str, FileRecipe] = {}
        for at, size in self.index.whole_file_sizes(joined):
            d = wanted[at]
            found[d] = FileRecipe(d, size, (d,))
        for at, size, n, recipe in self.index.recipe_rows(joined, chunked_only=True):
            d = wanted[at]
            found[d] = FileRecipe(d, size, tuple(c.hex() for c in recipe_chunks(b"", n, recipe or b"")))
        return found

    def missing_chunks(self, chunk_digests: Iterable[str]) -> set[str]:
        wanted = {_raw(d): d for d in chunk_digests}
        known = self.index.known_chunks(wanted)
        return {d for raw, d in wanted.items() if raw not in known}

    def holds_nothing(self) -> bool:
        """One query of the index (base.py)."""
        return self.index.holds_nothing()

    def pack_shares(self, chunk_digests: Iterable[str]) -> list[PackShare]:
        """The packs holding these chunks, from the index: one locate a page, one query
        for the packs' sizes (base.py)."""
        return pack_shares(self.index, joined_digests(list(dict.fromkeys(chunk_digests))))

    def file_packs(self, digests: Iterable[str]) -> FilePacks:
        """Three queries of the index whatever the files' count (`file_packs` below; base.py)."""
        return file_packs(self.index, list(dict.fromkeys(digests)))

    def copy_pack(self, pack_id: str, dest: str | os.PathLike[str]) -> None:
        """The pack file copied by the kernel (copy_file_range: its bytes never enter Python)."""
        try:
            shutil.copyfile(self.packs.path(pack_id), dest)
        except FileNotFoundError:
            raise NotFoundError(f"pack {pack_id} is not in the store at {self.root}") from None

    def read_chunks(self, chunk_digests: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Chunks a page at a time (PLAN_PAGE), each page located in one query and read in
        pack order with one pread per run of neighbours (at most BATCH_RUN bytes: a
        transfer holds one run and the batch it hands on); every chunk verified."""
        wanted = list(dict.fromkeys(_raw(d) for d in chunk_digests))
        for start in range(0, len(wanted), PLAN_PAGE):
            for loc, raw in self._read_chunk_page(wanted[start : start + PLAN_PAGE], self._verified_chunks):
                yield loc.digest.hex(), raw

    def read_frames(self, chunk_digests: Iterable[str]) -> Iterator[ChunkFrame]:
        """As read_chunks, each chunk as its pack holds it, not decoded nor verified here
        (the receiver does both: base.py)."""
        wanted = list(dict.fromkeys(_raw(d) for d in chunk_digests))
        for start in range(0, len(wanted), PLAN_PAGE):
            for _, frame in self._read_chunk_page(wanted[start : start + PLAN_PAGE], frames_of):
                yield frame

    def _verified_chunks(self, run: list[ChunkLocation], data: memoryview) -> Iterator[tuple[ChunkLocation, bytes]]:
        for loc, raw in self._decoded(run, data):
            self._check_chunk(loc, raw)
            yield loc, bytes(raw)

    def _read_chunk_page(self, page: list[bytes], work: Callable[[list[ChunkLocation], memoryview], Iterator[
            tuple[ChunkLocation, T]]]) -> Iterator[tuple[ChunkLocation, T]]:
        """One page of read_chunks / read_frames (`work` turns a run's bytes into what is
        yielded); a pack a gc repacked meanwhile is located again once (as
        `_retry_if_repacked` does for files), without yielding a chunk twice."""
        todo = page
        for attempt in (0, 1):
            where = self.index.locate(todo)
            absent = [c for c in todo if c not in where]
            if absent:
                raise NotFoundError(f"chunk {absent[0].hex()[:16]}... is not in the store at {self.root} "
                                    f"({len(absent)} of {len(todo)} asked are not)")
            done: set[bytes] = set()
            try:
                for run in batch_read.runs_in_disk_order([where[c] for c in todo], batch_read.BATCH_RUN):
                    length = run[-1].offset + run[-1].stored_len - run[0].offset
                    data = memoryview(self.packs.pread(run[0].pack_id, length, run[0].offset))
                    if len(data) != length:
                        raise CorruptionError(f"pack {run[0].pack_id} is truncated at offset "
                                              f"{run[0].offset + len(data)}")
                    for loc, item in work(run, data):
                        done.add(loc.digest)
                        yield loc, item
                return
            except PackMissingError as e:
                if attempt or self.index.has_pack(e.pack_id):
                    raise
                todo = [c for c in todo if c not in done]

    # --- maintenance ----------------------------------------------------------------
    @property
    def location(self) -> str:
        return str(self.root)

    @contextmanager
    def maintenance_lock(self, exclusive: bool, timeout: float | None = None) -> Iterator[None]:
        if self.read_only and not exclusive:  # a check of a store we cannot write (fsck)
            fd: int | None = acquire_shared_lock_read_only(self.root, timeout=timeout)
        else:
            fd = acquire_store_lock(self.root, exclusive=exclusive, timeout=timeout)
        if exclusive:
            self._exclusive_owner = threading.get_ident()
        try:
            yield
        finally:
            if exclusive:
                self._exclusive_owner = None
            if fd is not None:
                os.close(fd)

    @contextmanager
    def _exclusive(self, timeout: float | None = None) -> Iterator[None]:
        """The exclusive lock, unless this object holds it already (flock is per open
        file: taking it again from the same process would wait for ourselves)."""
        if self._exclusive_owner == threading.get_ident():
            yield
        else:
            with self.maintenance_lock(exclusive=True, timeout=timeout):
                yield

    def share_index(self) -> None:
        """Hook: gc and repair call it once they changed the index, before deleting any
        pack it no longer lists. Nothing to do here (the index is this folder's own);
        an index shared with other machines publishes the change (s3.py)."""

    def plan_gc(self, keep: set[str], grace: float = DEFAULT_GRACE_SECONDS,
                repack_threshold: float = DEFAULT_REPACK_THRESHOLD) -> GcPlan:
        return maintenance.plan_gc(self, keep, grace, repack_threshold)

    def gc(self, keep: Callable[[], set[str]], grace: float = DEFAULT_GRACE_SECONDS, dry_run: bool = False,
           repack_threshold: float = DEFAULT_REPACK_THRESHOLD, on_plan: Callable[[GcPlan], None] | None = None,
           lock_timeout: float | None = None) -> GcPlan:
        if dry_run:
            return maintenance.run_gc(self, keep, grace, True, repack_threshold, on_plan)
        with self._exclusive(lock_timeout):
            return maintenance.run_gc(self, keep, grace, False, repack_threshold, on_plan, lock_held=True)

    def fsck(self) -> FsckReport:
        return integrity.fsck(self)

    def index_problem(self) -> str | None:
        return integrity.index_problem(self)

    def set_aside_damaged_index(self) -> str:
        return str(self.set_aside_corrupt_index())

    def repair(self, report: FsckReport, absent: Mapping[str, int] | None = None) -> RepairResult:
        with self._exclusive():
            return integrity.repair(self, report, absent)

    def lost_files(self) -> dict[str, int]:
        return integrity.lost_files(self)

    def usage(self, groups: Mapping[K, Iterable[str]]) -> dict[K, GroupUsage]:
        return usage.group_usage(self.index, groups)

    def files_sharing_chunks(self, digests: Iterable[str]) -> set[str]:
        return usage.files_sharing_chunks(self.index, digests)

    def change_stamp(self) -> Hashable | None:
        return self.index.change_counter()

    def disk_usage(self) -> DiskUsage:
        index = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                index += (self.root / f"index.db{suffix}").stat().st_size
            except OSError:
                pass
        packs = 0
        for path in self.packs.on_disk().values():
            try:
                packs += path.stat().st_size
            except OSError:
                pass  # deleted by a gc meanwhile
        return DiskUsage(packs=packs, index=index, tmp=tree_size(self.tmp_dir))

    def holds_content(self) -> bool:
        return self.packs.any_on_disk()

    def catalog_binding(self) -> CatalogBinding | None:
        return binding.read_binding(self.root)

    def bind_catalog(self, catalog_id: str, generation: int) -> None:
        binding.bind(self.root, catalog_id, generation)

    def advance_catalog(self, catalog_id: str, generation: int) -> None:
        binding.advance(self.root, catalog_id, generation)

    def close(self) -> None:
        self._hash_pool.shutdown(wait=True)
        self._plan_pool.shutdown(wait=True)
        self.packs.close()
        with self._index_lock:
            if self._index is not None:
                self._index.close()
                self._index = None


def frames_of(run: list[ChunkLocation], data: memoryview) -> Iterator[tuple[ChunkLocation, ChunkFrame]]:
    """The chunks of a run read from a pack (`data` starts at the run's first chunk), as
    frames copied out of `data`: stored bytes as they are, not decoded nor verified."""
    base = run[0].offset
    for loc in run:
        start = loc.offset - base
        yield loc, ChunkFrame(loc.digest, loc.codec, loc.raw_len, bytes(data[start : start + loc.stored_len]))


def _update_all(hasher, pieces: list[memoryview]) -> None:
    for piece in pieces:
        hasher.update(piece)


def _writev_all(fd: int, pieces: list[memoryview]) -> int:
    """Write every piece with as few syscalls as possible (writev), handling short writes."""
    total = sum(len(p) for p in pieces)
    todo = [p for p in pieces if len(p)]
    while todo:
        n = os.writev(fd, todo[:1024])
        while n and todo:
            if n >= len(todo[0]):
                n -= len(todo[0])
                todo.pop(0)
            else:
                todo[0] = todo[0][n:]
                n = 0
    return total


def pack_shares(index: StoreIndex, joined: bytes) -> list[PackShare]:
    """The indexed packs holding the chunks of `joined` (joined_digests, each once), with
    how many of them each holds and their stored bytes (LocalContentStore.pack_shares; an
    S3 store's, from its index cache): one grouped query (StoreIndex.pack_holdings)."""
    return [PackShare(pid, size, count, stored) for pid, (size, count, stored) in index.pack_holdings(joined).items()]


def file_packs(index: StoreIndex, digests: list[str]) -> FilePacks:
    """The packs holding every chunk of the files `digests` (each once), each chunk
    counted once, and which files are of several chunks or absent (ContentStore.file_packs).
    A file of one chunk is that chunk, so the files' own digests are weighed as chunks
    in one grouped query (index.pack_holdings) and told from the absent ones by a second
    (index.whole_file_sizes, one row); the few files of several chunks have their
    recipes read (one query, chunked files alone) and their chunks not weighed already
    weighed in a fourth. Packs in the order of the first file needing each (one-chunk
    files' packs first)."""
    joined = joined_digests(digests)
    holdings = index.pack_holdings(joined)
    held = [False] * len(digests)
    for at, _ in index.whole_file_sizes(joined):
        held[at] = True
    chunked = index.recipe_rows(joined, chunked_only=True)
    if chunked:
        for at, _, _, _ in chunked:
            held[at] = True
        whole = set(split_digests(joined))
        parts = dict.fromkeys(c for _, _, n, recipe in chunked for c in recipe_chunks(b"", n, recipe or b"")
                              if c not in whole)
        for pid, (size, count, stored) in index.pack_holdings(b"".join(parts)).items():
            _, seen, seen_bytes = holdings.get(pid, (size, 0, 0))
            holdings[pid] = (size, seen + count, seen_bytes + stored)
    shares = [PackShare(pid, size, count, stored) for pid, (size, count, stored) in holdings.items()]
    return FilePacks(shares, [digests[at] for at, _, _, _ in chunked],
                     [d for d, found in zip(digests, held, strict=True) if not found])


def united_file_packs(united: UnitedRows, digests: list[str]) -> FilePacks:
    """`file_packs` answered from the rows of shared index objects not merged yet
    (UnitedRows): the same packs in the same order, the same chunked and absent files.
    A pull into a new machine asks it while its index cache merges those objects, so its
    downloads start ~0.2 s sooner (21,000 files: the merge ~0.12 s, the queries after it
    ~0.07 s; this ~0.02 s). Only where the united rows are the whole index (a cache that
    held nothing, everything in one merge): `file_packs` over the merged cache answers
    the same (tests/store/test_s3_index_objects.py holds them to it)."""
    raw = split_digests(joined_digests(digests))
    holdings: dict[str, list[int]] = {}  # pack id -> [size, chunks, stored bytes], first needed first

    def weigh(chunk_digests: Iterable[bytes]) -> None:
        for c in chunk_digests:
            row = united.chunks.get(c)
            if row is None:
                continue
            held = holdings.get(row[1])
            if held is None:
                holdings[row[1]] = [united.pack_sizes.get(row[1], 0), 1, row[3]]
            else:
                held[1] += 1
                held[2] += row[3]

    weigh(raw)
    whole = set(raw)
    chunked: list[str] = []
    absent: list[str] = []
    parts: dict[bytes, None] = {}
    for name, d in zip(digests, raw, strict=True):
        file_row = united.files.get(d)
        if file_row is None:
            absent.append(name)
        elif file_row[3] is not None:
            chunked.append(name)
            parts.update((c, None) for c in recipe_chunks(d, file_row[2], file_row[3]) if c not in whole)
    weigh(parts)
    return FilePacks([PackShare(pid, size, count, stored) for pid, (size, count, stored) in holdings.items()],
                     chunked, absent)

