"""Shared CLI state: which store root to use (global --root, else $LODESTORE_DIR), and
the two ways in: the SDK's service door for managing the store, and the public `Api`
for the Python objects (an Artifact to download, a Run with its lineage)."""

from __future__ import annotations

from pathlib import Path

from lodestore.errors import InvalidInputError
from lodestore.sdk.api import Api
from lodestore.sdk.service import Service

state: dict[str, Path | None] = {"root": None}


def _root() -> Path | None:
    root = state["root"]
    if root is not None and root.exists() and not root.is_dir():
        raise InvalidInputError(f"the store folder {root} (--root or $LODESTORE_DIR) is a file, not a folder")
    return root


def service() -> Service:
    return Service.open(_root())


def api() -> Api:
    return Api(_root())
