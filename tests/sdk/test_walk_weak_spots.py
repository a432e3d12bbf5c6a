"""What add_dir / `lode put` do with the odd things real folders hold: file names that are
not UTF-8, symlinks to folders inside the folder (and to its ancestors), FIFOs, sockets
and devices, and names that differ only in case. Each on real files on disk."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

import lodestore
from lodestore.errors import InvalidInputError, InvalidNameError

from .helpers import tree


def squeeze(text: str) -> str:
    """Without whitespace: Rich wraps stderr lines at the terminal width, at any space."""
    return "".join(text.split())


def log(folder: Path, name: str = "data") -> lodestore.Artifact:
    art = lodestore.Artifact(name, type="dataset")
    art.add_dir(folder)
    with lodestore.init(project="zoo") as run:
        return run.log_artifact(art)


def test_a_file_name_that_is_not_utf8_is_refused_naming_it(store: Path, tmp_path: Path, lode) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "ok.txt").write_text("ok")
    with open(os.fsencode(data) + b"/bad\xff.bin", "wb") as f:
        f.write(b"x")
    art = lodestore.Artifact("data", type="dataset")
    with pytest.raises(InvalidInputError, match=r"bad\\xff\.bin.*not valid UTF-8"):
        art.add_dir(data)
    assert art.file_count == 0
    refused = lode("put", data, "--name", "zoo/data")
    assert refused.code == 2, refused.err
    assert refused.err.count("\n") == 1 and "bad\\xff.bin" in refused.err and "UTF-8" in refused.err
    assert art.add_dir(data, exclude_patterns=["bad*"]) == 1  # excluded: fine
    with pytest.raises(InvalidNameError, match="UTF-8"):  # a name given by hand meets the same rule
        lodestore.Artifact("data", type="dataset").add_file(data / "ok.txt", name="x\udcff.txt")


def test_a_symlink_to_a_folder_inside_is_followed(store: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "real" / "sub").mkdir(parents=True)
    (data / "real" / "a.txt").write_text("a")
    (data / "real" / "sub" / "b.txt").write_text("b")
    (data / "alias").symlink_to("real")  # relative, pointing inside
    (data / "real" / "sub" / "up").symlink_to("../../real/sub/b.txt")  # a file link inside: followed as before
    logged = log(data)
    assert tree(logged.download(root=tmp_path / "out")) == {
        "real/a.txt": b"a", "real/sub/b.txt": b"b", "real/sub/up": b"b",
        "alias/a.txt": b"a", "alias/sub/b.txt": b"b", "alias/sub/up": b"b",
    }


@pytest.mark.timeout(20)
@pytest.mark.parametrize("points_to", ["root", "parent"])
def test_a_symlink_to_an_enclosing_folder_is_refused_as_a_loop(store: Path, tmp_path: Path, lode,
                                                                points_to: str) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "f.txt").write_text("f")
    (data / "sub" / "loop").symlink_to(data if points_to == "root" else data / "sub")
    with pytest.raises(InvalidInputError, match="loop"):
        lodestore.Artifact("data", type="dataset").add_dir(data)
    refused = lode("put", data, "--name", "zoo/data")
    assert refused.code == 2 and "loop" in refused.err


def test_fifos_sockets_and_devices_are_left_out_with_a_warning_naming_them(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "keep.txt").write_text("keep")
    os.mkfifo(data / "pipe")
    (data / "pipe-link").symlink_to("pipe")  # reading it would block forever too
    specials = ["pipe", "pipe-link"]
    sock_dir = Path("/tmp") / f"lode-sock-{os.getpid()}"  # AF_UNIX paths are short: not under tmp_path
    sock_dir.mkdir(exist_ok=True)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(sock_dir / "s"))
        os.rename(sock_dir / "s", data / "sock")  # a socket file moves like any other
        specials.append("sock")
        try:
            os.mknod(data / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
            specials.append("null")
        except PermissionError:  # not root: no device file, the rest still holds
            pass
        capsys.readouterr()
        logged = log(data)
    finally:
        sock.close()
        sock_dir.rmdir()
    err = squeeze(capsys.readouterr().err)
    assert "warning" in err and squeeze(f"{len(specials)} special file(s)") in err
    for name in specials:
        assert squeeze(str(data / name)) in err
    assert tree(logged.download(root=tmp_path / "out")) == {"keep.txt": b"keep"}


def test_names_that_differ_only_in_case_are_logged_with_a_warning(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "Readme.TXT").write_text("upper")
    (data / "readme.txt").write_text("lower")
    (data / "other.txt").write_text("o")
    capsys.readouterr()
    logged = log(data)
    err = squeeze(capsys.readouterr().err)
    assert "Readme.TXTvsreadme.txt" in err and "case" in err and "other.txt" not in err
    assert logged.file_count == 3
