"""Fixtures for lifecycle tests: a real store (SQLite catalog + pack store) in tmp_path,
helpers to log versions, run `lode` in-process, and run real worker processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from lodestore.cli import context
from lodestore.cli.main import main
from lodestore.sdk import repository
from lodestore.sdk.artifact import Artifact
from lodestore.sdk.repository import Repository

HERE = Path(__file__).parent
PROC = HERE / "_proc.py"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "store"
    monkeypatch.setenv("LODESTORE_DIR", str(root))
    monkeypatch.setenv("LODESTORE_QUIET", "1")
    monkeypatch.delenv("LODESTORE_PROJECT", raising=False)
    monkeypatch.delenv("LODESTORE_TEST_PAUSE_AT", raising=False)
    monkeypatch.delenv("LODESTORE_GC_GRACE_SECONDS", raising=False)
    monkeypatch.delenv("LODESTORE_CACHE_MAX_BYTES", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield root
    repository.close_all()
    context.state["root"] = None


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


@pytest.fixture
def lode(store: Path, capsys: pytest.CaptureFixture):
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


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A real worker process running tests/lifecycle/_proc.py."""
    return subprocess.Popen([sys.executable, str(PROC), *map(str, args)], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
