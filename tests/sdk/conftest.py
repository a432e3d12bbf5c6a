"""Fixtures for SDK tests: a real store (SQLite catalog + pack store) in tmp_path, the
working directory moved into tmp_path (default download folders are relative), and every
run and repository closed afterwards so the next test starts from nothing."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def store(store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared store, with progress output left to the terminal check (not forced quiet)."""
    monkeypatch.delenv("LODESTORE_QUIET", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)
    return store


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """A small folder: two images (one nested), a temp file to exclude, and a labels file beside it."""
    folder = tmp_path / "src" / "images"
    (folder / "dogs").mkdir(parents=True)
    (folder / "cat.jpg").write_bytes(b"\xff\xd8cat")
    (folder / "dogs" / "rex.jpg").write_bytes(b"\xff\xd8rex")
    (folder / "scratch.tmp").write_text("half-written")
    (tmp_path / "src" / "labels.csv").write_text("file,label\ncat.jpg,cat\ndogs/rex.jpg,dog\n")
    return folder
