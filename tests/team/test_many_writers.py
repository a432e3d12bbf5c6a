"""Many writers at once on one artifact, on every backend pair: 16 processes x 5 logs ->
80 versions numbered without gaps or duplicates, each downloadable and right; and the
same while another process logs, permanently deletes and gc's (grace 0) in a loop."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lodestore

pytestmark = pytest.mark.team_too

WRITER = str(Path(__file__).with_name("_writer.py"))
PROCESSES, EACH = 16, 5


def _start_writers(tmp_path: Path, env: dict[str, str]) -> tuple[list[subprocess.Popen], Path]:
    go = tmp_path / "go"
    procs = []
    for seed in range(PROCESSES):
        work = tmp_path / f"w{seed}"
        work.mkdir()
        procs.append(subprocess.Popen([sys.executable, WRITER, "log", "shared", str(EACH), str(seed), str(work),
                                       str(go)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs, go


def _check(procs: list[subprocess.Popen], tmp_path: Path) -> None:
    logged: dict[str, str] = {}
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        for line in out.splitlines():
            _, version, sha = line.split()
            assert version not in logged, f"{version} given twice"
            logged[version] = sha
    assert sorted(logged, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(PROCESSES * EACH)]
    api = lodestore.Api()
    versions = api.artifact_versions("dataset", "zoo/shared")
    assert sorted(int(v.version[1:]) for v in versions) == list(range(PROCESSES * EACH))
    for version, sha in logged.items():
        out = api.artifact(f"zoo/shared:{version}").download(root=tmp_path / "out" / version)
        assert hashlib.sha256((out / "part.bin").read_bytes()).hexdigest() == sha, version


def test_sixteen_processes_log_eighty_versions_without_gaps(store, tmp_path):
    procs, go = _start_writers(tmp_path, dict(os.environ))
    go.touch()
    _check(procs, tmp_path)


def test_many_writers_beside_gc_and_permanent_deletes(store, tmp_path):
    churn_dir = tmp_path / "churn"
    churn_dir.mkdir()
    stop = tmp_path / "stop"
    churn = subprocess.Popen([sys.executable, WRITER, "churn", "other", str(churn_dir), str(stop)],
                             env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs, go = _start_writers(tmp_path, dict(os.environ))
    go.touch()
    try:
        _check(procs, tmp_path)
    finally:
        stop.touch()
        out, err = churn.communicate(timeout=600)
    assert churn.returncode == 0, err[-3000:]
    assert int(out.split()[-1]) >= 1  # gc really ran beside the writers
    lodestore.Api().gc(grace=0)
    _check_again(tmp_path)


def _check_again(tmp_path: Path) -> None:
    """After a last gc, every version still downloads whole (gc kept every live byte)."""
    api = lodestore.Api()
    for v in api.artifact_versions("dataset", "zoo/shared"):
        out = v.download(root=tmp_path / "again" / v.version)
        assert (out / "part.bin").stat().st_size >= 10_000
