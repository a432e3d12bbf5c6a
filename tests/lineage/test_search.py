"""The query language: versions (`api.search`, `lode search`) and runs (`api.runs`
filters and order), syntax errors with a caret, values always bound, never SQL text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import lodestore
from lodestore.catalog.query import parse
from lodestore.sdk.repository import Repository


@pytest.fixture
def zoo(store: Path, make):
    with lodestore.init(project="zoo", id="prep", job_type="prep") as r:
        make(r, "animals", "dataset", {"a": "1"}, metadata={"rows": 100, "source": {"name": "shelter"}},
             tags=["raw"])
    with lodestore.init(project="zoo", id="train", job_type="train", group="sweep-1", config={"lr": 0.1}) as r:
        make(r, "resnet50", "model", {"w": "1"}, metadata={"val_acc": 0.95, "arch": "resnet"},
             tags=["production"], aliases=["best"])
        make(r, "resnet18", "model", {"w": "2"}, metadata={"val_acc": 0.85, "arch": "resnet"})
        make(r, "vit", "model", {"w": "3"}, metadata={"val_acc": "n/a", "nested": {"depth": {"x": 12}}})
    with lodestore.init(project="lab", id="other", job_type="train") as r:
        make(r, "resnet50", "model", {"w": "4"}, metadata={"val_acc": 0.99})


def names(query: str) -> list[str]:
    return sorted(a.qualified_name for a in lodestore.Api().search(query))


def test_search_fields(zoo) -> None:
    assert names("type=model metadata.val_acc>=0.9 tag:production") == ["zoo/resnet50:v0"]
    assert names("type=model metadata.val_acc>=0.9") == ["lab/resnet50:v0", "zoo/resnet50:v0"]
    assert names("metadata.val_acc<0.9") == ["zoo/resnet18:v0"]  # "n/a" is not a number: never matches
    assert names("metadata.val_acc=n/a") == ["zoo/vit:v0"]  # strings compare as strings
    assert names("metadata.nested.depth.x>10") == ["zoo/vit:v0"]
    assert names("metadata.source.name=shelter") == ["zoo/animals:v0"]
    assert names("name~resnet project=zoo") == ["zoo/resnet18:v0", "zoo/resnet50:v0"]
    assert names("name~res*50") == ["lab/resnet50:v0", "zoo/resnet50:v0"]
    assert names("resnet18") == ["zoo/resnet18:v0"]  # a bare word is a name substring
    assert names("alias:best") == ["zoo/resnet50:v0"]
    assert names("alias:latest type=dataset") == ["zoo/animals:v0"]
    assert names("-tag:production type=model project=zoo") == ["zoo/resnet18:v0", "zoo/vit:v0"]
    assert names("run.job_type=prep") == ["zoo/animals:v0"]
    assert names("run.group=sweep-1 run.config.lr=0.1 metadata.arch=resnet") == [
        "zoo/resnet18:v0", "zoo/resnet50:v0"]
    assert names("run.id=other") == ["lab/resnet50:v0"]
    assert names("created>2020-01-01 type=dataset") == ["zoo/animals:v0"]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert names(f"created>{tomorrow}") == []
    assert names("created>1d type=dataset") == ["zoo/animals:v0"]
    assert names("size<1KB files=1 type=dataset") == ["zoo/animals:v0"]
    assert names('description~"no such"') == []
    today = datetime.now(UTC).date().isoformat()
    assert names(f"created={today} type=dataset") == ["zoo/animals:v0"]  # a date is its whole day
    assert names("version>=1") == [] and len(names("version=v0")) == 5
    digest = lodestore.Api().artifact("zoo/animals:v0").digest
    assert names(f"digest={digest[:12]}") == ["zoo/animals:v0"]  # a digest prefix
    assert names("type=dataset AND name~animals") == ["zoo/animals:v0"]  # AND may be written


def test_deleted_versions_only_when_asked(zoo, store: Path) -> None:
    repo = Repository.open(store)
    repo.catalog.delete_version(repo.catalog.get_version("zoo", "vit").id)
    assert "zoo/vit:v0" not in names("type=model")
    assert names("state=deleted") == ["zoo/vit:v0"]
    assert names("project=zoo state=deleted") == ["zoo/vit:v0"]


@pytest.mark.parametrize("query, col, fragment", [
    ("type=model metadata.val_acc>>=0.9", 28, "unexpected '>'"),
    ("type=", 5, "missing value"),
    ("type=model size>lots", 11, "expected a number"),
    ("created>yesterday", 0, "not a date"),
    ("colour=red", 0, "unknown field 'colour'"),
    ("name:x", 4, "tag:NAME"),
    ('notes~"open', 6, "unterminated quote"),
    ("type=model (x)", 11, "unexpected '('"),
])
def test_syntax_errors_point_at_the_column(zoo, query: str, col: int, fragment: str) -> None:
    with pytest.raises(lodestore.InvalidInputError) as err:
        lodestore.Api().search(query)
    msg = str(err.value)
    assert fragment in msg
    lines = msg.splitlines()
    assert lines[-2] == "  " + query and lines[-1] == "  " + " " * col + "^", msg


def test_values_are_bound_never_sql(zoo) -> None:
    evil = "x' OR '1'='1"
    assert names(f'name="{evil}"') == []
    assert names('metadata.arch="resnet\' OR 1=1 --"') == []
    assert parse("name~%").terms[0].value == "%"
    assert names("name~%") == []  # LIKE wildcards in user text are escaped
    assert names("name~_") == []


def test_cli_search(zoo, lode) -> None:
    res = lode("search", "type=model metadata.val_acc>=0.9 tag:production", "--json")
    assert res.code == 0, res.err
    assert [v["name"] for v in res.json()] == ["zoo/resnet50:v0"]
    table = lode("search", "name~resnet")
    assert "zoo/resnet18:v0" in table.out and "lab/resnet50:v0" in table.out
    bad = lode("search", "type=model metadata.val_acc>>=0.9")
    assert bad.code == 2 and "^" in bad.err and "Traceback" not in bad.err


def test_runs_filters_dict_string_and_order(store: Path) -> None:
    for i, acc in enumerate([0.8, 0.93, 0.91, None]):
        with lodestore.init(project="zoo", id=f"s{i}", group="sweep-1", config={"lr": 10 ** -i}) as r:
            if acc is not None:
                r.summary["val_acc"] = acc
    with lodestore.init(project="zoo", id="solo", group="other") as r:
        r.summary["val_acc"] = 0.99
    failed = lodestore.init(project="zoo", id="bad", group="sweep-1")
    failed.summary["val_acc"] = 0.97
    failed.finish(exit_code=1)
    api = lodestore.Api()
    ids = [r.id for r in api.runs("zoo", filters={"group": "sweep-1", "state": "finished",
                                                  "summary.val_acc": {"$gte": 0.9}})]
    assert sorted(ids) == ["s1", "s2"]
    assert [r.id for r in api.runs("zoo", filters="group=sweep-1 state=finished summary.val_acc>=0.9",
                                   order="-summary.val_acc")] == ["s1", "s2"]
    ordered = [r.id for r in api.runs("zoo", filters={"group": "sweep-1"}, order="-summary.val_acc")]
    assert ordered == ["bad", "s1", "s2", "s0", "s3"]  # no val_acc sorts last
    assert [r.id for r in api.runs("zoo", order="+summary.val_acc")][:2] == ["s0", "s2"]
    assert [r.id for r in api.runs(filters={"config.lr": {"$lt": 0.05}})] == ["s2", "s3"]
    assert [r.id for r in api.runs(filters={"state": {"$in": ["failed"]}})] == ["bad"]
    assert [r.id for r in api.runs("nope")] == []
    assert len(api.runs("entity/zoo")) == 6  # W&B's entity/project spelling
    with pytest.raises(lodestore.InvalidInputError, match="unknown run field"):
        api.runs(filters={"colour": "red"})
    with pytest.raises(lodestore.InvalidInputError, match="cannot order"):
        api.runs(order="-colour")


def test_sweep_faq_best_run_artifacts(store: Path, make, tmp_path: Path) -> None:
    """The seed's FAQ: sort a sweep's runs by val_acc, download the best run's artifacts."""
    for i, acc in enumerate([0.71, 0.94, 0.88]):
        with lodestore.init(project="zoo", group="sweep-7", job_type="train", config={"seed": i}) as run:
            run.log({"loss": 1 - acc})
            run.summary["val_acc"] = acc
            make(run, f"model-{i}", "model", {"weights.bin": f"weights of {i}"})
    api = lodestore.Api()
    runs = sorted(api.runs("zoo", filters={"group": "sweep-7"}), key=lambda r: r.summary.get("val_acc", 0),
                  reverse=True)
    best = runs[0]
    assert best.summary["val_acc"] == 0.94 and best.config == {"seed": 1}
    assert api.runs("zoo", filters={"group": "sweep-7"}, order="-summary.val_acc")[0].id == best.id
    paths = [a.download(tmp_path / "best" / a.source_name) for a in best.logged_artifacts()]
    assert [(p / "weights.bin").read_text() for p in paths] == ["weights of 1"]


def test_cli_runs_and_run(store: Path, make, lode) -> None:
    with lodestore.init(project="zoo", id="r1", group="g", job_type="train") as run:
        run.summary["val_acc"] = 0.5
        make(run, "m", "model", {"w": "1"})
    with lodestore.init(project="zoo", id="r2", group="g") as run:
        run.summary["val_acc"] = 0.7
        run.use_artifact("zoo/m:v0")
    res = lode("runs", "--project", "zoo", "--filter", "group=g", "--order", "-summary.val_acc", "--json")
    assert res.code == 0, res.err
    assert [r["id"] for r in res.json()] == ["r2", "r1"]
    assert "r1" in lode("runs").out
    one = lode("run", "r1", "--json").json()
    assert (one["state"], one["summary"], one["logged"], one["used"]) == ("finished", {"val_acc": 0.5},
                                                                         ["zoo/m:v0"], [])
    assert "zoo/m:v0" in lode("run", "r2").out
    assert lode("run", "nope").code == 3


def test_order_by_a_metric_some_runs_logged_as_text(store: Path) -> None:
    for rid, acc in (("a", 0.5), ("b", "n/a"), ("c", 0.9)):
        with lodestore.init(project="zoo", id=rid) as r:
            r.summary["val_acc"] = acc
    api = lodestore.Api()
    assert [r.id for r in api.runs("zoo", order="-summary.val_acc")] == ["c", "a", "b"]
    assert [r.id for r in api.runs("zoo", filters="summary.val_acc>0.1")] == ["a", "c"]
    assert [r.id for r in api.runs("zoo", filters={"summary.val_acc": "n/a"})] == ["b"]
