"""SqlCatalog on a real PostgreSQL server (tests/real_services.py): the shared contract,
plus what only a server has (connection errors, schema upgrades by command, faults)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid

import pytest
from real_services import free_port
from sqlalchemy import create_engine, text

from lodestore.catalog.engine import CONNECT_TIMEOUT_S
from lodestore.errors import CatalogUnavailableError, InvalidInputError, StoreFormatError

from .contract import SqlCatalogContract, new_version


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


# --- `lode db upgrade`: the one way a shared catalog's schema moves ---------------------
def _stamp(url: str, revision: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


def test_an_older_catalog_is_refused_until_lode_db_upgrade(pg_url, lode):
    from alembic import command

    from lodestore.catalog.migrate import HEAD, alembic_config
    from lodestore.catalog.sql import SqlCatalog

    command.upgrade(alembic_config(pg_url), "0004")
    with pytest.raises(StoreFormatError) as err:
        SqlCatalog(pg_url)
    assert f"revision '0004', older than this lodestore's '{HEAD}'" in str(err.value)
    assert f"`lode db upgrade --catalog {pg_url}`" in str(err.value)
    res = lode("db", "upgrade", "--catalog", pg_url)
    assert res.code == 0, res.err
    assert res.out.strip() == f"catalog {pg_url}: schema 0004 -> {HEAD}"
    with SqlCatalog(pg_url) as cat:
        assert cat.commit_version(new_version("a")).version.index == 0
    again = lode("db", "upgrade", "--catalog", pg_url, "--json")
    assert again.code == 0 and again.json() == {"catalog": pg_url, "from": HEAD, "to": HEAD, "changed": False}


def test_a_newer_catalog_is_refused_by_clients_and_by_upgrade(pg_url, lode):
    from lodestore.catalog.migrate import HEAD
    from lodestore.catalog.sql import SqlCatalog

    SqlCatalog(pg_url).close()
    _stamp(pg_url, "0099")
    with pytest.raises(StoreFormatError, match=rf"revision '0099'.*newest known: '{HEAD}'.*upgrade lodestore"):
        SqlCatalog(pg_url)
    res = lode("db", "upgrade", "--catalog", pg_url)
    assert res.code == StoreFormatError.exit_code and "0099" in res.err and HEAD in res.err
    assert len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err


def test_lode_db_upgrade_creates_a_new_empty_database_at_head(pg_url, lode):
    from lodestore.catalog.migrate import HEAD

    res = lode("db", "upgrade", "--catalog", pg_url, "--json")
    assert res.code == 0 and res.json()["from"] is None and res.json()["to"] == HEAD


def test_lode_db_upgrade_on_an_unreachable_server_is_one_line(store):
    """A real `lode` process, as a user runs it: one line, exit 9, password masked."""
    port = free_port()
    url = f"postgresql://team:s3cret@127.0.0.1:{port}/catalog"
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "lodestore.cli.main", "db", "upgrade", "--catalog", url],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == CatalogUnavailableError.exit_code, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "s3cret" not in res.stderr and f"team:***@127.0.0.1:{port}/catalog" in lines[0]
    assert time.monotonic() - t0 < 15
