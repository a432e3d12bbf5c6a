"""The catalog queries behind the web's pages (catalog/sql_pages.py, diff_pages.py) on both
SQL backends: SQLite (a real file) and PostgreSQL (the session's real server): keyset
pages of every order, the diff's counts and lists with renames of one digest paired in
path order, and the small helpers (digests only in one version, states, streamed digests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lodestore.catalog.records import (
    ManifestEntry,
    NewVersion,
    artifact_page_key,
    search_page_key,
    version_page_key,
)
from lodestore.catalog.sql import SqlCatalog
from lodestore.errors import InvalidInputError


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog(request, tmp_path: Path):
    if request.param == "sqlite":
        cat = SqlCatalog.for_sqlite_file(tmp_path / "catalog.db")
    else:
        url = request.getfixturevalue("pg_url")
        cat = SqlCatalog(url.replace("postgresql://", "postgresql+psycopg://", 1))
    yield cat
    cat.close()


def entry(path: str, digest: str, size: int = 1) -> ManifestEntry:
    return ManifestEntry(path, digest, size)


def test_keyset_pages_of_every_order(catalog):
    for name in ("b", "a", "c"):
        catalog.commit_version(NewVersion("p", name, "t", [entry("x", name)], "d" + name))
    page = catalog.artifacts_page(order="name", limit=2)
    assert [a.name for a in page] == ["a", "b"]
    rest = catalog.artifacts_page(order="name", after=artifact_page_key(page[-1], "name"), limit=5)
    assert [a.name for a in rest] == ["c"]
    for order in ("name", "type", "created", "size", "versions"):
        seen, after = [], None
        while True:
            one = catalog.artifacts_page(order=order, descending=True, after=after, limit=1)
            if not one:
                break
            seen.append(one[0].name)
            after = artifact_page_key(one[0], order)
        assert sorted(seen) == ["a", "b", "c"] and len(seen) == 3, order
    with pytest.raises(InvalidInputError):
        catalog.artifacts_page(order="size", after=("a", "b"), limit=1)  # a key of another order
    for i in range(3):
        catalog.commit_version(NewVersion("p", "a", "t", [entry("x", f"v{i}", i + 2)], f"m{i}"))
    newest = catalog.versions_page("p", "a", order="index", descending=True, limit=2)
    assert [v.index for v in newest] == [3, 2]
    older = catalog.versions_page("p", "a", order="index", descending=True,
                                  after=version_page_key(newest[-1], "index"), limit=5)
    assert [v.index for v in older] == [1, 0]
    found = catalog.search_page("name=a", limit=2)
    assert [v.index for v in found] == [3, 2]
    assert [v.index for v in catalog.search_page("name=a", after=search_page_key(found[-1]), limit=5)] == [1, 0]
    for order in ("created", "size", "files"):
        got = catalog.versions_page("p", "a", order=order, after=version_page_key(newest[-1], order), limit=5)
        assert [v.index for v in got] == [3], order  # v3 is the newest, largest; files tie, broken by index


def test_diff_counts_and_pages(catalog):
    v0 = catalog.commit_version(NewVersion("p", "dups", "t", [entry("k", "K"), entry("x/1", "D"), entry("x/2", "D")],
                                           "m0")).version
    v1 = catalog.commit_version(NewVersion("p", "dups", "t", [entry("k", "K2"), entry("y/1", "D"), entry("y/2", "D"),
                                                              entry("y/3", "D")], "m1")).version
    c = catalog.diff_counts(v0.id, v1.id)
    assert (c.added, c.removed, c.modified, c.renamed) == (1, 0, 1, 2)
    renamed = catalog.diff_page(v0.id, v1.id, "renamed")
    assert [(r.old.path, r.new.path) for r in renamed] == [("x/1", "y/1"), ("x/2", "y/2")]
    assert [r.new.path for r in catalog.diff_page(v0.id, v1.id, "added", after="", limit=5)] == ["y/3"]
    assert [r.new.path for r in catalog.diff_page(v0.id, v1.id, "modified", after=None, limit=5)] == ["k"]
    assert catalog.diff_page(v0.id, v1.id, "modified", after="k", limit=5) == []
    back = catalog.diff_counts(v1.id, v0.id)
    assert (back.added, back.removed, back.modified, back.renamed) == (0, 1, 1, 2)
    assert sorted(catalog.digests_only_in(v1.id, v0.id)) == ["K2"]
    assert catalog.version_states() == {"live": 2}
    assert sorted(catalog.version_digests()) == sorted(
        [(v0.id, "D", 1), (v0.id, "D", 1), (v0.id, "K", 1), (v1.id, "D", 1), (v1.id, "D", 1), (v1.id, "D", 1),
         (v1.id, "K2", 1)])


# The one rule of a diff (catalog/diff_pages.py): `lode diff`, `Artifact.diff` (whole
# lists, streamed by `iter_diff`) and the Compare page (`diff_page`, `diff_counts`) read it.
EMPTY = "blake3:" + "0" * 64
TRICKY = {
    # one file's content at two new paths: one rename (the first new path), one added
    "same content at two new paths": (
        {"old": "D", "keep": "K"}, {"n1": "D", "n2": "D", "keep": "K"},
        {"renamed": [("old", "n1")], "added": ["n2"]}),
    # renamed and changed: no shared content, so a path removed and one added; a file
    # whose old content moved elsewhere while its path stayed is modified, never renamed
    "rename plus modify": (
        {"x": "X", "p": "P", "y": "Y"}, {"x2": "X2", "p": "P2", "q": "P", "y": "Y2"},
        {"removed": ["x"], "added": ["q", "x2"], "modified": ["p", "y"]}),
    # every list at once: the renames are read after the modified paths, from the same
    # ranking, left open meanwhile (two cursors in one read, PostgreSQL's server-side)
    "every list at once": (
        {"a": "A", "k": "K", "old/1": "D", "old/2": "D", "x": "X"},
        {"b": "B", "k": "K2", "new/1": "D", "new/2": "D", "x": "X"},
        {"added": ["b"], "removed": ["a"], "modified": ["k"], "renamed": [("old/1", "new/1"), ("old/2", "new/2")]}),
    # many empty files (one digest) moved, one more: paired k-th with k-th by path
    "empty files": (
        {"e/1": EMPTY, "e/2": EMPTY, "keep": "K"}, {"f/1": EMPTY, "f/2": EMPTY, "f/3": EMPTY, "keep": "K"},
        {"renamed": [("e/1", "f/1"), ("e/2", "f/2")], "added": ["f/3"]}),
    "empty files, fewer after": (
        {"e/1": EMPTY, "e/2": EMPTY, "e/3": EMPTY}, {"f/1": EMPTY, "e/3": EMPTY},
        {"renamed": [("e/1", "f/1")], "removed": ["e/2"]}),
    # two renames whose old and new paths sort the other way round: the whole list is by
    # old path (as `lode diff` prints it), pages are cut by the new path
    "renames crossing in path order": (
        {"a/2": "D2", "z/1": "D1"}, {"a/1": "D1", "z/2": "D2"},
        {"renamed": [("a/2", "z/2"), ("z/1", "a/1")]}),
}


@pytest.mark.parametrize("case", sorted(TRICKY))
def test_the_one_diff_rule_on_tricky_cases(catalog, case: str):
    before, after, expected = TRICKY[case]
    a, b = (catalog.commit_version(NewVersion("p", "t", "t", [entry(p, d, 0 if d == EMPTY else 1) for p, d in
                                                               sorted(files.items())], f"m{i}")).version
            for i, files in enumerate((before, after)))
    whole: dict[str, list] = {s: [] for s in ("added", "removed", "modified", "renamed")}
    for section, row in catalog.iter_diff(a.id, b.id):
        whole[section].append((row.old.path, row.new.path) if section == "renamed" else (row.old or row.new).path)
    assert whole == {s: expected.get(s, []) for s in whole}, case
    assert list(whole) == ["added", "removed", "modified", "renamed"]  # list after list, in this order
    counts = catalog.diff_counts(a.id, b.id)  # counted without ranking a row: the same numbers
    assert {s: getattr(counts, s) for s in whole} == {s: len(rows) for s, rows in whole.items()}, case
    for section, rows in whole.items():  # pages of one row, cut by the (new) path
        paged, cursor = [], None
        while page := catalog.diff_page(a.id, b.id, section, after=cursor, limit=1):
            row = page[0]
            paged.append((row.old.path, row.new.path) if section == "renamed" else (row.old or row.new).path)
            cursor = (row.new or row.old).path
        key = (lambda r: r[1]) if section == "renamed" else None
        assert paged == sorted(rows, key=key), (case, section)
    only = [(s, (r.old or r.new).path) for s, r in catalog.iter_diff(a.id, b.id, ["removed", "renamed"])]
    assert only == [("removed", p) for p in whole["removed"]] + [("renamed", o) for o, _ in whole["renamed"]]
