"""kill -9 of a real `lode push` to a team remote (SeaweedFS + PostgreSQL) after it
committed a batch of chunks: the team store shows nothing new, and the next push
completes, moving only what the killed one had not stored (issue 14's faults)."""

from __future__ import annotations

import random

import lodestore
from lodestore.sdk import repository
from lodestore.sdk.service import Service
from lodestore.sdk.transfer import COMMIT_BYTES

from ._pause import kill_at_pause

MiB = 1024 * 1024
# three packs (two full) moved whole: whichever order they arrive in, a commit comes before the last
SIZE = 2 * COMMIT_BYTES + 16 * MiB


def test_kill_mid_push_to_a_team_remote_then_the_next_push_completes(store, tmp_path, s3_bucket, pg_url):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(random.Random(7).randbytes(SIZE))
    with lodestore.init(project="zoo") as run:
        art = lodestore.Artifact("ckpt", type="model")
        art.add_file(weights)
        run.log_artifact(art)
    Service.add_remote("team", s3_bucket, pg_url)
    repository.close_all()

    kill_at_pause(["push", "zoo/ckpt:v0", "--to", "team"], "transfer-after-batch-commit")

    team = Service.open(remote="team")
    assert team.artifacts() == [] and team.projects() == []  # nothing new to see
    result = Service.open().push(["zoo/ckpt:v0"], team)
    assert result.versions[0].destination == "zoo/ckpt:v0"
    # the committed batch (at least a full pack: COMMIT_BYTES less its headers) was not sent again
    assert 0 < result.bytes_moved <= SIZE - COMMIT_BYTES + MiB
    out = team.download(team.version("zoo/ckpt:v0"), tmp_path / "out")
    assert (out / "weights.bin").read_bytes() == weights.read_bytes()
    assert Service.open().push(["zoo/ckpt:v0"], team).bytes_moved == 0
