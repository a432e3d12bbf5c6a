"""One benchmark step per process, so each step's peak RSS is its own.

Usage: python bench/steps.py STEP STORE_ROOT ARGS... ; prints one JSON line:
{"seconds": op time, "maxrss_mb": peak RSS of this process, ...step facts}.
The op time runs from opening the store (Repository.open / Api) to the end of the
operation; interpreter start and imports are measured by run.py around the process.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def _stored(repo) -> int:
    return repo.store.stats().stored_bytes


def log(root: str, name: str, artifact_type: str, path: str, entry_name: str | None = None) -> dict:
    import lodestore
    import lodestore.sdk.log_draft  # (the door imports it when it logs: imported here, before the clock)
    from lodestore.sdk.repository import Repository

    artifact_class = lodestore.Artifact  # imported lazily (PEP 562): import it before the clock starts
    t = time.perf_counter()  # opening the store is part of logging (imports are not: see run.py)
    repo = Repository.open(root)
    # bookkeeping for the report, not part of the operation: excluded from the time
    t_book = time.perf_counter()
    before = _stored(repo)
    versions_before = len(repo.catalog.list_versions("bench", name)) if repo.catalog.list_artifacts("bench", name=name) else 0
    t += time.perf_counter() - t_book
    art = artifact_class(name, type=artifact_type, project="bench")
    p = Path(path)
    if p.is_dir():
        art.add_dir(p)
    else:
        art.add_file(p, name=entry_name or p.name)
    created = art._log(repo, "bench", [], None)
    seconds = time.perf_counter() - t
    versions_after = len(repo.catalog.list_versions("bench", name))
    return {"seconds": seconds, "new_bytes": _stored(repo) - before, "size": art.size, "version": art.version,
            "created": created, "new_versions": versions_after - versions_before}


def download(root: str, ref: str, target: str) -> dict:
    import lodestore
    import lodestore.sdk.download  # (the door imports it when it downloads: imported here, before the clock)

    api_class = lodestore.Api  # imported lazily (PEP 562): import it before the clock starts, as log() does
    t = time.perf_counter()
    api = api_class(root=root)
    art = api.artifact(ref)
    art.download(root=target)
    return {"seconds": time.perf_counter() - t, "size": art.size}


def floor_log(path: str, out: str) -> dict:
    """The least work a log of a new large file needs, by the libraries alone (no store,
    no index, no catalog): read, FastCDC with the store's parameters and a BLAKE3 digest
    per chunk on one thread; the whole-file BLAKE3 and the write on the other; then
    fsync, into a file whose disk is reserved first (as the store's packs are). What a log
    cannot go below on this machine, whatever the code around it.
    Windows of the store's own size (stream.WINDOW, 1 MiB: each stays in the CPU's
    caches through every pass; 8 MiB windows cost ~40 % more CPU here)."""
    import os
    import queue
    import threading

    import blake3

    from lodestore.store import atomic
    from lodestore.store.chunking import cut_window, make_chunker
    from lodestore.store.layout import CHUNK_MAX
    from lodestore.store.stream import WINDOW

    t = time.perf_counter()
    chunker, whole = make_chunker(), blake3.blake3()
    free: queue.Queue = queue.Queue()
    ready: queue.Queue = queue.Queue()
    for _ in range(3):
        free.put(bytearray(WINDOW + CHUNK_MAX))
    src = os.open(path, os.O_RDONLY)
    size = os.fstat(src).st_size
    dst = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    atomic.preallocate(dst, size)  # as the store's packs reserve their disk (packs.PackWriter)

    def produce() -> None:
        tail, total = b"", 0
        while True:
            buf = free.get()
            view = memoryview(buf)
            view[: len(tail)] = tail
            n = os.readv(src, [view[len(tail) : len(tail) + WINDOW]])
            total += n
            final = n == 0 or total >= size
            window, pos, pieces = view[: len(tail) + n], 0, []
            for piece in cut_window(chunker, window, final):
                pieces.append(blake3.blake3(piece).digest())
                pos += len(piece)
            ready.put((buf, window[len(tail) :], window[:pos]))
            tail = b"" if final else bytes(window[pos:])
            if final:
                ready.put(None)
                return

    flushes: queue.Queue = queue.Queue()

    def flush() -> None:  # writeback while writing, as the store does (it fsyncs each 64 MiB pack)
        while flushes.get() is not None:
            os.fdatasync(dst)

    thread, flusher = threading.Thread(target=produce), threading.Thread(target=flush)
    thread.start()
    flusher.start()
    written = 0
    while (item := ready.get()) is not None:
        buf, fresh, chunks = item
        whole.update(fresh)
        view = chunks
        while view:
            view = view[os.write(dst, view):]
        free.put(buf)
        if (written := written + len(chunks)) >= 64 * 2**20:
            flushes.put(True)
            written = 0
    thread.join()
    flushes.put(None)
    flusher.join()
    os.fsync(dst)
    os.close(dst)
    os.close(src)
    return {"seconds": time.perf_counter() - t, "digest": whole.hexdigest()}


def hash_file(path: str) -> dict:
    """Read + BLAKE3 of a file on one core: what verifying a download costs by itself.
    1 MiB reads, each hashed while still in the core's cache, as a download hashes
    each piece it writes (store/rawcopy.py): 16 MiB reads measured 10-25 % slower here."""
    import blake3

    from lodestore.store.rawcopy import PIECE

    t = time.perf_counter()
    hasher = blake3.blake3()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(PIECE)
        view = memoryview(buf)
        while n := f.readinto(buf):
            hasher.update(view[:n])
    return {"seconds": time.perf_counter() - t, "digest": hasher.hexdigest()}


def cli(root: str, *argv: str) -> dict:
    """A `lode` command in this process, its output discarded: how long it runs and how
    much memory it holds (lode files --json on 100,000 files must stream, not collect)."""
    import contextlib
    import os

    from lodestore.cli.main import main as lode

    t = time.perf_counter()
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        try:
            lode(["--root", root, *argv])
        except SystemExit as e:
            if e.code:
                raise
    return {"seconds": time.perf_counter() - t}


def peak_rss_mb() -> float:
    """VmHWM: this process's own peak RSS (ru_maxrss would inherit the parent's peak over fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    step, *args = sys.argv[1:]
    result = {"log": log, "download": download, "floor_log": floor_log, "hash": hash_file, "cli": cli}[step](*args)
    result["maxrss_mb"] = peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
