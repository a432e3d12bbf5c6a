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
    assert api.retention("zoo/animals") == {"keep_last": 1, "max_age_seconds": 7 * 86400}
    assert len(api.prune(dry_run=True).drop) == 3
    assert len(repo.catalog.list_versions("zoo", "animals")) == 4
    api.prune()
    assert [v.index for v in repo.catalog.list_versions("zoo", "animals")] == [3]
    api.set_retention("zoo/animals", clear=True)
    assert api.retention("zoo/animals") is None
    plan = api.gc(grace=0)
    assert plan.executed and plan.bytes_freed == 0, plan  # soft-deleted versions keep their bytes


def test_retention_set_changes_only_what_is_given(repo, lode):
    log(repo, "animals", {"a": b"0"})

    def policy():
        return repo.catalog.get_retention("zoo", "animals")

    assert lode("retention", "set", "zoo/animals", "--keep-last", "5", "--keep-aliased").code == 0
    assert lode("retention", "set", "zoo/animals", "--max-age-days", "30").code == 0
    assert policy() == {"keep_last": 5, "keep_aliased": True, "max_age_seconds": 30 * 86400}
    assert lode("retention", "set", "zoo/animals", "--no-keep-aliased").code == 0
    assert policy() == {"keep_last": 5, "keep_aliased": False, "max_age_seconds": 30 * 86400}
    assert lode("retention", "set", "zoo/animals", "--no-keep-last", "--no-max-age").code == 0
    assert policy() == {"keep_aliased": False}
    assert lode("retention", "set", "zoo/animals", "--clear", "--keep-last", "1").code == 2
    assert lode("retention", "set", "zoo/animals", "--keep-last", "2", "--no-keep-last").code == 2
    assert policy() == {"keep_aliased": False}
    assert lode("retention", "set", "zoo/animals", "--clear").code == 0
    assert policy() is None


def test_prune_plan_says_which_aliases_go(repo, lode):
    for i in range(3):
        log(repo, "animals", {"a": str(i).encode()}, aliases=["best"] if i == 0 else [])
    repo.catalog.set_retention("zoo", "animals", {"keep_last": 1})
    r = lode("prune", "--dry-run")
    assert r.code == 0 and "removes aliases" in r.out and "best" in r.out
    assert "1 of them hold aliases, which the delete removes" in r.out
    r = lode("prune", "--dry-run", "--json").json()
    assert [(d["name"], d["aliases"]) for d in r["drop"]] == [("zoo/animals:v1", []), ("zoo/animals:v0", ["best"])]
    assert lode("prune").code == 0
    assert [v.index for v in repo.catalog.list_versions("zoo", "animals")] == [2]
    assert lode("restore", "zoo/animals:v0").code == 0  # soft: recoverable, without its alias
    assert repo.catalog.get_version("zoo", "animals", "v0").aliases == ()


def test_parse_duration():
    assert lifecycle.parse_duration("30d") == timedelta(days=30)
    assert lifecycle.parse_duration("12h") == timedelta(hours=12)
    assert lifecycle.parse_duration("2w") == timedelta(weeks=2)
    assert lifecycle.parse_duration("90") == timedelta(seconds=90)
    for bad in ("0d", "-1d", "soon", "3y"):
        with pytest.raises(InvalidInputError):
            lifecycle.parse_duration(bad)


def test_api_set_retention_changes_only_what_is_given(repo, store):
    from lodestore.sdk.api import Api

    log(repo, "animals", {"a": b"0"})
    api = Api(store)
    api.set_retention("zoo/animals", keep_last=5, keep_aliased=True)
    api.set_retention("zoo/animals", max_age=timedelta(days=30))  # adding a TTL keeps the rest
    assert api.retention("zoo/animals") == {"keep_last": 5, "keep_aliased": True, "max_age_seconds": 30 * 86400}
    api.set_retention("zoo/animals", keep_aliased=False)
    assert api.retention("zoo/animals")["keep_aliased"] is False
    with pytest.raises(InvalidInputError):
        api.set_retention("zoo/animals", keep_last=-2)
    assert api.retention("zoo/animals")["keep_last"] == 5  # a refused change leaves the policy as it was
