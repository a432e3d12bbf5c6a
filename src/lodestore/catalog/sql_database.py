"""The catalog database's connections: every operation of the SQL catalog runs in one
`reading()` or one `writing()` transaction, so a failing call changes nothing.

The two engines share one pool (see engine.py); writes go through the write engine,
which takes the write lock up front on SQLite (``BEGIN IMMEDIATE``), so a transaction
that reads then writes waits for another writer instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from lodestore.catalog.engine import Engines


class Database:
    """The engines of one catalog database and its two kinds of transaction."""

    def __init__(self, engines: Engines) -> None:
        self.engines = engines

    @property
    def read_engine(self) -> Engine:
        return self.engines.read

    @property
    def write_engine(self) -> Engine:
        return self.engines.write

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction: one snapshot across its queries, no write lock."""
        with self.engines.read.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction, committed when the block ends without an exception."""
        with self.engines.write.begin() as conn:
            yield conn

    def dispose(self) -> None:
        """Close every pooled connection (the base engine owns the pool)."""
        self.engines.base.dispose()
