"""SqlCatalog on a real PostgreSQL server (tests/real_services.py): the shared contract."""

from __future__ import annotations

import pytest

from .contract import SqlCatalogContract


class TestPostgresCatalog(SqlCatalogContract):
    @pytest.fixture
    def catalog_url(self, pg_url):
        return pg_url
