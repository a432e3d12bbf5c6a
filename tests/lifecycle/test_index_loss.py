"""index.db is derived data: after it is lost (or corrupt), `fsck --repair` rebuilds
what the packs prove. A file up to 1 MiB is one chunk named by the file's own digest,
so it is rebuilt whole; a chunked file's recipe lived only in index.db, so the
versions holding one are marked broken, and only those."""

from __future__ import annotations

import json
import os
from pathlib import Path

from lodestore.sdk.artifact import Artifact
from lodestore.sdk.repository import Repository

from .conftest import content, log


def _drop_index(store: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (store / "store" / f"index.db{suffix}").unlink(missing_ok=True)


def test_repair_after_index_loss_keeps_every_version_the_packs_prove(repo, store, lode_proc, tmp_path):
    small = {"a.txt": b"alpha" * 100, "sub/b.bin": os.urandom(300_000), "empty": b""}
    log(repo, "small", small)
    log(repo, "large", {"weights.bin": os.urandom(3_000_000), "readme": b"big one"})
    repo.close()
    _drop_index(store)
    r = lode_proc("fsck")
    assert r.returncode == 6
    r = lode_proc("fsck", "--repair", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)["repaired"]
    assert rep["marked_broken"] == ["zoo/large:v0"]
    assert len(rep["restored_files"]) == 4  # a.txt, b.bin, empty, readme
    repo = Repository.open(store)
    assert repo.catalog.get_version("zoo", "small", "v0").state == "live"
    assert content(Artifact._from_record(repo, repo.catalog.get_version("zoo", "small", "v0")), tmp_path) == small
    assert lode_proc("fsck").returncode == 0
