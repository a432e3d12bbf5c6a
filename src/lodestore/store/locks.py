"""The store's locks, all flock(2) on files under the store root.

- ``gc.lock``: every write session holds it *shared* from its start until it is closed
  (after the caller committed its catalog version); gc and fsck --repair hold it
  *exclusive*, fsck's check shared (store/maintenance.py explains why that is safe).
- ``catalog-binding.lock``: serialises updates of catalog-binding.json (binding.py).

Closing the returned descriptor releases a lock.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lodestore.errors import ConflictError

GC_LOCK_FILE = "gc.lock"
BINDING_LOCK_FILE = "catalog-binding.lock"
LOCK_TIMEOUT = 600.0


def acquire_store_lock(root: Path, exclusive: bool, timeout: float | None = None) -> int:
    """flock on <root>/gc.lock; returns the fd (closing it releases the lock).
    ConflictError once `timeout` seconds (default LOCK_TIMEOUT) pass without it."""
    fd = os.open(Path(root) / GC_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    deadline = time.monotonic() + (LOCK_TIMEOUT if timeout is None else timeout)
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                what = "write sessions are in progress" if exclusive else "garbage collection is running"
                raise ConflictError(f"store {root} is busy: {what}; try again later") from None
            time.sleep(0.02)


def acquire_shared_lock_read_only(root: Path, timeout: float | None = None) -> int | None:
    """The shared gc lock of a store this process cannot write (a read-only mount of a
    live store, a snapshot): flock works on a descriptor opened read-only, so a check
    still waits for a gc running elsewhere. No gc.lock at all means no writer ever
    locked this store: None, nothing to hold."""
    try:
        fd = os.open(Path(root) / GC_LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return None
    deadline = time.monotonic() + (LOCK_TIMEOUT if timeout is None else timeout)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise ConflictError(f"store {root} is busy: garbage collection is running; try again later") from None
            time.sleep(0.02)


@contextmanager
def binding_lock(root: Path) -> Iterator[None]:
    """Exclusive lock of catalog-binding.json's updates (waits as long as it takes:
    it is held for one small write)."""
    fd = os.open(Path(root) / BINDING_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
