"""push and pull between two real local stores: versions, whole artifacts and projects,
only missing chunks moved, idempotence measured in requests, numbering, aliases, runs and
lineage, and the CLI with its bad inputs."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

import lodestore
from lodestore.errors import InvalidInputError, NotFoundError
from lodestore.sdk import repository
from lodestore.sdk.service import Service

MiB = 1024 * 1024


def files_of(svc: Service, ref: str, out: Path) -> dict[str, bytes]:
    target = svc.download(svc.version(ref), out)
    return {str(p.relative_to(target)): p.read_bytes() for p in sorted(target.rglob("*")) if p.is_file()}


def test_push_a_version_then_again_moves_nothing(here, there, make, tmp_path):
    files = {"a.bin": random.Random(1).randbytes(3 * MiB), "b/c.txt": "hello", "empty": b""}
    make("zoo/animals", files, description="first", metadata={"rows": 3}, aliases=["production"], tags=["raw"],
         ttl=timedelta(days=30))
    first = here.push(["zoo/animals:v0"], there)
    assert [(v.source, v.destination, v.created) for v in first.versions] == [
        ("zoo/animals:v0", "zoo/animals:v0", True)]
    assert (first.files_moved, first.bytes_moved) == (3, 3 * MiB + 5)
    got = there.version("zoo/animals:production")
    src = here.version("zoo/animals:v0")
    assert (got.digest, got.description, got.metadata, got.tags, got.aliases, got.ttl_seconds, got.created_at) == (
        src.digest, "first", {"rows": 3}, ("raw",), ("latest", "production"), 30 * 86400, src.created_at)
    assert files_of(there, "zoo/animals:v0", tmp_path / "out") == {k: v.encode() if isinstance(v, str) else v
                                                                 for k, v in files.items()}
    again = here.push(["zoo/animals:v0"], there)
    assert [(v.destination, v.created) for v in again.versions] == [("zoo/animals:v0", False)]
    assert (again.files_moved, again.chunks_moved, again.bytes_moved, again.store_calls) == (0, 0, 0, 0)
    assert again.catalog_calls <= 6, again.calls
    assert there.versions("zoo", "animals") == [got]


def test_an_unchanged_push_costs_the_same_requests_whatever_its_size(here, there, make):
    make("zoo/small", {"one.txt": "1"})
    make("zoo/large", {f"f{i:04d}.bin": random.Random(i).randbytes(5_000) for i in range(2_000)}
         | {"big.bin": random.Random(7).randbytes(8 * MiB)})
    first = here.push(["zoo/large"], there)
    assert first.chunks_moved > 2_000 and first.store_calls < 40, first.calls  # batches, never a request a chunk
    here.push(["zoo/small"], there)
    small, large = here.push(["zoo/small"], there), here.push(["zoo/large"], there)
    assert small.calls == large.calls  # no request depends on the files or bytes of the version
    assert large.store_calls == 0 and large.catalog_calls <= 6 and large.bytes_moved == 0


def test_push_a_whole_artifact_and_a_project(here, there, make, lode):
    for i in range(3):
        make("zoo/animals", {"x.txt": f"animals {i}"})
    make("zoo/plants", {"x.txt": "plants"})
    make("farm/cows", {"x.txt": "cows"})
    here.delete(here.version("zoo/animals:v1"))  # deleted versions are not copied
    result = here.push(["zoo/animals"], there)
    assert [(v.source, v.destination) for v in result.copied] == [("zoo/animals:v0", "zoo/animals:v0"),
                                                                  ("zoo/animals:v2", "zoo/animals:v1")]
    assert there.version("zoo/animals:latest").index == 1
    r = lode("push", "zoo/", "--to", str(there.root), "--json")
    assert r.code == 0, r.err
    moved = r.json()
    assert (moved["copied"], moved["already_there"]) == (1, 2)
    assert sorted(a.name for a in there.artifacts()) == ["animals", "plants"]
    r = lode("push", "--project", "farm", "--to", str(there.root))
    assert r.code == 0 and "pushed 1 version(s)" in r.out
    assert [a.name for a in there.artifacts(project="farm")] == ["cows"]


def test_numbers_are_the_destinations_and_latest_follows_them(here, there, make, tmp_path):
    make("zoo/animals", {"x.txt": "mine"}, aliases=["best"])
    for i in range(2):  # the team logged two versions of its own first
        (tmp_path / f"team{i}.txt").write_text(f"team {i}")
        art = lodestore.Artifact("animals", "dataset")
        art.add_file(tmp_path / f"team{i}.txt", "x.txt")
        art._log(there, "zoo", ["best"] if i == 0 else [], run_id=None)
    result = here.push(["zoo/animals:best"], there)
    assert result.versions[0].destination == "zoo/animals:v2"
    got = there.version("zoo/animals:latest")
    assert got.index == 2 and set(got.aliases) == {"latest", "best"}  # the alias moved to what was pushed
    assert there.version("zoo/animals:v0").aliases == ()


def test_ckpt_v2_after_ckpt_v1_moves_only_the_changed_chunks(here, there, make):
    v1 = random.Random(11).randbytes(32 * MiB)
    v2 = bytearray(v1)
    v2[10 * MiB : 10 * MiB + 300_000] = random.Random(12).randbytes(300_000)  # fine-tuned a layer
    make("zoo/ckpt", {"model.pt": v1})
    make("zoo/ckpt", {"model.pt": bytes(v2)})
    first = here.push(["zoo/ckpt:v0"], there)
    second = here.push(["zoo/ckpt:v1"], there)
    assert first.bytes_moved == len(v1)
    assert 0 < second.bytes_moved <= 0.05 * len(v2), second.bytes_moved  # ~1 MB of 32 MiB
    assert second.chunks_moved < first.chunks_moved / 20
    assert there.download(there.version("zoo/ckpt:v1"), there.root.parent / "out").joinpath(
        "model.pt").read_bytes() == bytes(v2)


def test_runs_and_lineage_arrive(here, there, make):
    with lodestore.init(project="zoo", id="ingest", config={"source": "camera"}) as run:
        make("zoo/raw", {"a.csv": "1,2"}, run=run)
    with lodestore.init(project="zoo", id="prep", config={"lr": 0.1}) as run:
        run.use_artifact("zoo/raw:v0")
        make("zoo/clean", {"a.csv": "1,2,clean"}, run=run)
        run.summary["rows"] = 2
    with lodestore.init(project="zoo", id="eval") as run:
        run.use_artifact("zoo/clean:v0")
    result = here.push(["zoo/clean:v0"], there)
    clean = there.version("zoo/clean:v0")
    assert clean.created_by_run == "prep"
    prep = there.run("prep")
    assert (prep.config, prep.summary, prep.state) == ({"lr": 0.1}, {"rows": 2}, "finished")
    assert [r.id for r in there.version_users(clean)] == ["eval"]
    assert there.run_inputs("prep") == []  # raw:v0 is not there: no link to nowhere
    # prep came with clean:v0 (and its output link), then eval and its input link
    assert (result.runs, result.runs_written, result.links_added) == (2, 1, 1)
    later = here.push(["zoo/raw:v0"], there)  # now both ends of prep's input are there
    assert [v.qualified_name for v in there.run_inputs("prep")] == ["zoo/raw:v0"]
    assert there.run("ingest").config == {"source": "camera"} and later.links_added == 1
    assert here.push(["zoo/raw:v0", "zoo/clean:v0"], there).links_added == 0


def test_pull_brings_the_versions_of_another_store(here, there, make, lode):
    make("zoo/animals", {"x.txt": "v0"})
    make("zoo/animals", {"x.txt": "v1"}, aliases=["production"])
    here.push(["zoo/animals"], there)
    fresh = Service.open(there.root.parent / "laptop2")
    result = fresh.pull(["zoo/animals:production"], there)
    assert [(v.source, v.destination) for v in result.copied] == [("zoo/animals:v1", "zoo/animals:v0")]
    assert fresh.version("zoo/animals:production").index == 0
    r = lode("pull", "zoo/animals:v0", "--from", str(there.root), "--dry-run", "--json")
    assert r.code == 0, r.err
    plan = r.json()
    assert plan["dry_run"] and plan["copied"] == 0 and plan["already_there"] == 1  # v0 there is v0 here


def test_dry_run_says_what_would_move_and_changes_nothing(here, there, make, lode):
    make("zoo/animals", {"a.bin": random.Random(3).randbytes(2 * MiB), "b.txt": "b"})
    r = lode("push", "zoo/animals:v0", "--to", str(there.root), "--dry-run")
    assert r.code == 0, r.err
    assert "would copy 2 file(s)" in r.out and "nothing changed" in r.out
    assert there.artifacts() == [] and there._repo.store.stats().chunk_count == 0


def test_bad_inputs_get_one_clear_line(here, there, make, lode, tmp_path):
    make("zoo/animals", {"x.txt": "x"})
    r = lode("push", "zoo/animals:v7", "--to", str(there.root))
    assert r.code == 3 and "has no version or alias 'v7'" in r.err and "Traceback" not in r.err
    r = lode("push", "zoo/nothing", "--to", str(there.root))
    assert r.code == 3 and "no artifact 'nothing'" in r.err
    (tmp_path / "not-a-store").mkdir()
    (tmp_path / "not-a-store" / "notes.txt").write_text("mine")
    r = lode("push", "zoo/animals", "--to", str(tmp_path / "not-a-store"))
    assert r.code == 2 and "is not a lodestore store" in r.err
    r = lode("push", "zoo/animals", "--to", str(tmp_path / "nowhere"))
    assert r.code == 3 and "no store at" in r.err
    r = lode("push", "zoo/animals", "--to", str(tmp_path / "not-a-store" / "notes.txt"))
    assert r.code == 2 and "is a file" in r.err
    r = lode("push", "--to", str(there.root))
    assert r.code == 2 and "name what to copy" in r.err
    with pytest.raises(InvalidInputError, match="both the source and the destination"):
        here.push(["zoo/animals"], Service.open(here.root))
    with pytest.raises(NotFoundError):
        here.push(["empty/"], there)
    assert there.artifacts() == [] and not (tmp_path / "nowhere").exists()


def test_reference_entries_travel_as_recorded(here, there, make, tmp_path):
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "huge.parquet").write_bytes(b"rows" * 1000)
    art = lodestore.Artifact("refs", "dataset")
    art.add_reference(f"file://{tmp_path / 'lake' / 'huge.parquet'}", name="data/huge.parquet")
    art.add_file(tmp_path / "lake" / "huge.parquet", "copy.parquet")
    art._log(here, "zoo", [], run_id=None)
    result = here.push(["zoo/refs:v0"], there)
    got = there.version("zoo/refs:v0")
    assert there.references(got) == here.references(here.version("zoo/refs:v0"))
    assert got.digest == here.version("zoo/refs:v0").digest and result.files_moved == 1
    there.verify_references(got)


def test_push_to_an_empty_folder_starts_a_store_there(here, make, lode, tmp_path):
    make("zoo/animals", {"x.txt": "x"})
    (tmp_path / "usb").mkdir()
    r = lode("push", "zoo/animals", "--to", tmp_path / "usb")
    assert r.code == 0, r.err
    assert "zoo/animals:v0 -> zoo/animals:v0" in r.out and "pushed 1 version(s)" in r.out
    assert Service.open(tmp_path / "usb").version("zoo/animals:latest").digest == here.version("zoo/animals").digest


def _log_at(root: Path, name: str, files: dict[str, bytes], folder: Path) -> None:
    """`files` logged as zoo/NAME straight into the store at `root` (bytes it then holds)."""
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    art = lodestore.Artifact(name, "dataset")
    art.add_dir(folder)
    art._log(Service.open(root), "zoo", [], run_id=None)


@pytest.mark.parametrize("held_files", [180, 80])
def test_a_pack_mostly_wanted_moves_whole_and_one_mostly_held_sends_its_few_chunks(here, there, team, make,
                                                                                   tmp_path, held_files):
    """One source pack of 200 files, of which the destination holds `held_files` already:
    90 % held, the 20 it lacks move alone (the destination grows by their bytes); 40 %
    held, the pack moves whole (one copy, one check, one insert), the chunks it held
    already riding along as dead bytes gc's repack reclaims."""
    rng = random.Random(11)
    files = {f"f{i:03d}.bin": rng.randbytes(40_000) for i in range(200)}
    make("zoo/data", files)  # one pack at the source
    (source_pack,) = (here._repo.store.root / "packs").glob("*/*.pack")
    _log_at(team, "held", dict(list(files.items())[:held_files]), tmp_path / "held")
    before = there.stats().disk.packs

    result = here.push(["zoo/data:v0"], there)

    lacking = (200 - held_files) * 40_000
    assert result.bytes_moved == lacking
    grown = there.stats().disk.packs - before
    if held_files > 100:
        assert lacking <= grown < lacking + 40_000  # the lacking chunks alone
    else:
        assert grown == source_pack.stat().st_size  # the pack, whole
    assert files_of(there, "zoo/data:v0", tmp_path / "out") == files
    assert there.fsck().ok


def test_an_empty_store_holds_nothing_until_a_copy_fills_it(here, there, make):
    """ContentStore.holds_nothing: true of a store just made, false once a copy stored
    into it (the copy then asks it which files and chunks it lacks)."""
    make("zoo/data", {"a.bin": random.Random(3).randbytes(50_000)})
    assert there._repo.store.holds_nothing()
    here.push(["zoo/data:v0"], there)
    assert not there._repo.store.holds_nothing()
    assert not here._repo.store.holds_nothing()


def test_versions_copied_together_into_an_empty_store_move_shared_chunks_once(here, there, make):
    """The first version finds the store empty and asks nothing; the second asks, so the
    files it shares with the first are not moved again."""
    rng = random.Random(5)
    shared = {f"s{i}.bin": rng.randbytes(30_000) for i in range(20)}
    make("zoo/data", shared)
    make("zoo/data", shared | {"new.bin": rng.randbytes(70_000)})
    result = here.push(["zoo/data"], there)
    assert [v.created for v in result.versions] == [True, True]
    assert result.bytes_moved == 20 * 30_000 + 70_000
    assert there.fsck().ok


def test_a_writer_storing_the_same_files_while_a_copy_fills_an_empty_store_is_harmless(
        here, there, team, make, lode_popen, tmp_path):
    """The copy into an empty store asks it nothing, so it may send chunks another
    writer stored meanwhile: held at the point its pack is downloaded, the copy waits
    while half its files are logged into the destination; it then completes, every file
    correct, each chunk indexed once (the second copy is dead bytes gc reclaims)."""
    rng = random.Random(9)
    files = {f"f{i:03d}.bin": rng.randbytes(40_000) for i in range(100)}
    make("zoo/data", files)
    assert there._repo.store.holds_nothing()
    hold = tmp_path / "hold"
    hold.touch()
    repository.close_all()  # the subprocess writes the same stores
    proc = lode_popen("push", "zoo/data:v0", "--to", team,
                      env={"LODESTORE_TEST_PAUSE_AT": "transfer-pack-received",
                           "LODESTORE_TEST_PAUSE_FILE": str(hold)})
    assert "PAUSED transfer-pack-received" in proc.stderr.readline()
    _log_at(team, "meanwhile", dict(list(files.items())[:50]), tmp_path / "meanwhile")
    hold.unlink()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    repository.close_all()
    there = Service.open(team)
    assert files_of(there, "zoo/data:v0", tmp_path / "out") == files
    assert there._repo.store.stats().chunk_count == 100
    assert there.fsck().ok
