"""SQLAlchemy engines tuned for the catalog: one for reads, one for writes.

SQLite is the default catalog and several processes (a training job, the CLI, a
notebook) write it at once, so:

- WAL journal: readers never block the writer and the writer never blocks readers.
  (WAL needs shared memory, so the catalog must live on a local disk, not NFS.)
- ``synchronous=NORMAL``: in WAL mode a power cut may lose the last commits but never
  corrupts the file; FULL would fsync every commit.
- A long busy timeout: a second writer waits for the lock instead of failing.
- Write transactions start with ``BEGIN IMMEDIATE``. With a plain (deferred) BEGIN,
  two transactions that read and then write both hold read locks, and one of them
  fails with "database is locked" on the upgrade, without waiting. Taking the write
  lock up front makes the second writer wait at BEGIN instead.
  pysqlite's own transaction handling is switched off (``isolation_level = None``) so
  that we, not the driver, emit BEGIN (see SQLAlchemy's SQLite docs, "Enabling
  Non-Legacy SQLite Transactional Modes").
- Foreign keys on (SQLite leaves them off by default).

Both engines share one connection pool (QueuePool), so a catalog can be used from
several threads of one process.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any, NamedTuple
from urllib.parse import unquote

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.pool import StaticPool

from lodestore.errors import CorruptionError, InvalidInputError, ReadOnlyStoreError, is_database_damage

BUSY_TIMEOUT_S = 60.0
_WRITE = "lodestore_write"


class Engines(NamedTuple):
    base: Engine  # owns the pool: dispose this one
    read: Engine
    write: Engine


def create_engines(url: str | URL, **engine_kwargs: Any) -> Engines:
    """Read and write engines for `url`, sharing one pool.

    Pass a `URL` built from parts for a file path: a path pasted into a string can
    hold '?', '#' or '%' that a URL parser reads as syntax.
    """
    backend = make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise InvalidInputError(
            f"catalog URL {url!r}: only sqlite:/// and postgresql:// catalogs are supported")
    is_sqlite = backend == "sqlite"
    if is_sqlite:
        connect_args = engine_kwargs.setdefault("connect_args", {})
        connect_args.setdefault("timeout", BUSY_TIMEOUT_S)
        if _is_memory_url(url):
            # Each connection to ":memory:" is a separate, empty database: keep exactly one.
            # Fine for tests; not for concurrent threads, which would share its transaction.
            connect_args.setdefault("check_same_thread", False)
            engine_kwargs.setdefault("poolclass", StaticPool)
    else:
        engine_kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **engine_kwargs)
    if is_sqlite:
        _tune_sqlite(engine)
        return Engines(engine, engine, engine.execution_options(**{_WRITE: True}))
    # Reads see one snapshot across their few queries (version row, tags, aliases);
    # writes serialise on the rows they lock (the artifact row, see SqlCatalog).
    return Engines(engine, engine.execution_options(isolation_level="REPEATABLE READ"), engine)


def _is_memory_url(url: str | URL) -> bool:
    parsed = make_url(url)
    return not parsed.database or parsed.database == ":memory:" or parsed.query.get("mode") == "memory"


def _is_read_only_url(url: str | URL) -> bool:
    """Opened as it is, on a folder this process cannot write (lodestore/read_only.py)."""
    query = make_url(url).query
    return query.get("mode") == "ro" or query.get("immutable") == "1"


def _tune_sqlite(engine: Engine) -> None:
    read_only = _is_read_only_url(engine.url)

    @event.listens_for(engine, "handle_error")
    def _on_error(ctx: Any) -> None:
        # A damaged catalog.db is one clear line naming the file, on every command; it is
        # never taken for a new, empty catalog (that would hide every version).
        if is_database_damage(ctx.original_exception):
            raise CorruptionError(
                f"the catalog {_file_of(engine.url)} is corrupted ({ctx.original_exception}); it cannot be "
                "rebuilt from the store: restore it from a backup (the store's bytes are kept: gc refuses "
                "to run beside a catalog that is not the store's own)") from None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, see module docstring
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if not read_only:  # a read-only file keeps the mode it has (WAL: it was ours)
                _use_wal(cur)
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        if immediate and read_only:  # refused before anything is asked of SQLite
            raise ReadOnlyStoreError(_file_of(engine.url), "change the catalog")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _file_of(url: URL) -> str:
    """The database file's path, also when the URL holds it as a SQLite file: URI."""
    database = url.database or ""
    return unquote(database.removeprefix("file:")) if url.query.get("uri") == "true" else database


def _use_wal(cur: Any) -> None:
    """Switch the file to WAL once (the mode is stored in the file).

    Switching needs an exclusive lock and SQLite does not call the busy handler for it:
    two processes opening a brand-new catalog at once would see "database is locked".
    So look first (reading the mode waits politely), and retry the switch ourselves.
    """
    if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
        return
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            mode = cur.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
            continue
        if mode != "wal" and not _is_memory(cur):
            raise sqlite3.OperationalError(f"could not switch the catalog to WAL mode (got {mode!r})")
        return


def _is_memory(cur: Any) -> bool:
    return not cur.execute("PRAGMA database_list").fetchone()[2]  # file name "" = in-memory
