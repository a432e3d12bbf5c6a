"""The throwaway servers the team tests start (tests/real_services.py) do not outlive a
killed run: a cluster whose starting process is gone is stopped and removed by the next
start, and a live process's cluster is left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import real_services

HERE = Path(__file__).resolve().parent.parent

_START_AND_WAIT = """
import sys, time
sys.path.insert(0, sys.argv[1])
import real_services
server = real_services.start_postgres()
print(server.data_dir, server.port, flush=True)
time.sleep(120)
"""


def _accepts(port: int) -> bool:
    try:
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def test_a_cluster_left_by_a_killed_run_is_stopped_and_removed(postgres_server: real_services.PostgresServer) -> None:
    if real_services._pg_bin("initdb") is None:
        pytest.skip("PostgreSQL not installed")
    proc = subprocess.Popen([sys.executable, "-c", _START_AND_WAIT, str(HERE)], stdout=subprocess.PIPE, text=True)
    try:
        data_dir, port = proc.stdout.readline().split()  # type: ignore[union-attr]
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # as a killed pytest: nothing stops its cluster
        proc.wait()
    base = Path(data_dir).parent
    assert _accepts(int(port)), "the killed run's cluster should still be up before the sweep"

    swept = real_services.sweep_orphan_postgres()

    assert base in swept
    assert not base.exists()
    assert not _accepts(int(port))
    # the live session's own cluster is untouched
    assert postgres_server.data_dir.is_dir()
    assert _accepts(postgres_server.port)
