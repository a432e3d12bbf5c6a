"""export and import: one self-contained file, checked whole before anything is imported
(a flipped byte or a truncated tail is refused with exit 6 and nothing imported),
idempotent, and storing only the chunks the store lacks."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import pytest

import lodestore
from lodestore.errors import CorruptionError
from lodestore.sdk import bundle
from lodestore.sdk.service import Service

MiB = 1024 * 1024


@pytest.fixture
def animals(here, make):
    """zoo/animals v0, v1 (aliased), made and used by runs."""
    with lodestore.init(project="zoo", id="ingest", config={"camera": 2}) as run:
        make("zoo/animals", {"a.bin": random.Random(1).randbytes(3 * MiB), "notes.txt": "cats"}, run=run,
             description="first")
        make("zoo/animals", {"a.bin": random.Random(1).randbytes(3 * MiB), "notes.txt": "cats and dogs"}, run=run,
             aliases=["production"], metadata={"rows": 2}, tags=["clean"])
    with lodestore.init(project="zoo", id="train") as run:
        run.use_artifact("zoo/animals:production")
    return here


def _nothing_imported(svc: Service) -> None:
    assert svc.artifacts() == [] and svc.find_run("ingest") is None
    assert svc._repo.store.stats().chunk_count == 0


def test_export_then_import_round_trip_and_twice_changes_nothing(animals, there, lode, tmp_path):
    r = lode("export", "zoo/animals", "-o", tmp_path / "animals.lode")
    assert r.code == 0, r.err
    assert "2 version(s)" in r.out and (tmp_path / "animals.lode").stat().st_size < 3.2 * MiB  # chunks once
    plan = there.import_bundle(tmp_path / "animals.lode", dry_run=True)
    assert (len(plan.copied), plan.files_moved) == (2, 3) and there.artifacts() == []
    result = there.import_bundle(tmp_path / "animals.lode")
    assert [(v.source, v.destination) for v in result.copied] == [("zoo/animals:v0", "zoo/animals:v0"),
                                                                  ("zoo/animals:v1", "zoo/animals:v1")]
    got, src = there.version("zoo/animals:production"), animals.version("zoo/animals:v1")
    assert (got.digest, got.metadata, got.tags, got.created_by_run, got.created_at) == (
        src.digest, {"rows": 2}, ("clean",), "ingest", src.created_at)
    assert there.version("zoo/animals:v0").description == "first"
    assert there.run("ingest").config == {"camera": 2} and [u.id for u in there.version_users(got)] == ["train"]
    out = there.download(got, tmp_path / "out")
    assert (out / "notes.txt").read_text() == "cats and dogs"
    assert (out / "a.bin").read_bytes() == random.Random(1).randbytes(3 * MiB)
    again = there.import_bundle(tmp_path / "animals.lode")
    assert (len(again.copied), again.chunks_moved, again.bytes_moved, again.links_added) == (0, 0, 0, 0)
    assert again.store_calls == 0


@pytest.mark.parametrize("where", ["chunk", "catalog part", "trailing digest", "header"])
def test_a_flipped_byte_is_refused_with_nothing_imported(animals, there, lode, tmp_path, where):
    path = tmp_path / "animals.lode"
    animals.export_bundle(["zoo/animals"], path)
    data = bytearray(path.read_bytes())
    at = {"chunk": 1000, "catalog part": data.rindex(b"E") - 20, "trailing digest": len(data) - 20,
          "header": 3}[where]
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    r = lode("--root", there.root, "import", path)
    assert r.code == 6 and r.err.count("\n") == 1 and "nothing was imported" in r.err, r.err
    _nothing_imported(there)


@pytest.mark.parametrize("cut", [1, 8, 41, 5000, 2 * MiB])
def test_a_truncated_tail_is_refused_with_nothing_imported(animals, there, tmp_path, cut):
    path = tmp_path / "animals.lode"
    animals.export_bundle(["zoo/animals"], path)
    data = path.read_bytes()
    path.write_bytes(data[:-cut])
    with pytest.raises(CorruptionError, match="truncated|corrupted"):
        there.import_bundle(path)
    _nothing_imported(there)


def test_import_into_a_store_holding_part_of_the_chunks_stores_only_the_rest(animals, there, tmp_path):
    animals.push(["zoo/animals:v0"], there)
    before = there._repo.store.stats()
    animals.export_bundle(["zoo/animals"], tmp_path / "both.lode")
    result = there.import_bundle(tmp_path / "both.lode")
    assert [v.created for v in result.versions] == [False, True]
    assert result.chunks_moved == 1 and result.bytes_moved == len("cats and dogs")  # a.bin was there
    assert there._repo.store.stats().chunk_count == before.chunk_count + 1


def test_export_streams_in_flat_memory(here, make, tmp_path):
    make("zoo/big", {"w.bin": random.Random(5).randbytes(96 * MiB)})
    tracemalloc.start()
    try:
        done = here.export_bundle(["zoo/big"], tmp_path / "big.lode")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert done.chunk_bytes == 96 * MiB and peak < 32 * MiB, peak  # a read run and a batch, never the file


def test_bad_bundle_inputs_get_one_clear_line(here, lode, tmp_path):
    r = lode("import", tmp_path / "missing.lode")
    assert r.code == 3 and "no bundle at" in r.err
    (tmp_path / "notes.txt").write_text("not a bundle at all, just some words in a file")
    r = lode("import", tmp_path / "notes.txt")
    assert r.code == 6 and "not a lodestore bundle" in r.err
    r = lode("import", tmp_path)
    assert r.code == 2 and "is a folder" in r.err
    r = lode("export", "zoo/none", "-o", tmp_path / "x.lode")
    assert r.code == 3 and not (tmp_path / "x.lode").exists()
    assert not any(p.name.startswith(".lodestore-tmp") for p in Path(tmp_path).iterdir())
    assert bundle.FORMAT == 1
