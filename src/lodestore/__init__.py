"""lodestore: version the files of machine learning as artifacts, locally first.

    import lodestore
    with lodestore.init(project="zoo", name="prep") as run:
        art = lodestore.Artifact("animals", type="dataset")
        art.add_dir("images/")
        run.log_artifact(art, aliases=["best"])
"""

from lodestore import data_types  # W&B's `wandb.data_types.PartitionedTable`
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
from lodestore.sdk.api import Api
from lodestore.sdk.artifact import Artifact, ArtifactEntry
from lodestore.sdk.run import Run, current_run, init
from lodestore.sdk.sweep import Sweep
from lodestore.sdk.tables import PartitionedTable, Table

__version__ = "0.1.0"


def log_artifact(artifact, **kwargs):
    """Log to the current run (like `wandb.log_artifact`); starts a run if none is active."""
    run = current_run() or init()
    return run.log_artifact(artifact, **kwargs)


def use_artifact(ref, **kwargs):
    run = current_run() or init()
    return run.use_artifact(ref, **kwargs)


def finish(exit_code=None):
    run = current_run()
    if run is not None:
        run.finish(exit_code=exit_code)


__all__ = [
    "Api", "Artifact", "ArtifactEntry", "ConflictError", "CorruptionError", "FileChangedError", "ImmutableError",
    "InvalidInputError", "InvalidNameError", "LodestoreError", "NotFoundError", "PartitionedTable", "Run",
    "SourceFileNotFoundError", "StoreFormatError", "Sweep", "Table", "VerificationError", "data_types", "finish",
    "init", "log_artifact", "use_artifact",
]
