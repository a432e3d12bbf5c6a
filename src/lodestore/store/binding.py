"""Which catalog a content store belongs to: ``<store>/catalog-binding.json``.

The store holds bytes; only the catalog knows which of them versions still need. A
store whose catalog was deleted, emptied, or put back from an old backup looks, to gc,
like a store whose every byte is garbage. So the store keeps an opaque copy of the
catalog's identity: its instance id and the highest generation (a counter the catalog
bumps with every change to its set of versions) seen so far. gc and fsck compare it
with the catalog they are given; a different id or a lower generation means the
catalog is not the one these bytes were written for, and gc refuses to sweep.

The store knows nothing of versions: the SDK hands it (id, generation) pairs. The file
is replaced atomically (atomic.py: temp + rename, fsynced) under ``catalog-binding.lock`` (locks.py), and the
generation only ever goes up. Only `bind` (a new store, a legacy store seen with its
catalog, or a user adopting a catalog on purpose) writes another id.
"""

from __future__ import annotations

import json
from pathlib import Path

from lodestore.store import atomic
from lodestore.store.base import CatalogBinding
from lodestore.store.locks import binding_lock

__all__ = ["BINDING_FILE", "CatalogBinding", "advance", "bind", "read_binding"]

BINDING_FILE = "catalog-binding.json"


def read_binding(store_root: Path) -> CatalogBinding | None:
    """The recorded binding, None if the store has none yet. A file that is not a
    binding counts as none (it is rewritten by the next `bind`), never as a match."""
    try:
        data = json.loads((Path(store_root) / BINDING_FILE).read_text())
        return CatalogBinding(str(data["catalog_id"]), int(data["generation"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None


def bind(store_root: Path, catalog_id: str, generation: int) -> None:
    """Record (catalog_id, generation) whatever was recorded before."""
    with binding_lock(store_root):
        _write(store_root, CatalogBinding(catalog_id, generation))


def advance(store_root: Path, catalog_id: str, generation: int) -> None:
    """Raise the recorded generation of the same catalog; a binding to another catalog,
    or none at all, is left as it is (a catalog made after the old one was lost must not
    claim the old one's bytes by logging something)."""
    with binding_lock(store_root):
        found = read_binding(store_root)
        if found is not None and found.catalog_id == catalog_id and generation > found.generation:
            _write(store_root, CatalogBinding(catalog_id, generation))


def _write(store_root: Path, binding: CatalogBinding) -> None:
    atomic.write_bytes(Path(store_root) / BINDING_FILE,
                       json.dumps({"catalog_id": binding.catalog_id, "generation": binding.generation}))
