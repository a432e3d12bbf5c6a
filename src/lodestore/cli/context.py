"""Shared CLI state: which store to use (global --root, else $LODESTORE_DIR; or a team
pair: --remote NAME, --store/--catalog, $LODESTORE_REMOTE/STORE/CATALOG), and
the two ways in: the SDK's service door for managing the store, and the public `Api`
for the Python objects (an Artifact to download, a Run with its lineage).

The door is imported when a command first asks for it, not when `lode` starts: `lode
--help` and a usage error need none of the SDK, and importing it (SQLAlchemy, the store's
libraries, Rich's progress bars) cost ~0.3 s of every start (python -X importtime, 2-core
VM). Command modules import only the door's names they use at run time, in the command.
It is imported with the cyclic garbage collector paused, and what it made is then frozen
(`sdk_imports`): the ~80,000 objects of SQLAlchemy and the SDK hold no garbage to find, and
rescanning them cost ~40 ms of every `lode ls` (gc.callbacks, 2-core VM).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from lodestore.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from lodestore.sdk.api import Api
    from lodestore.sdk.service import Service

state: dict[str, Path | None] = {"root": None}
# The team pair named on the command line (None: $LODESTORE_* or the embedded store).
team: dict[str, str | None] = {"remote": None, "store": None, "catalog": None}


def _root() -> Path | None:
    root = state["root"]
    if root is not None and root.exists() and not root.is_dir():
        raise InvalidInputError(f"the store folder {root} (--root or $LODESTORE_DIR) is a file, not a folder")
    return root


@contextmanager
def sdk_imports(module: str = "lodestore.sdk.service") -> Iterator[None]:
    """For the block that imports `module` (an SDK entry point, the door by default):
    the cyclic garbage collector is paused, then every object alive is frozen (gc.freeze:
    later collections skip them), so the command does not pay to rescan the libraries it
    just imported. Only the first import of `module` in the process does this (a process
    that already has it, e.g. a test calling `main`, is left as it is)."""
    if module in sys.modules or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def service() -> Service:
    with sdk_imports():
        from lodestore.sdk.service import Service  # noqa: PLC0415  (~0.3 s: see the module docstring)

    return Service.open(_root(), **team)


def where() -> dict:
    """The store this command names, as `lodestore.init`/`Api` arguments."""
    return {"root": _root(), **team}


def local_root() -> Path | None:
    """The local store folder (where `lode remote` keeps its remotes.json)."""
    return _root()


def service_for(target: str) -> Service:
    """The store a push or pull names (TARGET): the one place it is resolved. A named
    remote (`lode remote add team ...`) first, so `--to team` is the team store even if
    a folder called team sits here (write ./team for the folder); else a store folder:
    an existing store (catalog.db or store/ in it), or an empty folder, which becomes
    one. Anything else is refused with one line."""
    with sdk_imports():
        from lodestore.sdk.service import Service  # noqa: PLC0415  (~0.3 s: see the module docstring)

    if not isinstance(target, str) or not target.strip():
        raise InvalidInputError("the other store is empty; name a remote or a store folder")
    if any(r.name == target for r in Service.remotes(_root())):
        return Service.open(_root(), remote=target)
    path = Path(target).expanduser()
    if not path.exists():
        raise NotFoundError(f"no store at {target} (name an existing store folder, or an empty folder to start one)")
    if not path.is_dir():
        raise InvalidInputError(f"{target} is a file, not a store folder")
    if not ((path / "catalog.db").exists() or (path / "store").is_dir() or not any(path.iterdir())):
        raise InvalidInputError(f"{target} is not a lodestore store (it holds no catalog.db or store/ folder)")
    return Service.open(path)


def api() -> Api:
    with sdk_imports("lodestore.sdk.api"):
        from lodestore.sdk.api import Api  # noqa: PLC0415  (~0.3 s: see the module docstring)

    return Api(_root(), **team)
