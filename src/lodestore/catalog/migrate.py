"""Bring a catalog database to the schema this code expects, cheaply when it already is.

The CLI opens the catalog on every command, so the common case (schema at head) must
cost one tiny query: we read ``alembic_version`` with plain SQL and compare it with
`REVISIONS`, a list kept in code. Alembic itself (~100 ms to import) is only loaded
when there is something to migrate.

A new, empty database is created from `schema.metadata` in one transaction and stamped
at `HEAD`, without importing alembic: that saved ~0.17 s on the first command in a new
folder (the alembic import alone is ~0.14 s). Migrations still define every upgrade of an
existing database; a contract test checks that migrating an empty database from scratch
and creating it from the metadata give the same schema.

An older schema is upgraded on open only where the catalog upgrades itself (SQLite: one
user's embedded file); a shared PostgreSQL catalog is upgraded by `lode db upgrade`
(`upgrade_schema`) and refused until then, naming both revisions (`ensure_schema`).

Concurrent openers of a new or old database are serialised by the database itself:
the migration runs inside a write transaction (``BEGIN IMMEDIATE`` on SQLite, an
advisory lock on PostgreSQL) that re-reads the revision once it holds the lock, so
the second opener finds the work done. No file lock is needed, which also keeps this
correct on filesystems where file locks silently do nothing.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text

from lodestore.catalog.dialect import has_no_tables, lock_for_migration, table_exists, upgrades_on_open
from lodestore.catalog.engine import display_url
from lodestore.catalog.records import SchemaUpgrade
from lodestore.catalog.schema import catalog_instance, metadata
from lodestore.errors import StoreFormatError

if TYPE_CHECKING:  # for the annotation only: importing alembic costs ~0.14 s (see above)
    from alembic.config import Config

#: Every migration id in ``migrations/versions``, oldest first. A test checks this
#: against alembic's own view of the scripts, so the two cannot drift.
REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004", "0005", "0006")
HEAD = REVISIONS[-1]
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    """An alembic Config without an ini file, pointing at our migration scripts."""
    # Imported here, not at the top: see the module docstring (alembic is loaded only
    # when there is something to migrate; a new catalog opens in 0.02 s instead of 0.18 s).
    from alembic.config import Config  # noqa: PLC0415

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on '%' in URLs (e.g. encoded passwords).
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def current_revision(conn: Connection) -> str | None:
    """The revision stamped in the database, None for an empty (new) database."""
    if not table_exists(conn, "alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) != 1:
        raise StoreFormatError(
            f"catalog has {len(rows)} schema revisions stamped ({', '.join(rows) or 'none'}); expected one"
        )
    return rows[0]


def _check_known(revision: str | None, where: str) -> None:
    if revision is not None and revision not in REVISIONS:
        raise StoreFormatError(
            f"catalog {where} has schema revision {revision!r}, which this version of lodestore does not "
            f"know (newest known: {HEAD!r}); it was probably written by a newer lodestore: upgrade lodestore"
        )


def ensure_schema(read_engine: Engine, write_engine: Engine, *, migrate_empty: bool = False) -> None:
    """Make the schema usable by this code, or refuse the catalog with StoreFormatError.

    A new, empty database is created at `HEAD`. A newer schema is always refused (a
    newer lodestore wrote it). An older one is upgraded here only where the catalog
    upgrades itself (`dialect.upgrades_on_open`: SQLite, one user's embedded file); a
    shared PostgreSQL catalog is refused, saying to run `lode db upgrade`, so that no
    client migrates a team's catalog behind its users' backs.

    `write_engine` must begin write-locking transactions (see `SqlCatalog`).
    `migrate_empty`: build an empty database by running every migration rather than
    from the metadata (tests use it to check that the two agree).
    """
    with read_engine.connect() as conn:
        revision = current_revision(conn)
    if revision == HEAD:
        return
    where = display_url(read_engine.url)
    _check_known(revision, where)
    if revision is not None and not upgrades_on_open(read_engine.dialect.name):
        raise StoreFormatError(
            f"catalog {where} has schema revision {revision!r}, older than this lodestore's {HEAD!r}: run "
            f"`lode db upgrade --catalog {where}` once to migrate it (every client of this shared catalog "
            "then needs a lodestore that knows the new revision)")
    _migrate(write_engine, migrate_empty=migrate_empty)


def upgrade_schema(read_engine: Engine, write_engine: Engine) -> SchemaUpgrade:
    """Bring the catalog to `HEAD` whatever its backend (`lode db upgrade`); refuses a
    schema newer than this code. Safe to run from several machines at once."""
    where = display_url(read_engine.url)
    with read_engine.connect() as conn:
        before = current_revision(conn)
    _check_known(before, where)
    found = _migrate(write_engine)
    return SchemaUpgrade(where, found, HEAD)


def _migrate(write_engine: Engine, *, migrate_empty: bool = False) -> str | None:
    """Create or upgrade to `HEAD` under the migration lock; the revision found under it."""
    where = display_url(write_engine.url)
    with write_engine.begin() as conn:
        lock_for_migration(conn)
        # Re-read under the lock: another process may have migrated while we waited.
        revision = current_revision(conn)
        _check_known(revision, where)
        if revision is None and not migrate_empty and has_no_tables(conn):
            _create_at_head(conn)
        elif revision != HEAD:
            from alembic import command  # noqa: PLC0415  (lazily, as alembic_config says why)

            url = write_engine.url.render_as_string(hide_password=False)
            command.upgrade(alembic_config(url, connection=conn), "head")
        return revision


def _create_at_head(conn: Connection) -> None:
    """Every table of `schema.metadata`, and alembic's version table stamped at HEAD
    (the same DDL alembic itself uses, so a later `alembic upgrade` carries on from it)."""
    metadata.create_all(conn)
    conn.execute(catalog_instance.insert().values(instance_id=str(uuid.uuid4()), generation=0))
    conn.execute(text(
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
    ))
    conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": HEAD})
