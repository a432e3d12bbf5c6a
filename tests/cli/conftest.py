"""Fixtures for CLI tests: a real store in tmp_path, and two ways to run `lode`:
in-process (`lode`, fast, through `lodestore.cli.main.main`) and as a real subprocess
(`lode_proc`, for exit codes and clean stdout exactly as a shell sees them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Result  # tests/conftest.py: shared by every test folder


@pytest.fixture
def store(store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared store, with progress output left to the terminal check (not forced quiet)."""
    monkeypatch.delenv("LODESTORE_QUIET", raising=False)
    return store


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
