"""Retention policies, version TTLs and `lode prune` (plan first, soft-deletes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lodestore.errors import InvalidInputError
from lodestore.sdk import lifecycle

from .conftest import log


def test_keep_last_and_keep_aliased(repo, lode):
    for i in range(6):
        log(repo, "animals", {"a": str(i).encode()}, aliases=["best"] if i == 1 else [])
    log(repo, "other", {"a": b"x"})
    r = lode("retention", "set", "zoo/animals", "--keep-last", "2", "--keep-aliased")
    assert r.code == 0, r.err
    assert repo.catalog.get_retention("zoo", "animals") == {"keep_aliased": True, "keep_last": 2}
    assert lode("retention", "show", "--json").json() == {
        "zoo/animals": {"keep_aliased": True, "keep_last": 2}, "zoo/other": None}
    assert "zoo/animals" in lode("retention", "show").out
    r = lode("prune", "--dry-run")
    assert r.code == 0 and "would delete 3 version(s)" in r.out and "keep_last=2" in r.out
    assert len(repo.catalog.list_versions("zoo", "animals")) == 6  # dry run
    r = lode("prune", "--json")
    assert [d["name"] for d in r.json()["drop"]] == ["zoo/animals:v3", "zoo/animals:v2", "zoo/animals:v0"]
    assert [v.index for v in repo.catalog.list_versions("zoo", "animals")] == [1, 4, 5]
    # soft-deleted: recoverable
    assert lode("restore", "zoo/animals:v0").code == 0
    assert lode("retention", "set", "zoo/animals", "--clear").code == 0
    assert lifecycle.plan_prune(repo).drop == []


def test_without_keep_aliased_aliases_go_too(repo):
    for i in range(3):
        log(repo, "animals", {"a": str(i).encode()}, aliases=["best"] if i == 0 else [])
    repo.catalog.set_retention("zoo", "animals", {"keep_last": 1})
    lifecycle.prune(repo)
    assert [v.index for v in repo.catalog.list_versions("zoo", "animals")] == [2]


def test_ttl_and_max_age(repo):
    log(repo, "animals", {"a": b"0"}, ttl=timedelta(days=30))
    log(repo, "animals", {"a": b"1"})
    later = datetime.now(UTC) + timedelta(days=31)
    assert [r.index for r in lifecycle.plan_prune(repo, now=later).drop] == [0]
    assert lifecycle.plan_prune(repo).drop == []
    repo.catalog.set_retention("zoo", "animals", {"max_age_seconds": 86400})
    assert [r.index for r in lifecycle.plan_prune(repo, now=later).drop] == [1, 0]


def test_bad_policies(repo, lode):
    log(repo, "animals", {"a": b"0"})
    with pytest.raises(InvalidInputError):
        lifecycle.check_policy({"keep_last": -1})
    with pytest.raises(InvalidInputError):
        lifecycle.check_policy({"keep_forever": True})
    assert lode("retention", "set", "zoo/unknown", "--keep-last", "1").code == 3


def test_api_retention_and_prune(repo, store):
    from lodestore.sdk.api import Api

    for i in range(4):
        log(repo, "animals", {"a": str(i).encode()})
    api = Api(store)
    api.set_retention("zoo/animals", keep_last=1, max_age=timedelta(days=7))
    assert api.retention("zoo/animals") == {"keep_aliased": False, "keep_last": 1, "max_age_seconds": 7 * 86400}
    assert len(api.prune(dry_run=True).drop) == 3
    assert len(repo.catalog.list_versions("zoo", "animals")) == 4
    api.prune()
    assert [v.index for v in repo.catalog.list_versions("zoo", "animals")] == [3]
    api.set_retention("zoo/animals")
    assert api.retention("zoo/animals") is None
    plan = api.gc(grace=0)
    assert plan.executed and plan.bytes_freed == 0, plan  # soft-deleted versions keep their bytes
