"""A Repository is one store opened: its content store and its catalog, side by side.

It is the only place that knows both foundations and names their backends: a local
folder (LocalContentStore) or an S3-compatible bucket (S3ContentStore) for the bytes,
SQLite or PostgreSQL (SqlCatalog) for the catalog, in any pair (sdk/locations.py says
which). Everything above (Artifact, Run, Api, CLI) talks to a Repository. Repositories
are cached per location within a process, so many runs and Api objects share one
connection pool and one pack-file cache.
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path

from lodestore.catalog.base import Catalog
from lodestore.catalog.records import SchemaUpgrade
from lodestore.catalog.sql import SqlCatalog
from lodestore.config import resolve_root
from lodestore.errors import NotFoundError, ReadOnlyStoreError
from lodestore.gc_pause import gc_paused
from lodestore.read_only import writable_folder
from lodestore.sdk.locations import Location, resolve_location
from lodestore.store.base import ContentStore
from lodestore.store.local import LocalContentStore

_cache: dict[Location, Repository] = {}
_cache_lock = threading.Lock()


class Repository:
    def __init__(self, root: Path, store: ContentStore, catalog: Catalog, read_only: bool = False,
                 location: Location | None = None):
        self.root = root
        self.location = location or Location(root)
        self.store = store
        self.catalog = catalog
        # A store this process cannot write (read-only mount, snapshot, someone else's
        # store): reads work and create nothing; writes raise ReadOnlyStoreError.
        self.read_only = read_only

    @classmethod
    def open(cls, root: str | os.PathLike[str] | None = None, *, store: str | None = None,
             catalog: str | None = None, remote: str | None = None) -> Repository:
        """The store these settings name (sdk/locations.py: arguments, a named remote,
        $LODESTORE_STORE/$LODESTORE_CATALOG, else the embedded folder)."""
        location = resolve_location(root, store=store, catalog=catalog, remote=remote)
        with _cache_lock:
            repo = _cache.get(location)
            if repo is None:
                # Opening builds the catalog's table definitions, the S3 client and the
                # SQL engine: tens of thousands of long-lived objects whose allocation set
                # off a full collection walking every object the process holds (~0.05 s,
                # measured on a pull's open), and none of them is garbage.
                with gc_paused():
                    repo = _cache[location] = cls._open(location)
            return repo

    @classmethod
    def _open(cls, location: Location) -> Repository:
        path = location.root
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True)
        content = _open_store(location)
        try:
            catalog = (SqlCatalog(location.catalog_url) if location.catalog_url is not None
                       and not location.catalog_url.startswith("sqlite:")
                       else SqlCatalog.for_sqlite_file(_sqlite_path(location)))
        except BaseException:
            content.close()
            raise
        read_only = bool(getattr(content, "read_only", False)) or not writable_folder(path)
        repo = cls(path, content, catalog, read_only=read_only, location=location)
        if not read_only:
            repo._bind_catalog()
        return repo

    @property
    def catalog_path(self) -> Path | str:
        """Where the catalog is, for messages and disk figures: its file, or its URL with
        the password masked."""
        if self.location.catalog_url is None or self.location.catalog_url.startswith("sqlite:"):
            return _sqlite_path(self.location)
        return self.location.describe_catalog()

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
            if _cache.get(self.location) is self:
                del _cache[self.location]
        self.store.close()
        self.catalog.close()


def _sqlite_path(location: Location) -> Path:
    url = location.catalog_url
    if url is None:
        return location.root / "catalog.db"
    return Path(url[len("sqlite:///"):]).expanduser()


def _open_store(location: Location) -> ContentStore:
    url = location.store_url
    if url is None:
        return LocalContentStore(location.root / "store")
    if url.startswith("s3://"):
        # Only for s3:// stores: boto3 and the S3 backend cost ~0.3 s to import, which no
        # local command should pay (cli/context.py measures start-up).
        from lodestore.store.s3 import S3ContentStore  # noqa: PLC0415

        return S3ContentStore(url, cache_dir=location.root / "s3")
    return LocalContentStore(Path(url))


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


def upgrade_catalog(catalog: str | None = None, root: str | os.PathLike[str] | None = None,
                    remote: str | None = None) -> SchemaUpgrade:
    """Migrate a catalog's schema to the one this lodestore knows (`lode db upgrade`):
    `catalog` a URL (a team's postgresql://...), else the catalog of the location the
    settings name (a remote, $LODESTORE_CATALOG), else the store folder's catalog.db. A
    shared PostgreSQL catalog is only ever upgraded this way, never by opening it."""
    if catalog is None:
        catalog = resolve_location(root, remote=remote).catalog_url
    if catalog is not None:
        return SqlCatalog.upgrade_schema(catalog)
    path = resolve_root(root) / "catalog.db"
    if not path.is_file():
        raise NotFoundError(f"no catalog at {path}: nothing to upgrade (pass --catalog URL for a shared one)")
    return SqlCatalog.upgrade_schema(path)
