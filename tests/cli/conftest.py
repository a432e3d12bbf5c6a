"""Fixtures for CLI tests: a real store in tmp_path, and two ways to run `lode`:
in-process (`lode`, fast, through `lodestore.cli.main.main`) and as a real subprocess
(`lode_proc`, for exit codes and clean stdout exactly as a shell sees them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
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
    monkeypatch.delenv("LODESTORE_PROJECT", raising=False)
    monkeypatch.delenv("LODESTORE_QUIET", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # Rich tables: no folding of names and digests
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


def _lode_command() -> list[str]:
    exe = shutil.which("lode", path=str(Path(sys.executable).parent)) or shutil.which("lode")
    if exe:
        return [exe]
    return [sys.executable, "-c", "import sys; from lodestore.cli.main import main; sys.exit(main())"]


@pytest.fixture
def lode_proc(store: Path):
    """Run the installed `lode` as a subprocess (cwd: the test's work folder)."""
    command = _lode_command()

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        full_env = {**os.environ, **(env or {})}
        done = subprocess.run(
            [*command, *map(str, args)],
            check=False,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=120,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    (folder / "dogs").mkdir(parents=True)
    (folder / "cat.jpg").write_bytes(b"\xff\xd8cat")
    (folder / "dogs" / "rex.jpg").write_bytes(b"\xff\xd8rex")
    (folder / "scratch.tmp").write_text("half-written")
    return folder
