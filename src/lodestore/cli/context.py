"""Shared CLI state: which store root to use (global --root, else $LODESTORE_DIR)."""

from __future__ import annotations

from pathlib import Path

from lodestore.errors import InvalidInputError
from lodestore.sdk.repository import Repository

state: dict[str, Path | None] = {"root": None}


def repo() -> Repository:
    root = state["root"]
    if root is not None and root.exists() and not root.is_dir():
        raise InvalidInputError(f"the store folder {root} (--root or $LODESTORE_DIR) is a file, not a folder")
    return Repository.open(root)
