"""Fixtures for lifecycle tests: a real store (SQLite catalog + pack store) in tmp_path,
helpers to log versions, run `lode` in-process, and run real worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lodestore.sdk.artifact import Artifact
from lodestore.sdk.repository import Repository

HERE = Path(__file__).parent
PROC = HERE / "_proc.py"


@pytest.fixture
def repo(store: Path) -> Repository:
    return Repository.open(store)


def log(repo: Repository, name: str, files: dict[str, bytes], aliases=(), ttl=None, src: Path | None = None):
    """Log a version of project zoo / artifact `name` from in-memory files."""
    src = src or repo.root.parent / "src"
    folder = src / f"{name}-{os.urandom(4).hex()}"
    folder.mkdir(parents=True)
    for path, data in files.items():
        p = folder / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    art = Artifact(name, type="dataset", ttl=ttl) if ttl is not None else Artifact(name, type="dataset")
    art.add_dir(folder)
    art._log(repo, "zoo", list(aliases), run_id=None)
    return art


def content(art: Artifact, tmp: Path) -> dict[str, bytes]:
    """Materialize a version into a fresh folder and read every file back."""
    target = tmp / f"dl-{os.urandom(4).hex()}"
    art.download(root=target)
    return {str(p.relative_to(target)): p.read_bytes() for p in sorted(target.rglob("*")) if p.is_file()}


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A real worker process running tests/lifecycle/_proc.py."""
    return subprocess.Popen([sys.executable, str(PROC), *map(str, args)], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def lode_proc(store: Path):
    """Run `lode ARGS...` as a real process (it opens the store afresh each time, as a
    user's commands do); returns the CompletedProcess (returncode, stdout, stderr)."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from lodestore.cli.main import main; main()",
                               *map(str, args)], capture_output=True, text=True, timeout=300, check=False,
                              env={**os.environ, **(env or {})})

    return run


def wait_for(proc: subprocess.Popen, word: str, timeout: float = 60) -> str:
    """Read `proc`'s stderr until a line holds `word` (a PAUSED/DELAYED marker of
    lodestore.testhooks); what it read. Fails if the process ends or times out first."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen += line
        if word in line:
            return seen
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"{word!r} never appeared; stderr: {seen}")
