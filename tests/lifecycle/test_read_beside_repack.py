"""A reader beside `gc --grace 0 --repack-threshold 0` (no reader grace: a repacked
pack file is deleted right after the index commit that moves its chunks): a download
that located its chunks just before the repack finds the pack gone, sees the index no
longer lists it, and reads again from the new locations instead of reporting damage."""

from __future__ import annotations

import os
import subprocess
import sys

from lodestore.sdk import lifecycle

from .conftest import log


def test_download_that_located_a_pack_just_before_gc_repacked_it(repo, store, lode_proc, tmp_path):
    keep = {"a.bin": os.urandom(40_000), "b.bin": os.urandom(40_000)}
    v0 = log(repo, "set", {**keep, "dead.bin": os.urandom(400_000)})
    log(repo, "set", keep)  # v1: same a and b (same pack as v0), no dead.bin
    lifecycle.delete_version(repo, v0._record, permanent=True)
    repo.close()
    packs_before = sorted(p.stem for p in (store / "store" / "packs").glob("*/*.pack"))
    reader = subprocess.Popen(
        [sys.executable, "-c", "from lodestore.cli.main import main; main()", "get", "zoo/set:v1",
         "--root", str(tmp_path / "out")],
        env={**os.environ, "LODESTORE_TEST_DELAY_AT": "read-after-plan:4"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert reader.stderr.readline().strip() == "DELAYED read-after-plan"  # chunks located
        gc = lode_proc("gc", "--grace", "0", "--repack-threshold", "0")
        assert gc.returncode == 0, gc.stderr
        packs_after = sorted(p.stem for p in (store / "store" / "packs").glob("*/*.pack"))
        assert not set(packs_before) & set(packs_after)  # the located pack is gone from disk
        _, err = reader.communicate(timeout=120)
    finally:
        reader.kill()
    assert reader.returncode == 0, err
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == keep
