"""Switching a SQLite file to WAL mode when other processes may open it at the same time.

The journal mode is stored in the file, so it is switched once, by whoever opens a new
file first. Switching needs an exclusive lock, and SQLite does not call the busy handler
for it: two processes opening a brand-new store or catalog at once saw "database is
locked" from `PRAGMA journal_mode=WAL` (a CI run failed on it). So look first (reading
the mode waits on the busy handler like any read), and retry the switch ourselves until
the caller's timeout. Every SQLite file of ours that lives in WAL mode opens through here
(the store's index, the catalog, the download cache), so the rule is written once.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any


def use_wal(cur: Any, timeout_s: float) -> None:
    """Put the file `cur` (a DB-API connection or cursor) is on in WAL mode, waiting up to
    `timeout_s` for other processes that hold it locked. An in-memory database has no
    WAL and is left as it is; any other refusal is an error."""
    if _mode(cur, "PRAGMA journal_mode") == "wal":
        return
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            mode = _mode(cur, "PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
            continue
        if mode != "wal" and not _is_memory(cur):
            raise sqlite3.OperationalError(f"could not switch {_file_name(cur)} to WAL mode (got {mode!r})")
        return


def _mode(cur: Any, statement: str) -> str:
    return str(cur.execute(statement).fetchone()[0]).lower()


def _file_name(cur: Any) -> str:
    return str(cur.execute("PRAGMA database_list").fetchone()[2])


def _is_memory(cur: Any) -> bool:
    return not _file_name(cur)  # file name "" = in-memory
