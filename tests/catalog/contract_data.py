"""Values the catalog contract builds its versions and runs from."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from lodestore.catalog.records import ManifestEntry, NewVersion, RunRecord

BAD_NAMES = ["", "..", ".", "a/b", "x" * 200, "-dash", "sp ace"]


def entries(*paths: str, salt: str = "") -> list[ManifestEntry]:
    return [
        ManifestEntry(p, "blake3:" + hashlib.sha256((salt + p).encode()).hexdigest(), len(p) + 10)
        for p in sorted(paths)
    ]


def manifest_digest(items: list[ManifestEntry]) -> str:
    h = hashlib.sha256()
    for e in items:
        h.update(f"{e.path}\0{e.digest}\0{e.size}\n".encode())
    return "blake3:" + h.hexdigest()


def new_version(content: str = "a", project: str = "zoo", name: str = "animals", type: str = "dataset",
                items: list[ManifestEntry] | None = None, **kw) -> NewVersion:
    """A version whose content (hence digest) is determined by `content`."""
    items = items if items is not None else entries("a.txt", "b/c.txt", salt=content)
    return NewVersion(project=project, name=name, type=type, entries=items, digest=manifest_digest(items),
                      **kw)


def a_run(run_id: str = "run1", project: str = "zoo", **kw) -> RunRecord:
    fields = dict(
        id=run_id, project=project, name=None, group=None, job_type=None, tags=(), notes=None, config={},
        summary={}, state="running", exit_code=None, created_at=datetime.now(UTC), finished_at=None,
        heartbeat_at=None,
    )
    fields.update(kw)
    return RunRecord(**fields)


