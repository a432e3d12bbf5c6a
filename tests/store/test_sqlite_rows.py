"""sqlite_rows.insert_values: many rows in few statements, with the rules of one row a
statement (what the index's commit and a session's staging rely on)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lodestore.sqlite_rows import ROWS_PER_STATEMENT, insert_values


def _db(tmp_path: Path) -> tuple[sqlite3.Connection, list[str]]:
    db = sqlite3.connect(tmp_path / "rows.db", isolation_level=None)
    db.execute("CREATE TABLE t (k BLOB PRIMARY KEY, v INTEGER NOT NULL, n INTEGER) WITHOUT ROWID")
    statements: list[str] = []
    db.set_trace_callback(statements.append)  # one call a statement run (a row, under executemany)
    return db, statements


@pytest.mark.parametrize("count", [0, 1, 2, ROWS_PER_STATEMENT - 1, ROWS_PER_STATEMENT, 2 * ROWS_PER_STATEMENT + 777])
def test_every_row_lands_in_few_statements(tmp_path, count):
    db, statements = _db(tmp_path)
    rows = [(i.to_bytes(4, "big"), i, None if i % 3 else i * 2) for i in range(count)]
    db.execute("BEGIN")
    insert_values(db, "INSERT INTO t(k, v, n)", iter(rows), 3)  # any iterable, read once
    db.execute("COMMIT")
    assert db.execute("SELECT k, v, n FROM t ORDER BY k").fetchall() == rows
    # a statement per ROWS_PER_STATEMENT rows, the rest in a few (not one a row)
    assert len(statements) - 2 <= count // ROWS_PER_STATEMENT + ROWS_PER_STATEMENT.bit_length()


def test_a_key_given_twice_follows_the_statements_rule_as_one_row_at_a_time_would(tmp_path):
    db, _ = _db(tmp_path)
    rows = [(b"a", 1, None), (b"b", 2, None), (b"a", 3, None)] * (ROWS_PER_STATEMENT // 2)
    db.execute("BEGIN")
    insert_values(db, "INSERT OR IGNORE INTO t(k, v, n)", rows, 3)  # the first kept
    insert_values(db, "INSERT INTO t(k, v, n)", [(b"b", 20, None), (b"b", 21, None), (b"c", 30, None)], 3,
                  " ON CONFLICT(k) DO UPDATE SET n = excluded.v")  # the last update wins
    insert_values(db, "INSERT OR REPLACE INTO t(k, v, n)", [(b"d", 40, 1), (b"d", 41, 2)], 3)  # the last row wins
    db.execute("COMMIT")
    assert db.execute("SELECT k, v, n FROM t ORDER BY k").fetchall() == [
        (b"a", 1, None), (b"b", 2, 21), (b"c", 30, None), (b"d", 41, 2)]


def test_a_constraint_failure_is_sqlites_error_and_the_callers_transaction_decides(tmp_path):
    db, _ = _db(tmp_path)
    db.execute("BEGIN")
    with pytest.raises(sqlite3.IntegrityError):
        insert_values(db, "INSERT INTO t(k, v, n)", [(b"x", 1, None), (b"x", 2, None)], 3)
    db.execute("ROLLBACK")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)
