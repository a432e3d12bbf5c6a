"""Soft delete, restore, permanent delete, alias rules, `latest`, the seed's clean-up loop."""

from __future__ import annotations

import pytest

from lodestore.errors import ConflictError, NotFoundError
from lodestore.sdk.api import Api

from .conftest import content, log


def test_soft_delete_hides_and_moves_latest_then_restore(repo, tmp_path):
    v0 = log(repo, "animals", {"a.txt": b"zero"})
    v1 = log(repo, "animals", {"a.txt": b"one"})
    assert repo.catalog.get_version("zoo", "animals").index == 1
    v1.delete()
    assert v1.state == "deleted"
    assert [r.index for r in repo.catalog.list_versions("zoo", "animals")] == [0]
    assert repo.catalog.get_version("zoo", "animals").index == 0  # latest moved back
    with pytest.raises(NotFoundError):
        repo.catalog.get_version("zoo", "animals", "v1")
    v1.restore()
    assert v1.state == "live"
    assert repo.catalog.get_version("zoo", "animals").index == 1  # newest again -> latest
    assert content(v1, tmp_path) == {"a.txt": b"one"}
    # version numbers are never reused
    v1.delete(permanent=True)
    v2 = log(repo, "animals", {"a.txt": b"two"})
    assert v2.version == "v2"
    assert content(v0, tmp_path) == {"a.txt": b"zero"}


def test_aliased_version_refused_unless_delete_aliases(repo):
    v0 = log(repo, "animals", {"a.txt": b"zero"}, aliases=["best"])
    log(repo, "animals", {"a.txt": b"one"})
    with pytest.raises(ConflictError, match="best"):
        v0.delete()
    assert v0.refresh().state == "live"
    v0.delete(delete_aliases=True)
    assert v0.state == "deleted"
    with pytest.raises(NotFoundError):
        repo.catalog.get_version("zoo", "animals", "best")


def test_latest_alone_does_not_block_delete(repo):
    v0 = log(repo, "animals", {"a.txt": b"zero"})
    v0.delete()  # holds only "latest"
    assert repo.catalog.list_versions("zoo", "animals") == []


def test_seed_cleanup_loop(repo, store):
    log(repo, "animals", {"a": b"0"}, aliases=["keep"])
    log(repo, "animals", {"a": b"1"})
    log(repo, "animals", {"a": b"2"})
    api = Api(store)
    for v in api.artifact_versions("dataset", "zoo/animals"):
        if not v.aliases:
            v.delete()
    left = api.artifact_versions("dataset", "zoo/animals")
    assert [v.version for v in left] == ["v0", "v2"]  # v2 held latest, so it was kept


def test_permanent_delete_and_restore_of_purged(repo, lode):
    log(repo, "animals", {"a.txt": b"zero"})
    log(repo, "animals", {"a.txt": b"one"})
    r = lode("rm", "zoo/animals:v0", "--permanent")
    assert r.code == 0, r.err
    r = lode("restore", "zoo/animals:v0")
    assert r.code == 3 and "gone for good" in r.err
    assert [v.index for v in repo.catalog.list_versions("zoo", "animals", include_deleted=True)] == [1]


def test_cli_rm_restore_and_bad_input(repo, lode):
    log(repo, "animals", {"a.txt": b"zero"}, aliases=["best"])
    log(repo, "animals", {"a.txt": b"one"})
    assert lode("rm", "zoo/animals:v7").code == 3  # unknown version
    assert lode("rm", "zoo/nothing:v0").code == 3
    assert lode("rm", "zoo/animals").code == 2  # no version named
    r = lode("rm", "zoo/animals:v0")
    assert r.code == 4 and "best" in r.err
    assert lode("rm", "zoo/animals:v0", "--delete-aliases").code == 0
    r = lode("versions", "zoo/animals", "--all", "--json")
    assert [(v["version"], v["state"]) for v in r.json()] == [("v0", "deleted"), ("v1", "live")]
    r = lode("restore", "zoo/animals:v0", "--json")
    assert r.code == 0 and (r.json()["restored"], r.json()["state"]) == ("zoo/animals:v0", "live")
    r = lode("restore", "zoo/animals:v0")  # again: it is live, nothing to do, and it says so
    assert r.code == 0 and "is not deleted (state: live); nothing to restore" in r.out
    assert lode("restore", "zoo/animals:v9").code == 3
    assert repo.catalog.get_version("zoo", "animals", "v0").state == "live"
    # a soft-deleted version can be purged afterwards
    assert lode("rm", "zoo/animals:v1").code == 0
    assert lode("rm", "zoo/animals:v1", "--permanent").code == 0
    assert [v.index for v in repo.catalog.list_versions("zoo", "animals", include_deleted=True)] == [0]
