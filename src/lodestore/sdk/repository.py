"""A Repository is one store root opened: its content store and its catalog, side by side.

It is the only place that knows both foundations; everything above (Artifact, Run, Api,
CLI) talks to a Repository. Repositories are cached per root within a process, so many
runs and Api objects share one SQLite connection pool and one pack-file cache.
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path

from lodestore.catalog.base import Catalog
from lodestore.catalog.sql import SqlCatalog
from lodestore.config import resolve_root
from lodestore.store.base import ContentStore
from lodestore.store.local import LocalContentStore

_cache: dict[Path, Repository] = {}
_cache_lock = threading.Lock()


class Repository:
    def __init__(self, root: Path, store: ContentStore, catalog: Catalog):
        self.root = root
        self.store = store
        self.catalog = catalog

    @classmethod
    def open(cls, root: str | Path | None = None) -> Repository:
        path = resolve_root(root)
        with _cache_lock:
            repo = _cache.get(path)
            if repo is None:
                path.mkdir(parents=True, exist_ok=True)
                store = LocalContentStore(path / "store")
                catalog = SqlCatalog.for_sqlite_file(path / "catalog.db")
                repo = _cache[path] = cls(path, store, catalog)
            return repo

    @property
    def staging_dir(self) -> Path:
        d = self.root / "staging"
        d.mkdir(exist_ok=True)
        return d

    @property
    def cache_dir(self) -> Path:
        d = self.root / "cache"
        d.mkdir(exist_ok=True)
        return d

    def close(self) -> None:
        with _cache_lock:
            if _cache.get(self.root) is self:
                del _cache[self.root]
        self.store.close()
        self.catalog.close()


def close_all() -> None:
    """Close every open repository (tests use it between stores)."""
    for repo in list(_cache.values()):
        repo.close()


atexit.register(close_all)
