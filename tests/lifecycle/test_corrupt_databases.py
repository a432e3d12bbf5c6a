"""A damaged catalog.db or index.db: one clear line naming the file (exit 6) on every
command, never a traceback; commands that do not need the index still work beside a
damaged one; a damaged index is set aside (kept) and rebuilt by `fsck --repair`; a
damaged catalog is never taken for a new, empty one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lodestore.sdk.repository import Repository

from .conftest import log


def _garbage(path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(b"not a database, garbage " * 200)


def _truncate_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


@pytest.fixture
def logged(repo, store):
    for i in range(6):
        log(repo, f"set{i}", {"f.bin": os.urandom(3000 + i)})
    repo.close()  # checkpoint: the .db files hold everything
    return store


@pytest.mark.parametrize("damage", [_garbage, _truncate_half])
def test_corrupt_catalog_is_one_line_on_every_command(logged, lode_proc, damage):
    catalog = logged / "catalog.db"
    damage(catalog)
    before = catalog.read_bytes()
    packs = sorted((logged / "store" / "packs").glob("*/*.pack"))
    for args in (["ls"], ["versions", "zoo/set3"], ["fsck"], ["fsck", "--repair"], ["gc", "--grace", "0"]):
        r = lode_proc(*args)
        assert r.returncode == 6, (args, r.stderr)
        assert "Traceback" not in r.stderr and str(catalog) in r.stderr and "corrupted" in r.stderr, r.stderr
        assert r.stderr.startswith("error:") and r.stderr.count("error:") == 1
    assert catalog.read_bytes() == before  # never replaced by a new, empty catalog
    assert sorted((logged / "store" / "packs").glob("*/*.pack")) == packs


@pytest.mark.parametrize("damage", [_garbage, _truncate_half])
def test_corrupt_index_is_reported_then_rebuilt_by_repair(logged, lode_proc, damage, tmp_path):
    index = logged / "store" / "index.db"
    damage(index)
    r = lode_proc("ls")
    assert r.returncode == 0 and "zoo/set3" in r.stdout, r.stderr  # ls needs no index
    r = lode_proc("fsck")
    assert r.returncode == 6 and str(index) in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = lode_proc("get", "zoo/set3", "--root", tmp_path / "out")
    assert r.returncode == 6 and "Traceback" not in r.stderr, r.stderr
    r = lode_proc("fsck", "--repair")
    assert r.returncode == 0, r.stderr
    assert list((logged / "store").glob("index.db.corrupt-*"))  # set aside, not deleted
    assert lode_proc("fsck").returncode == 0
    r = lode_proc("get", "zoo/set3", "--root", tmp_path / "out2")
    assert r.returncode == 0, r.stderr
    assert len((tmp_path / "out2" / "f.bin").read_bytes()) == 3003
    repo = Repository.open(logged)
    assert {v.state for i in range(6) for v in repo.catalog.list_versions("zoo", f"set{i}")} == {"live"}
