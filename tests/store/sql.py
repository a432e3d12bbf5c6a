"""Raw SQL on a local store's index.db for tests (the store itself has no SQL escape
hatch: store/index.py owns every query). A connection of its own, autocommitted: what
it writes is what a damaged or tampered index looks like to the store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path


def index_sql(store, sql: str, params: Iterable = ()) -> list[tuple]:
    with closing(sqlite3.connect(Path(store.root) / "index.db", timeout=60, isolation_level=None)) as db:
        return db.execute(sql, tuple(params)).fetchall()
