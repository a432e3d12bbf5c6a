"""SQLAlchemy engines tuned for the catalog: one for reads, one for writes; the one
place that knows how each backend connects (SQL differences: dialect.py).

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

PostgreSQL (a team's shared catalog) is reached through psycopg 3: ``postgresql://`` and
``postgresql+psycopg://`` both mean it. There:

- Connections are pooled, a few kept idle per process (many processes share one server's
  connection limit), checked with a ping before use (``pool_pre_ping``: a server restarted
  or a connection cut since is replaced, not handed out) and recycled after half an hour
  (proxies and firewalls drop idle connections silently).
- Connecting gives up after `CONNECT_TIMEOUT_S` (``?connect_timeout=N`` in the URL
  overrides it), once: a wrong host, port, user, password or database is one line naming
  the catalog, password masked (`CatalogUnavailableError`), not a hang or a retry loop.
  A connection lost mid-transaction is the same error; the server rolled the transaction
  back, and the pool replaces the connection for the next call.
- Writes run READ COMMITTED and lock the rows they change in order (``SELECT ... FOR
  UPDATE``: the catalog_instance row for changes of the set of versions, then the
  artifact's row); reads see one snapshot (REPEATABLE READ) across their few queries.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import unquote

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.pool import StaticPool

from lodestore.errors import (
    CatalogUnavailableError,
    CorruptionError,
    InvalidInputError,
    ReadOnlyStoreError,
    is_database_damage,
)
from lodestore.sqlite_wal import use_wal

BUSY_TIMEOUT_S = 60.0
_WRITE = "lodestore_write"
CONNECT_TIMEOUT_S = 5  # seconds per connection attempt to a PostgreSQL catalog
# Per process: connections kept idle, extra ones allowed under load (threads), seconds a
# caller waits for a free one, age after which an idle connection is replaced.
PG_POOL = {"pool_size": 2, "max_overflow": 8, "pool_timeout": 30, "pool_recycle": 1800}
_PSYCOPG = "postgresql+psycopg"
APPLICATION_NAME = "lodestore"


class Engines(NamedTuple):
    base: Engine  # owns the pool: dispose this one
    read: Engine
    write: Engine


def create_engines(url: str | URL, **engine_kwargs: Any) -> Engines:
    """Read and write engines for `url`, sharing one pool.

    Pass a `URL` built from parts for a file path: a path pasted into a string can
    hold '?', '#' or '%' that a URL parser reads as syntax.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise InvalidInputError(
            f"catalog URL {parsed.render_as_string(hide_password=True)!r}: only sqlite:/// and postgresql:// "
            "catalogs are supported")
    if backend == "postgresql":
        return _postgres_engines(parsed, **engine_kwargs)
    connect_args = engine_kwargs.setdefault("connect_args", {})
    connect_args.setdefault("timeout", BUSY_TIMEOUT_S)
    if _is_memory_url(url):
        # Each connection to ":memory:" is a separate, empty database: keep exactly one.
        # Fine for tests; not for concurrent threads, which would share its transaction.
        connect_args.setdefault("check_same_thread", False)
        engine_kwargs.setdefault("poolclass", StaticPool)
    engine = create_engine(url, **engine_kwargs)
    _tune_sqlite(engine)
    return Engines(engine, engine, engine.execution_options(**{_WRITE: True}))


def _postgres_engines(url: URL, **engine_kwargs: Any) -> Engines:
    """Engines for a PostgreSQL catalog through psycopg 3 (see the module docstring)."""
    if url.drivername not in ("postgresql", _PSYCOPG):
        raise InvalidInputError(
            f"catalog URL {url.render_as_string(hide_password=True)!r}: PostgreSQL catalogs are reached "
            "through psycopg 3: write postgresql://user@host:port/database")
    try:
        import psycopg  # noqa: F401, PLC0415  (only a PostgreSQL catalog needs it; ~40 ms)
    except ImportError:
        raise InvalidInputError(
            "a PostgreSQL catalog needs psycopg 3: pip install 'lodestore[postgres]'") from None
    url = url.set(drivername=_PSYCOPG)
    connect_args = engine_kwargs.setdefault("connect_args", {})
    if "connect_timeout" not in url.query:
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    if "application_name" not in url.query:  # who holds a connection, in pg_stat_activity
        connect_args.setdefault("application_name", APPLICATION_NAME)
    engine_kwargs.setdefault("pool_pre_ping", True)
    for key, value in PG_POOL.items():
        engine_kwargs.setdefault(key, value)
    engine = create_engine(url, **engine_kwargs)
    _tune_postgresql(engine)
    return Engines(engine, engine.execution_options(isolation_level="REPEATABLE READ"), engine)


def display_url(url: URL) -> str:
    """The catalog as users name it: a SQLite catalog's file path; a server's URL as
    written (postgresql://, no driver), its password masked."""
    if url.get_backend_name() == "sqlite":
        return _file_of(url) or ":memory:"
    return url.set(drivername="postgresql").render_as_string(hide_password=True)


def _tune_postgresql(engine: Engine) -> None:
    shown = display_url(engine.url)

    @event.listens_for(engine, "handle_error")
    def _on_error(ctx: Any) -> None:
        if ctx.is_pre_ping:  # a stale pooled connection: the pool replaces it by itself
            return
        reason = " ".join(str(ctx.original_exception).split()).removeprefix("connection failed: ")
        if ctx.connection is None and _is_operational(ctx.original_exception):
            raise CatalogUnavailableError(
                f"cannot connect to the catalog {shown} (within {_connect_timeout(engine)} s): {reason}") from None
        if ctx.is_disconnect:
            raise CatalogUnavailableError(
                f"lost the connection to the catalog {shown}: {reason}; the transaction in progress was rolled "
                "back by the server (retry: the next call reconnects)") from None


def _is_operational(exc: BaseException) -> bool:
    """psycopg's OperationalError (server unreachable, login refused), without importing
    psycopg in this module's namespace for SQLite users."""
    return any(cls.__name__ == "OperationalError" for cls in type(exc).__mro__)


def _connect_timeout(engine: Engine) -> Any:
    return engine.url.query.get("connect_timeout", CONNECT_TIMEOUT_S)


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
                use_wal(cur, BUSY_TIMEOUT_S)
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
