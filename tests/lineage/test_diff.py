"""Version diff: files added/removed/modified/renamed, metadata, aliases and tags, a
summary line; across artifacts; 100,000-file versions compared in SQL; `lode diff`, its
JSON streamed with memory flat. The rule itself on tricky cases, on SQLite and
PostgreSQL: tests/web/test_catalog_pages.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import lodestore
from lodestore.catalog.records import ManifestEntry, NewVersion
from lodestore.sdk.repository import Repository


def test_diff_small_versions(store: Path, make) -> None:
    with lodestore.init(project="zoo") as r:
        v0 = make(r, "animals", "dataset", {"cat.jpg": "cat", "dog.jpg": "dog", "old.txt": "bye", "a/b.txt": "b"},
                  metadata={"rows": 2, "src": {"name": "shelter", "year": 2024}, "gone": 1}, tags=["raw"],
                  aliases=["golden"])
        v1 = make(r, "animals", "dataset", {"cat.jpg": "cat, bigger", "dog.jpg": "dog", "new.txt": "hi",
                                            "moved/b.txt": "b"},
                  metadata={"rows": 3, "src": {"name": "shelter", "year": 2025}, "added": True}, tags=["clean"])
    d = v0.diff(v1)
    assert d.same_artifact
    assert [e.path for e in d.added] == ["new.txt"]
    assert [e.path for e in d.removed] == ["old.txt"]
    assert [(o.path, o.size, n.size) for o, n in d.modified] == [("cat.jpg", 3, 11)]
    assert [(o.path, n.path) for o, n in d.renamed] == [("a/b.txt", "moved/b.txt")]
    assert d.unchanged == 1
    assert d.metadata_added == {"added": True} and d.metadata_removed == {"gone": 1}
    assert d.metadata_changed == {"rows": (2, 3), "src.year": (2024, 2025)}
    assert (d.tags_added, d.tags_removed) == (["clean"], ["raw"])
    assert (d.aliases_added, d.aliases_removed) == (["latest"], ["golden"])
    assert d.summary() == "+1 files, ~1 modified, -1, 1 renamed, +7 B"
    assert v0.diff(v0).identical_files and v0.diff(v0).summary() == "+0 files, ~0 modified, -0, +0 B"


def test_diff_across_artifacts_says_so(store: Path, make, lode) -> None:
    with lodestore.init(project="zoo") as r:
        make(r, "cats", "dataset", {"x.jpg": "x"})
        make(r, "dogs", "images", {"x.jpg": "x", "y.jpg": "y"})
    d = lodestore.Api().diff("zoo/cats:v0", "zoo/dogs:v0")
    assert not d.same_artifact and d.type_change == ("dataset", "images")
    assert d.summary().startswith("different artifacts (zoo/cats:v0 vs zoo/dogs:v0)")
    res = lode("diff", "zoo/cats:v0", "zoo/dogs:v0")
    assert res.code == 0 and "different artifacts" in res.out and "+ y.jpg" in res.out
    assert lode("diff", "zoo/cats:v0", "zoo/dogs:v0", "--json").json()["same_artifact"] is False


def test_cli_diff(store: Path, make, lode) -> None:
    with lodestore.init(project="zoo") as r:
        make(r, "animals", "dataset", {f"f{i}.txt": str(i) for i in range(5)})
        make(r, "animals", "dataset", {**{f"f{i}.txt": str(i) for i in range(1, 5)}, "f4.txt": "changed",
                                       "g.txt": "new"})
    res = lode("diff", "zoo/animals:v0", "zoo/animals:v1")
    assert res.code == 0, res.err
    assert "zoo/animals:v0 -> zoo/animals:v1: +1 files, ~1 modified, -1" in res.out
    assert "+ g.txt" in res.out and "- f0.txt" in res.out and "~ f4.txt (1 B -> 7 B)" in res.out
    data = lode("diff", "zoo/animals:v0", "zoo/animals:v1", "--json").json()
    assert [e["path"] for e in data["added"]] == ["g.txt"]
    assert data["modified"] == [{"path": "f4.txt", "old_size": 1, "new_size": 7,
                                 "old_digest": data["modified"][0]["old_digest"],
                                 "new_digest": data["modified"][0]["new_digest"]}]
    limited = lode("diff", "zoo/animals:v0", "zoo/animals:v1", "--limit", "0")
    assert limited.code == 0
    assert lode("diff", "zoo/animals:v0", "zoo/animals:v9").code == 3


def test_diff_of_a_deleted_version(store: Path, make, lode) -> None:
    with lodestore.init(project="zoo") as r:
        a = make(r, "animals", "dataset", {"a": "1"})
        make(r, "animals", "dataset", {"a": "2"})
    Repository.open(store).catalog.delete_version(a.id)
    res = lode("diff", "zoo/animals:v0", "zoo/animals:v1")
    assert res.code == 0 and "zoo/animals:v0 is deleted" in res.out


def test_diff_of_100k_file_versions_is_fast_and_right(store: Path) -> None:
    catalog = Repository.open(store).catalog
    n = 100_000
    old = [ManifestEntry(f"data/{i:06d}.bin", f"d{i:064d}", 100) for i in range(n)]
    # new: drop the first 10, modify every 1000th, rename 5, add 1,000
    new = {e.path: e for e in old[10:]}
    for i in range(10, n, 1000):
        p = f"data/{i:06d}.bin"
        new[p] = ManifestEntry(p, f"m{i:064d}", 250)
    for i in range(20, 25):
        e = new.pop(f"data/{i:06d}.bin")
        new[f"renamed/{i}.bin"] = ManifestEntry(f"renamed/{i}.bin", e.digest, e.size)
    for i in range(1000):
        new[f"extra/{i:04d}.bin"] = ManifestEntry(f"extra/{i:04d}.bin", f"x{i:064d}", 1000)
    a = catalog.commit_version(NewVersion("zoo", "big", "dataset", old, "digest-a")).version
    b = catalog.commit_version(NewVersion("zoo", "big", "dataset", sorted(new.values(), key=lambda e: e.path),
                                          "digest-b")).version
    api = lodestore.Api()
    va, vb = api.artifact("zoo/big:v0"), api.artifact("zoo/big:v1")
    start = time.perf_counter()
    d = va.diff(vb)
    took = time.perf_counter() - start
    print(f"\ndiff of two {n:,}-file versions: {took:.3f} s")
    assert len(d.removed) == 10 and d.removed[0].path == "data/000000.bin"
    assert len(d.added) == 1000
    assert len(d.modified) == 100 and all(o.size == 100 and nn.size == 250 for o, nn in d.modified)
    assert sorted(nn.path for _, nn in d.renamed) == [f"renamed/{i}.bin" for i in range(20, 25)]
    assert d.unchanged == n - 10 - 100 - 5
    assert d.size_delta == b.size - a.size
    assert d.summary().startswith("+1,000 files, ~100 modified, -10, 5 renamed")
    assert took < 2  # measured ~0.25 s; loose so a loaded 2-core machine does not flake


def _timed_diff(va, vb) -> tuple[object, float]:
    start = time.perf_counter()
    d = va.diff(vb)
    return d, time.perf_counter() - start


def test_diff_when_every_one_of_100k_files_changed(store: Path) -> None:
    """The worst cases for a diff: every file modified, and every file renamed; both
    are computed by one SQL join with positional rows (its time is printed; bench/ measures it)."""
    catalog = Repository.open(store).catalog
    n = 100_000
    old = [ManifestEntry(f"data/{i:06d}.bin", f"d{i:064d}", 100) for i in range(n)]
    modified = [ManifestEntry(e.path, f"m{i:064d}", 150) for i, e in enumerate(old)]
    renamed = [ManifestEntry(f"moved/{i:06d}.bin", e.digest, e.size) for i, e in enumerate(old)]
    for entries, digest in ((old, "digest-a"), (modified, "digest-m"), (renamed, "digest-r")):
        catalog.commit_version(NewVersion("zoo", "big", "dataset", entries, digest))
    api = lodestore.Api()
    v0, v1, v2 = (api.artifact(f"zoo/big:v{i}") for i in range(3))
    d, took_modified = _timed_diff(v0, v1)
    assert len(d.modified) == n and not (d.added or d.removed or d.renamed) and d.unchanged == 0
    assert d.modified[0][0] == old[0] and d.modified[-1][1] == modified[-1]
    assert d.summary() == "+0 files, ~100,000 modified, -0, +5.0 MB"
    d, took_renamed = _timed_diff(v0, v2)
    assert len(d.renamed) == n and not (d.added or d.removed or d.modified)
    assert d.renamed[0] == (old[0], renamed[0]) and d.unchanged == 0
    print(f"\nall {n:,} modified: {took_modified:.3f} s; all renamed: {took_renamed:.3f} s")


def test_renames_of_many_identical_files_pair_in_path_order(store: Path) -> None:
    """10,000 empty files (one digest) all moved: each pairs with its counterpart in path order."""
    catalog = Repository.open(store).catalog
    empty = "blake3:" + "0" * 64
    a = [ManifestEntry(f"a/{i:05d}", empty, 0) for i in range(10_000)]
    b = [ManifestEntry(f"b/{i:05d}", empty, 0) for i in range(10_000)] + [ManifestEntry("c", empty, 0)]
    catalog.commit_version(NewVersion("zoo", "empties", "dataset", a, "digest-1"))
    catalog.commit_version(NewVersion("zoo", "empties", "dataset", b, "digest-2"))
    api = lodestore.Api()
    d, took = _timed_diff(api.artifact("zoo/empties:v0"), api.artifact("zoo/empties:v1"))
    assert [(o.path, n.path) for o, n in d.renamed[:2]] == [("a/00000", "b/00000"), ("a/00001", "b/00001")]
    assert len(d.renamed) == 10_000 and [e.path for e in d.added] == ["c"] and not d.removed
    assert took < 2


def _commit(store: Path, name: str, *manifests: list[ManifestEntry]) -> None:
    catalog = Repository.open(store).catalog
    for i, entries in enumerate(manifests):
        catalog.commit_version(NewVersion("zoo", name, "dataset", sorted(entries, key=lambda e: e.path), f"{name}-{i}"))


def test_cli_diff_json_is_written_as_print_json_would_and_renames_by_old_path(store: Path, lode) -> None:
    """`lode diff --json` streams its lists (1,000 items at a time) into the very text
    json.dumps(indent=2) makes of the whole; renames are listed by their old path."""
    old = [ManifestEntry(f"m/{i:04d}", f"old{i}", 1) for i in range(2_500)] + [
        ManifestEntry("a/2", "D2", 2), ManifestEntry("z/1", "D1", 1), ManifestEntry("gone", "G", 3)]
    new = [ManifestEntry(f"m/{i:04d}", f"new{i}", 2) for i in range(2_500)] + [
        ManifestEntry("a/1", "D1", 1), ManifestEntry("z/2", "D2", 2)]
    _commit(store, "moves", old, new)
    res = lode("diff", "zoo/moves:v0", "zoo/moves:v1", "--json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert res.out == json.dumps(data, indent=2) + "\n"
    assert data["added"] == [] and [x["path"] for x in data["removed"]] == ["gone"]
    assert len(data["modified"]) == 2_500 and data["modified"][-1]["path"] == "m/2499"
    assert [(x["from"], x["to"]) for x in data["renamed"]] == [("a/2", "z/2"), ("z/1", "a/1")]
    assert data["summary"] == "+0 files, ~2,500 modified, -1, 2 renamed, +2.5 KB"
    text = lode("diff", "zoo/moves:v0", "zoo/moves:v1", "--limit", "1")
    assert text.code == 0, text.err
    lines = text.out.splitlines()
    at = lines.index("modified (2,500):")
    assert lines[at + 1:at + 3] == ["  ~ m/0000 (1 B -> 2 B)", "  ... and 2,499 more (--limit 0 shows all)"]
    at = lines.index("renamed (2):")
    assert lines[at + 1:at + 3] == ["  > a/2 -> z/2", "  ... and 1 more (--limit 0 shows all)"]
    assert "added" not in text.out and "  - gone (3 B)" in lines


# `lode ARGS`, then its peak memory (VmHWM: this process's own, not the parent's it was
# forked from, which ru_maxrss would count) on stderr
PEAK_MEMORY = """
import sys
from lodestore.cli.main import main
try:
    main(sys.argv[1:])
finally:
    print(next(line for line in open("/proc/self/status") if line.startswith("VmHWM:")), file=sys.stderr)
"""


def test_cli_diff_of_100k_changed_files_keeps_memory_flat(store: Path) -> None:
    """Every one of 100,000 files modified: `lode diff --json` writes 27 MB while its
    peak memory stays near a bare command's (it held every list, then the whole JSON
    text: 330 MB)."""
    n = 100_000
    _commit(store, "big", [ManifestEntry(f"data/{i:06d}.bin", f"d{i:064d}", 100) for i in range(n)],
            [ManifestEntry(f"data/{i:06d}.bin", f"m{i:064d}", 150) for i in range(n)])
    out = store.parent / "diff.json"
    with out.open("w") as f:
        done = subprocess.run([sys.executable, "-c", PEAK_MEMORY, "diff", "zoo/big:v0", "zoo/big:v1", "--json"],
                              stdout=f, stderr=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stderr.split("VmHWM:")[1].split()[0]) / 1024
    print(f"\nlode diff --json of {n:,} modified files: peak {peak_mb:.0f} MB, {out.stat().st_size / 1e6:.0f} MB out")
    assert peak_mb < 160
    with out.open() as f:
        data = json.load(f)
    assert len(data["modified"]) == n and data["modified"][0]["path"] == "data/000000.bin"
