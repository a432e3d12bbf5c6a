"""NaN and infinities in run values and metadata: the one rule is that a non-finite
float is stored as null (lodestore.json_values), on every write path; rows written
before the rule (which hold `NaN` text that SQLite's JSON functions refuse) no longer
break filters, orders, searches or `--json` output."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import lodestore
from lodestore.errors import InvalidInputError
from lodestore.json_values import MAX_JSON_DEPTH

NAN, INF = float("nan"), float("inf")


def strict_json(text: str):
    """json.loads that fails on NaN/Infinity, as every other JSON parser does."""
    def refuse(constant: str):
        raise AssertionError(f"invalid JSON: {constant} in output")
    return json.loads(text, parse_constant=refuse)


def log_one(run, name: str, **kw) -> lodestore.Artifact:
    art = lodestore.Artifact(name, type="dataset", **kw)
    with art.new_file("a.txt") as f:
        f.write(name)
    return run.log_artifact(art)


def test_non_finite_run_values_are_stored_as_null(store: Path, lode) -> None:
    with lodestore.init(project="zoo", name="diverged", config={"lr": INF, "nested": {"x": [1.0, -INF]}}) as run:
        run.log({"loss": NAN, "acc": 0.5})
        run.summary["best"] = -INF
        run.summary.update({"other": NAN})
        diverged = run.id
    with lodestore.init(project="zoo", name="fine", config={"lr": 0.1}) as run:
        run.log({"loss": 0.2, "acc": 0.9})
        fine = run.id

    stored = lodestore.Api().run(diverged)
    assert stored.config == {"lr": None, "nested": {"x": [1.0, None]}}
    assert (stored.summary["loss"], stored.summary["best"], stored.summary["other"]) == (None, None, None)
    assert stored.history()[0]["loss"] is None
    api = lodestore.Api()
    assert [r.id for r in api.runs("zoo", filters="summary.acc>0.1", order="-summary.loss")] == [fine, diverged]
    assert [r.id for r in api.runs("zoo", filters="config.lr>0")] == [fine]
    listed = lode("runs", "--json", "--order", "summary.loss")
    assert listed.code == 0, listed.err
    assert [r["id"] for r in strict_json(listed.out)] == [fine, diverged]


def test_non_finite_metadata_is_stored_as_null_on_every_write_path(store: Path, lode) -> None:
    with lodestore.init(project="zoo") as run:
        by_constructor = log_one(run, "a", metadata={"x": NAN, "ok": 1})
        draft = lodestore.Artifact("b", type="dataset")
        draft.add_metadata({"x": INF, "ok": 1})
        with draft.new_file("b.txt") as f:
            f.write("b")
        by_add = run.log_artifact(draft)
        in_place = lodestore.Artifact("c", type="dataset", metadata={"ok": 1})
        in_place.metadata["x"] = NAN  # after add_metadata checked it: caught when logged
        with in_place.new_file("c.txt") as f:
            f.write("c")
        run.log_artifact(in_place)
        edited = log_one(run, "d", metadata={"ok": 1})
    edited.metadata["x"] = -INF
    edited.save()

    api = lodestore.Api()
    for name in "abcd":
        assert api.artifact(f"zoo/{name}:latest").metadata == {"x": None, "ok": 1}, name
    assert (by_constructor.metadata, by_add.metadata) == ({"x": None, "ok": 1}, {"x": None, "ok": 1})
    assert sorted(a.name for a in api.search("metadata.ok=1")) == ["a:v0", "b:v0", "c:v0", "d:v0"]
    assert api.search("metadata.x>0") == []
    found = lode("search", "metadata.ok=1", "--json")
    assert found.code == 0 and len(strict_json(found.out)) == 4


def test_rows_written_before_the_rule_do_not_break_queries(store: Path, lode) -> None:
    """Older lodestore stored NaN as the text `NaN`: SQLite's JSON functions then fail
    ("malformed JSON") on every query touching the column, for every row."""
    with lodestore.init(project="zoo", name="old") as run:
        run.log({"acc": 0.9})
        log_one(run, "old", metadata={"ok": 1})
        old = run.id
    with lodestore.init(project="zoo", name="new") as run:
        run.log({"acc": 0.8, "loss": 0.3})
        log_one(run, "new", metadata={"ok": 1})
        new = run.id
    lodestore.finish()
    from lodestore.sdk import repository

    repository.close_all()
    with sqlite3.connect(store / "catalog.db") as db:  # what an older lodestore wrote
        db.execute("""UPDATE runs SET summary = '{"acc": NaN, "loss": Infinity}', config = '{"lr": NaN}'
                      WHERE id = ?""", (old,))
        db.execute("""UPDATE versions SET metadata = '{"ok": 1, "x": NaN}' WHERE id =
                      (SELECT v.id FROM versions v JOIN artifacts a ON a.id = v.artifact_id WHERE a.name = 'old')""")

    api = lodestore.Api()
    assert [r.id for r in api.runs("zoo", filters="summary.acc>0.1")] == [new]
    assert [r.id for r in api.runs("zoo", order="-summary.loss")] == [new, old]
    assert [a.name for a in api.search("metadata.ok=1")] == ["new:v0"]
    assert api.artifact("zoo/old:v0").metadata["ok"] == 1  # still readable
    for args in (("runs", "--json"), ("runs", "--json", "--filter", "summary.acc>0"), ("run", old, "--json"),
                 ("info", "zoo/old:v0", "--json"), ("search", "metadata.ok=1", "--json"),
                 ("versions", "zoo/old", "--json")):
        result = lode(*args)
        assert result.code == 0, (args, result.err)
        strict_json(result.out)
    assert strict_json(lode("run", old, "--json").out)["summary"] == {"acc": None, "loss": None}


def deep(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels):
        value = {"k": value}
    return value


def test_metadata_and_run_values_nested_too_deep_are_refused(store: Path, lode, tmp_path: Path) -> None:
    too_deep = deep(1000)
    with pytest.raises(InvalidInputError, match="nested more than"):
        lodestore.Artifact("a", type="dataset", metadata=too_deep)
    draft = lodestore.Artifact("a", type="dataset")
    with pytest.raises(InvalidInputError, match="nested more than"):
        draft.add_metadata(too_deep)
    draft.metadata["x"] = too_deep
    with draft.new_file("a.txt") as f:
        f.write("a")
    with lodestore.init(project="zoo") as run:
        with pytest.raises(InvalidInputError, match="nested more than"):
            run.log_artifact(draft)
        with pytest.raises(InvalidInputError, match="nested more than"):
            run.log({"x": too_deep})
        with pytest.raises(InvalidInputError, match="nested more than"):
            run.summary["x"] = too_deep
        assert "x" not in run.summary
        run.log({"x": deep(MAX_JSON_DEPTH - 2)})  # 100 dicts in all, the outer one included: fine
    assert not lodestore.Api().artifact_exists("zoo/a")
    (tmp_path / "f.txt").write_text("f")
    refused = lode("put", tmp_path / "f.txt", "--name", "zoo/a", "--metadata", '{"k":' * 1000 + "{}" + "}" * 1000)
    assert refused.code == 2 and "nested more than" in refused.err and "Traceback" not in refused.err
