"""A Repository is one store root opened: its content store and its catalog, side by side.

It is the only place that knows both foundations; everything above (Artifact, Run, Api,
CLI) talks to a Repository. Repositories are cached per root within a process, so many
runs and Api objects share one SQLite connection pool and one pack-file cache.
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path

from lodestore.catalog.base import Catalog, SchemaUpgrade
from lodestore.catalog.sql import SqlCatalog
from lodestore.config import resolve_root
from lodestore.errors import NotFoundError, ReadOnlyStoreError
from lodestore.read_only import writable_folder
from lodestore.store.base import ContentStore
from lodestore.store.local import LocalContentStore

_cache: dict[Path, Repository] = {}
_cache_lock = threading.Lock()


class Repository:
    def __init__(self, root: Path, store: ContentStore, catalog: Catalog, read_only: bool = False):
        self.root = root
        self.store = store
        self.catalog = catalog
        # A store this process cannot write (read-only mount, snapshot, someone else's
        # store): reads work and create nothing; writes raise ReadOnlyStoreError.
        self.read_only = read_only

    @classmethod
    def open(cls, root: str | os.PathLike[str] | None = None) -> Repository:
        path = resolve_root(root)
        with _cache_lock:
            repo = _cache.get(path)
            if repo is None:
                if not path.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                store = LocalContentStore(path / "store")
                catalog = SqlCatalog.for_sqlite_file(path / "catalog.db")
                read_only = store.read_only or not writable_folder(path)
                repo = _cache[path] = cls(path, store, catalog, read_only=read_only)
                if not read_only:
                    repo._bind_catalog()
            return repo

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.db"

    def _bind_catalog(self) -> None:
        """Tie the content store to this catalog (ContentStore.bind_catalog): a store holding no
        content yet binds at once (a store from before bindings is bound by its first gc
        or fsck, see lifecycle.catalog_mismatch). Every later change to the catalog's
        versions raises the recorded generation."""
        store = self.store
        self.catalog.on_generation = lambda catalog_id, generation: _advance(store, catalog_id, generation)
        if store.catalog_binding() is None and not store.holds_content():
            identity = self.catalog.identity()
            try:
                store.bind_catalog(identity.instance_id, identity.generation)
            except OSError:
                pass  # a read-only store: nothing can be swept there; the next writer binds

    @property
    def staging_dir(self) -> Path:
        if self.read_only:
            raise ReadOnlyStoreError(self.root, "stage files")
        d = self.root / "staging"
        d.mkdir(exist_ok=True)
        return d

    @property
    def cache_dir(self) -> Path:
        """The download cache's folder (made on first use, except in a read-only store,
        whose downloads skip the cache: sdk/materialize.py)."""
        d = self.root / "cache"
        if not self.read_only:
            d.mkdir(exist_ok=True)
        return d

    def close(self) -> None:
        with _cache_lock:
            if _cache.get(self.root) is self:
                del _cache[self.root]
        self.store.close()
        self.catalog.close()


def _advance(store: ContentStore, catalog_id: str, generation: int) -> None:
    """Record a committed generation. The version is committed already: a store that
    cannot record it (disk full) only loses some of the protection, so it is not an
    error of the log; the next commit or gc records a newer one."""
    try:
        store.advance_catalog(catalog_id, generation)
    except OSError:
        pass


def close_all() -> None:
    """Close every open repository (tests use it between stores)."""
    for repo in list(_cache.values()):
        repo.close()


atexit.register(close_all)


def upgrade_catalog(catalog: str | None = None, root: str | os.PathLike[str] | None = None) -> SchemaUpgrade:
    """Migrate a catalog's schema to the one this lodestore knows (`lode db upgrade`):
    `catalog` a URL (a team's postgresql://...), else the store folder's catalog.db. A
    shared PostgreSQL catalog is only ever upgraded this way, never by opening it."""
    if catalog is not None:
        return SqlCatalog.upgrade_schema(catalog)
    path = resolve_root(root) / "catalog.db"
    if not path.is_file():
        raise NotFoundError(f"no catalog at {path}: nothing to upgrade (pass --catalog URL for a shared one)")
    return SqlCatalog.upgrade_schema(path)
