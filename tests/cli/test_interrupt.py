"""Ctrl-C in the middle of `lode put`: exit 130 with "aborted" (a script's `&&` must not
carry on), and nothing logged: no version appears, and the next put succeeds.
(It used to interrupt once the store's session folder appeared: under load a fast log
could finish first and exit 0.)"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from .conftest import _lode_command


def test_ctrl_c_during_put_exits_130_and_logs_nothing(store: Path, tmp_path: Path, lode) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for _ in range(3):  # 30 MB of incompressible bytes
            f.write(os.urandom(10 * 1024 * 1024))
    # Held at the last step before the catalog commit (its bytes stored, the session
    # open), so the interrupt lands mid-put however fast the machine logs it.
    env = {**os.environ, "LODESTORE_QUIET": "1", "LODESTORE_TEST_PAUSE_AT": "log-before-catalog-commit"}
    proc = subprocess.Popen([*_lode_command(), "put", str(big), "--name", "zoo/big"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    assert line.strip() == "PAUSED log-before-catalog-commit", line + proc.communicate()[1]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, out, err)
    assert "aborted" in err
    assert lode("ls", "--json").json() == []

    r = lode("put", big, "--name", "zoo/big", "--json")
    assert r.code == 0, r.err
    assert r.json()["version"] == "v0"
