"""fsck beside real writer processes: a plain check never reports damage that is not
there, and a repair never marks a healthy new version broken (it holds the store lock
as gc does; the check reads the catalog before an index snapshot)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from lodestore.sdk.repository import Repository

from .conftest import spawn, wait_for

WRITE_SECONDS = 12


def test_fsck_and_repair_beside_writers_find_no_false_damage(store, lode_proc):
    Repository.open(store).close()
    writers = [spawn("writer", store, f"data{i}", 4, 100 + i, WRITE_SECONDS) for i in range(2)]
    checks, repairs, beside_writers = [], [], 0
    try:
        deadline = time.time() + WRITE_SECONDS
        # At least three rounds even on a loaded machine, where one round can take seconds.
        while time.time() < deadline or len(repairs) < 3:
            beside_writers += any(w.poll() is None for w in writers)
            r = lode_proc("fsck", "--json")
            checks.append((r.returncode, r.stdout[-2000:], r.stderr[-2000:]))
            r = lode_proc("fsck", "--repair", "--json")
            repairs.append((r.returncode, r.stdout, r.stderr[-2000:]))
        outs = [w.communicate(timeout=300) for w in writers]
    finally:
        for w in writers:
            w.kill()
    assert all(w.returncode == 0 for w in writers), [o[1][-2000:] for o in outs]
    assert len(checks) >= 3 and len(repairs) >= 3 and beside_writers >= 1
    for code, out, err in checks:
        assert code == 0, (out, err)
    for code, out, err in repairs:
        assert code == 0, err
        assert json.loads(out)["repaired"]["marked_broken"] == []
    repo = Repository.open(store)
    for name in ("data0", "data1"):
        states = {v.state for v in repo.catalog.list_versions("zoo", name, include_deleted=True)}
        assert states <= {"live", "deleted"}, (name, states)
    assert lode_proc("fsck").returncode == 0



@pytest.mark.parametrize("command", [["fsck", "--json"], ["gc", "--dry-run", "--json"]])
def test_a_session_folder_that_ends_while_fsck_or_gc_scans_tmp_is_not_an_error(store, tmp_path, command):
    """A writer's session folder listed by fsck/gc and removed (its session ended) before
    they look inside is skipped: seen first as one with an owner being written (no
    owner.json yet), it used to fail the whole command with "No such file or directory"."""
    repo = Repository.open(store)
    tmp_dir = repo.store.tmp_dir
    repo.close()
    ending = tmp_dir / "20261207T000000-1-ending"
    ending.mkdir(parents=True)  # a session folder whose owner.json is not written yet
    hold = tmp_path / "hold"
    hold.touch()
    env = {**os.environ, "LODESTORE_TEST_PAUSE_AT": "work-dirs-listed", "LODESTORE_TEST_PAUSE_FILE": str(hold)}
    proc = subprocess.Popen([sys.executable, "-c", "from lodestore.cli.main import main; main()", *command],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(proc, "PAUSED work-dirs-listed")
        shutil.rmtree(ending)  # the session ends meanwhile
        hold.unlink()
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "No such file" not in err
    report = json.loads(out)
    assert report.get("plan", report)["stale_tmp"] == []  # gc: its plan; fsck: the report
