"""Fixtures every test folder shares: a real store in tmp_path ($LODESTORE_DIR points at
it, so `init()`, `Api()`, `lode` and subprocesses find it unasked), the working directory
moved into tmp_path, and `lode` run in-process. Everything opened is closed afterwards so
the next test starts from nothing. Folders narrow `store` where they need to (the CLI
tests want progress output; the SDK tests don't force a terminal width)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import lodestore
from lodestore.cli import context
from lodestore.cli.main import main
from lodestore.sdk import repository
from lodestore.sdk.run import current_run

# The real servers of team mode (SeaweedFS, PostgreSQL): session fixtures any folder uses.
pytest_plugins = ["real_services"]

# Settings a developer's shell may carry that would change what a test sees.
_CLEARED_ENV = ("LODESTORE_PROJECT", "LODESTORE_STORE", "LODESTORE_CATALOG", "LODESTORE_REMOTE",
                "LODESTORE_TEST_PAUSE_AT", "LODESTORE_GC_GRACE_SECONDS",
                "LODESTORE_CACHE_MAX_BYTES")


@dataclass
class Result:
    """What one `lode` invocation did: exit code, stdout, stderr."""

    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "team_too: run each test on the embedded store and on the team pair "
                                       "(SeaweedFS S3 + PostgreSQL): the `store` fixture takes both backends")
    config.addinivalue_line("markers", "all_pairs: as team_too, plus the mixed pairs (S3 + SQLite, folder + "
                                       "PostgreSQL)")
    config.addinivalue_line("markers", "local_only: looks at the embedded store's own files; skipped on the team pair")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked team_too get `store` twice: [local] and [team] (not copies of the tests)."""
    if "store" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("all_pairs"):
        metafunc.parametrize("backend", ["local", "team", "s3+sqlite", "local+pg"], indirect=True)
    elif metafunc.definition.get_closest_marker("team_too"):
        metafunc.parametrize("backend", ["local", "team"], indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The backend pair the `store` fixture gives: "local" unless parametrized (team_too)."""
    return getattr(request, "param", "local")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, request: pytest.FixtureRequest) -> Path:
    """A fresh store: the embedded one at the returned folder, or with backend "team" a
    fresh S3 bucket + PostgreSQL database named by $LODESTORE_STORE/$LODESTORE_CATALOG
    (the folder is then the local root, holding the pair's caches and remotes.json)."""
    if backend != "local" and request.node.get_closest_marker("local_only"):
        pytest.skip("looks at the embedded store's own files")
    root = tmp_path / "store"
    monkeypatch.setenv("LODESTORE_DIR", str(root))
    monkeypatch.setenv("LODESTORE_QUIET", "1")
    monkeypatch.setenv("COLUMNS", "200")  # Rich tables: no folding of names and digests
    for name in _CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    if backend in ("team", "s3+sqlite"):
        monkeypatch.setenv("LODESTORE_STORE", request.getfixturevalue("s3_bucket"))
    if backend in ("team", "local+pg"):
        monkeypatch.setenv("LODESTORE_CATALOG", request.getfixturevalue("pg_url"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield root
    while current_run() is not None:
        lodestore.finish()
    repository.close_all()
    context.state["root"] = None


@pytest.fixture
def lode(store: Path, capsys: pytest.CaptureFixture):
    """Run `lode ARGS...` in this process; returns Result(code, out, err)."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def _kill_once_a_pack_grows(proc: subprocess.Popen, tmp_dir: Path, past: int, timeout: float = 60) -> str:
    """SIGKILL `proc` (a writer) as soon as one of its unfinished packs under `tmp_dir`
    (``<store>/tmp/<session>/*.pack``) is larger than `past` bytes: the kill lands in
    the middle of a write. Returns what the writer printed after that."""
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None:
            try:
                if any(p.stat().st_size > past for p in tmp_dir.glob("*/*.pack")):
                    break
            except FileNotFoundError:  # a pack renamed into place while we looked
                pass
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        rest = proc.communicate()[0]
    return rest


@pytest.fixture
def kill_once_a_pack_grows():
    """_kill_once_a_pack_grows, for the crash tests of the store and of the SDK."""
    return _kill_once_a_pack_grows
