"""lodestore: version the files of machine learning as artifacts, locally first.

    import lodestore
    with lodestore.init(project="zoo", name="prep") as run:
        art = lodestore.Artifact("animals", type="dataset")
        art.add_dir("images/")
        run.log_artifact(art, aliases=["best"])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lodestore.errors import (
    ConflictError,
    CorruptionError,
    FileChangedError,
    ImmutableError,
    InvalidInputError,
    InvalidNameError,
    LodestoreError,
    NotFoundError,
    SourceFileNotFoundError,
    StoreFormatError,
    VerificationError,
)

if TYPE_CHECKING:  # type checkers and IDEs see the names; the import happens on first use
    from lodestore.sdk.api import Api
    from lodestore.sdk.artifact import Artifact, ArtifactEntry
    from lodestore.sdk.run import Run, current_run, init  # noqa: F401  (lodestore.current_run, as before)
    from lodestore.sdk.sweep import Sweep
    from lodestore.sdk.tables import PartitionedTable, Table

# The SDK is imported on first use of one of its names (PEP 562), not with the package:
# `lode` imports `lodestore.cli`, hence this file, and most commands need neither runs nor
# artifacts. Importing the SDK here cost every `lode` command ~0.3 s (SQLAlchemy, the
# store's libraries, Rich's progress bars; python -X importtime, 2-core VM).
_LAZY = {
    "Api": "lodestore.sdk.api",
    "Artifact": "lodestore.sdk.artifact",
    "ArtifactEntry": "lodestore.sdk.artifact",
    "Run": "lodestore.sdk.run",
    "current_run": "lodestore.sdk.run",
    "init": "lodestore.sdk.run",
    "Sweep": "lodestore.sdk.sweep",
    "Table": "lodestore.sdk.tables",
    "PartitionedTable": "lodestore.sdk.tables",
}
_LAZY_MODULES = {"data_types": "lodestore.data_types"}  # W&B's `wandb.data_types.PartitionedTable`


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        value = importlib.import_module(_LAZY_MODULES[name])
        globals()[name] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lodestore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups find it without coming here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_LAZY_MODULES))


__version__ = "0.1.0"


def _runs() -> Any:
    """The module of runs (`lodestore.sdk.run`), imported on first use like the names above."""
    return importlib.import_module("lodestore.sdk.run")


def log_artifact(artifact, **kwargs):
    """Log to the current run (like `wandb.log_artifact`); starts a run if none is active."""
    runs = _runs()
    run = runs.current_run() or runs.init()
    return run.log_artifact(artifact, **kwargs)


def use_artifact(ref, **kwargs):
    runs = _runs()
    run = runs.current_run() or runs.init()
    return run.use_artifact(ref, **kwargs)


def finish(exit_code=None):
    run = _runs().current_run()
    if run is not None:
        run.finish(exit_code=exit_code)


__all__ = [
    "Api", "Artifact", "ArtifactEntry", "ConflictError", "CorruptionError", "FileChangedError", "ImmutableError",
    "InvalidInputError", "InvalidNameError", "LodestoreError", "NotFoundError", "PartitionedTable", "Run",
    "SourceFileNotFoundError", "StoreFormatError", "Sweep", "Table", "VerificationError", "data_types", "finish",
    "init", "log_artifact", "use_artifact",
]
