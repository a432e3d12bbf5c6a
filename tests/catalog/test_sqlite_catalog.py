"""SqlCatalog on a real SQLite file: the shared contract, plus what only SQLite has."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from lodestore.catalog.migrate import MIGRATIONS_DIR, REVISIONS
from lodestore.catalog.sql import SqlCatalog

from .contract import SqlCatalogContract, new_version


class TestSqliteCatalog(SqlCatalogContract):
    @pytest.fixture
    def catalog_url(self, tmp_path):
        return f"sqlite:///{tmp_path / 'catalog.db'}"


def test_revision_list_matches_the_migration_scripts():
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    assert scripts.get_heads() == [REVISIONS[-1]]
    walked = [s.revision for s in scripts.walk_revisions()]  # newest first
    assert walked[::-1] == list(REVISIONS)


def test_sqlite_connections_are_tuned(tmp_path):
    cat = SqlCatalog.for_sqlite_file(tmp_path / "deep" / "er" / "catalog.db")
    assert (tmp_path / "deep" / "er" / "catalog.db").exists()
    with cat.database.reading() as conn:
        pragma = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar()
                  for p in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}
    cat.close()
    assert pragma["journal_mode"] == "wal"
    assert pragma["synchronous"] == 1  # NORMAL
    assert pragma["foreign_keys"] == 1
    assert pragma["busy_timeout"] >= 30_000


def test_writer_waits_for_another_writer_instead_of_failing(tmp_path):
    """Hold the write lock from a second connection; a commit must wait, then succeed."""
    import sqlite3
    import threading
    import time

    path = tmp_path / "catalog.db"
    cat = SqlCatalog.for_sqlite_file(path)
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    threading.Timer(0.5, blocker.execute, args=("COMMIT",)).start()
    t0 = time.perf_counter()
    v = cat.commit_version(new_version("a")).version
    assert v.index == 0 and time.perf_counter() - t0 >= 0.4
    blocker.close()
    cat.close()


def test_read_transactions_do_not_take_the_write_lock(tmp_path):
    path = tmp_path / "catalog.db"
    cat = SqlCatalog.for_sqlite_file(path)
    cat.commit_version(new_version("a"))
    with cat.database.reading() as conn:
        conn.execute(text("SELECT count(*) FROM versions")).scalar()
        # A write from elsewhere proceeds while our read transaction is open (WAL).
        other = SqlCatalog.for_sqlite_file(path)
        assert other.commit_version(new_version("b")).version.index == 1
        other.close()
    cat.close()


def test_lode_db_upgrade_on_the_stores_own_catalog(store, lode):
    from lodestore.catalog.migrate import HEAD

    assert lode("db", "upgrade").code == 3  # no store yet: nothing to upgrade
    assert lode("ls").code == 0  # the store is made on first use
    res = lode("db", "upgrade", "--json")
    assert res.code == 0, res.err
    assert res.json() == {"catalog": str(store / "catalog.db"), "from": HEAD, "to": HEAD, "changed": False}
