"""Fixtures for push, pull, export and import: two real stores in tmp_path (`here`, the
test's own store at $LODESTORE_DIR, and `team`, an empty folder beside it), a helper that
logs versions from bytes, and `lode` run as a real subprocess for the kill tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import lodestore
from lodestore.sdk.service import Service


@pytest.fixture
def team(tmp_path: Path) -> Path:
    root = tmp_path / "team"
    root.mkdir()
    return root


@pytest.fixture
def here(store: Path) -> Service:
    return Service.open(store)


@pytest.fixture
def there(team: Path) -> Service:
    return Service.open(team)


@pytest.fixture
def make(store: Path, tmp_path: Path):
    """make("zoo/animals", {"path": bytes}, run=None, aliases=..., **Artifact kwargs) -> logged Artifact."""
    counter = iter(range(10**6))

    def log(ref: str, files: dict[str, bytes | str], run=None, aliases=None, tags=None, type="dataset", **kw):
        project, name = ref.split("/")
        folder = tmp_path / f"src-{next(counter)}"
        for rel, data in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data.encode() if isinstance(data, str) else data)
        art = lodestore.Artifact(name, type, **kw)
        art.add_dir(folder)
        art.tags = tags or []
        if run is not None:
            return run.log_artifact(art, aliases=aliases)
        art._log(Service.open(store), project, aliases or [], run_id=None)  # a version no run made
        return art

    return log


def lode_command(*args: str) -> list[str]:
    """`lode ARGS` as a subprocess of this interpreter (PYTHONPATH and $LODESTORE_DIR inherited)."""
    return [sys.executable, "-m", "lodestore.cli.main", *map(str, args)]


@pytest.fixture
def lode_popen():
    started: list[subprocess.Popen] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(lode_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **(env or {})})
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
