"""Where the catalog's SQL differs between SQLite and PostgreSQL: the one place for it.

Everything else in the catalog writes portable SQLAlchemy Core and calls these helpers
where the two databases would otherwise answer differently. The rules, each with why:

- **Text is compared byte-wise.** SQLite compares strings with memcmp; a PostgreSQL
  database usually has a locale-aware default collation ("a" < "B" < "b"), which would
  change sort orders, ``name>m`` and the digest-prefix ranges. Every string column is
  ``COLLATE "C"`` on PostgreSQL (schema.py, `bytewise_type`; migration 0006 for older
  databases) and text computed in a query (a JSON value) goes through `bytewise`.
- **LIKE ignores ASCII case.** SQLite's LIKE does; PostgreSQL's does not, so the same
  pattern is ILIKE there (`like`). Wildcards in user text are escaped with a backslash.
- **JSON paths.** SQLite's json_type/json_extract with a ``$."a"."b"`` path; PostgreSQL's
  json_typeof over json_extract_path (`json_kind`). Rows SQLite cannot parse as JSON (a
  NaN stored long ago) read as NULL there (`readable_json`).
- **Upserts.** ``INSERT ... ON CONFLICT DO NOTHING`` on both, from each dialect's own
  insert construct (`insert_ignore`).
- **Locks.** ``SELECT ... FOR UPDATE`` is PostgreSQL's row lock and nothing on SQLite,
  whose writers already hold the database's write lock from BEGIN IMMEDIATE (engine.py);
  SQLAlchemy drops FOR UPDATE on SQLite, so callers lock rows without asking which
  database it is. Migrations serialise on an advisory lock (`lock_for_migration`).
- **Schema upgrades** happen on open for SQLite only (`upgrades_on_open`).
- **Catalog tables** are found through sqlite_master (cheap, on every CLI command) or
  the inspector (`table_exists`, `has_no_tables`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import JSON, Connection, Table, Text, case, func, inspect, literal, null, text, type_coerce
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeEngine

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
BYTEWISE = "C"  # PostgreSQL's collation that compares bytes, like SQLite and Python's str
LIKE_ESCAPE = "\\"
_MIGRATION_LOCK_KEY = 0x10DE_5702  # any constant: names the advisory lock migrations take


def bytewise_type(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """`type_` (a String or Text) compared byte-wise on PostgreSQL too (see module docstring)."""
    kind: Any = type(type_)
    length = getattr(type_, "length", None)
    variant = kind(length, collation=BYTEWISE) if length is not None else kind(collation=BYTEWISE)
    return type_.with_variant(variant, POSTGRESQL)


def bytewise(dialect: str, expr: Any) -> Any:
    """Text computed in a query (not a column), compared byte-wise on every backend."""
    return expr.collate(BYTEWISE) if dialect == POSTGRESQL else expr


def escape_like(value: str) -> str:
    """`value` matched literally by LIKE: its %, _ and the escape character escaped."""
    return "".join(LIKE_ESCAPE + ch if ch in "%_" + LIKE_ESCAPE else ch for ch in value)


def like(dialect: str, expr: Any, pattern: str) -> Any:
    """`expr LIKE pattern`, ignoring ASCII case on every backend, backslash the escape."""
    if dialect == POSTGRESQL:
        return expr.ilike(pattern, escape=LIKE_ESCAPE)
    return expr.like(pattern, escape=LIKE_ESCAPE)


def readable_json(dialect: str, col: Any) -> Any:
    """`col` where SQLite can read it as JSON, NULL elsewhere.

    Before non-finite floats were stored as null (lodestore.json_values), a NaN went in
    as the text ``NaN``; SQLite's JSON functions raise "malformed JSON" on such a row,
    which failed the whole query for every row. Such a row now just has no JSON keys
    to match. PostgreSQL never accepted those values, so its columns are left alone."""
    if dialect == POSTGRESQL:
        return col
    return type_coerce(case((func.json_valid(col) == 1, col), else_=null()), JSON)


def json_kind(dialect: str, col: Any, path: list[str]) -> tuple[Any, Any, Any]:
    """(JSON type name, is-a-number, is-a-boolean) of the value at `path` of `col`.
    The path's parts must have passed `query_parse.check_key` (no quote in them)."""
    if dialect == POSTGRESQL:
        kind = func.json_typeof(func.json_extract_path(col, *[literal(p, Text) for p in path]))
        return kind, kind == "number", kind == "boolean"
    kind = func.json_type(col, "$." + ".".join(f'"{p}"' for p in path))
    return kind, kind.in_(("integer", "real")), kind.in_(("true", "false"))


def json_is(dialect: str, col: Any, path: list[str], value: bool) -> Any:
    """The value at `path` is the JSON boolean `value` (not the text "true")."""
    kind, _, is_bool = json_kind(dialect, col, path)
    if dialect == POSTGRESQL:
        return is_bool & (bytewise(dialect, col[tuple(path)].as_string()) == ("true" if value else "false"))
    return kind == ("true" if value else "false")


def insert_ignore(conn: Connection, table: Table, keys: list[str]) -> Insert:
    """INSERT that does nothing when a row with the same `keys` exists (idempotent links,
    and rows two writers may create at once on PostgreSQL)."""
    if conn.dialect.name == SQLITE:
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=keys)
    # Its dialect is imported here, not at the top: it costs 50-110 ms (measured with
    # -X importtime) that every `lode` command on a SQLite catalog would otherwise pay.
    from sqlalchemy.dialects import postgresql  # noqa: PLC0415

    return postgresql.insert(table).on_conflict_do_nothing(index_elements=keys)


def insert_rows(conn: Connection, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Insert many plain rows (no type conversion needed) at the driver's full speed, in the
    caller's transaction: PostgreSQL's COPY (20,000 manifest rows: 0.15 s, where an
    executemany took 0.8 s), one DBAPI executemany on SQLite (SQLAlchemy's per-row
    parameter processing would cost 2.5x as much). A duplicate key is SQLAlchemy's
    IntegrityError on both."""
    names = ", ".join(columns)
    if conn.dialect.name == POSTGRESQL:
        sql = f"COPY {table} ({names}) FROM STDIN"
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except Exception as exc:
            if type(exc).__name__ != "UniqueViolation":
                raise
            raise IntegrityError(sql, None, exc) from exc
        finally:
            cursor.close()
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)


# SQLite's page cache while a manifest is inserted (KiB). The default (2 MB) holds a
# fraction of a 100,000-entry manifest's pages: its digest index, filled in random order,
# was read back from the OS for most rows (measured, 100,000 rows: 0.62-0.86 s against
# 0.30 s with 32 MB). Given back once the insert is done; at most this much, whatever
# the manifest's size.
BULK_INSERT_CACHE_KIB = 32 * 1024


@contextmanager
def bulk_insert_cache(conn: Connection) -> Iterator[None]:
    """A larger SQLite page cache for a bulk insert on `conn` (nothing on PostgreSQL)."""
    if conn.dialect.name != SQLITE:
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()  # SQLite always answers
    conn.exec_driver_sql(f"PRAGMA cache_size = -{BULK_INSERT_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(before)}")


def table_exists(conn: Connection, name: str) -> bool:
    if conn.dialect.name == SQLITE:
        # Cheaper than the inspector, which matters on every CLI command.
        return conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).first() is not None
    return bool(inspect(conn).has_table(name))


def has_no_tables(conn: Connection) -> bool:
    if conn.dialect.name == SQLITE:
        return conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").first() is None
    return not inspect(conn).get_table_names()


def upgrades_on_open(dialect: str) -> bool:
    """Does opening a catalog with an older schema migrate it? Yes for SQLite: one user's
    embedded file, upgraded by the lodestore that user just installed. No for PostgreSQL:
    a team's shared catalog is migrated on purpose (`lode db upgrade`), never behind the
    backs of teammates whose older clients would then be refused."""
    return dialect == SQLITE


def lock_for_migration(conn: Connection) -> None:
    """Serialise migrations of one database (SQLite: BEGIN IMMEDIATE did already)."""
    if conn.dialect.name == POSTGRESQL:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
