"""index.db's files_chunked index (the files made of several chunks, which accounting
scans for "who else holds these chunks?"): created for a new store, and added to an index
made before it existed the first time the store is opened for writing, with the same
answers (the query does not need it: it only reads fewer rows with it)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import lodestore
from lodestore.sdk.service import Service


def _indexes(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}


def test_an_index_made_before_files_chunked_gets_it_on_open(store: Path, tmp_path: Path):
    big = os.urandom(3_000_000)  # over the whole-file limit: chunked, with a recipe
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "big.bin").write_bytes(big)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "big.bin").write_bytes(big + b"more")
    with lodestore.init(project="zoo") as run:
        for folder in ("a", "b"):
            art = lodestore.Artifact("ckpt", type="model")
            art.add_dir(str(tmp_path / folder))
            run.log_artifact(art)
    svc = Service.open(store)
    v0, v1 = svc.version("zoo/ckpt:v0"), svc.version("zoo/ckpt:v1")
    before = svc.usage([v0, v1])
    index_db = store / "store" / "index.db"
    assert "files_chunked" in _indexes(index_db)
    del svc
    lodestore.sdk.repository.close_all()
    with sqlite3.connect(index_db) as conn:  # as a store made before the index was
        conn.execute("DROP INDEX files_chunked")
    assert "files_chunked" not in _indexes(index_db)
    svc = Service.open(store)
    after = svc.usage([v0, v1])
    assert after == before and before[v0.id].exclusive < 3_000_000  # most chunks are shared
    assert "files_chunked" in _indexes(index_db)
