"""Packs of an S3 content store: ``packs/ab/<id>.pack`` objects, read through a local cache.

`BucketPackReader` is the local store's PackReader (packs.py) with the bucket behind
it, so every read path of the local store (whole files, batched small files, the
kernel copy of raw chunks, fsck, repair, gc's repack) works unchanged:

- a read of a pack not in the cache fetches it: a short read (one small file, a run
  of up to RANGE_READ_MAX bytes) with one ranged GET, left uncached; a longer one
  fetches the whole pack into the cache folder (temp + rename), where later reads find
  it. A reader that knows it will read much of some packs (a large file) has them
  fetched whole ahead of it (`prefetching`), PREFETCH_PACKS at a time; its short reads
  of those packs wait for the fetch instead of asking for ranges of them again. A read
  of many chunks scattered over packs (`read_pieces`: a transfer) is ranged GETs in
  parallel into per-thread buffers, not cached. The cache is trimmed to its cap, least
  recently used first (`LODESTORE_S3_CACHE_MAX_BYTES`, default DEFAULT_CACHE_MAX_BYTES);
  an evicted pack's open descriptors stay valid.
- fsck and repair see the bucket's bytes, not the cache's: `entries()` fetches the pack
  afresh (a copy cached earlier proves nothing about the object);
- gc and repair place, delete and set aside packs in the bucket (`put`, `delete`,
  `quarantine`), the cache following.

Pack objects are write-once: named by a fresh random id, uploaded whole (multipart for
large ones), never rewritten; gc deletes them only after the index no longer lists them.
Every chunk read from them is verified by digest by the reader above (local.py).
"""

from __future__ import annotations

import mmap
import os
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from lodestore import settings
from lodestore.config import parse_size
from lodestore.errors import CorruptionError, InvalidInputError, NotFoundError
from lodestore.store.packs import PackEntry, PackMissingError, PackReader
from lodestore.store.s3_objects import Bucket

PACK_PREFIX = "packs/"
QUARANTINE_PREFIX = "quarantine/"
# A read of at most this many bytes from a pack not cached is one ranged GET; a longer
# one fetches the pack (64 MiB at most) into the cache.
RANGE_READ_MAX = 8 * 1024 * 1024
PREFETCH_PACKS = 4  # packs fetched ahead of a reader at once (each in parallel parts)
DEFAULT_CACHE_MAX_BYTES = 4 * 1024**3
# Reads of many chunks (a transfer, read_chunks): ranges of at most RANGE_PIECE bytes, a
# gap of up to RANGE_GAP unwanted bytes read through rather than split into two GETs
# (a request costs more than that many bytes on a LAN), READ_THREADS GETs in flight and
# at most READ_AHEAD_BYTES of stored bytes fetched ahead of the reader (memory stays flat:
# every range ahead is held whole). A ranged GET on SeaweedFS costs milliseconds whatever
# its size, so ranges are large; measured at --scale 1 (docs/storage.md): 8 MiB ranges
# read faster alone but held 190-220 MB at the pull's peak, 3 of 4 MiB ~155 MB.
RANGE_PIECE = 4 * 1024 * 1024
RANGE_GAP = 256 * 1024
READ_THREADS = 3
READ_AHEAD_BYTES = 12 * 1024 * 1024
T = TypeVar("T")
P = TypeVar("P", bound=tuple)  # a piece: (pack id, offset, length, what the caller attaches)


def pack_name(pack_id: str) -> str:
    return f"{PACK_PREFIX}{pack_id[:2]}/{pack_id}.pack"


def cache_max_bytes() -> int:
    """The pack cache's cap: $LODESTORE_S3_CACHE_MAX_BYTES, default 4 GiB."""
    value = settings.s3_cache_max_bytes()
    if not value:
        return DEFAULT_CACHE_MAX_BYTES
    try:
        return parse_size(value)
    except InvalidInputError as e:
        raise InvalidInputError(f"{settings.S3_CACHE_MAX_BYTES}: {e}") from None


def _pack_id(name: str) -> str | None:
    base = name.rsplit("/", 1)[-1]
    return base[: -len(".pack")] if base.endswith(".pack") else None


class BucketPackReader(PackReader):
    def __init__(self, cache_dir: Path, bucket: Bucket, max_bytes: int | None = None):
        super().__init__(cache_dir)
        self.bucket = bucket
        self.max_bytes = cache_max_bytes() if max_bytes is None else max_bytes
        self._fetching: dict[str, threading.Lock] = {}
        self._fetch_guard = threading.Lock()
        self._prefetched: Counter[str] = Counter()  # packs being fetched whole for a reader

    # --- the cache --------------------------------------------------------------
    def _cached(self, pack_id: str) -> bool:
        return pack_id in self._fds or self.path(pack_id).exists()

    def fetch(self, pack_id: str, fresh: bool = False) -> Path:
        """The pack in the cache folder, downloaded if absent (or if `fresh`)."""
        path = self.path(pack_id)
        with self._fetch_guard:
            lock = self._fetching.setdefault(pack_id, threading.Lock())
        with lock:
            if fresh or not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    self.bucket.download_file(pack_name(pack_id), path)
                except NotFoundError:
                    raise PackMissingError(f"pack {pack_id} is missing from the store {self.bucket.url}; "
                                           "run `lode fsck`", pack_id) from None
                self.forget({pack_id})  # a descriptor of an earlier copy
                self.trim(keep=pack_id)
            else:
                try:
                    os.utime(path)  # recently used: evicted last
                except FileNotFoundError:
                    return self.fetch(pack_id)
        return path

    @contextmanager
    def prefetching(self, pack_ids: list[str]) -> Iterator[None]:
        """Fetch these packs whole into the cache, PREFETCH_PACKS at a time, while the
        caller reads them: one download in parallel parts per pack instead of a ranged GET
        per run of chunks, one after the other. A read of one of them waits for its fetch
        (or fetches it) rather than asking for a range of it. The caller keeps what it
        prefetches within the cache's cap (a pack evicted before it is read is fetched again)."""
        todo = [p for p in dict.fromkeys(pack_ids) if not self._cached(p)]
        if not todo:
            yield
            return
        with self._fetch_guard:
            self._prefetched.update(todo)
        try:
            with ThreadPoolExecutor(PREFETCH_PACKS, thread_name_prefix="lodestore-s3-prefetch") as pool:
                fetches = [pool.submit(self.fetch, p) for p in todo]
                try:
                    yield
                finally:
                    for f in fetches:
                        f.cancel()  # an error of a fetch is the reader's to meet, in its own words
        finally:
            with self._fetch_guard:
                self._prefetched.subtract(todo)
                self._prefetched = +self._prefetched

    def trim(self, keep: str | None = None) -> None:
        """Evict least recently used packs (but `keep`) until the cache is under its cap."""
        found = []
        for path in self.dir.glob("*/*.pack"):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            found.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in found)
        for _, size, path in sorted(found):
            if total <= self.max_bytes:
                break
            if path.stem == keep:
                continue
            path.unlink(missing_ok=True)
            total -= size

    def evict(self, pack_id: str) -> None:
        """Drop the cached copy of a pack (tests: the next read goes to the bucket)."""
        self.forget({pack_id})
        self.path(pack_id).unlink(missing_ok=True)

    def cached_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.dir.glob("*/*.pack"))

    # --- reads (PackReader) -----------------------------------------------------------
    def open_fd(self, pack_id: str) -> int:
        if not self._cached(pack_id):
            self.fetch(pack_id)
        return super().open_fd(pack_id)

    def pread(self, pack_id: str, length: int, offset: int) -> bytes:
        if self._cached(pack_id) or length > RANGE_READ_MAX or pack_id in self._prefetched:
            return super().pread(pack_id, length, offset)
        try:
            data = self.bucket.get_range(pack_name(pack_id), offset, length)
        except NotFoundError:
            raise PackMissingError(f"pack {pack_id} is missing from the store {self.bucket.url}; run `lode fsck`",
                                   pack_id) from None
        if len(data) != length:
            raise CorruptionError(f"pack {pack_id} is truncated at offset {offset + len(data)}")
        return data

    def read_pieces(self, pieces: Iterable[P], work: Callable[[P, bytes | memoryview], T]) -> Iterator[T]:
        """`work(piece, data)` of each (pack id, offset, length, ...) piece, in order: pieces of
        cached packs read here, the others with one ranged GET each, READ_THREADS at a time
        and at most READ_AHEAD_BYTES ahead of the caller, `work` (decoding, verifying) on the
        same threads, so fetching, checking and the caller's own work overlap. `pieces` is
        consumed as the reads go. An error of a piece is raised when the caller reaches it
        (in its own words: PackMissingError, CorruptionError, RemoteStoreError); leaving
        early cancels what was not started and waits for what was."""
        pending: deque[tuple[int, Future]] = deque()
        ahead = 0
        todo = iter(pieces)
        with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="lodestore-s3-read") as pool:
            try:
                while True:
                    for piece in todo:
                        pending.append((piece[2], pool.submit(self._read_piece, piece, work)))
                        ahead += piece[2]
                        if ahead >= READ_AHEAD_BYTES:
                            break
                    if not pending:
                        return
                    length, done = pending.popleft()
                    ahead -= length
                    yield done.result()
            finally:
                for _, f in pending:
                    f.cancel()

    def _read_piece(self, piece: P, work: Callable[[P, bytes | memoryview], T]) -> T:
        """One piece: read from the cache if the pack is there, else with one ranged GET
        into a buffer of its own, handed to `work`, which may keep views into it (no
        per-chunk copies). The buffer is an anonymous mapping, unmapped as soon as no
        view of it is left: ranges allocated on the fetching threads and released on
        the caller's would otherwise grow the allocator's heaps (glibc serves a large
        block from its heap once one was freed, and keeps the heap)."""
        pack_id, offset, length = piece[:3]
        if self._cached(pack_id) or pack_id in self._prefetched:
            return work(piece, self.pread(pack_id, length, offset))
        view = memoryview(mmap.mmap(-1, length))
        try:
            got = self.bucket.get_range_into(pack_name(pack_id), offset, view)
        except NotFoundError:
            raise PackMissingError(f"pack {pack_id} is missing from the store {self.bucket.url}; run `lode fsck`",
                                   pack_id) from None
        if got != length:
            raise CorruptionError(f"pack {pack_id} is truncated at offset {offset + got}")
        return work(piece, view)

    def read_all(self, pack_id: str) -> bytes:
        self.fetch(pack_id)
        return super().read_all(pack_id)

    def entries(self, pack_id: str) -> tuple[list[PackEntry], bool]:
        """From the bucket's copy, fetched afresh (fsck and repair judge the object)."""
        self.fetch(pack_id, fresh=True)
        return super().entries(pack_id)

    # --- what the bucket holds ----------------------------------------------------------
    def listing(self) -> dict[str, tuple[int, float]]:
        out = {}
        for o in self.bucket.objects(PACK_PREFIX):
            pid = _pack_id(o.name)
            if pid is not None:
                out[pid] = (o.size, o.modified)
        return out

    def on_disk(self) -> dict[str, Path]:
        """pack id -> cache path of every pack in the bucket (fetched when read)."""
        return {pid: self.path(pid) for pid in self.listing()}

    def any_on_disk(self) -> bool:
        return self.bucket.any(PACK_PREFIX)

    # --- placing and removing (gc, repair) ---------------------------------------------
    def put(self, pack_id: str, tmp_path: Path, durable: bool) -> None:
        """Upload the pack, then keep it in the cache (it was just written here)."""
        self.bucket.upload_file(pack_name(pack_id), tmp_path)
        super().put(pack_id, tmp_path, durable=False)

    def delete(self, pack_id: str) -> int:
        info = self.bucket.head(pack_name(pack_id))
        self.bucket.delete([pack_name(pack_id)])
        self.evict(pack_id)
        return 0 if info is None else info.size

    def quarantine(self, pack_id: str, folder: Path, durable: bool) -> None:
        """Copy the object to ``quarantine/<id>.pack`` (kept, not deleted), then drop it."""
        if self.bucket.head(pack_name(pack_id)) is not None:
            self.bucket.copy(pack_name(pack_id), f"{QUARANTINE_PREFIX}{pack_id}.pack")
            self.bucket.delete([pack_name(pack_id)])
        self.evict(pack_id)
