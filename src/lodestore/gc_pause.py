"""`gc_paused()`: Python's cyclic garbage collector held off while a loop builds many
small objects (diff rows, index rows decoded from JSON). A leaf module, so the catalog,
the store and the SDK each use the one helper without knowing of each other."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects: with
    200,000 entries alive it would otherwise rescan them again and again, which costs
    more than the work itself (measured: 0.9 s -> 0.4 s for a diff of 100,000 modified
    files; 0.11 -> 0.06 s to decode 21,000 index rows). Use it only where the objects
    hold no reference cycles, so nothing is left for the collector to find."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
