"""What `lode` shows depends on where it runs: a progress bar on a terminal (a real pty
here), nothing extra when piped; and where the store is when nothing says."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import _lode_command

BIG = 40 * 1024 * 1024  # bars are drawn for transfers of 32 MB and more


def run_on_a_terminal(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run `lode ARGS` with stdin, stdout and stderr on a fresh pty; returns what the
    terminal received. The pty is drained while it runs, so the child never blocks."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([*_lode_command(), *args], stdin=slave, stdout=slave, stderr=slave,
                            env=env, cwd=cwd, close_fds=True)
    os.close(slave)
    received = bytearray()
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            if not ready:
                proc.kill()
                raise AssertionError("lode on a pty printed nothing for 120 s")
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the pty
                break
            if not chunk:
                break
            received += chunk
    finally:
        os.close(master)
    return proc.wait(timeout=60), received.decode("utf-8", "replace")


def plain(screen: str) -> str:
    """The text of what a terminal was sent, without colour and cursor escapes."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "ckpt.bin"
    with open(path, "wb") as f:
        for _ in range(BIG // (1 << 20)):
            f.write(os.urandom(1 << 20))
    return path


def terminal_env(store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LODESTORE_QUIET", "NO_COLOR", "CI", "TERM")}
    return {**env, "LODESTORE_DIR": str(store), "TERM": "xterm-256color", "COLUMNS": "120"}


def test_progress_bar_on_a_terminal(store: Path, big_file: Path, tmp_path: Path) -> None:
    code, screen = run_on_a_terminal(["put", str(big_file), "--name", "zoo/ckpt", "--type", "model"],
                                     terminal_env(store), tmp_path)
    assert code == 0, screen
    assert "log ckpt" in screen  # the bar's label
    assert "━" in screen  # Rich's bar
    assert "MB" in screen and "/" in screen  # bytes done / total
    assert "logged zoo/ckpt:v0" in plain(screen)
    assert "\x1b[?25l" in screen  # the cursor hidden while the bar is live...
    assert "\x1b[?25h" in screen  # ...and shown again afterwards

    code, screen = run_on_a_terminal(["get", "zoo/ckpt", "--root", str(tmp_path / "out")],
                                     terminal_env(store), tmp_path)
    assert code == 0, screen
    assert "download ckpt:v0" in screen and "━" in screen
    assert (tmp_path / "out" / "ckpt.bin").stat().st_size == BIG


def piped(args: list, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a command with stdout and stderr captured through pipes, as a script would."""
    return subprocess.run([str(a) for a in args], check=False, capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def test_quiet_when_piped(store: Path, big_file: Path, tmp_path: Path) -> None:
    env = terminal_env(store)
    put = piped([*_lode_command(), "put", big_file, "--name", "zoo/ckpt", "--type", "model"], env, tmp_path)
    assert put.returncode == 0
    assert put.stderr == ""  # no bar, no escape codes
    assert put.stdout.startswith("logged zoo/ckpt:v0") and "\x1b" not in put.stdout
    get = piped([*_lode_command(), "get", "zoo/ckpt", "--root", tmp_path / "out"], env, tmp_path)
    assert get.returncode == 0 and get.stderr == "" and "━" not in get.stdout


def test_no_bar_on_a_terminal_when_quiet_is_asked(store: Path, big_file: Path, tmp_path: Path) -> None:
    env = {**terminal_env(store), "LODESTORE_QUIET": "1"}
    code, screen = run_on_a_terminal(["put", str(big_file), "--name", "zoo/ckpt"], env, tmp_path)
    assert code == 0 and "━" not in screen and "logged zoo/ckpt:v0" in plain(screen)


def test_default_store_is_dot_lodestore_in_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "LODESTORE_DIR"}
    env["HOME"] = str(home)
    (tmp_path / "a.txt").write_text("a")
    put = piped([*_lode_command(), "put", tmp_path / "a.txt", "--name", "zoo/a"], env, tmp_path)
    assert put.returncode == 0, put.stderr
    assert (home / ".lodestore" / "catalog.db").is_file()
    # the SDK picks the same place
    script = "import lodestore; print(lodestore.Api().artifact('zoo/a:v0').digest)"
    sdk = piped([sys.executable, "-c", script], env, tmp_path)
    assert sdk.returncode == 0, sdk.stderr
    assert len(sdk.stdout.strip()) == 64  # the version's digest, found in ~/.lodestore
    assert '"zoo/a"' in piped([*_lode_command(), "ls", "--json"], env, tmp_path).stdout
    assert sdk.stdout.strip() in piped([*_lode_command(), "info", "zoo/a:v0", "--json"], env, tmp_path).stdout
