"""A disk that fills up at a log's index commit (its packs are written, the index cannot
record them): one error line and exit 9, no version made, nothing stored lost, and once
space is back the store is usable (the next log succeeds, fsck is clean).

For real: a small tmpfs holds the store, and the logging process is held for a moment
just before its index commit (LODESTORE_TEST_DELAY_AT=index-commit:<s>, the delay point
in store/session.py) while the test fills the disk."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Result  # tests/conftest.py

from lodestore.errors import OS_ERROR_EXIT_CODE

from .test_os_errors import one_error_line

LODE = [sys.executable, "-c", "from lodestore.cli.main import main; main()"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", disk],
                             check=False, capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        if subprocess.run(["umount", disk], check=False, capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", disk], check=False)


def _fill(path: Path) -> None:
    """Write `path` until the disk refuses even one more byte."""
    with open(path, "wb", buffering=0) as f:
        for step in (1 << 20, 1 << 16, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * step)
            except OSError as e:
                assert e.errno == errno.ENOSPC


def _disk_filled_at_index_commit(disk: Path, *args: object) -> Result:
    """`lode *args`, held just before its index commit (its bytes are written, not yet
    indexed) while the test fills `disk`, then let go; its exit and output."""
    env = {**os.environ, "LODESTORE_TEST_DELAY_AT": "index-commit:5", "LODESTORE_QUIET": "1"}
    proc = subprocess.Popen([*LODE, *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stderr is not None and proc.stderr.readline().strip() == "DELAYED index-commit"
        _fill(disk / "filler")
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return Result(proc.returncode, out, err)


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_a_full_disk_at_the_index_commit(lode_proc, small_disk: Path, tmp_path: Path) -> None:
    store = small_disk / "store"
    first = _folder(tmp_path / "first", {"weights.bin": os.urandom(2_000_000)})
    assert lode_proc("--root", store, "put", first, "--name", "zoo/model").code == 0
    second = _folder(tmp_path / "second", {"weights.bin": os.urandom(3_000_000),
                                           **{f"log/{i}.txt": f"step {i}".encode() for i in range(300)}})

    result = _disk_filled_at_index_commit(small_disk, "--root", store, "put", second, "--name", "zoo/model")
    assert result.code == OS_ERROR_EXIT_CODE == 9, result.err
    one_error_line(result, "index.db", "No space left on device", "disk is full")

    # no version made; what was stored is intact, read while the disk is still full
    versions = lode_proc("--root", store, "versions", "zoo/model", "--json")
    assert [v["version"] for v in versions.json()] == ["v0"]
    assert lode_proc("--root", store, "get", "zoo/model:v0", "--root", tmp_path / "v0").code == 0
    assert (tmp_path / "v0" / "weights.bin").read_bytes() == (first / "weights.bin").read_bytes()

    # space back: the store is usable
    (small_disk / "filler").unlink()
    assert lode_proc("--root", store, "put", second, "--name", "zoo/model").code == 0
    check = lode_proc("--root", store, "fsck")
    assert check.code == 0, check.out + check.err
    assert lode_proc("--root", store, "get", "zoo/model:v1", "--root", tmp_path / "v1").code == 0
    for name in ("weights.bin", "log/7.txt"):
        assert (tmp_path / "v1" / name).read_bytes() == (second / name).read_bytes()


def test_a_full_disk_at_a_pulls_last_commit(lode_proc, small_disk: Path, tmp_path: Path) -> None:
    """A pull commits its last bytes while the catalog writes the version's rows (sdk/transfer.py):
    the disk fills while the store's commit is held. One error line, exit 9, no version;
    once space is back the same pull succeeds and the store is clean."""
    source = tmp_path / "source"
    files = {"weights.bin": os.urandom(3_000_000), **{f"log/{i}.txt": f"step {i}".encode() for i in range(300)}}
    folder = _folder(tmp_path / "data", files)
    assert lode_proc("--root", source, "put", folder, "--name", "zoo/model").code == 0
    store = small_disk / "store"

    result = _disk_filled_at_index_commit(small_disk, "--root", store, "pull", "zoo/model:v0", "--from", source)
    assert result.code == OS_ERROR_EXIT_CODE == 9, result.err
    err = result.err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert any(s in err for s in ("No space left on device", "disk is full")), err
    assert lode_proc("--root", store, "ls", "--json").json() == []  # no version made

    (small_disk / "filler").unlink()
    assert lode_proc("--root", store, "pull", "zoo/model:v0", "--from", source).code == 0
    check = lode_proc("--root", store, "fsck")
    assert check.code == 0, check.out + check.err
    assert lode_proc("--root", store, "get", "zoo/model:v0", "--root", tmp_path / "out").code == 0
    for name in ("weights.bin", "log/7.txt"):
        assert (tmp_path / "out" / name).read_bytes() == files[name]
