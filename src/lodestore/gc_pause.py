"""`gc_paused()`: Python's cyclic garbage collector held off while a loop builds many
small objects (a log's or a copy's rows, diff rows, index rows decoded). A leaf module,
so the catalog, the store and the SDK each use the one helper without knowing of each
other."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0  # gc_paused blocks open now, in any thread
_was_enabled = False  # whether the collector was on when the first of them opened


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects. With many
    objects alive (a process that imported boto3 and SQLAlchemy holds ~500,000) every
    allocation burst sets off a collection that walks them all, which costs more than
    the work itself. Measured: 0.9 s -> 0.4 s for a diff of 100,000 modified files;
    ~0.3 s of CPU per 100,000 files logged; 0.11 -> 0.06 s to decode 21,000 index rows;
    ~0.2 s of a 1.5 s pull of 21,000 files (two full collections, each stopping every
    thread). Use it only where the objects hold no reference cycles, or few: any cycle
    left is collected once the collector is back on.

    The collector is one switch for the whole process: blocks may nest and overlap
    across threads (a log on one thread, a pull on another), and the collector comes
    back on when the last of them ends, and only if it was on when the first began (a
    caller may have turned it off itself)."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
