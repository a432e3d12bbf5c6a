"""`lode files --json` streams a version's files: its memory does not grow with the number
of files (issue 12: a million-file version lists within the same 150 MB)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import lodestore
from lodestore.cli import artifacts

FILES = 30_000  # three pages of the catalog's manifest reads

# The memory the command allocates beyond what the process held before it (the modules it
# imports lazily are imported first, so only the listing itself counts), output to /dev/null.
PROBE = """
import sys, tracemalloc
import lodestore.sdk.service, lodestore.cli.main, rich.console, rich.table
tracemalloc.start()
base = tracemalloc.get_traced_memory()[0]
try:
    lodestore.cli.main.main(sys.argv[1:])
except SystemExit as e:
    assert not e.code, e.code
print(tracemalloc.get_traced_memory()[1] - base, file=sys.stderr)
"""


def test_files_json_streams_a_large_version(store: Path, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    for i in range(FILES):
        sub = folder / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True)
        (sub / f"f{i:05d}").write_bytes(b"%d" % (i % 7))
    art = lodestore.Artifact("many", type="dataset", project="zoo")
    art.add_dir(folder)
    with lodestore.init(project="zoo") as run:
        run.log_artifact(art)
    listing = subprocess.run([sys.executable, "-c", "import sys; from lodestore.cli.main import main; main()",
                              "files", "zoo/many:v0", "--json"], capture_output=True, text=True, check=True,
                             timeout=300)
    entries = json.loads(listing.stdout)
    assert len(entries) == FILES and entries[0]["path"] == "d000/f00000" and entries[-1]["path"] == "d029/f29999"
    assert entries == sorted(entries, key=lambda e: e["path"])

    probe = subprocess.run([sys.executable, "-c", PROBE, "files", "zoo/many:v0", "--json"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, check=True, timeout=300)
    peak = int(probe.stderr.strip().splitlines()[-1])
    # Measured: one page of 10,000 entries in flight ~10 MB, whatever the version's size;
    # holding all 30,000 (entries, dicts and the whole JSON text) took 54 MB.
    assert peak < 20_000_000, peak


def test_files_of_a_version_too_large_for_a_table_stream_as_lines(lode, store: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Past TABLE_MAX_FILES (a Rich table holds every row to size its columns) `lode files`
    prints a line a file as the catalog's pages come, in path order, references among them."""
    folder = tmp_path / "few"
    for i, name in enumerate(["b.txt", "a/x.txt", "c/y.txt"]):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"%d" % i)
    art = lodestore.Artifact("few", type="dataset", project="zoo")
    art.add_dir(folder)
    art.add_reference((folder / "b.txt").as_uri(), name="bb-ref")
    with lodestore.init(project="zoo") as run:
        run.log_artifact(art)
    monkeypatch.setattr(artifacts, "TABLE_MAX_FILES", 3)
    r = lode("files", "zoo/few:v0")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == "zoo/few:v0: 3 files, 4 B, 1 references (bytes not stored)"
    assert lines[1].split() == ["size", "digest", "path"]
    assert [line.split()[-1] for line in lines[2:]] == ["a/x.txt", "b.txt", "bb-ref", "c/y.txt"]
    assert "reference file://" in lines[4]
    monkeypatch.setattr(artifacts, "TABLE_MAX_FILES", 4)  # small enough for the table: as before
    assert "zoo/few:v0: 3 files" in lode("files", "zoo/few:v0").out
