"""Run `lode` in a child process up to a test pause point, then kill -9 it there."""

from __future__ import annotations

import os
import subprocess
import sys


def kill_at_pause(args: list[str], point: str) -> None:
    """Start `lode ARGS` with LODESTORE_TEST_PAUSE_AT=point, wait until it says it paused
    there (fails with its output if it ends or says anything else first), then kill it."""
    proc = subprocess.Popen([sys.executable, "-m", "lodestore.cli.main", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "LODESTORE_TEST_PAUSE_AT": point})
    try:
        line = proc.stderr.readline()
        assert f"PAUSED {point}" in line, line + proc.stderr.read()
    finally:
        proc.kill()
        proc.communicate()
