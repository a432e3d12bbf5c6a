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
    assert "cache: 3 files" in lode("cache", "ls").out and "cap 10.0 GB" in lode("cache", "ls").out
    assert r["max_bytes"] == cache.DEFAULT_MAX_BYTES
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


def test_cap_holds_and_lru_order_comes_from_the_index_not_atime(repo, tmp_path, monkeypatch):
    from lodestore.sdk.materialize import CACHE_MTIME_NS

    monkeypatch.setenv(cache.ENV_MAX, "35KB")
    files = {f"f{i}": os.urandom(10_000) for i in range(3)}
    art = log(repo, "animals", files)
    art.download(root=tmp_path / "d", hardlink=True)
    digest = {e.path: e.digest for e in art.files()}
    assert cache.total_bytes(repo.cache_dir) == 30_000
    # the index says f2 is least recently used, then f0, then f1; atime says the opposite
    db = cache._db(repo.cache_dir)
    for name, used in (("f2", 100.0), ("f0", 200.0), ("f1", 300.0)):
        db.execute("UPDATE entries SET last_used=? WHERE digest=?", (used, digest[name]))
    db.close()
    for name, atime in (("f2", 3e9), ("f0", 2e9), ("f1", 1e9)):
        p = repo.cache_dir / "files" / digest[name][:2] / digest[name]
        os.utime(p, ns=(int(atime * 1e9), CACHE_MTIME_NS))

    def cached():
        return {e.digest for e in cache.entries(repo.cache_dir)}

    g = log(repo, "more", {"g": os.urandom(10_000)})
    g.download(root=tmp_path / "g", hardlink=True)  # 40 KB > 35 KB: one entry goes
    assert cached() == {digest["f0"], digest["f1"], g.files()[0].digest}
    h = log(repo, "evenmore", {"h": os.urandom(10_000)})
    h.download(root=tmp_path / "h", hardlink=True)
    assert cached() == {digest["f1"], g.files()[0].digest, h.files()[0].digest}
    # the running total agrees with the disk, and the cap holds
    assert cache.total_bytes(repo.cache_dir) == sum(e.size for e in cache.entries(repo.cache_dir)) == 30_000
    for name, data in files.items():  # hard-linked downloads keep their bytes
        assert (tmp_path / "d" / name).read_bytes() == data


def test_cleanup_adopts_untracked_files_and_recounts(repo, tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_MAX, "off")
    art = log(repo, "animals", {"a": os.urandom(10_000), "b": os.urandom(20_000)})
    art.download(root=tmp_path / "d", hardlink=True)
    stray = repo.cache_dir / "files" / "ff" / ("ff" * 32)
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"x" * 5000)  # on disk, never tracked: least recently used
    gone = cache.entries(repo.cache_dir)[-1]
    gone.path.unlink()  # removed behind the index's back
    assert cache.total_bytes(repo.cache_dir) == 30_000
    evicted = cache.cleanup(repo.cache_dir, 10**9)
    assert evicted == [] and cache.total_bytes(repo.cache_dir) == 30_000 - gone.size + 5000
    evicted = cache.cleanup(repo.cache_dir, 30_000 - gone.size)
    assert [e.digest for e in evicted] == ["ff" * 32] and not stray.exists()


def test_cap_setting(monkeypatch):
    import pytest

    from lodestore.errors import InvalidInputError

    monkeypatch.delenv(cache.ENV_MAX, raising=False)
    assert cache.max_bytes() == cache.DEFAULT_MAX_BYTES == 10 * 10**9
    monkeypatch.setenv(cache.ENV_MAX, "off")
    assert cache.max_bytes() is None
    monkeypatch.setenv(cache.ENV_MAX, "2GiB")
    assert cache.max_bytes() == 2 * 1024**3
    monkeypatch.setenv(cache.ENV_MAX, "lots")
    with pytest.raises(InvalidInputError, match=cache.ENV_MAX):
        cache.max_bytes()


def test_over_the_cap_with_only_recent_entries_evicts_nothing_then_catches_up(repo, tmp_path, monkeypatch):
    """A hard-linked download bigger than the cap: copies used this minute are spared
    (the download is using them), so the cache runs over; once they are idle, the next
    new copy brings it back under the cap, oldest first."""
    monkeypatch.setenv(cache.ENV_MAX, "25KB")
    files = {f"f{i:03d}": os.urandom(1_000) for i in range(200)}
    art = log(repo, "many", files)
    art.download(root=tmp_path / "d", hardlink=True)
    assert cache.total_bytes(repo.cache_dir) == 200_000  # all recent: none evicted
    for name, data in files.items():
        assert (tmp_path / "d" / name).read_bytes() == data

    digest = {e.path: e.digest for e in art.files()}
    db = cache._db(repo.cache_dir)
    with db:
        for i, name in enumerate(sorted(files)):  # f000 is the least recently used
            db.execute("UPDATE entries SET last_used=? WHERE digest=?", (1000.0 + i, digest[name]))
    db.close()
    g = log(repo, "one", {"g": os.urandom(1_000)})
    g.download(root=tmp_path / "g", hardlink=True)
    left = {e.digest for e in cache.entries(repo.cache_dir)}
    assert cache.total_bytes(repo.cache_dir) <= 25_000
    assert g.files()[0].digest in left
    kept = [name for name in sorted(files) if digest[name] in left]
    assert kept == sorted(files)[-len(kept):]  # the newest survive, the oldest went first
