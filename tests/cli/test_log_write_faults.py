"""A large file's log whose pack writes fail or are cut short. The packs are written on
a write thread of their own (store/packs.py WriteQueue), while the calling thread reads
and looks up the next windows: a failure there must still reach the user as one error
line, and a process killed with writes in flight must leave the store as if the log
had never started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from team._pause import kill_at_pause  # tests/team/_pause.py

from lodestore.errors import OS_ERROR_EXIT_CODE
from lodestore.store import atomic

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


def _can_reserve(folder: Path) -> bool:
    """Whether this file system reserves blocks ahead of the writes (fallocate)."""
    probe = folder / "probe"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        atomic.preallocate(fd, MiB)
        return os.fstat(fd).st_blocks * 512 >= MiB
    finally:
        os.close(fd)
        probe.unlink()


def _work_packs(store: Path) -> list[Path]:
    return sorted((store / "store" / "tmp").glob("*/*.pack"))


def test_a_large_files_pack_reserves_its_disk_before_its_bytes_are_written(lode_proc, store: Path,
                                                                           tmp_path: Path) -> None:
    """Each pack of a large file's log has its disk reserved at once (fallocate), not
    page by page inside every write (ext4's delayed allocation). A log killed with its
    writes in flight leaves nothing trusted, and its reserved space goes with its work
    folder when gc removes it."""
    if not _can_reserve(tmp_path):
        pytest.skip("this file system does not reserve blocks ahead of the writes")
    big = _random_file(tmp_path / "src" / "big.bin", 24)
    kill_at_pause(["--root", str(store), "put", str(big), "--name", "zoo/big"], "log-window-queued")
    [pack] = _work_packs(store)  # the first window's pack, its writes queued when killed
    st = pack.stat()
    assert st.st_size <= 2 * MiB
    assert st.st_blocks * 512 >= 24 * MiB  # the whole file's bytes reserved at the pack's start

    assert lode_proc("--root", store, "ls", "--json").json() == []
    check = lode_proc("--root", store, "fsck")
    assert check.code == 0, check.out + check.err
    assert lode_proc("--root", store, "gc").code == 0
    assert _work_packs(store) == []  # the dead log's work folder, reserved blocks and all, is gone


def test_the_unused_reservation_is_given_back(lode_proc, store: Path, tmp_path: Path) -> None:
    """A pack reserves the bytes of the file still to come; a second version that is
    mostly stored already writes a small pack, which keeps no block past its end."""
    first = _random_file(tmp_path / "src" / "ckpt.bin", 12)
    assert lode_proc("--root", store, "put", first, "--name", "zoo/ckpt").code == 0
    with open(first, "r+b") as f:  # 1 MiB changed in the middle: a few chunks new
        f.seek(6 * MiB)
        f.write(os.urandom(MiB))
    assert lode_proc("--root", store, "put", first, "--name", "zoo/ckpt").code == 0
    packs = sorted((store / "store" / "packs").glob("*/*.pack"))
    assert len(packs) == 2
    for pack in packs:
        st = pack.stat()
        assert st.st_blocks * 512 <= st.st_size + 64 * 1024, pack  # within a block or so of its size
    assert lode_proc("--root", store, "get", "zoo/ckpt:v1", "--root", tmp_path / "out").code == 0
    assert (tmp_path / "out" / "ckpt.bin").read_bytes() == first.read_bytes()


def test_a_reservation_the_disk_cannot_hold_does_not_fail_a_log_that_fits(lode_proc, small_disk: Path,  # noqa: F811
                                                                        tmp_path: Path) -> None:
    """The second version of a 10 MiB file on a 16 MiB disk, changed at its start: its
    pack, opened at the first window, would reserve the whole file again (more than the
    disk has left), but only ~1 MiB of it is new; the log writes that much as it would
    without a reservation."""
    store = small_disk / "store"
    ckpt = _random_file(tmp_path / "src" / "ckpt.bin", 10)
    assert lode_proc("--root", store, "put", ckpt, "--name", "zoo/ckpt").code == 0
    with open(ckpt, "r+b") as f:
        f.write(os.urandom(MiB // 2))
    again = lode_proc("--root", store, "put", ckpt, "--name", "zoo/ckpt", "--json")
    assert again.code == 0, again.err
    assert again.json()["version"] == "v1"
    assert lode_proc("--root", store, "get", "zoo/ckpt:v1", "--root", tmp_path / "out").code == 0
    assert (tmp_path / "out" / "ckpt.bin").read_bytes() == ckpt.read_bytes()
    check = lode_proc("--root", store, "fsck")
    assert check.code == 0, check.out + check.err
