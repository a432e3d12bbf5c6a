"""Fixtures for runs, lineage, search and diff tests: a real store in tmp_path
($LODESTORE_DIR points at it, so `init()`, `Api()` and subprocesses find it), `lode` run
in-process, and a helper to log small artifacts from files written on the fly."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import lodestore
from lodestore.cli import context
from lodestore.cli.main import main
from lodestore.sdk import repository
from lodestore.sdk.run import current_run


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
    monkeypatch.setenv("COLUMNS", "200")
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


@pytest.fixture
def make(store: Path, tmp_path: Path):
    """make(run, "name", "type", {"file": "content"}, aliases=..., metadata=..., tags=...) -> logged Artifact."""
    counter = iter(range(10**6))

    def log(run, name: str, type: str, files: dict[str, str], **kw) -> lodestore.Artifact:
        folder = tmp_path / f"src-{next(counter)}"
        for rel, text in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text)
        aliases = kw.pop("aliases", None)
        tags = kw.pop("tags", None)
        art = lodestore.Artifact(name, type, **kw)
        art.add_dir(folder)
        return run.log_artifact(art, aliases=aliases, tags=tags)

    return log


PYTHON = sys.executable
