"""A store knows which catalog it belongs to (store/binding.py): a deleted, emptied or
old catalog.db never lets gc sweep the store, fsck says so loudly, and fsck --repair
marks nothing broken because of it. `lode gc --adopt-catalog` is the way out."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from lodestore.sdk import repository
from lodestore.sdk.artifact import Artifact
from lodestore.sdk.repository import Repository
from lodestore.store.binding import BINDING_FILE

from .conftest import content, log


def _packs(store: Path) -> list[Path]:
    return sorted((store / "store" / "packs").glob("*/*.pack"))


def _drop_catalog(store: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (store / f"catalog.db{suffix}").unlink(missing_ok=True)


def _two_versions(repo: Repository) -> None:
    log(repo, "animals", {"a.bin": os.urandom(200_000)})
    log(repo, "animals", {"b.bin": os.urandom(200_000)})
    repo.close()  # checkpoints the WAL: catalog.db alone is the whole catalog


def test_deleted_catalog_gc_refuses_and_fsck_reports(repo, store, lode_proc, tmp_path):
    _two_versions(repo)
    shutil.copy(store / "catalog.db", tmp_path / "backup.db")
    packs = _packs(store)
    _drop_catalog(store)
    r = lode_proc("fsck")
    assert r.returncode == 6 and "WRONG CATALOG" in r.stderr and "catalog.db" in r.stderr, r.stderr
    r = lode_proc("gc", "--grace", "0")
    assert r.returncode == 4, r.stderr
    assert "gc refused" in r.stderr and str(store / "catalog.db") in r.stderr and "--adopt-catalog" in r.stderr
    assert "Traceback" not in r.stderr
    r = lode_proc("fsck", "--repair")
    assert r.returncode == 4 and "fsck --repair refused" in r.stderr
    assert _packs(store) == packs
    # putting the catalog back is not too late: everything is there
    _drop_catalog(store)
    shutil.copy(tmp_path / "backup.db", store / "catalog.db")
    assert lode_proc("fsck").returncode == 0
    assert lode_proc("gc", "--grace", "0").returncode == 0
    again = Repository.open(store)
    assert [v.state for v in again.catalog.list_versions("zoo", "animals")] == ["live", "live"]
    assert content(Artifact._from_record(again, again.catalog.get_version("zoo", "animals", "v1")), tmp_path)


def test_emptied_catalog_is_refused_then_adopted_on_purpose(repo, store, lode_proc):
    _two_versions(repo)
    _drop_catalog(store)
    (store / "catalog.db").write_bytes(b"")  # truncated to nothing: SQLite sees a new database
    assert lode_proc("gc", "--grace", "0").returncode == 4
    assert _packs(store)
    r = lode_proc("gc", "--grace", "0", "--adopt-catalog", "--dry-run")
    assert r.returncode == 0 and _packs(store)  # a dry run adopts nothing
    assert lode_proc("gc", "--grace", "0").returncode == 4
    r = lode_proc("gc", "--grace", "0", "--adopt-catalog")
    assert r.returncode == 0, r.stderr
    assert _packs(store) == []  # the user said so: nothing the new catalog knows is kept
    assert lode_proc("gc", "--grace", "0").returncode == 0 and lode_proc("fsck").returncode == 0


def test_catalog_from_an_old_backup_is_refused(repo, store, lode_proc, tmp_path):
    log(repo, "animals", {"a.bin": os.urandom(200_000)})
    repo.close()
    shutil.copy(store / "catalog.db", tmp_path / "old.db")
    repo = Repository.open(store)
    log(repo, "animals", {"b.bin": os.urandom(200_000)})  # v1: only the newer catalog knows it
    repo.close()
    _drop_catalog(store)
    shutil.copy(tmp_path / "old.db", store / "catalog.db")
    packs = _packs(store)
    r = lode_proc("gc", "--grace", "0")
    assert r.returncode == 4 and "older than the store" in r.stderr, r.stderr
    r = lode_proc("fsck", "--repair")
    assert r.returncode == 4
    assert _packs(store) == packs
    repo = Repository.open(store)
    assert [v.state for v in repo.catalog.list_versions("zoo", "animals")] == ["live"]


def test_store_from_before_bindings_binds_to_a_catalog_with_versions(repo, store, lode_proc):
    _two_versions(repo)
    (store / "store" / BINDING_FILE).unlink()
    assert lode_proc("gc", "--grace", "0").returncode == 0
    assert json.loads((store / "store" / BINDING_FILE).read_text())["generation"] >= 2
    assert len(_packs(store)) >= 1


def test_store_from_before_bindings_with_an_empty_catalog_is_refused(repo, store, lode_proc):
    _two_versions(repo)
    (store / "store" / BINDING_FILE).unlink()
    _drop_catalog(store)
    packs = _packs(store)
    assert lode_proc("gc", "--grace", "0").returncode == 4
    # logging into the new catalog does not make it the owner of the old bytes
    repo = Repository.open(store)
    log(repo, "birds", {"b.txt": b"tweet"})
    repository.close_all()
    assert lode_proc("gc", "--grace", "0").returncode == 4
    assert set(packs) <= set(_packs(store))


def test_each_version_change_raises_the_recorded_generation(repo, store):
    first = json.loads((store / "store" / BINDING_FILE).read_text())
    log(repo, "animals", {"a.bin": b"x"})
    after_log = json.loads((store / "store" / BINDING_FILE).read_text())
    assert after_log["catalog_id"] == first["catalog_id"] == repo.catalog.identity().instance_id
    assert after_log["generation"] > first["generation"]
    assert after_log["generation"] == repo.catalog.identity().generation
