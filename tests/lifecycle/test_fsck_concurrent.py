"""fsck beside real writer processes: a plain check never reports damage that is not
there, and a repair never marks a healthy new version broken (it holds the store lock
as gc does; the check reads the catalog before an index snapshot)."""

from __future__ import annotations

import json
import time

from lodestore.sdk.repository import Repository

from .conftest import spawn

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
