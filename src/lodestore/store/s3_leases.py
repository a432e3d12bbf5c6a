"""Who is writing an S3 content store, and gc's exclusive lock: the bucket's version of
the local store's gc.lock (flock shared by writers, exclusive for gc), for machines that
share nothing but the bucket.

- ``writers/<id>.json``: a writer's lease. A write session (and fsck's check) PUTs it
  before it looks up what the store holds, refreshes it from a thread every
  LEASE_REFRESH_SECONDS, and deletes it when it closes (after the caller's catalog
  commit). A lease not refreshed for LEASE_SECONDS belongs to a dead process and is
  ignored.
- ``writers-waiting/<id>.json``: a writer that found gc running and stepped back; the
  next gc waits until it got in (writers go first: gc in a loop never starves them).
- ``locks/gc.json``: gc's (and repair's) lock, taken by conditional create
  (``If-None-Match: *``: exactly one of many concurrent creators wins, proven on this
  SeaweedFS by tests/store/test_s3_conditional_create.py), refreshed likewise, deleted
  when done. A lock not refreshed for LOCK_SECONDS belongs to a crashed gc: it is
  broken, so a crash never blocks the store for ever.

Why the order makes it safe: a writer PUTs its lease, *then* reads the lock; gc creates
the lock, *then* lists the leases. S3 (and SeaweedFS) is read-after-write consistent,
so of any writer and gc one sees the other: either the writer sees the lock (it
withdraws its lease and waits for gc to finish), or gc sees the lease (it waits until
the writer is done). gc reads the live set (`keep()`) only after every writer left, so
every version a writer committed is kept; a writer looks up chunks only after gc is
done, so it never dedups against a chunk being deleted.

Ages are judged by the server's clock (objects' LastModified against the Date of the
server's own responses), never by comparing two machines' clocks.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from lodestore.errors import ConflictError, RemoteStoreError
from lodestore.store.s3_objects import Bucket, PreconditionFailed

WRITERS = "writers/"
WAITING = "writers-waiting/"  # writers that found gc running: the next gc lets them go first
GC_LOCK = "locks/gc.json"
LEASE_SECONDS = 60.0  # a lease older than this (server clock) is a dead writer's
LEASE_REFRESH_SECONDS = 10.0
LOCK_SECONDS = 120.0  # a gc lock older than this is a crashed gc's
POLL_SECONDS = 0.1
DEFAULT_WAIT_SECONDS = 600.0  # how long gc waits for writers, and writers for gc, by default


def _holder() -> bytes:
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "at": time.time()}).encode()


class _Refresher:
    """Re-PUTs an object every LEASE_REFRESH_SECONDS until stopped (its LastModified is the
    holder's heartbeat). A failed refresh is retried at the next tick: a lease that really
    lapses is judged by the other side."""

    def __init__(self, bucket: Bucket, name: str):
        self._bucket, self._name = bucket, name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lodestore-s3-lease", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(LEASE_REFRESH_SECONDS):
            try:
                self._bucket.put(self._name, _holder())
            except Exception:
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class WriterLease:
    """A registered writer (see the module docstring); `release()` is idempotent."""

    def __init__(self, bucket: Bucket, timeout: float | None = None):
        self._bucket = bucket
        self.name = f"{WRITERS}{uuid.uuid4().hex}.json"
        self._refresher: _Refresher | None = None
        deadline = time.monotonic() + (DEFAULT_WAIT_SECONDS if timeout is None else timeout)
        waiting = None
        try:
            while True:
                bucket.put(self.name, _holder())
                if not gc_running(bucket):
                    break
                bucket.delete([self.name])  # gc holds the store: step back until it is done
                if waiting is None:  # and ask the next gc to let us go first
                    waiting = f"{WAITING}{uuid.uuid4().hex}.json"
                    bucket.put(waiting, _holder())
                _wait_until(lambda: not gc_running(bucket), deadline,
                            f"the store {bucket.url} is being collected (gc holds {GC_LOCK}); try again later")
        finally:
            if waiting is not None:
                bucket.delete([waiting])
        self._refresher = _Refresher(bucket, self.name)

    @property
    def held(self) -> bool:
        """Registered and not released: no gc sweeps the store meanwhile."""
        return self._refresher is not None

    def release(self) -> None:
        if self._refresher is not None:
            self._refresher.stop()
            self._refresher = None
            _delete_or_let_expire(self._bucket, self.name)


def gc_running(bucket: Bucket) -> bool:
    """Whether a live gc lock exists (a stale one, of a crashed gc, does not count)."""
    info = bucket.head(GC_LOCK)
    return info is not None and bucket.server_now() - info.modified < LOCK_SECONDS


def live_writers(bucket: Bucket, under: str = WRITERS) -> list[str]:
    """Names of the leases (or waiting markers) younger than LEASE_SECONDS (server clock)."""
    found = list(bucket.objects(under))
    now = bucket.server_now()
    return [o.name for o in found if now - o.modified < LEASE_SECONDS]


class GcLock:
    """gc's exclusive hold: the lock object, then no live writer. `release()` is idempotent."""

    def __init__(self, bucket: Bucket, timeout: float | None = None):
        self._bucket = bucket
        deadline = time.monotonic() + (DEFAULT_WAIT_SECONDS if timeout is None else timeout)
        self._acquire(deadline)
        self._refresher: _Refresher | None = _Refresher(bucket, GC_LOCK)
        try:
            _wait_until(lambda: not live_writers(bucket), deadline,
                        f"gc of the store {bucket.url} gave up: writers kept it busy (leases under {WRITERS})")
        except BaseException:
            self.release()
            raise

    def _acquire(self, deadline: float) -> None:
        bucket = self._bucket
        # writers that stepped back for the previous gc go first: gc after gc in a loop
        # (a busy cron, a test) must not starve them
        _wait_until(lambda: not live_writers(bucket, under=WAITING), deadline,
                    f"gc of the store {bucket.url} gave up: writers kept it busy (under {WAITING})")
        while True:
            try:
                bucket.put(GC_LOCK, _holder(), if_absent=True)
                return
            except PreconditionFailed:
                info = bucket.head(GC_LOCK)
                if info is not None and bucket.server_now() - info.modified >= LOCK_SECONDS:
                    bucket.delete([GC_LOCK])  # a crashed gc's lock: break it
                    continue
            if time.monotonic() > deadline:
                raise ConflictError(f"the store {bucket.url} is locked by another gc or repair ({GC_LOCK}); "
                                    "try again later")
            time.sleep(POLL_SECONDS)

    def release(self) -> None:
        if self._refresher is not None:
            self._refresher.stop()
            self._refresher = None
            _delete_or_let_expire(self._bucket, GC_LOCK)


def _delete_or_let_expire(bucket: Bucket, name: str) -> None:
    """Remove a lease or lock; if the server does not answer (the error that matters was
    raised already), it is no longer refreshed and expires by itself."""
    try:
        bucket.delete([name])
    except RemoteStoreError:
        pass


def _wait_until(done: Callable[[], bool], deadline: float, message: str) -> None:
    while not done():
        if time.monotonic() > deadline:
            raise ConflictError(message)
        time.sleep(POLL_SECONDS)
