"""Several processes opening brand-new SQLite files of ours at the same instant.

The first to open a file switches it to WAL mode, which needs an exclusive lock that
SQLite does not wait for; a CI run failed with "database is locked" when two writers
opened a new store together (sqlite_wal.py). Each file kind is opened by PROCESSES
interpreters released by one flag, over ROUNDS fresh files, so the switch races often.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest

PROCESSES = 6
ROUNDS = 15

OPENER = """
import sys, time
from pathlib import Path
kind, base, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
while not go.exists():
    time.sleep(0.001)
for i in range(int(sys.argv[4])):
    folder = base / str(i)
    while not folder.exists():  # the parent makes each folder: every process starts on it at once
        time.sleep(0.0005)
    if kind == "index":
        from lodestore.store.index import StoreIndex
        StoreIndex(folder / "index.db").close()
    elif kind == "cache":
        from lodestore.sdk.cache import _Index
        _Index(folder).db.close()
    else:
        from lodestore.catalog.sql import SqlCatalog
        SqlCatalog("sqlite:///" + str(folder / "catalog.db")).close()
"""


@pytest.mark.parametrize("kind", ["index", "cache", "catalog"])
def test_processes_opening_a_new_file_at_once_all_succeed(tmp_path, kind):
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, kind, str(tmp_path), str(go), str(ROUNDS)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(PROCESSES)]
    time.sleep(1.0)  # every interpreter started and waiting on the flag
    go.touch()
    for i in range(ROUNDS):
        (tmp_path / str(i)).mkdir()
        time.sleep(0.05)
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * PROCESSES, "\n".join(errors)
    for i in range(ROUNDS):
        name = {"index": "index.db", "cache": "cache.db", "catalog": "catalog.db"}[kind]
        db = sqlite3.connect(tmp_path / str(i) / name)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()
