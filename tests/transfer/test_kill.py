"""kill -9 of a real `lode push` in the middle of a transfer: the destination shows nothing
new, keeps the chunks it had committed, and the next push completes moving only the rest."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from lodestore.sdk import repository
from lodestore.sdk.service import Service
from lodestore.sdk.transfer import COMMIT_BYTES

MiB = 1024 * 1024
SIZE = 160 * MiB  # several commit batches (COMMIT_BYTES) and several packs


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "weights.bin"
    with open(path, "wb") as f:
        f.writelines(random.Random(100 + i).randbytes(16 * MiB) for i in range(SIZE // (16 * MiB)))
    return path


@pytest.fixture
def logged(here, make, big) -> Service:
    make("zoo/ckpt", {"weights.bin": big.read_bytes()})
    repository.close_all()  # the subprocess writes the same stores
    return here


def _pushed_after_restart(team: Path, big: Path, tmp_path: Path):
    """Push again in this process (fresh handles on both stores) and check the copy."""
    repository.close_all()
    here, there = Service.open(), Service.open(team)
    result = here.push(["zoo/ckpt:v0"], there)
    out = there.download(there.version("zoo/ckpt:v0"), tmp_path / "out")
    assert (out / "weights.bin").read_bytes() == big.read_bytes()
    assert there._repo.store.fsck().ok
    return result


def test_kill_after_a_batch_commit_keeps_it_and_the_next_push_moves_the_rest(logged, team, big, lode_popen,
                                                                             tmp_path):
    proc = lode_popen("push", "zoo/ckpt:v0", "--to", team,
                      env={"LODESTORE_TEST_PAUSE_AT": "transfer-after-batch-commit"})
    assert "PAUSED transfer-after-batch-commit" in proc.stderr.readline()
    proc.kill()
    proc.communicate()
    there = Service.open(team)
    assert there.artifacts() == []  # nothing new to see
    kept = there._repo.store.stats().chunk_bytes
    # the batch it committed stays: COMMIT_BYTES of a pack moved whole, headers and trailer included
    assert kept >= COMMIT_BYTES - MiB
    result = _pushed_after_restart(team, big, tmp_path)
    assert result.bytes_moved == SIZE - kept  # only the rest moved


def test_kill_mid_write_leaves_nothing_visible_and_the_next_push_completes(logged, team, big, lode_popen,
                                                                          kill_once_a_pack_grows, tmp_path):
    proc = lode_popen("push", "zoo/ckpt:v0", "--to", team)
    kill_once_a_pack_grows(proc, team / "store" / "tmp", past=24 * MiB)
    there = Service.open(team)
    assert there.artifacts() == [] and there.projects() == []
    kept = there._repo.store.stats().chunk_bytes
    result = _pushed_after_restart(team, big, tmp_path)
    assert result.bytes_moved == SIZE - kept and result.versions[0].destination == "zoo/ckpt:v0"
