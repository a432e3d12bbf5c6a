"""kill -9 of a real `lode push` to a team remote (SeaweedFS + PostgreSQL) after it
committed a batch of chunks: the team store shows nothing new, and the next push
completes, moving only what the killed one had not stored (issue 14's faults)."""

from __future__ import annotations

import random

import lodestore
from lodestore.sdk import repository
from lodestore.sdk.service import Service

from ._pause import kill_at_pause

MiB = 1024 * 1024


def test_kill_mid_push_to_a_team_remote_then_the_next_push_completes(store, tmp_path, s3_bucket, pg_url):
    # Two versions, killed right after the first batch commit: whatever the packs' timing
    # (they move together, so one version's packs may all commit at its end), the first
    # version's bytes are committed before the second's are sent.
    first, second = random.Random(7).randbytes(24 * MiB), random.Random(8).randbytes(20 * MiB)
    weights = tmp_path / "weights.bin"
    for data in (first, second):
        weights.write_bytes(data)
        with lodestore.init(project="zoo") as run:
            art = lodestore.Artifact("ckpt", type="model")
            art.add_file(weights)
            run.log_artifact(art)
    Service.add_remote("team", s3_bucket, pg_url)
    repository.close_all()

    kill_at_pause(["push", "zoo/ckpt", "--to", "team"], "transfer-after-batch-commit")

    team = Service.open(remote="team")
    assert team.artifacts() == [] and team.projects() == []  # nothing new to see
    result = Service.open().push(["zoo/ckpt"], team)
    assert [v.destination for v in result.versions] == ["zoo/ckpt:v0", "zoo/ckpt:v1"]
    assert result.bytes_moved == len(second)  # the first version's committed bytes were not sent again
    for ref, data in (("zoo/ckpt:v0", first), ("zoo/ckpt:v1", second)):
        out = team.download(team.version(ref), tmp_path / ref.replace(":", "-"))
        assert (out / "weights.bin").read_bytes() == data
    assert Service.open().push(["zoo/ckpt"], team).bytes_moved == 0
