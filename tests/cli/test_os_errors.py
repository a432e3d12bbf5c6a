"""What the operating system refuses (a folder that cannot be made, no permission, a full
disk) reaches the user as one `error:` line and exit code 9, never as a traceback, and
loses nothing: the store and earlier downloads are intact."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lodestore.errors import OS_ERROR_EXIT_CODE
from lodestore.names import is_temp_name


def one_error_line(result, *needles: str) -> None:
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def logged(lode_proc, tmp_path: Path) -> Path:
    """zoo/pics:v0 with a 3 MB file and a small one; returns the source folder."""
    folder = tmp_path / "pics"
    folder.mkdir()
    (folder / "big.bin").write_bytes(os.urandom(3_000_000))
    (folder / "cat.jpg").write_bytes(b"cat")
    assert lode_proc("put", folder, "--name", "zoo/pics").code == 0
    return folder


def test_a_folder_that_cannot_be_made(lode_proc, logged: Path) -> None:
    r = lode_proc("get", "zoo/pics", "--root", "/proc/nope")
    assert r.code == OS_ERROR_EXIT_CODE == 9
    one_error_line(r, "/proc/nope", "cannot make the folder", "No such file or directory")


def test_a_store_root_that_is_a_file(lode_proc, tmp_path: Path) -> None:
    some_file = tmp_path / "some_file"
    some_file.write_text("not a store")
    r = lode_proc("--root", some_file, "ls")
    assert r.code == 2
    one_error_line(r, str(some_file), "is a file, not a folder")
    assert some_file.read_text() == "not a store"


def test_a_store_root_under_a_file(lode_proc, tmp_path: Path) -> None:
    some_file = tmp_path / "some_file"
    some_file.write_text("x")
    r = lode_proc("--root", some_file / "store", "ls")
    assert r.code == OS_ERROR_EXIT_CODE
    one_error_line(r, str(some_file))


def test_no_permission(lode_proc, logged: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:  # root ignores modes; an immutable folder refuses even root
        if subprocess.run(["chattr", "+i", locked], check=False, capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available on this file system")
    else:
        locked.chmod(0o555)
    try:
        r = lode_proc("get", "zoo/pics", "--root", locked / "out")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", locked], check=True)
        else:
            locked.chmod(0o755)
    assert r.code == OS_ERROR_EXIT_CODE
    one_error_line(r, str(locked / "out"), "not permitted" if os.geteuid() == 0 else "ermission")


def test_a_full_disk(lode_proc, logged: Path, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", tiny],
                             check=False, capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        r = lode_proc("get", "zoo/pics", "--root", tiny / "out")
        left = [p.name for p in tiny.rglob("*")]
    finally:
        subprocess.run(["umount", tiny], check=False)
    assert r.code == OS_ERROR_EXIT_CODE
    one_error_line(r, "No space left on device", "disk is full")
    assert not [n for n in left if is_temp_name(n)] and "big.bin" not in left  # no half-written file
    # the store lost nothing
    r = lode_proc("get", "zoo/pics", "--root", tmp_path / "ok")
    assert r.code == 0
    assert (tmp_path / "ok" / "big.bin").read_bytes() == (logged / "big.bin").read_bytes()


def test_names_near_the_file_system_limit_round_trip(lode_proc, tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    name = "x" * 245
    (folder / name).write_text("hi")
    assert lode_proc("put", folder, "--name", "zoo/pics").code == 0
    r = lode_proc("get", "zoo/pics", "--root", tmp_path / "out")
    assert r.code == 0, r.err
    assert (tmp_path / "out" / name).read_text() == "hi"
