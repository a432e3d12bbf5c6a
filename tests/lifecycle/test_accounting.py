"""Storage accounting: logical and exclusive bytes per version, `lode stats`."""

from __future__ import annotations

import os

from lodestore.sdk.api import Api

from .conftest import log

MB = 1_000_000


def test_seed_storage_example(repo, lode):
    cat, dog, rat = os.urandom(2 * MB), os.urandom(1 * MB), os.urandom(3 * MB)
    v0 = log(repo, "animals", {"cat.png": cat, "dog.png": dog})
    v1 = log(repo, "animals", {"cat.png": cat, "dog.png": dog, "rat.png": rat})
    assert (v0.logical_size, v1.logical_size) == (3 * MB, 6 * MB)
    assert v0.exclusive_size == 0
    assert v1.exclusive_size == 3 * MB
    r = lode("versions", "zoo/animals", "--json")
    assert [v["exclusive_size"] for v in r.json()] == [0, 3 * MB]
    assert "exclusive" in lode("versions", "zoo/animals").out
    assert lode("info", "zoo/animals:v1", "--json").json()["exclusive_size"] == 3 * MB
    assert "exclusive" in lode("info", "zoo/animals:v1").out
    v0.delete()  # soft-deleted versions still hold their bytes
    assert v1.exclusive_size == 3 * MB
    lode("rm", "zoo/animals:v0", "--permanent")
    assert v1.exclusive_size == 6 * MB


def test_stats(repo, store, lode):
    shared = os.urandom(MB)
    log(repo, "animals", {"a.bin": shared})
    log(repo, "animals", {"a.bin": shared, "b.bin": os.urandom(MB)})
    m = log(repo, "net", {"w.bin": shared})
    m_rec = repo.catalog.get_version("zoo", "net")
    s = Api(store).stats()
    assert s["logical_bytes"] == 4 * MB
    assert 2 * MB <= s["stored_bytes"] < 2 * MB + 100_000  # random bytes do not compress
    assert s["saved_bytes"] == s["logical_bytes"] - s["stored_bytes"]
    assert 1.9 < s["dedup_ratio"] < 2.01
    assert s["types"]["dataset"] == {"artifacts": 2, "versions": 3, "logical_bytes": 4 * MB}
    assert {a["name"]: a["versions"] for a in s["artifacts"]} == {"zoo/animals": 2, "zoo/net": 1}
    assert s["soft_deleted_logical_bytes"] == 0
    m.delete()
    s = Api(store).stats()
    assert s["soft_deleted_logical_bytes"] == MB and s["soft_deleted_exclusive_bytes"] == 0
    assert s["logical_bytes"] == 3 * MB
    r = lode("stats", "--json")
    assert r.code == 0 and r.json()["logical_bytes"] == 3 * MB
    r = lode("stats")
    assert r.code == 0 and "dedup ratio" in r.out and "zoo/animals" in r.out
    assert m_rec.id
