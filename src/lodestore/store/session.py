"""Write sessions of the local store: files in, chunks into packs.

- many small files (`add_files`): stat, stat cache, read and hash each file, then look
  a batch of digests up at once (one query per batch, not per file), compress what is
  new and append it to the pack, the batch's new files as one block (packs.py). On the
  calling thread alone: measured faster than a reader thread beside it (see _probes:
  the GIL convoys on many tiny syscalls);
- one large file, on three threads (stream.py; the GIL is released by every heavy step:
  read, pyfastcdc's cut, blake3, zstd, writev): the calling thread reads each window and
  feeds the whole-file hash; a cutter thread cuts it into chunks, hashes and probes each
  chunk; the calling thread then looks the window's chunk digests up (in a snapshot of
  the index's chunk digests where the index holds few, else one query per window:
  _take_index_snapshot), compresses what the probe says may shrink, and appends the new chunks as one
  block straight from the window buffer (no copy), which the session's write thread
  writes (packs.WriteQueue) before the buffer is reused. Four 1 MiB window buffers
  circulate, so memory is bounded whatever the file size.

Every pack of a session is written on its one write thread, in order; full packs are
closed (trailer, fsync) on the pack-close thread meanwhile.

A large file is hashed first (blake3 on all cores) only when a stored file of the same
size exists: only then can it be a duplicate, and then it is found by its digest
without being chunked. Otherwise it is chunked in one pass.

Crash-safe write order: see local.py. The session holds the store's shared gc lock
from its start until `close()` (the with block's end), so a caller that commits a
catalog version inside the block is never raced by a sweep (gc's grace period is then
only a backstop for writers the lock cannot see).
"""

from __future__ import annotations

import os
import shutil
import stat as stat_mod
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import blake3

from lodestore.errors import (
    CorruptionError,
    FileChangedError,
    InvalidInputError,
    NotFoundError,
    SourceFileNotFoundError,
)
from lodestore.store import atomic, codec
from lodestore.store.base import (
    MAX_FRAME,
    CheckedPack,
    ChunkFrame,
    FileRecipe,
    FileRef,
    ProgressCallback,
    WriteSession,
)
from lodestore.store.chunking import cut_window, make_chunker
from lodestore.store.index import (
    DIGEST_LEN,
    TOUCH_FRESH_SECONDS,
    ChunkLocation,
    StatKey,
    StatRow,
    digest_bytes,
    joined_digests,
    split_digests,
)
from lodestore.store.layout import CHUNK_MAX, PACK_TARGET_SIZE, WHOLE_FILE_LIMIT
from lodestore.store.locks import acquire_store_lock
from lodestore.store.packs import RECORD_HEADER, PackEntry, PackWriter, WriteQueue, check_received_pack
from lodestore.store.staging import StagedChunks
from lodestore.store.stream import WINDOW, Piece, Pieces, hash_stream, stream_chunks
from lodestore.store.workdirs import new_work_dir
from lodestore.testhooks import delay_point, pause_point

if TYPE_CHECKING:
    from lodestore.store.local import LocalContentStore

# Git's racy-timestamp rule: a stat-cache entry is trusted only if the file's mtime is
# more than this long before the moment the file was *about to be read* (recorded_ns):
# a rewrite after the read that kept size, mtime and ctime (a coarse timestamp tick)
# would then have an mtime at least this close to recorded_ns. 2 s covers coarse
# filesystems (FAT: 2 s, ext3/HFS+: 1 s).
RACY_WINDOW_NS = 2_000_000_000
_BATCH_FILES = 256  # small files per hand-off between the producer and the consumer
_BATCH_BYTES = 4 * 1024 * 1024
# Files probed per batch of add_files: each batch costs a few queries and list passes of
# its own, so 100,000 files of 1 KiB in batches of 256 paid them 391 times (a batch of
# 1,024 such files holds ~1 MiB; _BATCH_BYTES still caps bigger ones).
_PROBE_BATCH_FILES = 1024
_LARGE = object()  # marker: a file the consumer streams itself
MAX_RECEIVED_CHUNK = MAX_FRAME  # a received chunk larger than this is refused unread (base.py)
_RECIPE_PAGE = 16_384  # chunk locations a recipe check holds at once (as a download's plan pages)
# Per-file rows (new files, stat-cache entries, files re-used) a session keeps in memory
# before it moves them to its staging database (staging.py): logging 1,000,000 small
# files held ~600 bytes a file here until commit.
SPILL_ROWS = 8192
# Received frames are views of the source's range buffers (s3_packs.py), and a buffer is
# freed only once every write holding a view of it is done: at most this many calls of
# add_frames may wait for the write thread (its queue alone lets 6 jobs of 4 MiB wait,
# each pinning its ranges). Measured, dataset_v2 pulled at --scale 1, 3 A/B rounds: peak
# 160-173 MB unbounded, 156 MB with 4, 152-155 MB with 1 (slower); time the same.
FRAME_WRITES_AHEAD = 4
# Entries of packs received whole (adopt_pack) a session holds in memory until its
# commit indexes them in one executemany (~300 bytes a chunk: 16,384 are ~5 MB; a
# transfer's 64 MiB batch of 16 KiB files holds 4,096). Staging them first, then copying
# them into the index at commit, cost a pull of 21,000 files ~0.1 CPU-s more; past this
# many the packs adopted go to the staging database as before (memory stays bounded).
ADOPTED_ROWS = 16384
# A large file's stream finds which of its chunks the index holds in a snapshot of the
# index's chunk digests (one set, loaded once a session: _index_snapshot) instead of by one
# query a window, where the index holds few enough for loading them to cost less than the
# queries: inside a log a query costs the calling thread ~55 us of CPU a 1 MiB window of
# new bytes, ~100 us where most chunks are found (each row found is a step that gives the
# GIL up, and the cutter and writer threads take it meanwhile), against 0.4-1 us a digest
# loaded. So at most SNAPSHOT_DIGESTS_A_WINDOW digests for each window of the file, and
# never more than SNAPSHOT_MAX_DIGESTS (~7 MB in memory, ~5 GiB of stored chunks).
SNAPSHOT_DIGESTS_A_WINDOW = 64
SNAPSHOT_MAX_DIGESTS = 65536
# Packs received whole checked at once by one session (check_pack, called on several
# download threads): hashing beyond the cores buys nothing and each check maps a span of
# its pack. Their fsyncs are not counted: they wait for the disk, not for a core.
CHECKS_AT_ONCE = 2
# Reserved on disk beyond a large file's coming bytes for its pack's own headers (~41
# bytes a chunk, ~1,000 chunks a pack) and trailer; what is left unused is given back.
_RESERVE_SLACK = 1024 * 1024


def stat_key(st: os.stat_result) -> StatKey:
    # tuple.__new__ straight: the NamedTuple's own __new__ is a Python call (twice a small file)
    return tuple.__new__(StatKey, (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev))


class LocalWriteSession(WriteSession):
    """Adds files to the store; see the module docstring."""

    def __init__(self, store: LocalContentStore):
        self.store = store
        self._lock_fd = acquire_store_lock(store.root, exclusive=False)
        # a session dropped without close() must not hold the gc lock for the process's life
        self._release = weakref.finalize(self, os.close, self._lock_fd)
        self.dir = new_work_dir(store.tmp_dir)
        self.id = self.dir.name
        self.committed = False
        self._closed = False
        self._chunker = make_chunker()
        self._writer: PackWriter | None = None
        self._pack_id: str | None = None
        self._open: set[bytes] = set()  # chunks of the current pack, not yet staged
        self._entries_of: PackWriter | None = None  # the pack _entries_by_digest maps (_open_entries)
        self._entries_by_digest: dict = {}
        self._staged = StagedChunks(self.dir / "staged.db")
        # packs adopted whole and held in memory (ADOPTED_ROWS): (pack id, entries) each,
        # their chunks' raw sizes by digest (add_recipes' one-chunk files are found here
        # without a query), and their locations by digest once a recipe needs them
        self._received: list[tuple[str, list[PackEntry]]] = []
        self._received_rows = 0
        self._received_sizes: dict[bytes, int] = {}
        self._received_where: dict[bytes, ChunkLocation] = {}
        self._received_mapped = 0  # packs of _received mapped into _received_where
        self._packs: list[tuple[str, PackWriter, int, Future]] = []
        self._new_files: dict[bytes, tuple[int, int, bytes | None]] = {}
        # every chunk digest the index held when the session's first large file was chunked,
        # if few enough (SNAPSHOT_MAX_DIGESTS); else None: looked up a window at a time
        self._index_snapshot: set[bytes] | None = None
        # small files read since the last spill of stat-cache rows: their file rows are
        # derived from those rows (_memory_file_rows, staging.spill_stat_entries), so this
        # holds their digests alone, to store a content read twice once
        self._small_files: set[bytes] = set()
        self._new_sizes: set[int] = set()
        self._reused: set[bytes] = set()  # files already indexed: re-touched at commit (gc grace)
        self._stat_entries: list[tuple[str, StatKey, bytes, int]] = []
        # full packs are closed (trailer + fsync) on their own thread
        self._finish_pool = ThreadPoolExecutor(1, thread_name_prefix="lodestore-pack-close")
        # every pack of the session is written on one thread, in order (packs.WriteQueue)
        self._writes = WriteQueue()
        # bytes of the large file being chunked not yet stored: what its next pack reserves
        # on disk (packs.PackWriter `reserve`); 0 outside a large file's stream
        self._stream_left = 0
        self._frame_writes: deque[threading.Event] = deque()  # add_frames' calls not yet written
        self._checking = threading.BoundedSemaphore(CHECKS_AT_ONCE)  # check_pack's checks
        weakref.finalize(self, self._writes.close)  # a session dropped without close() stops its thread too

    # --- stat cache -------------------------------------------------------------
    def _stat_rows(self, paths: list[str]) -> dict[str, StatRow]:
        """The stat-cache rows of `paths`: one range scan (or one query per 900) for the
        whole call, held for the call alone (a log of 1,000,000 files calls in batches)."""
        return self.store.index.statcache_lookup(paths)

    # --- adding -----------------------------------------------------------------
    def add_file(self, path: str | os.PathLike[str], progress: ProgressCallback | None = None) -> FileRef:
        return self.add_files([path], progress)[0]

    def add_files(self, paths, progress: ProgressCallback | None = None) -> list[FileRef]:
        """Store many files; returns their refs in order. Raises on the first file that
        is missing, not regular, or changes while read (nothing is stored for it)."""
        return [FileRef(digest, size) for digest, size in self.add_file_rows(paths, progress)]

    def add_file_rows(self, paths, progress: ProgressCallback | None = None) -> list[tuple[str, int]]:
        """add_files, answered as (hex digest, size) pairs (base.py)."""
        self._check_open()
        paths = [_absolute(p) for p in paths]
        rows = self._stat_rows(paths)
        answers: list[tuple[str, int]] = []
        for batch in self._probes(paths, rows):
            answers.extend(self._consume(batch, progress))
            self._spill_if_large()
        return answers

    def _spill_if_large(self) -> None:
        """Move the per-file rows to the staging database once there are SPILL_ROWS of a
        kind (index.commit_session reads them from there)."""
        if len(self._stat_entries) >= SPILL_ROWS:
            self._staged.spill_stat_entries([(p, *k, d, r) for p, k, d, r in self._stat_entries], WHOLE_FILE_LIMIT)
            self._stat_entries = []
            self._small_files = set()
        if len(self._new_files) >= SPILL_ROWS:
            self._staged.spill_files([(d, s, n, r) for d, (s, n, r) in self._new_files.items()])
            self._new_files = {}
        if len(self._reused) >= SPILL_ROWS:
            self._staged.spill_reused(self._reused)
            self._reused = set()

    def _is_new_file(self, digest: bytes) -> bool:
        """Stored by this session already (in memory, or spilled)."""
        return (digest in self._new_files or digest in self._small_files
                or bool(self._staged.known_files([digest])))

    def new_file_rows(self) -> Iterator[tuple[bytes, int, int, bytes | None]]:
        """Every file this session stored: (digest, size, chunk_count, recipe)."""
        yield from self._staged.spilled_files()
        yield from self._memory_file_rows()

    def _memory_file_rows(self) -> list[tuple[bytes, int, int, bytes | None]]:
        """The file rows not spilled yet: `_new_files`', and the small files' read since
        the last spill, from their stat-cache rows (a file of at most WHOLE_FILE_LIMIT
        bytes is one chunk named by its digest: no recipe)."""
        rows = {d: (d, s, n, r) for d, (s, n, r) in self._new_files.items()}
        for _, key, digest, _ in self._stat_entries:
            if key.size <= WHOLE_FILE_LIMIT:
                rows.setdefault(digest, (digest, key.size, 1, None))
        return list(rows.values())

    def reused_digests(self) -> Iterator[bytes]:
        """Every file already stored that this session used again."""
        yield from self._staged.spilled_reused()
        yield from self._reused

    def _probe(self, path: str, row: StatRow | None, fresh_after_ns: int) -> tuple:
        """(path, key, digest | None, data | _LARGE, recorded_ns), or for a stat-cache
        hit (path, size, digest, None, stale: the file must be touched at commit).

        `row` (the path's stat-cache row, if any) vouches for the file only if size, mtime,
        ctime, inode and device are all as recorded, compared field by field (no tuple
        built for a hit), and the file's mtime is more than RACY_WINDOW_NS before the row
        was recorded. A hit recorded before `fresh_after_ns` is stale, so its gc grace
        clock restarts at commit: the session that recorded the row restarted it when it
        committed (or left it, restarted less than TOUCH_FRESH_SECONDS before), so a row
        recorded since `fresh_after_ns` vouches for a clock restarted at most twice
        TOUCH_FRESH_SECONDS ago, well inside gc's grace (minutes)."""
        if row is None:
            return self._read_new(path)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise SourceFileNotFoundError(f"no such file: {path}") from None
        if not stat_mod.S_ISREG(st.st_mode):
            raise InvalidInputError(f"{path} is not a regular file")
        if (row[1] == st.st_size and row[2] == st.st_mtime_ns and row[3] == st.st_ctime_ns
                and row[4] == st.st_ino and row[5] == st.st_dev and st.st_mtime_ns < row[7] - RACY_WINDOW_NS):
            return path, st.st_size, row[6], None, row[7] < fresh_after_ns
        key = stat_key(st)
        if st.st_size > WHOLE_FILE_LIMIT:
            return path, key, None, _LARGE, 0
        return self._read_small(path, key)

    def _read_new(self, path: str) -> tuple:
        """_probe of a file no stat-cache row names (a first log): opened first and
        stat'ed through its descriptor, one path lookup instead of two (stat, then open).
        O_NONBLOCK: a FIFO put where a file was is refused at once, not waited on (and
        O_NOCTTY: a terminal opened so never becomes this process's own)."""
        recorded = time.time_ns()  # before the read: see RACY_WINDOW_NS
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        except FileNotFoundError:
            raise SourceFileNotFoundError(f"no such file: {path}") from None
        try:
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode):
                raise InvalidInputError(f"{path} is not a regular file")
            key = stat_key(st)
            if key.size > WHOLE_FILE_LIMIT:
                return path, key, None, _LARGE, 0
            return _read_whole(fd, path, key, recorded)
        finally:
            os.close(fd)

    def _read_small(self, path: str, key: StatKey) -> tuple:
        recorded = time.time_ns()  # before the read: see RACY_WINDOW_NS
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # removed between stat and open
            raise SourceFileNotFoundError(f"no such file: {path}") from None
        try:
            return _read_whole(fd, path, key, recorded)
        finally:
            os.close(fd)

    def _probes(self, paths: list[str], rows: dict[str, StatRow]) -> Iterator[list[tuple]]:
        """Batches of probes, in order, on the calling thread.

        Small files are read on one thread on purpose: each costs a handful of short
        syscalls that drop and retake the GIL, and a reader thread beside the consumer
        convoys with it. Measured (20,000 / 21,000 files of 16 KiB, dataset_v1 / v2):
        inline 0.85-0.90 / 0.62-0.70 s, reader thread + consumer 1.16-1.37 / 0.74-0.83 s,
        two reader threads 0.95-1.06 s for v2. A batch is at most _PROBE_BATCH_FILES files
        or _BATCH_BYTES of data (or one large file, which streams on two threads)."""
        batch, size = [], 0
        fresh_after_ns = time.time_ns() - int(TOUCH_FRESH_SECONDS * 1e9)
        row_of = rows.get
        for p in paths:
            probe = self._probe(p, row_of(p), fresh_after_ns)
            batch.append(probe)
            data = probe[3]
            if data is not None and data is not _LARGE:
                size += len(data)
            if len(batch) >= _PROBE_BATCH_FILES or size >= _BATCH_BYTES or data is _LARGE:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch

    def _consume(self, batch: list[tuple], progress: ProgressCallback | None) -> list[tuple[str, int]]:
        """Register a batch of probes: at most two queries for the batch, whatever its size.

        A file read now needs only "is its chunk stored?" (a small file is one chunk under
        its own digest); its file row is upserted at commit, which also restarts the gc
        grace clock of a file that was already indexed. A stat-cache hit needs no query
        (its row names a stored file: statcache_lookup) unless its row is stale (_probe):
        then one query for the batch tells which of those files some session touched
        since, and the others are touched at commit.

        A small file stored earlier in this session is known by `_small_files`, which holds
        those read since the last spill of stat-cache rows (at most SPILL_ROWS): one read
        before those and not in the open pack is stored again (asking the spilled rows
        cost a filter pass and often a query per batch, ~5 % of logging 100,000 small
        files). The waste is bounded (at most one copy of a content per SPILL_ROWS new
        files, dead bytes that gc's repack reclaims) and the index keeps one location per
        chunk and one row per file."""
        new_files = self._new_files
        small = self._small_files
        stale = [p[2] for p in batch if p[3] is None and p[4] and p[2] not in new_files and p[2] not in small]
        if stale:
            touched = self.store.index.touched_since(stale, time.time() - TOUCH_FRESH_SECONDS)
            self._reused.update(d for d in stale if d not in touched)
        fresh = [p[2] for p in batch
                 if p[3] is not None and p[3] is not _LARGE and p[2] not in new_files and p[2] not in small]
        absent = set(self._unknown_chunks(fresh, whole_files=True)) if fresh else set()
        refs = []
        new_chunks: list[tuple[bytes, bytes, None]] = []  # appended as one block (packs.py): back to back
        for path, key, digest, data, recorded in batch:
            if data is None:  # a stat-cache hit (`key` is the size): the file is stored (statcache_lookup)
                if progress:
                    progress(key)
                refs.append((digest.hex(), key))
                continue
            if data is _LARGE:
                self._append_all(new_chunks)
                new_chunks = []
                digest, recorded = self._add_large(path, key, progress)
            else:
                if digest not in small and digest not in new_files:
                    if digest in absent:
                        absent.discard(digest)
                        new_chunks.append((digest, data, None))
                    small.add(digest)  # its file row: from its stat-cache row (_memory_file_rows)
                if progress:
                    progress(key.size)
            self._stat_entries.append((path, key, digest, recorded))
            refs.append((digest.hex(), key.size))
        self._append_all(new_chunks)
        return refs

    def add_bytes(self, data: bytes) -> FileRef:
        self._check_open()
        data = bytes(data)
        digest = blake3.blake3(data).digest()
        if self._is_new_file(digest) or self.store.index.file_row(digest) is not None:
            if not self._is_new_file(digest):
                self._reused.add(digest)
            return FileRef(digest.hex(), len(data))
        view = memoryview(data)
        if len(data) <= WHOLE_FILE_LIMIT:
            if self._unknown_chunks([digest]):
                self._append_all([(digest, view, None)])
            entry: tuple[int, int, bytes | None] = (len(data), 1, None)
        else:
            pieces, pos = [], 0
            for piece in cut_window(self._chunker, view, final=True):
                pieces.append(Piece(pos, pos + len(piece), blake3.blake3(piece).digest(), codec.probe_says_raw(piece)))
                pos += len(piece)
            recipe = self._store_window(view, pieces)
            entry = (len(data), len(recipe) // DIGEST_LEN, bytes(recipe))
        self._new_files[digest] = entry
        self._new_sizes.add(len(data))
        return FileRef(digest.hex(), len(data))

    # --- large files -------------------------------------------------------------
    def _add_large(self, path: str, key: StatKey, progress: ProgressCallback | None) -> tuple[bytes, int]:
        recorded = time.time_ns()
        try:
            f = open(path, "rb", buffering=0)  # noqa: SIM115 (closed by the with below)
        except FileNotFoundError:
            raise SourceFileNotFoundError(f"no such file: {path}") from None
        with f:
            if stat_key(os.fstat(f.fileno())) != key:
                raise FileChangedError(f"{path} changed while it was being read; nothing was stored for it")
            digest = None
            if key.size in self._new_sizes or self.store.index.has_file_of_size(key.size):
                digest = hash_stream(f)
                if self._is_new_file(digest) or self.store.index.known_files([digest]):
                    if stat_key(os.fstat(f.fileno())) != key:
                        raise FileChangedError(f"{path} changed while it was being read; nothing was stored for it")
                    if not self._is_new_file(digest):
                        self._reused.add(digest)
                    if progress:
                        progress(key.size)
                    return digest, recorded
                f.seek(0)
            digest, recipe = self._chunk_stream(f, key.size, digest, progress)
            if stat_key(os.fstat(f.fileno())) != key:
                # What was read may be a torn mix of two states: it must not become a file of
                # this session (its chunks are valid by digest; unreferenced, gc reclaims them).
                raise FileChangedError(f"{path} changed while it was being read; nothing was stored for it")
        if not self._is_new_file(digest):
            if self.store.index.known_files([digest]):
                self._reused.add(digest)
            else:
                self._new_files[digest] = (key.size, len(recipe) // DIGEST_LEN, bytes(recipe))
                self._new_sizes.add(key.size)
        return digest, recorded

    def _chunk_stream(self, f, size: int, digest: bytes | None, progress) -> tuple[bytes, bytearray]:
        self._stream_left = size
        self._take_index_snapshot(size)
        try:
            return stream_chunks(f, size, self._chunker, self._store_window, self._after_writes, digest, progress)
        finally:
            self._stream_left = 0

    def _take_index_snapshot(self, size: int) -> None:
        """Load the index's chunk digests for the windows of a `size`-byte file to be
        looked up in (see SNAPSHOT_DIGESTS_A_WINDOW), once a session, if there are few
        enough for that to pay; a store holding more is asked a window at a time, as
        before (counting them stops at the limit: ~1.5 ms for 65,536 in SQLite).

        A snapshot does not see chunks that other sessions commit after it is loaded: a
        chunk of this file that one of them stores meanwhile is stored here again. Both
        copies are valid; the commit indexes one (INSERT OR IGNORE, as for two sessions
        storing a new chunk at once) and gc's repack reclaims the other's dead bytes."""
        if self._index_snapshot is None:
            windows = -(-size // WINDOW)
            self._index_snapshot = self.store.index.chunk_digests(
                min(SNAPSHOT_MAX_DIGESTS, SNAPSHOT_DIGESTS_A_WINDOW * windows))

    def _after_writes(self, give_back) -> None:
        """Call `give_back()` once every byte appended so far is written, without
        waiting: the packs hold views of a window, which is reused after that. Every
        pack of the session writes through one queue (packs.WriteQueue), so a job queued
        now runs after the writes of a pack rotated meanwhile too."""
        if self._writer is not None:
            self._writer.hand_off()
        self._writes.then(give_back)
        pause_point("log-window-queued")  # tests kill a log here, its writes in flight

    def _store_window(self, window: memoryview, pieces: Pieces) -> bytearray:
        """Append the new chunks among `pieces` (stream.Piece: where in `window`, digest,
        probed raw) as one block, stored back to back in the pack."""
        if pieces:
            self._stream_left = max(0, self._stream_left - pieces[-1].end)
        absent = set(self._unknown_chunks([p.digest for p in pieces], indexed=self._index_snapshot))
        recipe = bytearray()
        new_chunks = []
        for start, end, d, raw in pieces:
            recipe += d
            if d in absent:
                absent.discard(d)  # a chunk repeated inside the window is stored once
                new_chunks.append((d, window[start:end], raw))
        self._append_all(new_chunks)
        return recipe

    # --- chunks and packs ----------------------------------------------------------
    def _unknown_chunks(self, digests: list[bytes], whole_files: bool = False,
                        indexed: set[bytes] | None = None) -> list[bytes]:
        """Digests neither this session nor the index holds (two queries, any count).

        `whole_files`: the digests are small files' own digests, whose duplicates within
        the session the caller finds by file (new_files); the staging table is then not
        asked (it could only match a chunk of a large file that is byte-identical to a
        whole small file; missing that costs a duplicate copy, which gc reclaims).
        `indexed`: the index's chunk digests (_index_snapshot): asked instead of the index."""
        todo = [d for d in dict.fromkeys(digests) if d not in self._open and d not in self._received_sizes]
        if not whole_files:
            todo = self._staged.unknown(todo)
        if indexed is not None:
            return [d for d in todo if d not in indexed]
        if todo:
            known = self.store.index.known_chunks(todo)
            if known:
                todo = [d for d in todo if d not in known]
        return todo

    def _append_all(self, chunks: Sequence[tuple[bytes, bytes | memoryview, bool | None]]) -> None:
        """Store new chunks, (digest, raw bytes, probed raw or None) each, compressed where it pays, as one
        block of the open pack: chunks appended together lie back to back (a window of
        raw chunks is one extent: one kernel copy on download, packs.py). A pack closes
        once it reaches PACK_TARGET_SIZE (the rest goes on in the next)."""
        records = []
        for digest, raw, probed_raw in chunks:
            codec_id, stored = codec.encode(raw, probed_raw)
            records.append((digest, codec_id, len(raw), stored))
        self._append_records(records)

    def _append_records(self, records: list[tuple[bytes, int, int, bytes | memoryview]]) -> None:
        """Append (digest, codec, raw_len, stored) records as one block (see _append_all)."""
        while records:
            writer = self._writer
            if writer is None:
                self._pack_id = uuid.uuid4().hex
                writer = self._writer = PackWriter(self.dir / f"{self._pack_id}.pack", fsync=self.store.fsync,
                                                   writes=self._writes, reserve=self._pack_reserve(records))
            room, take = PACK_TARGET_SIZE - writer.size, 1
            room -= RECORD_HEADER.size + len(records[0][3])
            while take < len(records) and room > 0:  # the record that crosses the target still goes in
                room -= RECORD_HEADER.size + len(records[take][3])
                take += 1
            writer.append_block(records[:take])
            self._open.update(r[0] for r in records[:take])
            records = records[take:]
            if writer.size >= PACK_TARGET_SIZE:
                self._rotate()

    def _pack_reserve(self, records: list[tuple[bytes, int, int, bytes | memoryview]]) -> int:
        """Disk to reserve for a pack opened by a large file's stream: the file's bytes
        still to come (at most a full pack); 0 (none) for packs of small files, whose
        size is not known ahead. An over-estimate (chunks found stored already) is
        given back when the pack is finished."""
        if not self._stream_left:
            return 0
        coming = sum(len(r[3]) for r in records) + self._stream_left
        return min(PACK_TARGET_SIZE + CHUNK_MAX, coming + _RESERVE_SLACK)

    def _rotate(self) -> None:
        """Stage the full pack's locations and close it on a helper thread."""
        writer, pack_id = self._writer, self._pack_id
        assert writer is not None and pack_id is not None  # only called with a pack open
        self._writer = self._pack_id = None
        writer.hand_off()  # written on the write thread; the close thread waits for it (finish)
        self._staged.add(pack_id, writer.entries)
        self._open = set()
        self._packs.append((pack_id, writer, len(writer.entries), self._finish_pool.submit(_finish, writer)))

    # --- transfer between stores (push, pull, import; base.py) ----------------------
    def add_chunks(self, chunks: Iterable[tuple[str, bytes]]) -> None:
        """Verify each received chunk, then store the new ones as `add_bytes` stores a
        piece: looked up a batch at a time (one query per batch), compressed where it pays,
        appended to the session's pack. A chunk that fails its digest raises before
        anything of it is appended."""
        self._check_open()
        batch: list[tuple[bytes, bytes]] = []
        for digest, data in chunks:
            raw = digest_bytes(digest)
            if len(data) > MAX_RECEIVED_CHUNK:
                raise CorruptionError(f"chunk {digest[:16]}... received is {len(data)} bytes, more than any "
                                      f"chunk a store holds ({MAX_RECEIVED_CHUNK}); refused")
            if blake3.blake3(data).digest() != raw:
                raise CorruptionError(f"chunk {digest[:16]}... received does not match its digest: "
                                      "refused, nothing of it was stored")
            batch.append((raw, bytes(data)))
            if len(batch) >= _BATCH_FILES:
                self._store_chunks(batch)
                batch = []
        self._store_chunks(batch)

    def _store_chunks(self, batch: list[tuple[bytes, bytes]]) -> None:
        absent = set(self._unknown_chunks([raw for raw, _ in batch]))
        new_chunks = []
        for raw, data in batch:
            if raw in absent:
                absent.discard(raw)  # the same chunk twice in a batch is stored once
                new_chunks.append((raw, data, None))
        self._append_all(new_chunks)

    def add_frames(self, frames: Iterable[ChunkFrame]) -> None:
        """Verify each received frame (decode, hash: `ChunkFrame.raw()`), then append the
        new ones as they came, a batch at a time (one lookup per batch) as one block: no
        compression probe, no recompression. A frame that fails raises before anything
        of it is appended."""
        self._check_open()
        batch: list[ChunkFrame] = []
        size = 0
        for frame in frames:
            frame.raw()
            batch.append(frame)
            size += len(frame.stored)
            if len(batch) >= _BATCH_FILES or size >= _BATCH_BYTES:
                self._store_frames(batch)
                batch, size = [], 0
        self._store_frames(batch)
        self._bound_frame_writes()

    def _bound_frame_writes(self) -> None:
        """Wait until the frames of all but the last FRAME_WRITES_AHEAD calls are written."""
        written = threading.Event()
        self._writes.then(written.set)
        self._frame_writes.append(written)
        while len(self._frame_writes) > FRAME_WRITES_AHEAD:
            self._frame_writes.popleft().wait()

    def _store_frames(self, batch: list[ChunkFrame]) -> None:
        absent = set(self._unknown_chunks([f.digest for f in batch]))
        records: list[tuple[bytes, int, int, bytes | memoryview]] = []
        for f in batch:
            if f.digest in absent:
                absent.discard(f.digest)  # the same chunk twice in a batch is stored once
                records.append((f.digest, f.codec, f.raw_len, f.stored))
        self._append_records(records)

    def received_pack_path(self) -> Path:
        """A fresh path in this session's temp folder for a pack received whole (base.py)."""
        self._check_open()
        return self.dir / f"received-{uuid.uuid4().hex}.pack"

    def check_pack(self, path: str | os.PathLike[str]) -> CheckedPack:
        """Check every record of the pack received whole at `path` (packs.check_received_pack:
        trailer, layout, each chunk decoded and hashed, in one loop), then fsync it (a
        durable store), so the commit that indexes it does not wait for its writeback.
        Touches nothing of the session, so any thread may check while the session goes on
        (a transfer checks each pack on the thread that downloaded it: the commits of the
        calling thread waited ~0.1 s a pack for its fsync). CHECKS_AT_ONCE check at once,
        the fsyncs beside them. A pack that fails is deleted."""
        self._check_open()
        try:
            with self._checking:
                entries = check_received_pack(Path(path))
        except BaseException:
            Path(path).unlink(missing_ok=True)
            raise
        received = _ReceivedPack(Path(path), os.path.getsize(path), self.store.fsync)
        received.make_durable()
        return CheckedPack(Path(path), received.size, entries)

    def adopt_pack(self, pack: CheckedPack) -> dict[bytes, int]:
        """Make a checked pack (`check_pack`) a pack of this session: moved into the
        session's folder under a fresh id, its entries held until the commit indexes them
        in one insert (ADOPTED_ROWS; past that, staged like a full pack of ours). check_pack
        fsynced it; commit fsyncs the folder it is renamed into. Returns the digests it
        holds, with their raw sizes."""
        self._check_open()
        if not isinstance(pack, CheckedPack):
            raise TypeError("adopt_pack takes what check_pack returned")
        pack_id = uuid.uuid4().hex
        tmp = self.dir / f"{pack_id}.pack"
        os.replace(pack.path, tmp)
        received = _ReceivedPack(tmp, pack.size, fsync=False)  # fsynced by check_pack; the rename by commit
        entries = pack.entries
        sizes = pack.chunks()
        if self._received_rows + len(entries) <= ADOPTED_ROWS:
            self._received.append((pack_id, entries))
            self._received_rows += len(entries)
            self._received_sizes.update(sizes)
        else:
            self._staged.add(pack_id, entries)
        done = self._finish_pool.submit(received.make_durable)
        self._packs.append((pack_id, received, len(entries), done))  # type: ignore[arg-type]  # as a PackWriter
        self._adopted(pack_id, received, entries, done)
        return sizes

    def _adopted(self, pack_id: str, pack: _ReceivedPack, entries: list[PackEntry], done: Future) -> None:
        """Hook: a pack received whole joined the session (s3_session.py uploads it)."""

    def add_recipes(self, recipes: Iterable[FileRecipe]) -> list[FileRef]:
        """Record files made of chunks the store holds or this session added. Every recipe
        is checked (chunks present, sizes adding up, the file's digest by hashing its
        chunks in order, read back from the packs) before any is recorded; a file already
        stored is reused as `add_files` reuses it. Visible with commit().

        A pull records ~1,000 files a call, nearly all of one chunk named by the file's
        own digest (every small file): their digests are converted in one pass
        (_raw_digests), their chunks found by one lookup (in memory when this session
        adopted their pack), and each is recorded as one tuple."""
        self._check_open()
        recipes = list(recipes)
        raws = _raw_digests([r.digest for r in recipes])
        new_files = self._new_files
        spilled = self._staged.known_files(raws)
        known = self.store.index.known_files([d for d in raws if d not in new_files and d not in spilled])
        rows: dict[bytes, tuple[int, int, bytes | None]] = {}  # the files to record: size, chunk count, recipe
        single: list[tuple[FileRecipe, bytes]] = []
        several: list[tuple[FileRecipe, bytes, list[bytes]]] = []
        for r, raw in zip(recipes, raws, strict=True):
            if raw in new_files or raw in known or raw in spilled or raw in rows:
                continue
            chunks = r.chunks
            if len(chunks) == 1 and chunks[0] == r.digest:  # a whole file of one chunk: no recipe row (index.py)
                single.append((r, raw))
                rows[raw] = (r.size, 1, None)
            else:
                parts = _raw_digests(list(chunks))
                several.append((r, raw, parts))
                rows[raw] = (r.size, len(parts), b"".join(parts))
        if single:  # one lookup for every one-chunk file of the call
            self._check_whole_chunks(single, self._raw_sizes_anywhere([raw for _, raw in single]))
        for r, raw, parts in several:
            self._verify_recipe(r, raw, parts)
        new_files.update(rows)
        self._new_sizes.update(size for size, _, _ in rows.values())
        self._reused.update(known)
        refs = [FileRef(r.digest, r.size) for r in recipes]
        self._spill_if_large()
        return refs

    def _check_whole_chunks(self, files: list[tuple[FileRecipe, bytes]], sizes: dict[bytes, int]) -> None:
        """_verify_recipe of files of one chunk named by that chunk's digest, whose chunks
        are `sizes` (raw size by digest, those found): each chunk was checked against the
        digest when it arrived or was first stored, so only its presence and size are left."""
        for recipe, raw in files:
            size = sizes.get(raw)
            if size is None:
                raise NotFoundError(f"file {recipe.digest[:16]}...: its chunk is neither in the store at "
                                    f"{self.store.root} nor in this session")
            if size != recipe.size:
                raise CorruptionError(f"file {recipe.digest[:16]}...: its chunk is not its {recipe.size} bytes; "
                                      "refused")

    def _raw_sizes_anywhere(self, chunks: list[bytes]) -> dict[bytes, int]:
        """The raw size of each chunk of `chunks` the session or the store holds, found
        where _locate_anywhere finds it, as plain rows (no ChunkLocation a chunk)."""
        received = self._received_sizes
        sizes = {c: n for c in chunks if (n := received.get(c)) is not None} if received else {}
        if self._writer is not None and not self._open.isdisjoint(chunks):
            entries = self._open_entries()
            sizes.update((c, entries[c].raw_len) for c in chunks if c in self._open)
        rest = [c for c in chunks if c not in sizes] if sizes else chunks
        if rest and self._staged.count:
            sizes.update((c, row[3]) for c, row in self._staged.locate(rest).items())
            rest = [c for c in rest if c not in sizes]
        if rest:  # one row for them all (a row a chunk hands the GIL over as often)
            sizes.update((rest[at], raw_len) for at, raw_len in self.store.index.chunk_raw_sizes(b"".join(rest)))
        return sizes

    def _verify_recipe(self, recipe: FileRecipe, raw: bytes, chunks: list[bytes]) -> None:
        """NotFoundError naming the first chunk neither the store nor this session holds;
        CorruptionError if the chunks' sizes do not add up to the file's size or their
        bytes, in order, do not hash to the file's digest. A page of chunks at a time."""
        if not chunks:
            raise CorruptionError(f"file {recipe.digest[:16]}... has a recipe without chunks")
        if chunks == [raw]:
            self._check_whole_chunks([(recipe, raw)], self._raw_sizes_anywhere(chunks))
            return
        hasher = blake3.blake3()
        total = 0
        for start in range(0, len(chunks), _RECIPE_PAGE):
            page = chunks[start : start + _RECIPE_PAGE]
            where = self._locate_anywhere(page)
            for c in page:
                if c not in where:
                    raise NotFoundError(f"file {recipe.digest[:16]}...: its chunk {c.hex()[:16]}... is neither in "
                                        f"the store at {self.store.root} nor in this session")
            total += sum(where[c].raw_len for c in page)
            if total > recipe.size:
                break
            ours = {pid for pid, _, _, _ in self._packs} | {self._pack_id}
            for c in page:
                hasher.update(self._read_located(where[c], ours))
        if total != recipe.size:
            raise CorruptionError(f"file {recipe.digest[:16]}...: its chunks add up to other than its "
                                  f"{recipe.size} bytes; refused")
        if hasher.digest() != raw:
            raise CorruptionError(f"file {recipe.digest[:16]}...: its chunks, in order, do not hash to its "
                                  "digest; refused")

    def _locate_anywhere(self, chunks: list[bytes]) -> dict[bytes, ChunkLocation]:
        """Where each chunk is: the session's open pack, its finished packs (staged), or
        the store's packs; absent ones are left out."""
        where: dict[bytes, ChunkLocation] = {}
        if self._writer is not None and self._pack_id is not None and not self._open.isdisjoint(chunks):
            self._writer.flush()  # the bytes are read back from the file below
            entries = self._open_entries()
            for c in chunks:
                if c in self._open:
                    e = entries[c]
                    where[c] = ChunkLocation(c, self._pack_id, e.offset, e.stored_len, e.raw_len, e.codec)
        if self._received:
            received = self._received_locations()
            where.update((c, loc) for c in chunks if (loc := received.get(c)) is not None)
        rest = [c for c in dict.fromkeys(chunks) if c not in where]
        for c, row in self._staged.locate(rest).items():
            where[c] = ChunkLocation(c, *row)
        rest = [c for c in rest if c not in where]
        if rest:
            where.update(self.store.index.locate(rest))
        return where

    def _received_locations(self) -> dict[bytes, ChunkLocation]:
        """Where each chunk of the packs held in memory (adopt_pack) lies, mapped on the
        first recipe that reads one back and extended as packs join (most pulls never
        read one: their files are one chunk each)."""
        for pack_id, entries in self._received[self._received_mapped:]:
            for e in entries:
                self._received_where[e.digest] = ChunkLocation(e.digest, pack_id, e.offset, e.stored_len,
                                                               e.raw_len, e.codec)
        self._received_mapped = len(self._received)
        return self._received_where

    def _open_entries(self) -> dict:
        """The open pack's entries by digest, extended as the pack grows (a transfer asks
        for each file it receives: rebuilding the map each time was quadratic in the pack)."""
        assert self._writer is not None
        if self._entries_of is not self._writer:  # a new pack: start a new map
            self._entries_of, self._entries_by_digest = self._writer, {}
        entries = self._writer.entries
        for e in entries[len(self._entries_by_digest):]:
            self._entries_by_digest[e.digest] = e
        return self._entries_by_digest

    def _read_located(self, loc: ChunkLocation, ours: set[str | None]) -> bytes | memoryview:
        """A chunk's raw bytes from a pack of this session (`ours`, in its tmp folder) or of the store."""
        if loc.pack_id in ours:
            with open(self.dir / f"{loc.pack_id}.pack", "rb", buffering=0) as f:
                stored = os.pread(f.fileno(), loc.stored_len, loc.offset)
        else:
            stored = self.store.packs.pread(loc.pack_id, loc.stored_len, loc.offset)
        if len(stored) != loc.stored_len:
            raise CorruptionError(f"pack {loc.pack_id} is truncated at offset {loc.offset + len(stored)}")
        return codec.decode(loc.codec, stored, loc.raw_len)

    # --- commit / abort / close ---------------------------------------------------
    def commit(self) -> None:
        self._check_open()
        if self._writer is not None:
            self._rotate()
        self._publish()
        packs = []
        dirs_touched = set()
        for pack_id, writer, count, fut in self._packs:
            fut.result()
            final = self.store.packs.path(pack_id)
            final.parent.mkdir(exist_ok=True)
            atomic.replace(writer.tmp_path, final, durable=False)  # folders fsynced once each, below
            dirs_touched.add(final.parent)
            packs.append((pack_id, writer.size, count))
        if self.store.fsync:
            for d in dirs_touched:
                atomic.fsync_dir(d)
        self._staged.close()
        delay_point("index-commit")  # tests fill the disk here (tests/cli/test_disk_full_index.py)
        self.store.index.commit_session(
            packs, self._staged.path if self._staged.count or self._staged.spilled else None,
            self._memory_file_rows(), self._stat_entries, self._reused, self._received,
        )
        self.committed = True
        self._cleanup()

    def _publish(self) -> None:
        """Hook: every pack of the session is full (closed on the finish thread, not yet
        renamed) and nothing is indexed yet. Nothing to do for a local store; a shared
        store makes the session's packs and index durable elsewhere here (s3.py), so
        nothing is visible before all its bytes are stored."""

    def abort(self) -> None:
        if not self._closed:
            if self._writer is not None:
                self._writer.discard()
            self._writer = None
            for _, _, _, fut in self._packs:
                try:
                    fut.result()
                except Exception:
                    pass
            self._cleanup()
        self.close()

    def close(self) -> None:
        """Release the shared gc lock (idempotent). After commit, the caller closes once
        whatever refers to the new digests (a catalog version) is committed."""
        self._release()

    def _cleanup(self) -> None:
        self._closed = True
        self._index_snapshot = None
        self._staged.close()
        self._finish_pool.shutdown(wait=True)
        self._writes.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError("this write session is already committed or aborted")

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.committed:
            self.abort()
        self.close()


def _raw_digests(digests: list[str]) -> list[bytes]:
    """index.digest_bytes of each of `digests`, checked in one round trip for the whole
    list (index.joined_digests: a page of 1,024 is one conversion, not 1,024)."""
    return split_digests(joined_digests(digests))


def _read_whole(fd: int, path: str, key: StatKey, recorded: int) -> tuple:
    """A small file's probe (see _probe) from its open descriptor, `key` as stat'ed before:
    one read (a regular file returns all it has), more only after a short read; a file
    that grew, shrank or changed meanwhile shows in the fstat after it."""
    data = os.read(fd, key.size + 1)
    while len(data) < key.size:  # short read (signal): go on until EOF
        more = os.read(fd, key.size + 1 - len(data))
        if not more:
            break
        data += more
    if len(data) != key.size or stat_key(os.fstat(fd)) != key:
        raise FileChangedError(f"{path} changed while it was being read; nothing was stored for it")
    return path, key, blake3.blake3(data).digest(), data, recorded


def _absolute(p) -> str:
    """os.path.abspath, skipped for paths already absolute and normal (add_dir's): it
    cost 4 us a file, twice."""
    p = os.fspath(p)
    if p.startswith("/") and "/." not in p and "//" not in p and not p.endswith("/"):
        return p
    return os.path.abspath(p)


def _finish(writer: PackWriter) -> None:
    writer.finish()
    writer.entries = []  # staged already; the trailer is written


class _ReceivedPack:
    """A pack adopted whole (adopt_pack): what commit needs of a PackWriter, its temp path
    and size."""

    def __init__(self, tmp_path: Path, size: int, fsync: bool):
        self.tmp_path, self.size, self._fsync = tmp_path, size, fsync

    def make_durable(self) -> None:
        if not self._fsync:
            return
        fd = os.open(self.tmp_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
