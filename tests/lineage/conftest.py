"""Fixtures for runs, lineage, search and diff tests: a real store in tmp_path
($LODESTORE_DIR points at it, so `init()`, `Api()` and subprocesses find it), `lode` run
in-process, and a helper to log small artifacts from files written on the fly."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import lodestore


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
