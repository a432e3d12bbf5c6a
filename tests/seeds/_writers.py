"""Worker functions for the parallel-writer tests, run in real processes
(multiprocessing, spawn): each is one W&B-style writer with its own run."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def write_part(group: str, i: int, part_id: str | None, log: str | None = None,
               pause_at: str | None = None, content: str | None = None) -> str:
    """One writer: a run in `group` upserts a table part and a file. Returns "added",
    "resent" or "refused: <error>". With `log`, stderr goes there (a test waits for
    PAUSED in it); `pause_at` holds the process at a test pause point."""
    if log:
        sys.stderr = open(log, "w", buffering=1)  # noqa: SIM115
    if pause_at:
        os.environ["LODESTORE_TEST_PAUSE_AT"] = pause_at
    import lodestore

    with lodestore.init(project="par", group=group) as run:
        art = lodestore.Artifact("parallel-artifact", type="dataset")
        art.add(lodestore.Table(columns=["a", "b", "c"], data=[[i, i * 2, 2**i]]), f"parts/table_{i}")
        folder = Path(tempfile.mkdtemp())
        (folder / f"shard_{i}.txt").write_text(content if content is not None else f"shard {i}\n" * 1000)
        art.add_file(folder / f"shard_{i}.txt", name=f"shards/shard_{i}.txt")
        before = _parts(group)
        try:
            run.upsert_artifact(art, part_id=part_id)
        except lodestore.ConflictError as e:
            return f"refused: {e}"
        return "added" if _parts(group) > before else "resent"


def _parts(group: str) -> int:
    from lodestore.sdk.service import Service

    found = [d for d in Service.open().drafts("par", "parallel-artifact") if d.distributed_id == group]
    return found[0].part_count if found else 0


def finish(group: str, log: str | None = None, pause_at: str | None = None, expected: int | None = None) -> str:
    if log:
        sys.stderr = open(log, "w", buffering=1)  # noqa: SIM115
    if pause_at:
        os.environ["LODESTORE_TEST_PAUSE_AT"] = pause_at
    import lodestore

    with lodestore.init(project="par", group=group) as run:
        art = lodestore.Artifact("parallel-artifact", type="dataset")
        art.add(lodestore.data_types.PartitionedTable("parts"), "distributed_table")
        try:
            return run.finish_artifact(art, expected_parts=expected).qualified_name
        except lodestore.ConflictError as e:
            return f"refused: {e}"
