"""SqlCatalog on a real PostgreSQL server (tests/real_services.py): the shared contract,
plus what only a server has (connection errors, schema upgrades by command, faults)."""

from __future__ import annotations

import uuid

import pytest

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
