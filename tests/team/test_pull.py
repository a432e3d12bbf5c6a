"""Pulling from a team pair (SeaweedFS + PostgreSQL) into an empty embedded store, on a
machine whose cache is empty: every byte comes from the bucket, read as one stream of
ranged GETs per transfer, verified on arrival (issue 14's pull figure and faults)."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import blake3
import pytest

import lodestore
from lodestore.errors import CorruptionError
from lodestore.sdk import repository, transfer
from lodestore.sdk.repository import Repository
from lodestore.sdk.service import Service
from lodestore.sdk.transfer import CHUNK_WINDOW, FILE_PAGE
from lodestore.store.index import ChunkLocation
from lodestore.store.packs import FOOTER
from lodestore.store.s3 import remote_pieces
from lodestore.store.s3_packs import PACK_PREFIX, RANGE_GAP, RANGE_PIECE

from ._pause import kill_at_pause

MiB = 1024 * 1024
FILES = 2 * FILE_PAGE + 100  # three pages of files


def _log(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    with lodestore.init(project="zoo") as run:
        art = lodestore.Artifact("data", type="dataset")
        art.add_dir(folder)
        run.log_artifact(art)


def _pushed(tmp_path: Path, s3_bucket: str, pg_url: str, files: dict[str, bytes]) -> None:
    """`files` logged on this machine and pushed to the team pair."""
    _log(tmp_path / "src", files)
    Service.open().push(["zoo/data:v0"], Service.open(store=s3_bucket, catalog=pg_url))
    repository.close_all()


def _other_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_bucket: str, pg_url: str) -> Path:
    """Another $LODESTORE_DIR: an empty embedded store and an empty cache of the team pair."""
    root = tmp_path / "machine-b"
    monkeypatch.setenv("LODESTORE_DIR", str(root))
    repository.close_all()
    Service.add_remote("team", s3_bucket, pg_url)
    return root


def _small_files(n: int, seed: int = 1) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {f"shard{i % 7}/f{i:05d}.bin": rng.randbytes(4096) for i in range(n)}
    files["big/weights.bin"] = rng.randbytes(3 * MiB)  # many chunks
    return files


def test_a_pull_reads_every_page_in_one_stream_with_one_index_sync(store, tmp_path, monkeypatch, s3_bucket, pg_url):
    files = _small_files(FILES)
    _pushed(tmp_path, s3_bucket, pg_url, files)
    _other_machine(tmp_path, monkeypatch, s3_bucket, pg_url)
    team_repo = Repository.open(store=s3_bucket, catalog=pg_url)
    counters = team_repo.store.counters
    counters.reset()

    result = Service.open().pull(["zoo/data:v0"], Service.of(team_repo))

    assert counters.requests["ListObjectsV2"] == 1  # the index synced once, not once per page
    pages = math.ceil((len(files)) / FILE_PAGE)
    packs = sum(1 for _ in team_repo.store.bucket.objects(PACK_PREFIX))
    # prepared once (its index synced meanwhile), asked once which packs hold the chunks of
    # all the files and which files are of several chunks (the destination held nothing:
    # file_packs, no pack_shares a page), then for the recipe of its one file of several
    # chunks (a file of one chunk is that chunk); each pack (all of it wanted) copied whole
    assert pages > 1 and sum(len(data) > 1 * MiB for data in files.values()) == 1
    assert result.calls["source store"] == 1 + 1 + 1 + packs
    index_objects = sum(1 for o in team_repo.store.bucket.objects("index/"))
    assert counters.requests["GetObject"] == index_objects + packs  # a pack: one GET
    out = Service.open().download(Service.open().version("zoo/data:v0"), tmp_path / "out")
    for rel, data in files.items():
        assert (out / rel).read_bytes() == data


def test_a_pull_stores_views_of_one_buffer_per_range_read_on_the_sources_own_threads(store, tmp_path, monkeypatch,
                                                                                      s3_bucket, pg_url):
    files = _small_files(600)
    _pushed(tmp_path, s3_bucket, pg_url, files)
    _other_machine(tmp_path, monkeypatch, s3_bucket, pg_url)
    team_repo = Repository.open(store=s3_bucket, catalog=pg_url)
    recipes = team_repo.store.recipes([blake3.blake3(data).hexdigest() for data in files.values()])
    chunks = [c for r in recipes.values() for c in r.chunks]
    team_repo.store.counters.reset()

    frames = list(team_repo.store.read_frames(chunks))

    # no chunk copied out of its range: every frame is a view of its range's buffer, one per GET
    assert all(isinstance(f.stored, memoryview) for f in frames)
    assert len({id(f.stored.obj) for f in frames}) == team_repo.store.counters.requests["GetObject"] > 1
    assert sorted(f.digest.hex() for f in frames) == sorted(set(chunks))
    del frames

    # a pack mostly unwanted moves as frames: the copy reads them on the store's own
    # threads, no reading thread of the transfer's
    monkeypatch.setattr(transfer, "ADOPT_FRACTION", 1.01)
    started: list[str] = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: (started.append(self.name), real_start(self))[1])
    Service.open().pull(["zoo/data:v0"], Service.of(team_repo))
    assert not [n for n in started if n.startswith("lodestore-transfer-read")]
    assert any(n.startswith("lodestore-s3-read") for n in started)
    out = Service.open().download(Service.open().version("zoo/data:v0"), tmp_path / "out")
    assert all((out / rel).read_bytes() == data for rel, data in files.items())


def test_ranges_read_through_small_gaps_and_stop_at_the_piece_size_and_the_pack():
    def loc(pack: str, offset: int, size: int) -> ChunkLocation:
        return ChunkLocation(bytes(32), pack, offset, size, size, 0)

    near = [loc("a", 0, 1000), loc("a", 1041 + RANGE_GAP // 2, 1000)]  # a small gap: one GET
    far = [loc("a", 10 * RANGE_PIECE, 1000), loc("a", 10 * RANGE_PIECE + 1000 + 2 * RANGE_GAP, 1000)]
    full = [loc("b", i * (RANGE_PIECE // 4), RANGE_PIECE // 4) for i in range(6)]  # 1.5 pieces of neighbours
    other = [loc("c", 0, 1000)]
    pieces = list(remote_pieces(other + full + far + near))  # any order in: pack order out

    assert [(p, o, n) for p, o, n, _ in pieces] == [
        ("a", 0, near[1].offset + 1000),
        ("a", far[0].offset, 1000),
        ("a", far[1].offset, 1000),
        ("b", 0, RANGE_PIECE),
        ("b", RANGE_PIECE, RANGE_PIECE // 2),
        ("c", 0, 1000),
    ]
    assert [len(run) for *_, run in pieces] == [2, 1, 1, 4, 2, 1]


def _lode(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lodestore.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def _pack_keys(seaweedfs, s3_bucket: str) -> list[str]:
    bucket, _, prefix = s3_bucket[len("s3://"):].partition("/")
    listed = seaweedfs.client().list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{PACK_PREFIX}")
    return [o["Key"] for o in listed.get("Contents", ())]


def _nothing_pulled(root: Path) -> None:
    local = Service.open(root)
    assert local.artifacts() == [] and local.projects() == []


def test_a_pack_gone_from_the_bucket_is_one_clear_line_and_nothing_arrives(store, tmp_path, monkeypatch, s3_bucket,
                                                                          pg_url, seaweedfs):
    _pushed(tmp_path, s3_bucket, pg_url, _small_files(300))
    root = _other_machine(tmp_path, monkeypatch, s3_bucket, pg_url)
    bucket = s3_bucket[len("s3://"):].partition("/")[0]
    for key in _pack_keys(seaweedfs, s3_bucket):
        seaweedfs.client().delete_object(Bucket=bucket, Key=key)

    out = _lode("pull", "zoo/data:v0", "--from", "team")

    assert out.returncode == 6, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "is missing from the store" in lines[0] and "Traceback" not in out.stderr
    _nothing_pulled(root)


def _flip_a_byte_of_the_pack(seaweedfs, s3_bucket: str, offset_in: Callable[[int], int]) -> None:
    """Flip one byte of the team store's only pack object, at offset_in(its size)."""
    bucket = s3_bucket[len("s3://"):].partition("/")[0]
    client = seaweedfs.client()
    (key,) = _pack_keys(seaweedfs, s3_bucket)
    data = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[offset_in(len(data))] ^= 0xFF
    client.put_object(Bucket=bucket, Key=key, Body=bytes(data))


def test_a_flipped_byte_in_a_pack_object_is_refused_and_nothing_arrives(store, tmp_path, monkeypatch, s3_bucket,
                                                                       pg_url, seaweedfs):
    _pushed(tmp_path, s3_bucket, pg_url, _small_files(300))
    root = _other_machine(tmp_path, monkeypatch, s3_bucket, pg_url)
    _flip_a_byte_of_the_pack(seaweedfs, s3_bucket, lambda size: size // 2)  # inside a chunk: only its digest can tell

    out = _lode("pull", "zoo/data:v0", "--from", "team")

    assert out.returncode == 6, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not match its digest" in lines[0] and "Traceback" not in out.stderr
    _nothing_pulled(root)
    with pytest.raises(CorruptionError, match="does not match its digest"):
        Service.open().pull(["zoo/data:v0"], Service.open(remote="team"))


def test_a_killed_pull_keeps_its_committed_batch_and_the_next_moves_only_the_rest(store, tmp_path, monkeypatch,
                                                                                 s3_bucket, pg_url):
    # Two versions, killed right after the first batch commit: whatever the packs' timing
    # (they download together, so one version's packs may all commit at its end), the
    # first version's bytes are committed before the second's are asked for.
    first, second = random.Random(5).randbytes(24 * MiB), random.Random(6).randbytes(20 * MiB)
    _log(tmp_path / "src", {"weights.bin": first})
    _log(tmp_path / "src", {"weights.bin": second})
    Service.open().push(["zoo/data:v0", "zoo/data:v1"], Service.open(store=s3_bucket, catalog=pg_url))
    repository.close_all()
    root = _other_machine(tmp_path, monkeypatch, s3_bucket, pg_url)

    kill_at_pause(["pull", "zoo/data", "--from", "team"], "transfer-after-batch-commit")

    _nothing_pulled(root)
    result = Service.open().pull(["zoo/data"], Service.open(remote="team"))
    assert [v.destination for v in result.versions] == ["zoo/data:v0", "zoo/data:v1"]
    assert result.bytes_moved == len(second)  # the first version's committed bytes were not read again
    for ref, data in (("zoo/data:v0", first), ("zoo/data:v1", second)):
        out = Service.open().download(Service.open().version(ref), tmp_path / ref.replace(":", "-"))
        assert (out / "weights.bin").read_bytes() == data


def test_a_push_to_the_team_pair_syncs_its_index_once_not_once_per_window(store, tmp_path, s3_bucket, pg_url):
    rng = random.Random(3)
    _log(tmp_path / "src", {f"f{i:05d}.txt": rng.randbytes(600) for i in range(CHUNK_WINDOW + 500)})
    team_repo = Repository.open(store=s3_bucket, catalog=pg_url)
    counters = team_repo.store.counters
    counters.reset()

    result = Service.open().push(["zoo/data:v0"], Service.of(team_repo))

    assert result.files_moved == CHUNK_WINDOW + 500
    # missing(files), then the write sessions' own syncs after taking their leases; the
    # windows of missing_chunks inside the session ask the synced cache (was a LIST each)
    assert counters.requests["ListObjectsV2"] <= 3, counters.requests


def test_a_damaged_pack_trailer_is_refused_whole_and_nothing_arrives(store, tmp_path, monkeypatch, s3_bucket,
                                                                     pg_url, seaweedfs):
    """A pack moved whole is checked whole: a flipped byte in its trailer (no chunk's
    bytes) refuses it as surely as one in a chunk."""
    _pushed(tmp_path, s3_bucket, pg_url, _small_files(300))
    root = _other_machine(tmp_path, monkeypatch, s3_bucket, pg_url)
    _flip_a_byte_of_the_pack(seaweedfs, s3_bucket, lambda size: size - FOOTER.size - 3)  # inside the zstd trailer

    out = _lode("pull", "zoo/data:v0", "--from", "team")

    assert out.returncode == 6, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "trailer" in lines[0] and "Traceback" not in out.stderr
    _nothing_pulled(root)
    assert list((root / "store" / "packs").glob("*/*.pack")) == []


def test_a_pull_killed_with_a_pack_downloaded_and_not_checked_trusts_none_of_it(store, tmp_path, monkeypatch, s3_bucket,
                                                                         pg_url):
    files = _small_files(300)
    _pushed(tmp_path, s3_bucket, pg_url, files)
    root = _other_machine(tmp_path, monkeypatch, s3_bucket, pg_url)

    kill_at_pause(["pull", "zoo/data:v0", "--from", "team"], "transfer-pack-received")

    _nothing_pulled(root)
    assert list((root / "store" / "packs").glob("*/*.pack")) == []  # the pack lies in a temp folder only
    result = Service.open().pull(["zoo/data:v0"], Service.open(remote="team"))
    assert result.files_moved == len(files)
    out = Service.open().download(Service.open().version("zoo/data:v0"), tmp_path / "out")
    assert all((out / rel).read_bytes() == data for rel, data in files.items())
    assert Service.open().fsck().ok
