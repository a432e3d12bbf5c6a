"""Faults of a PostgreSQL catalog, on a real server: the connection cut inside a commit's
transaction (pg_terminate_backend from another connection while the committer is held
at the `catalog-commit` pause point), and the server stopped and started again between
two commits. Nothing half-written is ever visible, and the same SqlCatalog object goes
on working (the pool pings and replaces dead connections)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from real_services import PostgresServer, _as_postgres, _pg_bin, start_postgres, stop_postgres

from lodestore.catalog.engine import APPLICATION_NAME
from lodestore.catalog.sql import SqlCatalog
from lodestore.errors import CatalogUnavailableError

from .contract_data import new_version

# A committer held inside its commit transaction: its first commit (5,000 entries) is cut
# there; the second, on the same SqlCatalog object, must work.
COMMITTER = """
import sys
from lodestore.catalog.base import ManifestEntry, NewVersion
from lodestore.catalog.sql import SqlCatalog
from lodestore.errors import LodestoreError

def version(tag, n):
    items = [ManifestEntry(f"f{i:05d}", f"blake3:{tag}{i:060d}", i + 1) for i in range(n)]
    return NewVersion("zoo", "animals", "dataset", items, f"blake3:{tag}")

cat = SqlCatalog(sys.argv[1])
try:
    cat.commit_version(version("a", 5000))
    print("FIRST committed", flush=True)
except LodestoreError as e:
    print(f"FIRST {type(e).__name__}: {e}", flush=True)
print("SECOND", cat.commit_version(version("b", 3)).version.index, flush=True)
"""


def _wait_for(proc: subprocess.Popen, marker: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if marker in line:
            return
        if not line and proc.poll() is not None:
            break
    proc.kill()
    pytest.fail(f"the committer never printed {marker!r}: {proc.stderr.read()}")


def _backends_in_transaction(url: str) -> list[int]:
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        return [pid for (pid,) in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s "
            "AND state LIKE 'idle in transaction%%'", (database, APPLICATION_NAME))]


def test_connection_cut_mid_commit_rolls_back_and_the_next_commit_works(pg_url, tmp_path: Path):
    hold = tmp_path / "hold"
    hold.touch()
    env = {**os.environ, "LODESTORE_TEST_PAUSE_AT": "catalog-commit", "LODESTORE_TEST_PAUSE_FILE": str(hold)}
    proc = subprocess.Popen([sys.executable, "-c", COMMITTER, pg_url], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(proc, "PAUSED catalog-commit")
        with SqlCatalog(pg_url) as watcher:
            assert watcher.list_projects() == []  # the held transaction shows nothing yet
            committing = _backends_in_transaction(pg_url)
            assert len(committing) == 1, committing
            with psycopg.connect(pg_url, autocommit=True) as admin:
                assert admin.execute("SELECT pg_terminate_backend(%s)", committing).fetchone() == (True,)
            hold.unlink()  # let the committer carry on: its COMMIT meets a dead connection
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            first, second = out.strip().splitlines()
            assert first.startswith(f"FIRST {CatalogUnavailableError.__name__}: lost the connection to the catalog")
            assert "rolled back" in first and "Traceback" not in err
            assert second == "SECOND 0"  # the cut commit used no number, and left nothing
            versions = watcher.list_versions("zoo", "animals")
            assert [(v.index, v.file_count) for v in versions] == [(0, 3)]
            assert len(list(watcher.iter_entries(versions[0].id))) == 3
            assert watcher.referenced_digests() == {e.digest for e in watcher.iter_entries(versions[0].id)}
    finally:
        if proc.poll() is None:
            proc.kill()


def _pg_ctl(server: PostgresServer, *args: str) -> None:
    options = f"-p {server.port} -k {server.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_postgres([str(_pg_bin("pg_ctl")), "-D", str(server.data_dir), "-w", "-l",
                                 str(server.data_dir.parent / "log"), "-o", options, *args]),
                   check=True, capture_output=True)


@pytest.fixture
def own_server():
    """A PostgreSQL server of this test's own, to stop and start."""
    server = start_postgres()
    try:
        yield server
    finally:
        stop_postgres(server)


def test_server_restarted_between_two_commits(own_server: PostgresServer):
    url = own_server.create_database()
    cat = SqlCatalog(url)
    try:
        assert cat.commit_version(new_version("a")).version.index == 0
        _pg_ctl(own_server, "-m", "fast", "stop")
        t0 = time.monotonic()
        with pytest.raises(CatalogUnavailableError, match=r"cannot connect to the catalog postgresql://"):
            cat.commit_version(new_version("b"))  # the server is down: one clear error, quickly
        assert time.monotonic() - t0 < 10
        _pg_ctl(own_server, "start")
        # the pooled connections died with the server: the pool pings, replaces them
        assert cat.commit_version(new_version("c")).version.index == 1
        assert [v.index for v in cat.list_versions("zoo", "animals")] == [0, 1]
    finally:
        cat.close()
