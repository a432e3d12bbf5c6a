"""gc against a log caught between its store commit and its catalog commit (real processes).

In that window the new bytes are indexed but no version refers to them yet. The log's
write session keeps the store's shared gc lock until the catalog has committed, so
`gc --grace 0` waits instead of sweeping them; the grace period is only a backstop.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import blake3

from .conftest import wait_for

WRITER = """
import os, sys
os.environ["LODESTORE_QUIET"] = "1"
from lodestore.sdk.artifact import Artifact
from lodestore.sdk.repository import Repository
repo = Repository.open(sys.argv[1])
art = Artifact("weights", type="model")
art.add_dir(sys.argv[2])
art._log(repo, "zoo", [], run_id=None)
print("LOGGED", art.version, flush=True)
repo.close()
"""

GC = """
import sys
import lodestore
plan = lodestore.Api(root=sys.argv[1]).gc(grace=0)
print("GC", plan.dead_files, plan.bytes_freed, flush=True)
"""



def test_gc_waits_for_a_log_between_store_and_catalog_commit(tmp_path: Path, monkeypatch):
    root = tmp_path / "store"
    src = tmp_path / "src"
    src.mkdir()
    files = {"big.bin": os.urandom(3 * 1024 * 1024), "small.txt": b"hello " * 1000}
    for name, data in files.items():
        (src / name).write_bytes(data)
    hold = tmp_path / "hold"
    hold.touch()
    env = {**os.environ, "LODESTORE_TEST_PAUSE_AT": "log-before-catalog-commit",
           "LODESTORE_TEST_PAUSE_FILE": str(hold), "LODESTORE_QUIET": "1"}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(src)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    gc = None
    try:
        wait_for(writer, "PAUSED log-before-catalog-commit")
        # the bytes are indexed now, and no version refers to them
        gc_env = {k: v for k, v in env.items() if not k.startswith("LODESTORE_TEST_PAUSE")}
        gc = subprocess.Popen([sys.executable, "-c", GC, str(root)], env=gc_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2.0)
        assert gc.poll() is None, f"gc did not wait for the log in progress: {gc.communicate()}"
        hold.unlink()  # let the writer commit its version; gc runs after the session closes
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
        assert "LOGGED v0" in out
        gc_out, gc_err = gc.communicate(timeout=60)
        assert gc.returncode == 0, gc_err
        assert gc_out.startswith("GC 0 "), gc_out  # nothing of the new version was dead
    finally:
        for p in (writer, gc):
            if p is not None and p.poll() is None:
                p.kill()
                p.communicate()

    import lodestore

    monkeypatch.setenv("LODESTORE_QUIET", "1")
    api = lodestore.Api(root=root)
    art = api.artifact("zoo/weights:v0")
    target = art.download(root=tmp_path / "out")
    for name, data in files.items():
        assert blake3.blake3((target / name).read_bytes()).digest() == blake3.blake3(data).digest()
    from lodestore.sdk import repository

    repository.close_all()
