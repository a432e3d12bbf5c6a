"""Where a store lives. ``init(root=...)`` beats ``$LODESTORE_DIR`` beats ``~/.lodestore``."""

from __future__ import annotations

import os
from pathlib import Path

ENV_ROOT = "LODESTORE_DIR"
DEFAULT_ROOT = Path("~/.lodestore")


def resolve_root(root: str | os.PathLike[str] | None = None) -> Path:
    if root is not None:
        return Path(root).expanduser().resolve()
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(env).expanduser().resolve()
    return DEFAULT_ROOT.expanduser().resolve()
