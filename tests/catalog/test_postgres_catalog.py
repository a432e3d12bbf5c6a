"""SqlCatalog on a real PostgreSQL server (tests/real_services.py): the shared contract,
plus what only a server has (connection errors, schema upgrades by command, faults)."""

from __future__ import annotations

import socket
import time
import uuid

import pytest
from real_services import free_port
from sqlalchemy import create_engine, text

from lodestore.catalog.engine import CONNECT_TIMEOUT_S
from lodestore.errors import CatalogUnavailableError, InvalidInputError

from .contract import SqlCatalogContract


def locale_aware_database(postgres_server) -> str:
    """A fresh database whose default collation is ICU's en-US (locale-aware: "a" < "B" <
    "b", "_" ignored), as a team's server usually has: the contract must still see
    byte-wise order and exact comparisons."""
    import psycopg

    name = f"icu_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' "
                     "LOCALE 'C.UTF-8'")
    return postgres_server.url(name)


class TestPostgresCatalog(SqlCatalogContract):
    upgrades_on_open = False  # a team's shared catalog: only `lode db upgrade` migrates it

    @pytest.fixture
    def catalog_url(self, postgres_server):
        return locale_aware_database(postgres_server)


# --- connecting: one clear line, in bounded time ----------------------------------------
def _refused(url: str) -> tuple[str, float]:
    from lodestore.catalog.sql import SqlCatalog

    t0 = time.monotonic()
    with pytest.raises(CatalogUnavailableError) as err:
        SqlCatalog(url)
    return str(err.value), time.monotonic() - t0


def test_unreachable_port_is_one_line_naming_the_catalog(postgres_server):
    port = free_port()  # nothing listens there
    msg, elapsed = _refused(f"postgresql://team:s3cret@127.0.0.1:{port}/catalog")
    assert msg.startswith(f"cannot connect to the catalog postgresql://team:***@127.0.0.1:{port}/catalog")
    assert "s3cret" not in msg and "\n" not in msg and "refused" in msg.lower()
    assert elapsed < 3
    assert CatalogUnavailableError.exit_code == 9


def test_wrong_user_or_database_is_refused_clearly(postgres_server):
    msg, _ = _refused(postgres_server.url("postgres").replace("postgres@", "nobody:pw@"))
    assert 'role "nobody" does not exist' in msg and "nobody:***@" in msg and ":pw@" not in msg
    msg, _ = _refused(postgres_server.url("no_such_db"))
    assert 'database "no_such_db" does not exist' in msg and "/no_such_db" in msg


@pytest.mark.parametrize("query, bound", [("?connect_timeout=1", 1), ("", CONNECT_TIMEOUT_S)])
def test_a_server_that_never_answers_times_out_once(query, bound):
    """A port that accepts TCP but never speaks (a hung server, a black-holing proxy):
    the connect timeout ends the wait, once, no retry loop."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        msg, elapsed = _refused(f"postgresql://team@127.0.0.1:{port}/catalog{query}")
    assert f"within {bound} s" in msg and "timeout" in msg.lower()
    assert bound - 0.5 < elapsed < bound + 3


def test_plain_and_psycopg_urls_both_use_psycopg3(pg_url):
    from lodestore.catalog.sql import SqlCatalog

    for url in (pg_url, pg_url.replace("postgresql://", "postgresql+psycopg://")):
        with SqlCatalog(url) as cat:
            assert cat.database.write_engine.dialect.driver == "psycopg"
            assert repr(cat).startswith("SqlCatalog('postgresql://")
    with pytest.raises(InvalidInputError, match="psycopg 3"):
        SqlCatalog(pg_url.replace("postgresql://", "postgresql+pg8000://"))


# --- schema ------------------------------------------------------------------------------
def test_migrated_catalog_compares_every_string_byte_wise(postgres_server):
    """Migrating an old catalog (0005, strings in the server's collation) to head sets
    COLLATE "C" on every string column, as a catalog created at head has."""
    from alembic import command

    from lodestore.catalog.migrate import alembic_config
    from lodestore.catalog.sql import SqlCatalog

    url = locale_aware_database(postgres_server)
    command.upgrade(alembic_config(url), "0005")
    assert _non_bytewise_columns(url)  # the server's en-US collation before
    SqlCatalog.upgrade_schema(url)
    assert _non_bytewise_columns(url) == []
    fresh = locale_aware_database(postgres_server)
    SqlCatalog(fresh).close()
    assert _non_bytewise_columns(fresh) == []


def _non_bytewise_columns(url: str) -> list[tuple[str, str, str | None]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT c.table_name, c.column_name, c.collation_name FROM information_schema.columns c "
                "JOIN pg_attribute a ON a.attrelid = c.table_name::regclass AND a.attname = c.column_name "
                "WHERE c.table_schema = 'public' AND c.table_name <> 'alembic_version' "
                "AND c.data_type IN ('text', 'character varying') AND c.collation_name IS DISTINCT FROM 'C' "
                "ORDER BY 1, 2"))]
    finally:
        engine.dispose()
