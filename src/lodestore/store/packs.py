"""Pack files: many chunks in one write-once file, with a trailer index.

Layout (version 2)::

    b"LODEPK02"                                   8-byte magic
    block*:  b"LPBK" count(u32)                   a block of `count` records:
             header*count                         header = digest(32) codec(u8) raw_len(u32) stored_len(u32)
             stored-bytes*count                   the records' stored bytes, back to back, in header order
    trailer: zstd( entry* )   entry = digest(32) codec(u8) offset(u64) raw_len(u32) stored_len(u32)
    footer:  trailer_offset(u64) trailer_len(u32) entry_count(u32) b"LODEPKTR"

Why blocks (version 2): the chunks a write appends together (a window of a large
file, a batch of small files) are stored back to back, so a run of raw chunks (float
weights) is one extent of the pack, and a download reads it into the destination
file's pieces with one read a piece (rawcopy.py) instead of one per ~80 KiB chunk; the headers that
let a damaged trailer be recovered (scan_records) lead each block instead of each chunk.

Version 1 (b"LODEPK01", written before) had one 41-byte header before each record's
bytes: `header stored-bytes` per record, same trailer and footer. Both are read (a
store made by an older lodestore keeps its packs; new packs are version 2).

The trailer lets the store rebuild its index from packs alone; the block headers let
it recover entries even if a trailer is damaged. `offset` points at the stored bytes.
A pack is written under a temp name, fsynced, then renamed: a pack under its final
name is always complete.

This module owns the pack format both ways: `PackWriter` writes a pack, `PackReader`
is the only reader of pack files (every read path of the store goes through it: whole
files, batched small files, the pieces of raw chunks, fsck, repair, gc's repack).
"""

from __future__ import annotations

import mmap
import os
import queue
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple

import blake3
import zstandard

from lodestore.errors import CorruptionError
from lodestore.store import atomic
from lodestore.store.codec import RAW
from lodestore.store.codec import decode as decode_stored

MAGIC = b"LODEPK02"
MAGIC_V1 = b"LODEPK01"  # packs of format 1: a header before each record (read, no longer written)
FOOTER_MAGIC = b"LODEPKTR"
RECORD_HEADER = struct.Struct("<32sBII")  # a record's header: in its block's header (v2), before its bytes (v1)
BLOCK_HEADER = struct.Struct("<4sI")
BLOCK_MAGIC = b"LPBK"
TRAILER_ENTRY = struct.Struct("<32sBQII")
FOOTER = struct.Struct("<QII8s")
_FLUSH_AT = 4 * 1024 * 1024
# Jobs a WriteQueue holds before a submitter waits (bounds the bytes in flight).
_QUEUED_JOBS = 6
# A durable pack starts its way to the disk every this many bytes written, not at its
# fsync: see PackWriter._written_out.
_WRITEBACK_AT = 8 * 1024 * 1024
_START_WRITEBACK = hasattr(os, "posix_fadvise")  # Linux, the BSDs; not macOS (there the fsync does it all)
# Pack descriptors a reader keeps open (least recently used closed first).
OPEN_PACKS = 64


class PackEntry(NamedTuple):
    """One record of a pack (a tuple: one per chunk, built in the write loop)."""

    digest: bytes
    codec: int
    offset: int
    raw_len: int
    stored_len: int


def pack_path(packs_dir: Path, pack_id: str) -> Path:
    """Packs fan out by the first two hex characters of their id, like git objects."""
    return packs_dir / pack_id[:2] / f"{pack_id}.pack"


class WriteQueue:
    """One thread that writes packs, job after job in the order they were handed to it.

    Why a thread of its own (measured on a 1 GiB log, issue 12): when the thread that
    looks chunks up also wrote them, its writev (a copy into the page cache, 0.25-1.1
    CPU-s per GiB on this VM: fresh pages are dear here) and the start of each
    writeback (blocked while the device queue was full) were on the critical path, and
    the cutter sat idle 60 % of the time. Here the writes, and the start of their
    writeback, overlap with reading, cutting and hashing; nothing else waits on the device.

    Jobs are plain callables. After a job fails, the later write jobs are skipped and
    every `barrier()` raises the error; jobs submitted with `always` (giving a buffer
    back to its owner, waking a waiter) still run, so no one waits forever. Memory: at
    most _QUEUED_JOBS jobs wait (each holds at most ~_FLUSH_AT bytes of owned pieces, or
    views of a lender's buffer that the lender bounds)."""

    def __init__(self) -> None:
        self._jobs: queue.Queue = queue.Queue(maxsize=_QUEUED_JOBS)
        self.error: BaseException | None = None
        # started at once, not on the first job: two threads may submit (a session's
        # calling thread and its pack-close thread), and must not start two
        self._thread: threading.Thread | None = threading.Thread(target=self._run, name="lodestore-pack-io",
                                                                 daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], object], always: bool = False) -> None:
        """Run `job` after everything submitted before; raises a failed write's error."""
        if self.error is not None and not always:
            raise self.error
        if self._thread is None:
            raise RuntimeError("this write queue is closed")
        self._jobs.put((job, always))

    def then(self, job: Callable[[], object]) -> None:
        """Run `job` once every write submitted before is done, even if one failed
        (e.g. give a buffer back: the writes that held views of it are over)."""
        self.submit(job, always=True)

    def barrier(self) -> None:
        """Wait until every job submitted before is done; raises a failed write's error."""
        if self._thread is not None:
            done = threading.Event()
            self.then(done.set)
            done.wait()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, always = item
            if self.error is None or always:
                try:
                    job()
                except BaseException as e:  # kept, raised to the submitter
                    if self.error is None:
                        self.error = e

    def close(self) -> None:
        """Finish every job submitted, then stop the thread (idempotent)."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None


class PackWriter:
    """Appends chunks to a new pack, written with writev from the caller's own buffers.

    No copy: the bytes handed to `append` are kept by reference and handed to a
    WriteQueue (its thread writes them) every _FLUSH_AT bytes. A caller that appends
    views of a buffer it will reuse (a window of the chunker) must wait until they are
    written: `flush()` (waits), or `hand_off()` then `writes.then(give_back)` (does not
    wait). Several writers may share one WriteQueue (a write session's packs), so a job
    queued after a window's writes runs after them whichever pack they went to.
    Measured on 1 GiB: the earlier design (copy into a bytearray, copy again into bytes
    for a writer thread, 4 x 8 MiB queued) cost 2 extra copies of every byte and ~40 MB
    of peak memory.

    `reserve`: the bytes this pack will likely hold (a large file's log knows them),
    reserved on disk at once (atomic.preallocate) and the unused rest given back by
    `finish`. Why: without it ext4 reserves and later allocates the pack's blocks page by
    page (delayed allocation) inside every write and writeback start of the write
    thread. Measured on logs of a new 1 GiB checkpoint, A/B interleaved on this 2-core
    VM: the write thread's CPU 0.26-0.34 s against 0.33-0.41 without (lower in each of
    6 pairs); 1 GiB in 64 MiB files alone, 0.21 CPU-s against 0.30 (medians of 10).
    The bytes still go through the page cache, so a download right after reads them from
    memory (O_DIRECT writes, which would save the copy into the cache, measured: the
    writing thread's CPU 0.35 -> 0.15 s a GiB, but a download of the just-logged packs
    then took 1.1-1.3 s longer, read from disk). A disk too small to reserve is written
    as before (the writes fail where the disk is truly full, naming the pack).
    """

    def __init__(self, tmp_path: Path, fsync: bool = True, writes: WriteQueue | None = None, reserve: int = 0):
        self.tmp_path = tmp_path
        self._fsync = fsync
        self._fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._reserved = reserve > 0  # finish() truncates: even a failed reservation may leave blocks
        if self._reserved:
            try:
                atomic.preallocate(self._fd, reserve)
            except OSError:  # no room to reserve that much: maybe enough for what is new
                pass
        self._pieces: list[bytes | memoryview] = [MAGIC]
        self._pending = len(MAGIC)
        self._size = len(MAGIC)
        self._on_disk = 0  # bytes written to the file so far (the write thread's)
        self._sent = 0  # bytes of them whose writeback was started (the write thread's)
        self.entries: list[PackEntry] = []
        self._own_writes = writes is None
        self.writes = WriteQueue() if writes is None else writes

    @property
    def size(self) -> int:
        return self._size

    def append(self, digest: bytes, codec: int, raw_len: int, stored: bytes | memoryview) -> PackEntry:
        """One record, in a block of its own."""
        return self.append_block([(digest, codec, raw_len, stored)])[0]

    def append_block(self, records: Sequence[tuple[bytes, int, int, bytes | memoryview]]) -> list[PackEntry]:
        """Append (digest, codec, raw_len, stored) records as one block: their headers,
        then their stored bytes back to back (a run of raw chunks is one extent of the
        pack: one kernel copy on download). Returns their entries, offsets known at once."""
        if not records:
            return []
        header = bytearray(BLOCK_HEADER.pack(BLOCK_MAGIC, len(records)))
        for digest, codec, raw_len, stored in records:
            header += RECORD_HEADER.pack(digest, codec, raw_len, len(stored))
        self._pieces.append(bytes(header))
        pos = self._size + len(header)
        added = []
        for digest, codec, raw_len, stored in records:
            added.append(PackEntry(digest, codec, pos, raw_len, len(stored)))
            pos += len(stored)
            if len(stored):
                self._pieces.append(stored)
        self._pending += pos - self._size
        self._size = pos
        self.entries.extend(added)
        if self._pending >= _FLUSH_AT:
            self.hand_off()
        return added

    def hand_off(self) -> None:
        """Queue every appended byte for writing, without waiting for it."""
        if self._pieces:
            pieces, self._pieces, self._pending = self._pieces, [], 0
            self.writes.submit(lambda: self._write(pieces))

    def _write(self, pieces: list) -> None:
        try:
            n = _writev_all(self._fd, pieces)
        except OSError as e:  # raised on another thread than the caller's: say which file
            raise OSError(e.errno, e.strerror, str(self.tmp_path)) from None
        self._written_out(n)

    def flush(self) -> None:
        """Write every appended byte; after this the caller may reuse its buffers."""
        self.hand_off()
        self.writes.barrier()

    def _written_out(self, n: int) -> None:
        """`n` more bytes were written. A durable pack asks the kernel to start writing
        them to disk now (posix_fadvise DONTNEED starts the writeback of dirty pages
        without waiting for it; pages still dirty or under writeback stay cached, so a
        download right after still reads them from memory). The disk then works while
        the next windows are cut and hashed, and the fsync at the pack's end waits for
        its last few MiB only. Measured, 256 MiB written 8 MiB at a time with 4 ms of
        work between writes: the final fsync took 0.002-0.03 s instead of 0.07-0.18 s,
        and reading the file back still ran at page-cache speed. Runs on the write
        thread: starting a writeback blocks while the device's queue is full."""
        self._on_disk += n
        if self._fsync and self._on_disk - self._sent >= _WRITEBACK_AT and _START_WRITEBACK:
            os.posix_fadvise(self._fd, self._sent, self._on_disk - self._sent, os.POSIX_FADV_DONTNEED)
            self._sent = self._on_disk

    def finish(self) -> None:
        """Write the trailer and footer, fsync and close the temp file. May run on
        another thread than append (the session closes full packs in the background)."""
        trailer = zstandard.ZstdCompressor(level=3).compress(
            b"".join(TRAILER_ENTRY.pack(e.digest, e.codec, e.offset, e.raw_len, e.stored_len) for e in self.entries)
        )
        trailer_offset = self._size
        self._pieces.append(trailer)
        self._pieces.append(FOOTER.pack(trailer_offset, len(trailer), len(self.entries), FOOTER_MAGIC))
        self._size += len(trailer) + FOOTER.size
        try:
            self.flush()
            if self._reserved:  # give back the blocks reserved past the pack's end
                os.ftruncate(self._fd, self._size)
            if self._fsync:
                os.fsync(self._fd)
        finally:
            self._close()

    def discard(self) -> None:
        """Drop the pack: its queued writes are waited for (they write to its
        descriptor, whose number the system may give another file once closed)."""
        self._pieces = []
        if self._fd >= 0:
            try:
                self.writes.barrier()
            except BaseException:  # the pack is dropped; its write errors with it
                pass
        self._close()
        self.tmp_path.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._own_writes:
            self.writes.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _writev_all(fd: int, pieces: list) -> int:
    """writev every piece (IOV_MAX = 1024 per call), handling short writes; returns the bytes written."""
    total = sum(len(p) for p in pieces)
    i = 0
    while i < len(pieces):
        batch = pieces[i : i + 1024]
        want = sum(len(p) for p in batch)
        n = os.writev(fd, batch)
        if n == want:
            i += len(batch)
            continue
        # short write (rare: signals, disk full reported later): finish piece by piece
        for p in batch:
            view = memoryview(p)
            if n >= len(view):
                n -= len(view)
                continue
            view = view[n:]
            n = 0
            while view:
                view = view[os.write(fd, view):]
        i += len(batch)
    return total


def _check_magic(path: Path, magic: bytes) -> None:
    if magic not in (MAGIC, MAGIC_V1):
        raise CorruptionError(f"pack {path.name} has a bad magic number")


def read_trailer(path: Path) -> list[PackEntry]:
    """Entries of a pack from its trailer; CorruptionError if footer or trailer is bad."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < len(MAGIC) + FOOTER.size:
            raise CorruptionError(f"pack {path.name} is truncated ({size} bytes)")
        _check_magic(path, f.read(len(MAGIC)))
        f.seek(size - FOOTER.size)
        offset, length, count, magic = FOOTER.unpack(f.read(FOOTER.size))
        if magic != FOOTER_MAGIC or offset + length + FOOTER.size != size:
            raise CorruptionError(f"pack {path.name} has a damaged footer")
        f.seek(offset)
        try:
            raw = zstandard.ZstdDecompressor().decompress(f.read(length))
        except zstandard.ZstdError as e:
            raise CorruptionError(f"pack {path.name} has a damaged trailer: {e}") from None
    if len(raw) != count * TRAILER_ENTRY.size:
        raise CorruptionError(f"pack {path.name} trailer holds {len(raw)} bytes for {count} entries")
    return [PackEntry(*TRAILER_ENTRY.unpack_from(raw, i * TRAILER_ENTRY.size)) for i in range(count)]


def scan_records(path: Path) -> Iterator[PackEntry]:
    """Walk the record headers from the start: recovers entries when the trailer is lost.
    Stops at the first header that does not make sense (the trailer, or damage)."""
    with open(path, "rb") as f:
        data = f.read()
    _check_magic(path, data[: len(MAGIC)])
    walk = _walk_v1 if data[: len(MAGIC)] == MAGIC_V1 else _walk_blocks
    for entry, _ in walk(data, len(data)):
        yield entry


_MAX_RECORD = 64 * 1024 * 1024  # no record is larger (chunks <= CHUNK_MAX, whole files <= WHOLE_FILE_LIMIT)


def _plausible(codec: int, raw_len: int) -> bool:
    return codec <= 1 and raw_len <= _MAX_RECORD


def _walk_v1(data: bytes, end: int) -> Iterator[tuple[PackEntry, int]]:
    """(entry, where the next record starts) of a version-1 pack, up to `end`."""
    pos = len(MAGIC)
    while pos + RECORD_HEADER.size <= end:
        digest, codec, raw_len, stored_len = RECORD_HEADER.unpack_from(data, pos)
        start = pos + RECORD_HEADER.size
        if not _plausible(codec, raw_len) or start + stored_len > end:
            return
        pos = start + stored_len
        yield PackEntry(digest, codec, start, raw_len, stored_len), pos


def _walk_blocks(data: bytes, end: int) -> Iterator[tuple[PackEntry, int]]:
    """(entry, where the bytes after it start) of a version-2 pack, block by block, up to `end`."""
    pos = len(MAGIC)
    while pos + BLOCK_HEADER.size <= end:
        magic, count = BLOCK_HEADER.unpack_from(data, pos)
        heads = pos + BLOCK_HEADER.size
        start = heads + count * RECORD_HEADER.size
        if magic != BLOCK_MAGIC or count == 0 or start > end:
            return
        block: list[PackEntry] = []
        for i in range(count):
            digest, codec, raw_len, stored_len = RECORD_HEADER.unpack_from(data, heads + i * RECORD_HEADER.size)
            if not _plausible(codec, raw_len) or start + stored_len > end:
                return
            block.append(PackEntry(digest, codec, start, raw_len, stored_len))
            start += stored_len
        for e in block:
            yield e, e.offset + e.stored_len
        pos = start


class PackMissingError(CorruptionError):
    """A pack file a read located is not on disk. If the index no longer lists it, a gc
    repacked it after the read located its chunks (and, with no reader grace, deleted
    it at once): the read is retried once against the index's new locations."""

    def __init__(self, message: str, pack_id: str):
        super().__init__(message)
        self.pack_id = pack_id


class PackReader:
    """Reads the packs under one folder, keeping up to OPEN_PACKS descriptors open.

    Thread-safe. Callers that read many times from one pack take a private descriptor
    (`open_fd`, closed by the caller); one-off reads use `pread` or `read_all`."""

    def __init__(self, packs_dir: Path):
        self.dir = packs_dir
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def path(self, pack_id: str) -> Path:
        return pack_path(self.dir, pack_id)

    def on_disk(self) -> dict[str, Path]:
        """pack id -> path of every pack file present (indexed or not)."""
        return {p.stem: p for p in self.dir.glob("*/*.pack")}

    def any_on_disk(self) -> bool:
        return self.dir.is_dir() and any(self.dir.glob("*/*.pack"))

    # Where packs live is this class's business: gc and repair place, delete and set
    # aside packs only through the four methods below (an S3 store's reader keeps them
    # in a bucket: s3_packs.py).
    def listing(self) -> dict[str, tuple[int, float]]:
        """pack id -> (size, time of last change) of every pack present (indexed or not)."""
        out = {}
        for pid, path in self.on_disk().items():
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # deleted by a gc meanwhile
            out[pid] = (st.st_size, st.st_mtime)
        return out

    def put(self, pack_id: str, tmp_path: Path, durable: bool) -> None:
        """Move a finished pack (trailer written, fsynced) from its temp path into place."""
        final = self.path(pack_id)
        final.parent.mkdir(exist_ok=True)
        atomic.replace(tmp_path, final, durable=durable)

    def delete(self, pack_id: str) -> int:
        """Delete a pack; returns the bytes freed (0 if it was gone already)."""
        self.forget({pack_id})
        path = self.path(pack_id)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def quarantine(self, pack_id: str, folder: Path, durable: bool) -> None:
        """Set a corrupt pack aside in `folder` (kept, not deleted), if it is still there."""
        src = self.path(pack_id)
        if src.exists():
            folder.mkdir(exist_ok=True)
            atomic.replace(src, folder / src.name, durable=durable)
        self.forget({pack_id})

    def open_fd(self, pack_id: str) -> int:
        """A private duplicate of the cached descriptor of a pack; the caller closes it.

        Another thread may evict (close) the cached descriptor at any moment, and its
        number may then be reused for another file: reading through the shared number
        read other bytes (reported as corruption). A dup, made under the lock, cannot
        be closed under the caller's feet. PackMissingError if the file is absent."""
        with self._lock:
            fd = self._fds.get(pack_id)
            if fd is not None:
                self._fds.move_to_end(pack_id)
                return os.dup(fd)
            try:
                fd = os.open(self.path(pack_id), os.O_RDONLY)
            except FileNotFoundError:
                raise PackMissingError(f"pack {pack_id} is missing from {self.dir}; run `lode fsck`",
                                       pack_id) from None
            self._fds[pack_id] = fd
            if len(self._fds) > OPEN_PACKS:
                _, old = self._fds.popitem(last=False)
                os.close(old)
            return os.dup(fd)

    def pread(self, pack_id: str, length: int, offset: int) -> bytes:
        """`length` bytes at `offset`; CorruptionError if the pack ends before."""
        fd = self.open_fd(pack_id)
        try:
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        if len(data) != length:
            raise CorruptionError(f"pack {pack_id} is truncated at offset {offset + len(data)}")
        return data

    def read_all(self, pack_id: str) -> bytes:
        """The whole pack file (fsck and repair check every byte of it)."""
        return self.path(pack_id).read_bytes()

    def entries(self, pack_id: str) -> tuple[list[PackEntry], bool]:
        """(entries, trailer_ok): from the trailer, else from a scan of the record
        headers (a damaged trailer), else none."""
        path = self.path(pack_id)
        try:
            return read_trailer(path), True
        except CorruptionError:
            try:
                return list(scan_records(path)), False
            except CorruptionError:
                return [], False

    def forget(self, pack_ids: set[str] | None = None) -> None:
        """Close cached descriptors of these packs (None: all), e.g. once they are deleted."""
        with self._lock:
            for pid in list(self._fds):
                if pack_ids is None or pid in pack_ids:
                    os.close(self._fds.pop(pid))

    def close(self) -> None:
        self.forget()


def layout_ok(data: bytes, entries: list[PackEntry]) -> bool:
    """Every byte of the pack is accounted for: the record headers agree with the
    trailer, one for one, and records follow each other up to the trailer (so a flipped
    byte anywhere shows), in either pack version."""
    if len(data) < len(MAGIC) + FOOTER.size or data[: len(MAGIC)] not in (MAGIC, MAGIC_V1):
        return False
    trailer_offset = FOOTER.unpack_from(data, len(data) - FOOTER.size)[0]
    if trailer_offset > len(data) - FOOTER.size:
        return False
    expected = sorted(entries, key=lambda e: e.offset)
    if data[: len(MAGIC)] == MAGIC:
        return _blocks_match(data, expected, trailer_offset)
    end, i = len(MAGIC), 0
    for entry, after in _walk_v1(data, trailer_offset):
        if i >= len(expected) or tuple(expected[i]) != tuple(entry):
            return False
        i, end = i + 1, after
    return i == len(expected) and end == trailer_offset


def _blocks_match(data: bytes, expected: list[PackEntry], trailer_offset: int) -> bool:
    """layout_ok of a version-2 pack: block after block up to the trailer, each block's
    record headers equal to the next entries (by offset) and its records lying back to
    back after them. A block is compared at once (its headers unpacked by one
    iter_unpack, the offsets summed by accumulate), not a record at a time: a pull checks
    21,000 records, and the walk built a PackEntry for each (~0.04 CPU-s)."""
    pos, i = len(MAGIC), 0
    while pos + BLOCK_HEADER.size <= trailer_offset:
        magic, count = BLOCK_HEADER.unpack_from(data, pos)
        heads = pos + BLOCK_HEADER.size
        start = heads + count * RECORD_HEADER.size
        if magic != BLOCK_MAGIC or count == 0 or start > trailer_offset or i + count > len(expected):
            return False
        block = expected[i : i + count]  # by index (PackEntry: digest, codec, offset, raw_len, stored_len)
        if list(RECORD_HEADER.iter_unpack(data[heads:start])) != [(e[0], e[1], e[3], e[4]) for e in block]:
            return False
        ends = list(accumulate([e[4] for e in block], initial=start))  # where each record starts, then the last ends
        if ends[:-1] != [e[2] for e in block]:
            return False
        pos, i = ends[-1], i + count
    return i == len(expected) and pos == trailer_offset


# A received pack is checked this many bytes at a time, each span's pages dropped from
# the process once checked (a 64 MiB pack mapped whole would add 64 MB to its RSS; a
# transfer checks up to 4 packs at once: 8 MiB spans put a pull at 149-157 MB, 2 MiB at
# ~140 MB).
_CHECK_SPAN = 2 * 1024 * 1024


def check_received_pack(path: Path) -> list[PackEntry]:
    """The entries of a pack received whole from another store (a transfer adopting it),
    once every byte is proven: its trailer reads, its record headers agree with it one
    for one up to the trailer (`layout_ok`), and every record decodes to `raw_len` bytes
    whose BLAKE3 is its digest. CorruptionError naming the pack otherwise. One tight loop
    over the mapped file: one hash call a chunk, no copy."""
    entries = read_trailer(path)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        if not layout_ok(mm, entries):  # type: ignore[arg-type]  # a buffer, read like bytes
            raise CorruptionError(f"pack {path.name} received: its records do not match its trailer")
        mm.madvise(mmap.MADV_DONTNEED)
        bad = _first_bad_record(mm, entries)
        mm.madvise(mmap.MADV_DONTNEED)
    if bad is not None:
        raise CorruptionError(f"pack {path.name} received: chunk {bad.digest.hex()[:16]}... does not match "
                              "its digest")
    return entries


def _first_bad_record(mm: mmap.mmap, entries: list[PackEntry]) -> PackEntry | None:
    view = memoryview(mm)
    try:
        done = 0
        for e in entries:
            digest, codec_id, offset, raw_len, stored_len = e  # unpacked once (a pull: 21,000 records)
            data: bytes | memoryview = view[offset : offset + stored_len]  # a raw chunk is hashed where it lies
            if codec_id != RAW:
                try:
                    data = decode_stored(codec_id, data, raw_len)
                except CorruptionError:
                    return e
            if len(data) != raw_len or blake3.blake3(data).digest() != digest:
                return e
            if offset - done >= _CHECK_SPAN:  # the pages before this record are checked
                start = done - done % mmap.PAGESIZE
                mm.madvise(mmap.MADV_DONTNEED, start, offset - start)
                done = offset
        return None
    finally:
        view.release()
