"""The backend pairs team tests run on: `local` (a folder + SQLite) and `team` (SeaweedFS +
PostgreSQL, started on loopback by tests/real_services.py). `pair_env` is the environment
that points lodestore (in this process and in subprocesses) at a fresh store of the pair."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(params=["local", "team"])
def pair_env(request: pytest.FixtureRequest, store, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    if request.param == "team":
        bucket = request.getfixturevalue("s3_bucket")
        catalog = request.getfixturevalue("pg_url")
        monkeypatch.setenv("LODESTORE_STORE", bucket)
        monkeypatch.setenv("LODESTORE_CATALOG", catalog)
    return dict(os.environ)
