"""Broken versions after `lode fsck --repair`: never served, skipped by `latest`, kept
broken across delete/restore, healed once their bytes are logged again; fsck reports
known damage apart from new damage and stays clean after a repair."""

from __future__ import annotations

import os

import pytest

from lodestore.errors import CorruptionError
from lodestore.sdk import lifecycle
from lodestore.sdk.artifact import Artifact
from lodestore.sdk.repository import Repository

from .conftest import content, log


def _flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _corrupt(repo, art):
    """Flip a byte in the data of the (first) pack holding the version's first file."""
    digest = art.files()[0].digest
    _, locs = repo.store._plan(digest)
    pack = next(repo.store.packs_dir.glob(f"*/{locs[0].pack_id}.pack"))
    _flip(pack, locs[0].offset + 100)
    repo.store.close()
    repo.close()
    return pack


def _log_dir(repo, folder, name="animals"):
    art = Artifact(name, type="dataset")
    art.add_dir(folder)
    art._log(repo, "zoo", [], run_id=None)
    return art


def test_relog_after_repair_stores_the_lost_bytes_again(store, tmp_path, lode):
    """Gap: repair kept the file rows and stat cache of lost files, so logging the same
    folder again 'deduplicated' against bytes that no longer exist."""
    data = {"a.bin": os.urandom(400_000), "b.txt": b"hello"}
    folder = tmp_path / "data"
    folder.mkdir()
    for name, b in data.items():
        (folder / name).write_bytes(b)
    repo = Repository.open(store)
    v0 = _log_dir(repo, folder)
    _corrupt(repo, v0)
    r = lode("fsck", "--repair", "--json")
    assert r.code == 0, r.err
    rep = r.json()["repaired"]
    assert rep["marked_broken"] == ["zoo/animals:v0"] and rep["lost_files"]
    assert rep["after"]["ok"]
    repo = Repository.open(store)
    v1 = _log_dir(repo, folder)  # same folder, same stat: must store the bytes again
    assert v1.version == "v1" and v1.state == "live"
    assert content(v1, tmp_path) == data
    # v0's bytes are back: fsck says so, and --repair marks it live again
    r = lode("fsck", "--json")
    assert r.code == 0 and r.json()["healable_versions"] == ["zoo/animals:v0"]
    r = lode("fsck", "--repair", "--json")
    assert r.code == 0 and r.json()["repaired"]["healed"] == ["zoo/animals:v0"]
    v0 = Artifact._from_record(repo, repo.catalog.get_version("zoo", "animals", "v0"))
    assert v0.state == "live" and content(v0, tmp_path) == data


def _two_versions_v1_broken(repo, store, lode):
    keep = {"old.bin": os.urandom(200_000)}
    v0 = log(repo, "animals", keep)
    v1 = log(repo, "animals", {"new.bin": os.urandom(200_000)}, aliases=["best"])
    _corrupt(repo, v1)
    r = lode("fsck", "--repair")
    assert r.code == 0, r.out + r.err
    return Repository.open(store), keep, v0, v1


def test_broken_version_is_refused_before_anything_is_written(store, tmp_path, lode):
    repo = Repository.open(store)
    repo, _, _, _ = _two_versions_v1_broken(repo, store, lode)
    v1 = Artifact._from_record(repo, repo.catalog.get_version("zoo", "animals", "v1"))
    assert v1.state == "broken"
    target = tmp_path / "dl"
    with pytest.raises(CorruptionError, match=r"zoo/animals:v1 is marked broken.*lode fsck"):
        v1.download(root=target)
    assert not target.exists()
    # checkout would first delete extras: refused before that too
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    with pytest.raises(CorruptionError, match="broken"):
        v1.checkout(root=target)
    assert (target / "mine.txt").read_text() == "keep me"
    r = lode("get", "zoo/animals:v1", "--root", tmp_path / "cli")
    assert r.code == 6 and "broken" in r.err and not (tmp_path / "cli").exists()
    # one file of it, even an intact one, is refused the same way
    for entry in v1.files():
        with pytest.raises(CorruptionError, match=r"zoo/animals:v1 is marked broken"):
            v1.get_entry(entry.path).download(root=tmp_path / "one")
    assert not (tmp_path / "one").exists()


def test_latest_moves_off_a_broken_version(store, tmp_path, lode):
    repo = Repository.open(store)
    repo, keep, _, _ = _two_versions_v1_broken(repo, store, lode)
    latest = repo.catalog.get_version("zoo", "animals")
    assert latest.version == "v0" and "latest" in latest.aliases
    assert content(Artifact._from_record(repo, latest), tmp_path) == keep
    assert lode("get", "zoo/animals", "--root", tmp_path / "l").code == 0
    assert (tmp_path / "l" / "old.bin").read_bytes() == keep["old.bin"]
    # a new version takes latest as usual
    log(repo, "animals", {"n.bin": b"fresh"})
    assert repo.catalog.get_version("zoo", "animals").version == "v2"


def test_broken_stays_broken_across_delete_and_restore(store, lode):
    repo = Repository.open(store)
    repo, _, _, _ = _two_versions_v1_broken(repo, store, lode)
    assert lode("rm", "zoo/animals:v1", "--delete-aliases").code == 0
    r = lode("restore", "zoo/animals:v1")
    assert r.code == 0 and "restored zoo/animals:v1" in r.out
    assert "is broken" in r.err and "fsck --repair" in r.err  # not silently "restored" as if usable
    assert repo.catalog.get_version("zoo", "animals", "v1").state == "broken"
    assert repo.catalog.get_version("zoo", "animals").version == "v0"  # latest still on the usable one
    art = Artifact._from_record(repo, repo.catalog.get_version("zoo", "animals", "v1"))
    art.delete()
    assert art.restore().state == "broken"


def test_repair_covers_soft_deleted_versions(store, tmp_path, lode):
    repo = Repository.open(store)
    log(repo, "animals", {"a.bin": os.urandom(1000)})
    v1 = log(repo, "animals", {"b.bin": os.urandom(200_000)})
    v1.delete()
    _corrupt(repo, v1)
    r = lode("fsck", "--json")
    assert r.code == 6 and r.json()["affected_versions"] == ["zoo/animals:v1"]
    r = lode("fsck", "--repair", "--json")
    assert r.code == 0
    assert r.json()["repaired"]["deleted_affected"] == ["zoo/animals:v1"]
    r = lode("fsck", "--json")
    assert r.code == 0 and r.json()["known_broken_versions"] == ["zoo/animals:v1"]
    assert lode("restore", "zoo/animals:v1").code == 0
    repo = Repository.open(store)
    assert repo.catalog.get_version("zoo", "animals", "v1").state == "broken"
    assert repo.catalog.get_version("zoo", "animals").version == "v0"


def test_fsck_is_clean_after_a_repair_but_lists_known_broken(store, lode):
    repo = Repository.open(store)
    _two_versions_v1_broken(repo, store, lode)
    r = lode("fsck")
    assert r.code == 0, r.out + r.err
    assert "fsck: clean" in r.out and "zoo/animals:v1" in r.out and "stay broken" in r.out
    j = lode("fsck", "--json").json()
    assert j["ok"] and j["known_broken_versions"] == ["zoo/animals:v1"] and not j["affected_versions"]
    assert j["known_lost_files"] and not j["missing_files"]
    # a second repair changes nothing and says so
    j = lode("fsck", "--repair", "--json").json()
    assert j["repaired"]["marked_broken"] == [] and j["repaired"]["lost_files"] == []
    assert j["repaired"]["after"]["ok"]
    # new damage on top of the known one is reported as new
    repo = Repository.open(store)
    v0 = Artifact._from_record(repo, repo.catalog.get_version("zoo", "animals", "v0"))
    _corrupt(repo, v0)
    j = lode("fsck", "--json")
    assert j.code == 6
    assert j.json()["affected_versions"] == ["zoo/animals:v0"]
    assert j.json()["known_broken_versions"] == ["zoo/animals:v1"]


def test_gc_forgets_lost_files_of_purged_versions(store, lode):
    repo = Repository.open(store)
    repo, _, _, _ = _two_versions_v1_broken(repo, store, lode)
    assert lifecycle.fsck(repo).known_lost_files
    assert lode("rm", "zoo/animals:v1", "--permanent", "--delete-aliases").code == 0
    lifecycle.gc(repo, grace=0)
    r = lifecycle.fsck(repo).to_dict()
    assert r["ok"] and not r["known_lost_files"] and not r["lost_files"] and not r["known_broken_versions"]
