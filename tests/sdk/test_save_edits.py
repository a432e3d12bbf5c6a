"""`save()` sends only what the object changed since it was loaded, so edits made
meanwhile by another object, another process or `lode alias set` survive it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import lodestore
from lodestore.errors import InvalidInputError, InvalidNameError
from lodestore.sdk.repository import Repository


@pytest.fixture
def pics(store: Path) -> Path:
    """zoo/pics v0 (best; tags raw, pets; metadata source, n) and v1 (latest)."""
    with lodestore.init(project="zoo", name="prep") as run:
        for i in range(2):
            art = lodestore.Artifact("pics", type="dataset", description="pets",
                                     metadata={"source": "shelter", "n": 3})
            art.add_tags("raw", "pets")
            with art.new_file("a.txt") as f:
                f.write(f"a{i}")
            run.log_artifact(art, aliases=["best"] if i == 0 else [])
    return store


def fresh(ref: str = "zoo/pics:v0") -> lodestore.Artifact:
    return lodestore.Api().artifact(ref)


def lode(*args: str) -> None:
    """The real `lode`, in its own process (another writer of the same catalog)."""
    subprocess.run([sys.executable, "-c", "import sys; from lodestore.cli.main import main; sys.exit(main())",
                    *args], check=True, capture_output=True, text=True)


def test_an_alias_moved_by_the_cli_meanwhile_stays_moved(pics: Path) -> None:
    a = fresh()
    assert a.aliases == ["best"]
    lode("alias", "set", "zoo/pics:v1", "best")  # another process moves best to v1
    a.description = "x"
    a.save()
    assert fresh("zoo/pics:best").version == "v1"
    assert a.aliases == [] and a.description == "x"  # the object now shows what is stored
    assert fresh().description == "x"
    history = Repository.open(pics).catalog.alias_history("zoo", "pics")
    moves = [(e.alias, e.from_index, e.to_index) for e in history]
    assert moves[-1] == ("best", 0, 1)  # no move back to v0


def test_removing_an_alias_that_has_moved_elsewhere_leaves_it_there(pics: Path) -> None:
    a = fresh()
    b = fresh("zoo/pics:v1")
    b.aliases.append("best")
    b.save()  # best moves to v1
    a.aliases.remove("best")  # a still believes v0 holds it
    a.save()
    assert fresh("zoo/pics:best").version == "v1"


def test_two_objects_editing_different_fields_both_win(pics: Path) -> None:
    a, b = fresh(), fresh()
    a.metadata["x"] = 1
    a.tags.append("clean")
    a.aliases.append("prod")
    a.save()
    b.description = "from b"
    b.metadata["y"] = 2
    del b.metadata["n"]
    b.tags.remove("raw")
    b.aliases.remove("best")
    b.save()
    stored = fresh()
    assert stored.metadata == {"source": "shelter", "x": 1, "y": 2}
    assert sorted(stored.tags) == ["clean", "pets"]
    assert stored.aliases == ["prod"]
    assert stored.description == "from b"
    assert (b.metadata, sorted(b.tags), b.aliases) == (stored.metadata, sorted(stored.tags), stored.aliases)


def test_the_same_key_edited_twice_takes_the_last_save(pics: Path) -> None:
    a, b = fresh(), fresh()
    a.metadata["n"] = 10
    a.save()
    b.metadata["n"] = 20
    b.save()
    assert fresh().metadata["n"] == 20
    a.refresh()
    assert a.metadata["n"] == 20


def test_an_unchanged_save_changes_nothing_and_refreshes(pics: Path) -> None:
    a, b = fresh(), fresh()
    b.description, b.metadata = "new", {"only": True}
    b.tags = []
    b.save()
    a.save()  # nothing edited in a: it must not put back what b replaced
    stored = fresh()
    assert (stored.description, stored.metadata, stored.tags) == ("new", {"only": True}, [])
    assert (a.description, a.metadata, a.tags) == ("new", {"only": True}, [])


def test_explicit_alias_moves_and_latest_is_left_to_the_catalog(pics: Path) -> None:
    a = fresh()
    a.aliases.append("v1-ish")
    a.aliases.remove("best")
    with lodestore.init(project="zoo", name="edit") as run:
        v1 = run.use_artifact("pics:v1")
        v1.aliases.append("best")  # taken from v0
        v1.aliases.remove("latest")  # refused, as `lode alias rm ... latest` is: it follows the newest
        with pytest.raises(InvalidInputError, match="'latest' cannot be removed"):
            v1.save()
        assert fresh("zoo/pics:v1").aliases == ["latest"]  # the refused save changed nothing
        v1.aliases.append("latest")
        v1.save()
    assert v1.aliases == ["latest", "best"]
    v0 = fresh("zoo/pics:v0")
    v0.aliases.append("latest")
    with pytest.raises(InvalidInputError, match="'latest' cannot be added"):
        v0.save()
    a.save()  # removing best, which v1 now holds: left with v1
    assert fresh("zoo/pics:best").version == "v1"
    assert fresh().aliases == ["v1-ish"]
    history = Repository.open(pics).catalog.alias_history("zoo", "pics")
    assert (history[-2].alias, history[-2].from_index, history[-2].to_index, history[-2].run_id) == (
        "best", 0, 1, run.id)


def test_bad_edits_are_refused_and_change_nothing(pics: Path) -> None:
    a = fresh()
    a.tags.append("no/slash")
    with pytest.raises(InvalidNameError):
        a.save()
    a = fresh()
    a.aliases.append("v7")
    with pytest.raises(InvalidNameError):
        a.save()
    a = fresh()
    a.metadata["bad"] = object()
    with pytest.raises(InvalidInputError):
        a.save()
    stored = fresh()
    assert (stored.metadata, sorted(stored.tags), stored.aliases) == (
        {"source": "shelter", "n": 3}, ["pets", "raw"], ["best"])


def test_assigning_aliases_sets_the_custom_ones_and_keeps_latest(pics: Path) -> None:
    v1 = fresh("zoo/pics:v1")
    v1.aliases = ["production", "latest", "candidate"]
    v1.save()
    assert fresh("zoo/pics:v1").aliases == ["latest", "candidate", "production"]
    v1.aliases = ["production"]  # latest is not the caller's to drop
    v1.save()
    assert fresh("zoo/pics:v1").aliases == ["latest", "production"]
    v0 = fresh("zoo/pics:v0")
    v0.aliases = ["latest", "old"]  # nor to give: v0 only gets "old"
    v0.save()
    assert fresh("zoo/pics:v0").aliases == ["old"] and fresh("zoo/pics:latest").version == "v1"
