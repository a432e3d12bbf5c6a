"""One benchmark step per process, so each step's peak RSS is its own.

Usage: python bench/steps.py STEP STORE_ROOT ARGS... ; prints one JSON line:
{"seconds": op time, "maxrss_mb": peak RSS of this process, ...step facts}.
The op time runs from opening the store (Repository.open / Api) to the end of the
operation; interpreter start and imports are measured by run.py around the process.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def _stored(repo) -> int:
    return repo.store.stats().stored_bytes


def log(root: str, name: str, artifact_type: str, path: str, entry_name: str | None = None) -> dict:
    import lodestore
    from lodestore.sdk.repository import Repository

    t = time.perf_counter()  # opening the store is part of logging (imports are not: see run.py)
    repo = Repository.open(root)
    # bookkeeping for the report, not part of the operation: excluded from the time
    t_book = time.perf_counter()
    before = _stored(repo)
    versions_before = len(repo.catalog.list_versions("bench", name)) if repo.catalog.list_artifacts("bench", name=name) else 0
    t += time.perf_counter() - t_book
    art = lodestore.Artifact(name, type=artifact_type, project="bench")
    p = Path(path)
    if p.is_dir():
        art.add_dir(p)
    else:
        art.add_file(p, name=entry_name or p.name)
    created = art._log(repo, "bench", [], None)
    seconds = time.perf_counter() - t
    versions_after = len(repo.catalog.list_versions("bench", name))
    return {"seconds": seconds, "new_bytes": _stored(repo) - before, "size": art.size, "version": art.version,
            "created": created, "new_versions": versions_after - versions_before}


def download(root: str, ref: str, target: str) -> dict:
    import lodestore

    t = time.perf_counter()
    api = lodestore.Api(root=root)
    art = api.artifact(ref)
    art.download(root=target)
    return {"seconds": time.perf_counter() - t, "size": art.size}


def peak_rss_mb() -> float:
    """VmHWM: this process's own peak RSS (ru_maxrss would inherit the parent's peak over fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    step, *args = sys.argv[1:]
    result = {"log": log, "download": download}[step](*args)
    result["maxrss_mb"] = peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
