"""The local content store: chunked, deduplicated, packed, compressed, verified.

Layout under ``<root>`` (readable with ``ls``)::

    format.json             on-disk format parameters (layout.py), checked on open
    index.db                chunk -> pack location, file -> chunk recipe, stat cache
    packs/ab/<id>.pack      write-once pack files (packs.py)
    tmp/<session>/          in-flight packs of a write session, with owner.json (pid, host)

Write order keeps every pointer valid after a crash: packs are written and fsynced in
the session's tmp folder, renamed into packs/, then indexed in one transaction, and only
then can the catalog commit a version pointing at them. A crash leaves at most unindexed
packs or a stale tmp folder, which gc removes; never an index entry for missing bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import blake3

from lodestore.errors import (
    CorruptionError,
    FileChangedError,
    InvalidInputError,
    NotFoundError,
    SourceFileNotFoundError,
)
from lodestore.store import codec
from lodestore.store.base import ContentStore, FileRef, ProgressCallback, StoreStats, WriteSession
from lodestore.store.chunking import cut_window, make_chunker
from lodestore.store.index import ChunkLocation, StatKey, StoreIndex
from lodestore.store.layout import PACK_TARGET_SIZE, READ_WINDOW, WHOLE_FILE_LIMIT, ensure_format_file
from lodestore.store.packs import PackWriter, pack_path

DIGEST_LEN = 32
# Git's racy-timestamp rule: a stat-cache entry recorded less than this long after the
# file's mtime may describe a file that was rewritten again within the same timestamp
# tick, so it is not trusted (the file is hashed again). 2 s covers coarse filesystems.
RACY_WINDOW_NS = 2_000_000_000
_OPEN_PACKS = 64


def _hex(d: bytes) -> str:
    return d.hex()


_HEX = frozenset("0123456789abcdef")


def _raw(digest: str) -> bytes:
    """Only the canonical spelling (64 lowercase hex characters, as b3sum prints) is a
    digest: bytes.fromhex alone would also take upper case and embedded spaces, and the
    same content would then go by several names (and fail the final hexdigest check)."""
    if not isinstance(digest, str) or len(digest) != 2 * DIGEST_LEN or not _HEX.issuperset(digest):
        raise InvalidInputError(f"not a content digest (64 lowercase hex characters): {digest!r}")
    return bytes.fromhex(digest)


def stat_key(st: os.stat_result) -> StatKey:
    return StatKey(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


class LocalContentStore(ContentStore):
    def __init__(self, root: str | os.PathLike[str], fsync: bool = True):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        ensure_format_file(self.root)
        self.packs_dir = self.root / "packs"
        self.tmp_dir = self.root / "tmp"
        self.packs_dir.mkdir(exist_ok=True)
        self.tmp_dir.mkdir(exist_ok=True)
        self.fsync = fsync
        self.index = StoreIndex(self.root / "index.db", durable=fsync)
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._fd_lock = threading.Lock()
        self._hash_pool = ThreadPoolExecutor(1, thread_name_prefix="lodestore-hash")

    # --- writing ----------------------------------------------------------------
    def session(self) -> LocalWriteSession:
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
        size, chunks = self._file_row(digest)
        where = self.index.locate(chunks)
        missing = [c for c in chunks if c not in where]
        if missing:
            raise CorruptionError(
                f"content {digest[:16]}... refers to {len(missing)} chunk(s) missing from the index "
                f"(first {missing[0].hex()[:16]}...); run `lode fsck`"
            )
        return size, [where[c] for c in chunks]

    # --- reading ----------------------------------------------------------------
    def _pack_fd(self, pack_id: str) -> int:
        """A private duplicate of the cached descriptor of a pack; the caller closes it.

        Another thread may evict (close) the cached descriptor at any moment, and its
        number may then be reused for another file: reading through the shared number
        read other bytes (reported as corruption). A dup, made under the lock, cannot
        be closed under the caller's feet."""
        with self._fd_lock:
            fd = self._fds.get(pack_id)
            if fd is not None:
                self._fds.move_to_end(pack_id)
                return os.dup(fd)
            try:
                fd = os.open(pack_path(self.packs_dir, pack_id), os.O_RDONLY)
            except FileNotFoundError:
                raise CorruptionError(f"pack {pack_id} is missing from {self.packs_dir}; run `lode fsck`") from None
            self._fds[pack_id] = fd
            if len(self._fds) > _OPEN_PACKS:
                _, old = self._fds.popitem(last=False)
                os.close(old)
            return os.dup(fd)

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
                    nxt.offset + nxt.stored_len - first.offset > READ_WINDOW
                ):
                    break
                run.append(nxt)
                end = nxt.offset + nxt.stored_len
                j += 1
            length = end - first.offset
            fd = self._pack_fd(first.pack_id)
            try:
                data = os.pread(fd, length, first.offset)
            finally:
                os.close(fd)
            if len(data) != length:
                raise CorruptionError(f"pack {first.pack_id} is truncated at offset {first.offset + len(data)}")
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
        _, plan = self._plan(digest)
        hasher = blake3.blake3()
        for run, data in self._read_runs(plan):
            for loc, raw in self._decoded(run, data):
                self._check_chunk(loc, raw)
                hasher.update(raw)
                yield bytes(raw)
        if hasher.hexdigest() != digest:
            raise CorruptionError(f"content {digest[:16]}... reassembles to other bytes: its recipe is corrupted")

    def read_bytes(self, digest: str) -> bytes:
        return b"".join(self.iter_content(digest))

    def materialize(self, digest: str, dest: str | os.PathLike[str], progress: ProgressCallback | None = None) -> None:
        """Reassemble into a temp file beside `dest`, hashing on a second thread while
        writing, and rename only if the whole-file digest matches. A mismatch is then
        narrowed to the guilty chunk for the error message."""
        size, plan = self._plan(digest)
        dest = Path(dest)
        tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.lodestore-tmp"
        if size <= WHOLE_FILE_LIMIT:
            self._materialize_small(digest, size, plan, dest, tmp)
            if progress:
                progress(size)
            return
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        ok = False
        try:
            hasher = blake3.blake3()
            pending: Future | None = None
            written = 0
            for run, data in self._read_runs(plan):
                pieces = [raw for _, raw in self._decoded(run, data)]
                if pending is not None:
                    pending.result()
                pending = self._hash_pool.submit(_update_all, hasher, pieces)
                written += _writev_all(fd, pieces)
                if progress:
                    progress(sum(loc.raw_len for loc in run))
            if pending is not None:
                pending.result()
            if written != size or hasher.hexdigest() != digest:
                self._find_bad_chunk(plan)
                raise CorruptionError(f"content {digest[:16]}... reassembles to other bytes: its recipe is corrupted")
            os.close(fd)
            fd = -1
            os.replace(tmp, dest)  # inside the try: a failed rename (dest is a directory) must not leave tmp
            ok = True
        finally:
            if fd >= 0:
                os.close(fd)
            if not ok:
                tmp.unlink(missing_ok=True)

    def _materialize_small(self, digest: str, size: int, plan: list[ChunkLocation], dest: Path, tmp: Path) -> None:
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
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                _writev_all(fd, pieces)
            finally:
                os.close(fd)
            os.replace(tmp, dest)  # a failed rename (dest is a directory) must not leave tmp behind
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _find_bad_chunk(self, plan: list[ChunkLocation]) -> None:
        for run, data in self._read_runs(plan):
            for loc, raw in self._decoded(run, data):
                self._check_chunk(loc, raw)

    def close(self) -> None:
        self._hash_pool.shutdown(wait=True)
        with self._fd_lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
        self.index.close()


class LocalWriteSession(WriteSession):
    """Adds files to the store; see LocalContentStore for the crash-safe write order."""

    def __init__(self, store: LocalContentStore):
        self.store = store
        self.id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # gc (store/maintenance.py) sweeps only while no session holds this shared lock
        from lodestore.store.maintenance import acquire_store_lock

        self._lock_fd = acquire_store_lock(store.root, exclusive=False)
        self._reused: set[bytes] = set()  # files already indexed: re-touched at commit (gc grace)
        self.dir = store.tmp_dir / self.id
        self.dir.mkdir()
        (self.dir / "owner.json").write_text(
            json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
        )
        self.committed = False
        self._closed = False
        self._chunker = make_chunker()
        self._writer: PackWriter | None = None
        self._finished: list[tuple[str, PackWriter, Future]] = []
        self._pack_id: str | None = None
        self._new_chunks: dict[bytes, ChunkLocation] = {}
        self._new_files: dict[bytes, tuple[int, int, bytes | None]] = {}
        self._stat_entries: list[tuple[str, StatKey, bytes, int]] = []
        self._statcache: dict[str, tuple[StatKey, bytes, int]] = {}
        # packs are closed (trailer + fsync) on their own thread, apart from hashing
        self._finish_pool = ThreadPoolExecutor(1, thread_name_prefix="lodestore-pack-close")

    # --- stat cache -------------------------------------------------------------
    def prefetch_stat_cache(self, paths: list[str]) -> None:
        """Load stat-cache entries for many files in one query (add_dir of 20,000 files)."""
        self._statcache.update(self.store.index.statcache_lookup(paths))

    def _cached_digest(self, path: str, key: StatKey) -> bytes | None:
        entry = self._statcache.get(path)
        if entry is None:
            entry = self.store.index.statcache_lookup([path]).get(path)
        if entry is None:
            return None
        cached_key, digest, recorded_ns = entry
        if cached_key != key or key.mtime_ns >= recorded_ns - RACY_WINDOW_NS:
            return None
        if digest in self._new_files or self.store.index.file_row(digest) is not None:
            if digest not in self._new_files:
                self._reused.add(digest)
            return digest
        return None

    # --- adding -----------------------------------------------------------------
    def add_file(self, path: str | os.PathLike[str], progress: ProgressCallback | None = None) -> FileRef:
        self._check_open()
        path = os.path.abspath(os.fspath(path))
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise SourceFileNotFoundError(f"no such file: {path}") from None
        if not _is_regular(st):
            raise InvalidInputError(f"{path} is not a regular file")
        key = stat_key(st)
        cached = self._cached_digest(path, key)
        if cached is not None:
            if progress:
                progress(st.st_size)
            return FileRef(_hex(cached), st.st_size)
        try:
            f = open(path, "rb", buffering=0)  # noqa: SIM115 (closed by the `with f` below)
        except FileNotFoundError:  # removed between stat and open
            raise SourceFileNotFoundError(f"no such file: {path}") from None
        with f:
            if st.st_size <= WHOLE_FILE_LIMIT:
                digest, entry = self._add_small(f, path, st)
                if progress:
                    progress(st.st_size)
            else:
                digest, entry = self._add_large(f, path, st, progress)
            after = os.fstat(f.fileno())
        if stat_key(after) != key:
            # What was read may be a torn mix of two states: it must not become a file of
            # this session (its chunks are valid by digest; unreferenced, gc reclaims them).
            raise FileChangedError(f"{path} changed while it was being read; nothing was stored for it")
        self._register(digest, entry)
        self._stat_entries.append((path, key, digest, time.time_ns()))
        return FileRef(_hex(digest), st.st_size)

    def add_bytes(self, data: bytes) -> FileRef:
        self._check_open()
        data = bytes(data)
        digest = blake3.blake3(data).digest()
        if len(data) <= WHOLE_FILE_LIMIT:
            self._register(digest, self._store_whole(digest, memoryview(data)))
        else:
            recipe = bytearray()
            for piece in cut_window(self._chunker, memoryview(data), final=True):
                recipe += self._store_chunk(piece)
            self._register(digest, (len(data), len(recipe) // DIGEST_LEN, bytes(recipe)))
        return FileRef(_hex(digest), len(data))

    def _register(self, digest: bytes, entry: tuple[int, int, bytes | None] | None) -> None:
        """Make a fully read file part of this session (visible at commit)."""
        if entry is None or digest in self._new_files or self.store.index.file_row(digest) is not None:
            if digest not in self._new_files:
                self._reused.add(digest)
            return
        self._new_files[digest] = entry

    def _add_small(self, f, path: str, st: os.stat_result) -> tuple[bytes, tuple | None]:
        data = f.read(st.st_size + 1)
        if len(data) != st.st_size:
            raise FileChangedError(f"{path} changed size while it was being read; nothing was stored for it")
        digest = blake3.blake3(data).digest()
        return digest, self._store_whole(digest, memoryview(data))

    def _store_whole(self, digest: bytes, data: memoryview) -> tuple[int, int, None] | None:
        """Store a small file as one chunk; return its file entry, None if already known."""
        if digest in self._new_files or self.store.index.file_row(digest) is not None:
            return None
        if digest not in self._new_chunks and not self.store.index.has_chunk(digest):
            self._append(digest, data)
        return (len(data), 1, None)

    def _add_large(
        self, f, path: str, st: os.stat_result, progress: ProgressCallback | None
    ) -> tuple[bytes, tuple]:
        """One pass: the whole-file hash runs on a second thread while this one cuts,
        hashes and packs chunks. Two window buffers alternate, so memory stays at
        ~2 windows plus the pack writer's queue whatever the file size."""
        hasher = blake3.blake3()
        pool = self.store._hash_pool
        buffers = [bytearray(READ_WINDOW + _CARRY_ROOM), bytearray(READ_WINDOW + _CARRY_ROOM)]
        pending: Future | None = None
        recipe = bytearray()
        carry = 0  # bytes carried at the start of the current buffer
        total = 0
        turn = 0
        prev_tail: memoryview | None = None
        while True:
            buf = buffers[turn]
            view = memoryview(buf)
            if prev_tail is not None and len(prev_tail):
                carry = len(prev_tail)
                view[:carry] = prev_tail
            else:
                carry = 0
            if pending is not None:  # the hash of the previous window must finish before
                pending.result()  # the buffer it reads is refilled, two turns from now
            n = f.readinto(view[carry : carry + READ_WINDOW])
            total += n
            final = n == 0 or total >= st.st_size
            if n:
                pending = pool.submit(hasher.update, view[carry : carry + n])
            window = view[: carry + n]
            consumed = 0
            for piece in cut_window(self._chunker, window, final):
                recipe += self._store_chunk(piece)
                consumed += len(piece)
            prev_tail = window[consumed:] if not final else None
            if progress and n:
                progress(n)
            if final:
                break
            turn ^= 1
        if pending is not None:
            pending.result()
        if total != st.st_size or f.read(1):
            raise FileChangedError(f"{path} changed size while it was being read; nothing was stored for it")
        return hasher.digest(), (total, len(recipe) // DIGEST_LEN, bytes(recipe))

    def _store_chunk(self, piece: memoryview) -> bytes:
        digest = blake3.blake3(piece).digest()
        if digest not in self._new_chunks and not self.store.index.has_chunk(digest):
            self._append(digest, piece)
        return digest

    def _append(self, digest: bytes, raw: memoryview) -> None:
        codec_id, stored = codec.encode(raw)
        writer = self._current_writer()
        entry = writer.append(digest, codec_id, len(raw), stored)
        self._new_chunks[digest] = ChunkLocation(
            digest, self._pack_id, entry.offset, entry.stored_len, entry.raw_len, entry.codec
        )
        if writer.size >= PACK_TARGET_SIZE:
            self._rotate()

    def _current_writer(self) -> PackWriter:
        if self._writer is None:
            self._pack_id = uuid.uuid4().hex
            self._writer = PackWriter(self.dir / f"{self._pack_id}.pack", fsync=self.store.fsync)
        return self._writer

    def _rotate(self) -> None:
        """Close the full pack on a helper thread so the next chunks need not wait."""
        writer, pack_id = self._writer, self._pack_id
        self._writer = self._pack_id = None
        fut = self._finish_pool.submit(writer.finish)
        self._finished.append((pack_id, writer, fut))

    # --- commit / abort ---------------------------------------------------------
    def commit(self) -> None:
        self._check_open()
        if self._writer is not None:
            self._rotate()
        packs = []
        dirs_touched = set()
        for pack_id, writer, fut in self._finished:
            fut.result()
            final = pack_path(self.store.packs_dir, pack_id)
            final.parent.mkdir(exist_ok=True)
            os.replace(writer.tmp_path, final)
            dirs_touched.add(final.parent)
            packs.append((pack_id, writer.size, len(writer.entries)))
        if self.store.fsync:
            for d in dirs_touched:
                _fsync_dir(d)
        self.store.index.commit_session(
            packs, list(self._new_chunks.values()),
            [(d, s, n, r) for d, (s, n, r) in self._new_files.items()], self._stat_entries,
        )
        if self._reused:  # gc's grace period protects them until the catalog commits
            self.store.index.touch_files(self._reused)
        self.committed = True
        self._cleanup()

    def abort(self) -> None:
        if self._closed:
            return
        if self._writer is not None:
            self._writer.discard()
        for _, writer, fut in self._finished:
            try:
                fut.result()
            except Exception:  # the pack is being thrown away; its write error is moot
                pass
        self._writer = None
        self._cleanup()

    def _cleanup(self) -> None:
        self._closed = True
        self._finish_pool.shutdown(wait=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the shared gc lock
            self._lock_fd = None

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError("this write session is already committed or aborted")

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.committed:
            self.abort()


_CARRY_ROOM = 256 * 1024  # CHUNK_MAX: the most a window carries into the next


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


def _is_regular(st: os.stat_result) -> bool:
    import stat as _stat

    return _stat.S_ISREG(st.st_mode)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
