"""The query language beyond single terms: OR and NOT, key validation (filters and
order), None as IS NULL, values only ever bound, search that never loads the whole
catalog, the issue's own CLI query, and the indexes that serve common terms."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.dialects import sqlite

import lodestore
from lodestore.catalog import query as q
from lodestore.catalog import sql_versions
from lodestore.catalog.records import ManifestEntry, NewVersion
from lodestore.sdk.repository import Repository


@pytest.fixture
def zoo(store: Path, make):
    with lodestore.init(project="zoo", id="prep", job_type="prep") as r:
        make(r, "animals", "dataset", {"a": "1"}, tags=["raw"])
    with lodestore.init(project="zoo", id="train", job_type="train", group="sweep-1") as r:
        make(r, "resnet50", "model", {"w": "1"}, metadata={"val_acc": 0.95}, tags=["production"])
        make(r, "resnet18", "model", {"w": "2"}, metadata={"val_acc": 0.85})
        make(r, "vit", "model", {"w": "3"}, metadata={"val_acc": 0.91})


def names(query: str) -> list[str]:
    return sorted(a.qualified_name for a in lodestore.Api().search(query))


def test_or_and_not(zoo, store: Path) -> None:
    assert names("type=dataset OR tag:production") == ["zoo/animals:v0", "zoo/resnet50:v0"]
    assert names("type=model metadata.val_acc>0.9 OR name=resnet18") == [
        "zoo/resnet18:v0", "zoo/resnet50:v0", "zoo/vit:v0"]  # AND binds tighter than OR
    assert names("type=model NOT tag:production") == ["zoo/resnet18:v0", "zoo/vit:v0"]
    assert names("type=model not tag:production") == names("type=model -tag:production")
    assert names("NOT type=model") == ["zoo/animals:v0"]
    assert names("NOT -type=model") == names("type=model")  # two negations cancel
    assert names("type=model AND metadata.val_acc<0.9") == ["zoo/resnet18:v0"]
    assert names('"OR"') == [] and names('"not"') == []  # quoted: a name search for the word
    repo = Repository.open(store)
    repo.catalog.delete_version(repo.catalog.get_version("zoo", "vit").id)
    # deleted versions are left out of each OR branch that does not ask for them
    assert names("state=deleted OR type=dataset") == ["zoo/animals:v0", "zoo/vit:v0"]
    assert names("type=model OR type=dataset") == ["zoo/animals:v0", "zoo/resnet18:v0", "zoo/resnet50:v0"]


@pytest.mark.parametrize("query, col, fragment", [
    ("OR type=model", 0, "OR needs a term on each side"),
    ("type=model OR", 11, "OR needs a term on each side"),
    ("type=model OR OR tag:x", 14, "OR needs a term on each side"),
    ("NOT", 0, "NOT must be followed by a term"),
    ("type=model NOT OR tag:x", 11, "NOT must be followed by a term"),
    ("type=model AND", 11, "AND needs a term on each side"),
    ("AND type=model", 0, "AND needs a term on each side"),
    ("type=model AND OR tag:x", 11, "AND needs a term on each side"),
    ("type=model AND AND tag:x", 11, "AND needs a term on each side"),
    ("(type=model OR tag:x)", 0, "no parentheses"),
    ("metadata..x=1", 0, "empty part"),
])
def test_or_not_syntax_errors_point_at_the_column(zoo, query: str, col: int, fragment: str) -> None:
    with pytest.raises(lodestore.InvalidInputError) as err:
        lodestore.Api().search(query)
    lines = str(err.value).splitlines()
    assert fragment in str(err.value)
    assert lines[-2] == "  " + query and lines[-1] == "  " + " " * col + "^", str(err.value)


def test_runs_or_in_text_and_dict_filters(store: Path) -> None:
    for rid, group in (("a", "g1"), ("b", "g2"), ("c", "g3")):
        lodestore.init(project="zoo", id=rid, group=group).finish()
    api = lodestore.Api()
    assert [r.id for r in api.runs("zoo", filters="group=g1 OR group=g3")] == ["a", "c"]
    assert [r.id for r in api.runs("zoo", filters={"$or": [{"group": "g1"}, {"group": "g2"}]})] == ["a", "b"]
    assert [r.id for r in api.runs("zoo", filters={"$and": [{"group": {"$ne": "g1"}}, {"id": {"$ne": "c"}}]})] \
        == ["b"]
    with pytest.raises(lodestore.InvalidInputError, match="non-empty list"):
        api.runs("zoo", filters={"$or": {"group": "g1"}})


def test_bad_filter_and_order_keys_are_refused(store: Path) -> None:
    with lodestore.init(project="zoo", id="r1") as run:
        run.summary["val_acc"] = 0.9
        run.summary["train/loss"] = 0.2
    api = lodestore.Api()
    for order in ("-summary.val_acc; DROP TABLE runs", '-summary.val"acc', "summary.", "-summary..x", "", "-"):
        if order in ("",):
            assert [r.id for r in api.runs("zoo", order=order)] == ["r1"]  # no order given
            continue
        with pytest.raises(lodestore.InvalidInputError, match="bad order key|cannot order"):
            api.runs("zoo", order=order)
    for key in ('summary.val"acc', "summary.val acc", "summary.a\\b", "summary..x", "summary.x[0]", ""):
        with pytest.raises(lodestore.InvalidInputError, match="bad filter key"):
            api.runs("zoo", filters={key: 1})
    # keys with '/' (W&B-style metric names) are fine, in text, dicts and order
    assert [r.id for r in api.runs("zoo", filters="summary.train/loss<0.5", order="-summary.train/loss")] == ["r1"]
    assert [r.id for r in api.runs("zoo", filters={"summary.train/loss": {"$lt": 0.5}})] == ["r1"]
    assert [r.id for r in api.runs("zoo")] == ["r1"]  # nothing was dropped


def test_none_means_is_null(store: Path) -> None:
    lodestore.init(project="zoo", id="grouped", group="g").finish()
    with lodestore.init(project="zoo", id="loner") as run:
        run.summary["val_acc"] = 0.5
    live = lodestore.init(project="zoo", id="live", group="g")
    api = lodestore.Api()
    assert [r.id for r in api.runs("zoo", filters={"group": None})] == ["loner"]
    assert [r.id for r in api.runs("zoo", filters={"group": {"$ne": None}})] == ["grouped", "live"]
    assert [r.id for r in api.runs("zoo", filters={"summary.val_acc": None})] == ["grouped", "live"]
    assert [r.id for r in api.runs("zoo", filters={"exit_code": None})] == ["live"]
    assert [r.id for r in api.runs("zoo", filters={"finished_at": None})] == ["live"]
    # != is exactly NOT =: a run with no group is "not in group g"
    assert [r.id for r in api.runs("zoo", filters={"group": {"$ne": "g"}})] == ["loner"]
    assert [r.id for r in api.runs("zoo", filters="group!=g")] == ["loner"]
    with pytest.raises(lodestore.InvalidInputError, match="None compares"):
        api.runs("zoo", filters={"exit_code": {"$gt": None}})
    live.finish()


def test_compiled_search_sql_carries_user_values_only_as_parameters() -> None:
    text = ("type=zebra7 metadata.qkey9>=0.913 tag:prodq9 created>2026-03-04 name~resq1 "
            "run.config.lrq4=3 run.group=grpq2 OR alias:bestq4 description~\"x' OR 1=1 --\"")
    compiled = q.version_ids_query("sqlite", q.parse(text)).compile(dialect=sqlite.dialect())
    sql_text = compiled.string
    for user_value in ("zebra7", "qkey9", "0.913", "prodq9", "2026", "resq1", "lrq4", "grpq2", "bestq4",
                       "1=1", "--"):
        assert user_value not in sql_text, user_value
    params = repr(compiled.params)
    for user_value in ("zebra7", "qkey9", "0.913", "prodq9", "resq1", "lrq4", "grpq2", "bestq4", "1=1"):
        assert user_value in params, user_value
    runs_sql = q.run_ids_query("sqlite", q.filters_query({"summary.accq3": {"$gte": 0.5}, "group": "grq8"}),
                               "projq5", order="-summary.ordq6").compile(dialect=sqlite.dialect()).string
    assert not any(v in runs_sql for v in ("accq3", "grq8", "projq5", "ordq6", "0.5"))


def test_search_materialises_only_the_matches(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """1,500 versions, 3 match: the ids are chosen in SQL, and only 3 records are built."""
    catalog = Repository.open(store).catalog
    for i in range(1500):
        tags = ["production"] if i % 500 == 7 else []
        catalog.commit_version(NewVersion("zoo", f"m{i % 50}", "model", [ManifestEntry("w", f"{i:064d}", 1)],
                                          f"digest-{i}", metadata={"val_acc": i / 1500}, tags=tags))
    built: list[int] = []
    real = sql_versions.load_versions

    def counting(conn, where):
        records = real(conn, where)
        built.append(len(records))
        return records

    monkeypatch.setattr(sql_versions, "load_versions", counting)
    found = lodestore.Api().search("type=model tag:production metadata.val_acc>=0.0")
    assert sorted(a.metadata["val_acc"] for a in found) == [7 / 1500, 507 / 1500, 1007 / 1500]
    assert built == [3]


def test_the_issue_query_on_the_cli(store: Path, make, lode) -> None:
    with lodestore.init(project="zoo") as r:
        make(r, "good", "model", {"w": "1"}, metadata={"val_acc": 0.93}, tags=["production"])
        make(r, "weak", "model", {"w": "2"}, metadata={"val_acc": 0.7}, tags=["production"])
        make(r, "staging", "model", {"w": "3"}, metadata={"val_acc": 0.95})
        make(r, "data", "dataset", {"d": "1"}, metadata={"val_acc": 0.99}, tags=["production"])
    res = lode("search", "type=model metadata.val_acc>=0.9 tag:production created>2026-01-01", "--json")
    assert res.code == 0, res.err
    assert [v["name"] for v in res.json()] == ["zoo/good:v0"]
    table = lode("search", "type=model metadata.val_acc>=0.9 tag:production created>2026-01-01")
    assert table.code == 0 and "zoo/good:v0" in table.out and "weak" not in table.out


def test_common_terms_are_served_by_indexes(store: Path, zoo) -> None:
    catalog = Repository.open(store).catalog
    plans = {}
    with catalog.database.reading() as conn:
        for text in ("tag:production", "alias:best", "type=model", "name=resnet50", "created>2026-01-01",
                     "run.group=sweep-1", "run.job_type=train", "digest=abc123"):
            stmt = q.version_ids_query("sqlite", q.parse(text))
            compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string,
                                        tuple(compiled.params[k] for k in compiled.positiontup)).all()
            plans[text] = " | ".join(row[-1] for row in plan)
    assert "ix_version_tags_tag" in plans["tag:production"], plans["tag:production"]
    assert "ix_aliases_alias" in plans["alias:best"], plans["alias:best"]
    assert "ix_artifacts_type" in plans["type=model"], plans["type=model"]
    assert "ix_artifacts_name" in plans["name=resnet50"], plans["name=resnet50"]
    assert "ix_versions_created_at" in plans["created>2026-01-01"], plans["created>2026-01-01"]
    assert "ix_runs_group_name" in plans["run.group=sweep-1"], plans["run.group=sweep-1"]
    assert "ix_runs_job_type" in plans["run.job_type=train"], plans["run.job_type=train"]
    assert "ix_versions_created_by_run" in plans["run.job_type=train"], plans["run.job_type=train"]
    assert "ix_versions_digest" in plans["digest=abc123"], plans["digest=abc123"]


def test_api_artifacts_by_name(zoo) -> None:
    api = lodestore.Api()
    assert [(a.name, a.type) for a in api.artifacts(name="vit")] == [("vit", "model")]
    assert [a.name for a in api.artifacts(project="zoo", type="model", name="resnet50")] == ["resnet50"]
    assert api.artifacts(name="nope") == []
