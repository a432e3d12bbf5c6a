"""A large file's log whose pack writes fail or are cut short. The packs are written on
a write thread of their own (store/packs.py WriteQueue), while the calling thread reads
and looks up the next windows: a failure there must still reach the user as one error
line, and a process killed with writes in flight must leave the store as if the log
had never started."""

from __future__ import annotations

import os
from pathlib import Path

from team._pause import kill_at_pause  # tests/team/_pause.py

from lodestore.errors import OS_ERROR_EXIT_CODE

from .test_disk_full_index import small_disk  # noqa: F401 (a fixture: a 16 MiB tmpfs)
from .test_os_errors import one_error_line

MiB = 1024 * 1024


def _random_file(path: Path, mib: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(MiB))
    return path


def test_a_disk_that_fills_while_a_large_file_is_written(lode_proc, small_disk: Path, tmp_path: Path) -> None:  # noqa: F811
    store = small_disk / "store"
    big = _random_file(tmp_path / "src" / "big.bin", 40)  # incompressible: 40 MiB of packs on a 16 MiB disk
    result = lode_proc("--root", store, "put", big, "--name", "zoo/big")
    assert result.code == OS_ERROR_EXIT_CODE == 9, result.err
    one_error_line(result, "No space left on device", ".pack")  # names the pack the write thread wrote
    assert lode_proc("--root", store, "ls", "--json").json() == []

    # the failed session's packs are gone (the space is back) and the store works
    small = _random_file(tmp_path / "src" / "small.bin", 5)
    assert lode_proc("--root", store, "put", small, "--name", "zoo/small").code == 0
    assert lode_proc("--root", store, "get", "zoo/small:v0", "--root", tmp_path / "out").code == 0
    assert (tmp_path / "out" / "small.bin").read_bytes() == small.read_bytes()
    check = lode_proc("--root", store, "fsck")
    assert check.code == 0, check.out + check.err


def test_a_log_killed_with_pack_writes_in_flight_stores_nothing(lode_proc, store: Path, tmp_path: Path) -> None:
    big = _random_file(tmp_path / "src" / "big.bin", 24)
    kill_at_pause(["--root", str(store), "put", str(big), "--name", "zoo/big"], "log-window-queued")
    assert lode_proc("--root", store, "ls", "--json").json() == []
    check = lode_proc("--root", store, "fsck")
    assert check.code == 0, check.out + check.err

    again = lode_proc("--root", store, "put", big, "--name", "zoo/big", "--json")
    assert again.code == 0, again.err
    assert again.json()["version"] == "v0"
    assert lode_proc("--root", store, "get", "zoo/big:v0", "--root", tmp_path / "out").code == 0
    assert (tmp_path / "out" / "big.bin").read_bytes() == big.read_bytes()
