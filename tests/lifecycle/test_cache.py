"""Download cache: LRU tracked in <root>/cache/cache.db, size cap, ls/cleanup/verify."""

from __future__ import annotations

import os
import time

from lodestore.sdk import cache

from .conftest import log


def test_lru_cleanup_and_verify(repo, lode, tmp_path):
    a, b, c = os.urandom(10_000), os.urandom(20_000), os.urandom(30_000)
    art = log(repo, "animals", {"a": a, "b": b, "c": c})
    art.download(root=tmp_path / "d1", hardlink=True)
    time.sleep(0.01)
    other = log(repo, "one", {"a": a})
    other.download(root=tmp_path / "d2", hardlink=True)  # a is now the most recently used
    r = lode("cache", "ls", "--json").json()
    assert r["total_bytes"] == 60_000
    assert [e["size"] for e in r["entries"]] == [20_000, 30_000, 10_000]  # least recently used first
    assert "cache: 3 files" in lode("cache", "ls").out
    r = lode("cache", "cleanup", "15KB", "--dry-run", "--json").json()
    assert r["freed_bytes"] == 50_000 and len(cache.entries(repo.cache_dir)) == 3
    r = lode("cache", "cleanup", "15KB")
    assert r.code == 0 and "evicted 2 file(s)" in r.out
    left = cache.entries(repo.cache_dir)
    assert [e.size for e in left] == [10_000]
    assert (tmp_path / "d1" / "c").read_bytes() == c  # the hard-linked download kept its bytes
    assert lode("cache", "verify").code == 0
    # an edit through a hard link is found, and --fix removes the bad copy
    victim = left[0].path
    victim.chmod(0o644)
    victim.write_bytes(b"x" * 10_000)
    r = lode("cache", "verify", "--json")
    assert r.code == 6 and len(r.json()["bad"]) == 1
    assert lode("cache", "verify", "--fix").code == 0
    assert cache.entries(repo.cache_dir) == []
    assert lode("cache", "cleanup", "lots").code == 2


def test_size_cap_from_env(repo, tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_MAX, "25KB")
    files = {f"f{i}": os.urandom(10_000) for i in range(4)}
    art = log(repo, "animals", files)
    repo.cache_dir.joinpath("cache.db").unlink(missing_ok=True)
    art.download(root=tmp_path / "d", hardlink=True)
    # entries used within the last minute are protected from automatic eviction
    assert len(cache.entries(repo.cache_dir)) == 4
    db = cache._db(repo.cache_dir)
    db.execute("UPDATE entries SET last_used = last_used - 3600")
    db.close()
    art2 = log(repo, "more", {"g": os.urandom(10_000)})
    art2.download(root=tmp_path / "e", hardlink=True)
    assert sum(e.size for e in cache.entries(repo.cache_dir)) <= 25_000
    for name, data in files.items():
        assert (tmp_path / "d" / name).read_bytes() == data


def test_parse_size():
    assert cache.parse_size("1GB") == 10**9
    assert cache.parse_size("2GiB") == 2 * 1024**3
    assert cache.parse_size("0") == 0
