"""Shared CLI state: which store root to use (global --root, else $LODESTORE_DIR)."""

from __future__ import annotations

from pathlib import Path

from lodestore.sdk.repository import Repository

state: dict[str, Path | None] = {"root": None}


def repo() -> Repository:
    return Repository.open(state["root"])
