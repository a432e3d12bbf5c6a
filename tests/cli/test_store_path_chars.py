"""A store folder may have any name a file system allows: characters that mean something
in a URL ('?', '#', '%') or a shell (spaces, quotes) must not move the catalog out of
the store. Before the catalog URL was built from parts, `/tmp/a?b` put catalog.db at
`/tmp/a` and two stores `x?1` and `x?2` shared one catalog."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import lodestore
from lodestore.sdk import repository

WEIRD_NAMES = ["a?b", "a?mode=memory", "pct%20x%", "hash#frag", "sp ace quo'te\"s", "ünï©ødé x?1#y%2"]


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("name", WEIRD_NAMES)
def test_catalog_stays_inside_a_store_with_url_characters_in_its_path(
    tmp_path: Path, store: Path, lode_proc, name: str
) -> None:
    stores = tmp_path / "stores"
    stores.mkdir()
    first, second = stores / f"{name}-1", stores / f"{name}-2"
    (tmp_path / "data.txt").write_text("hello")

    with lodestore.init(project="zoo", name="prep", root=first) as run:
        run.log_artifact(tmp_path / "data.txt", name="notes", type="text")
    repository.close_all()
    done = lode_proc("--root", second, "put", tmp_path / "data.txt", "--name", "zoo/notes", "--type", "text")
    assert done.code == 0, done.err
    done = lode_proc("--root", second, "put", tmp_path / "data.txt", "--name", "zoo/other", "--type", "text")
    assert done.code == 0, done.err

    # Each store has its own catalog, inside it, and nothing else appeared beside them.
    assert sorted(os.listdir(stores)) == sorted([first.name, second.name])
    assert (first / "catalog.db").is_file() and (second / "catalog.db").is_file()
    assert not any(".db" in p for p in files_under(tmp_path / "work"))
    listed_first = lode_proc("--root", first, "ls", "--json").json()
    listed_second = lode_proc("--root", second, "ls", "--json").json()
    assert [a["name"] for a in listed_first] == ["zoo/notes"]
    assert sorted(a["name"] for a in listed_second) == ["zoo/notes", "zoo/other"]
