"""Ctrl-C in the middle of `lode put`: exit 130 with "aborted" (a script's `&&` must not
carry on), and nothing logged: no version appears, and the next put succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from .conftest import _lode_command


def test_ctrl_c_during_put_exits_130_and_logs_nothing(store: Path, tmp_path: Path, lode) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for _ in range(30):  # 300 MB of incompressible bytes: several seconds of work
            f.write(os.urandom(10 * 1024 * 1024))
    env = {**os.environ, "LODESTORE_QUIET": "1"}
    proc = subprocess.Popen([*_lode_command(), "put", str(big), "--name", "zoo/big"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    # interrupt once the store is busy (its session folder exists), not during start-up
    while time.monotonic() < deadline and not any((store / "store" / "tmp").glob("*")):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, out, err)
    assert "aborted" in err
    assert lode("ls", "--json").json() == []

    r = lode("put", big, "--name", "zoo/big", "--json")
    assert r.code == 0, r.err
    assert r.json()["version"] == "v0"
