"""Lineage: logged_by/used_by, run.logged_artifacts/used_artifacts, graphs up and down
over many hops, the impact question, deleted versions, and `lode lineage`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event

import lodestore
from lodestore.sdk.repository import Repository


@pytest.fixture
def pipeline(store: Path, make):
    """raw:v0 -> [prep] -> clean:v0 -> [featurize] -> feats:v0 -> [train x2] -> model:v0, model:v1
    raw:v0 -> [train-direct] -> small:v0 (a model trained on raw directly)
    other:v0 -> [train-other] -> model:v2 (unrelated to raw)"""
    with lodestore.init(project="zoo", id="ingest", job_type="ingest") as r:
        raw = make(r, "raw", "dataset", {"a.csv": "1,2"}, aliases=["golden"])
        other = make(r, "other", "dataset", {"o.csv": "9"})
    with lodestore.init(project="zoo", id="prep", job_type="prep") as r:
        r.use_artifact("zoo/raw:v0")
        clean = make(r, "clean", "dataset", {"a.csv": "1,2,clean"})
    with lodestore.init(project="zoo", id="featurize", job_type="featurize") as r:
        r.use_artifact("zoo/clean:latest")
        feats = make(r, "feats", "dataset", {"f.npy": "feats"})
    models = []
    for i in range(2):
        with lodestore.init(project="zoo", id=f"train{i}", job_type="train", group="sweep-1") as r:
            r.use_artifact("zoo/feats:v0")
            models.append(make(r, "model", "model", {"w.bin": f"weights {i}"}))
    with lodestore.init(project="zoo", id="train-direct", job_type="train") as r:
        r.use_artifact(raw)
        small = make(r, "small", "model", {"w.bin": "small"})
    with lodestore.init(project="zoo", id="train-other", job_type="train") as r:
        r.use_artifact(other)
        models.append(make(r, "model", "model", {"w.bin": "other weights"}))
    with lodestore.init(project="zoo", id="evaluate", job_type="eval") as r:
        r.use_artifact("zoo/model:v0")
    return {"raw": raw, "clean": clean, "feats": feats, "models": models, "small": small}


def test_logged_by_used_by_and_run_artifacts(pipeline) -> None:
    api = lodestore.Api()
    clean = api.artifact("zoo/clean:v0")
    assert clean.logged_by().id == "prep"
    assert [r.id for r in clean.used_by()] == ["featurize"]
    assert [r.id for r in api.artifact("zoo/raw:golden").used_by()] == ["prep", "train-direct"]
    assert api.artifact("zoo/model:v0").logged_by().job_type == "train"
    run = api.run("train0")
    assert [a.qualified_name for a in run.used_artifacts()] == ["zoo/feats:v0"]
    assert [a.qualified_name for a in run.logged_artifacts()] == ["zoo/model:v0"]
    with lodestore.init(project="zoo") as live:
        used = live.use_artifact("zoo/model:v1")
        assert [a.qualified_name for a in live.used_artifacts()] == ["zoo/model:v1"]
        assert live.logged_artifacts() == []
    assert [r.id for r in used.used_by()] == [live.id]


def test_lineage_up_down_and_depth(pipeline) -> None:
    model = lodestore.Api().artifact("zoo/model:v0")
    up = model.lineage(direction="up")
    assert {v.qualified_name for v in up.versions()} == {"zoo/feats:v0", "zoo/clean:v0", "zoo/raw:v0"}
    assert {r.id for r in up.runs()} == {"train0", "featurize", "prep", "ingest"}
    assert ("run:train0", "zoo/model:v0", "logged") in {(e.source, e.target, e.kind) for e in up.edges}
    assert ("zoo/feats:v0", "run:train0", "used") in {(e.source, e.target, e.kind) for e in up.edges}
    one = model.lineage(direction="up", depth=1)
    assert {v.qualified_name for v in one.versions()} == {"zoo/feats:v0"}
    both = model.lineage(direction="both", depth=1)
    assert {r.id for r in both.runs()} == {"train0", "evaluate"}
    assert [a.qualified_name for a in model.upstream(type="dataset", depth=2)] == ["zoo/feats:v0", "zoo/clean:v0"]


def test_impact_question_models_trained_on_a_dataset_through_intermediates(pipeline) -> None:
    raw = lodestore.Api().artifact("zoo/raw:v0")
    assert sorted(a.qualified_name for a in raw.downstream(type="model")) == [
        "zoo/model:v0", "zoo/model:v1", "zoo/small:v0"]  # not model:v2, trained on another dataset
    assert sorted(a.qualified_name for a in raw.downstream(type="model", depth=1)) == ["zoo/small:v0"]


@contextmanager
def _counting_queries(store: Path) -> Iterator[list[int]]:
    """[n]: the SQL statements the store's catalog runs inside the block."""
    repo = Repository.open(store)
    engines = {repo.catalog.database.read_engine, repo.catalog.database.write_engine}
    count = [0]

    def counter(*_a, **_k):
        count[0] += 1

    for e in engines:
        event.listen(e, "before_cursor_execute", counter)
    try:
        yield count
    finally:
        for e in engines:
            event.remove(e, "before_cursor_execute", counter)


def test_traversal_is_batched_per_hop_not_per_node(pipeline, store: Path) -> None:
    raw = lodestore.Api().artifact("zoo/raw:v0")
    with _counting_queries(store) as count:
        graph = raw.lineage(direction="down")
    hops = 4  # raw -> clean -> feats -> models -> (evaluate's outputs: none)
    assert len(graph.nodes) == 12
    assert 0 < count[0] <= hops * 10, count[0]  # a constant number of queries per hop


def test_deleted_version_is_shown_marked_deleted(pipeline, store: Path, lode) -> None:
    repo = Repository.open(store)
    clean = repo.catalog.get_version("zoo", "clean", "v0")
    repo.catalog.delete_version(clean.id)
    graph = lodestore.Api().artifact("zoo/model:v0").lineage(direction="up")
    node = graph.nodes["zoo/clean:v0"]
    assert node.state == "deleted"
    own = lodestore.Api().lineage("zoo/clean:v0")  # a deleted version's own lineage
    assert own.nodes[own.root].state == "deleted" and {r.id for r in own.runs()} >= {"prep", "featurize"}
    assert any("zoo/clean:v0" in line and "DELETED" in line for line in graph.tree_lines())
    res = lode("lineage", "zoo/clean:v0", "--format", "json")  # the deleted version itself
    assert res.code == 0, res.err
    data = res.json()
    assert {n["id"]: n["state"] for n in data["nodes"]}["zoo/clean:v0"] == "deleted"
    assert 'style=dashed' in lode("lineage", "zoo/model:v0", "--up", "--format", "dot").out


def test_cli_lineage_tree_json_dot_and_impact(pipeline, lode) -> None:
    tree = lode("lineage", "zoo/feats:v0")
    assert tree.code == 0, tree.err
    assert "upstream" in tree.out and "downstream" in tree.out
    assert "logged by run:featurize" in tree.out and "used by run:train0" in tree.out
    assert "logged zoo/model:v0" in tree.out
    shallow = lode("lineage", "zoo/model:v0", "--up", "--depth", "1", "--json").json()
    assert {n["id"] for n in shallow["nodes"]} == {"zoo/model:v0", "run:train0", "zoo/feats:v0"}
    dot = lode("lineage", "zoo/model:v0", "--format", "dot").out
    assert dot.startswith("digraph lineage {") and '"run:train0" -> "zoo/model:v0"' in dot
    impact = lode("lineage", "zoo/raw:v0", "--down", "--type", "model", "--json")
    assert sorted(v["name"] for v in impact.json()) == ["zoo/model:v0", "zoo/model:v1", "zoo/small:v0"]
    table = lode("lineage", "zoo/raw:v0", "--down", "--type", "model")
    assert "3 model version(s) downstream of zoo/raw:v0" in table.out
    bad = lode("lineage", "zoo/raw:v0", "--format", "png")
    assert bad.code == 2 and "tree, json or dot" in bad.err
    missing = lode("lineage", "zoo/raw:v7")
    assert missing.code == 3 and "v0" in missing.err


def test_unlogged_and_unused_version(store: Path, make, lode) -> None:
    with lodestore.init(project="zoo") as r:
        make(r, "lonely", "dataset", {"x": "1"})
    res = lode("lineage", "zoo/lonely:v0", "--down")
    assert res.code == 0 and "not used by any run" in res.out
    assert lodestore.Api().artifact("zoo/lonely:v0").used_by() == []
    with pytest.raises(lodestore.InvalidInputError):
        lodestore.Api().artifact("zoo/lonely:v0").lineage(direction="sideways")


def test_wide_fan_out_costs_the_same_queries(store: Path, make) -> None:
    """A dataset used by many runs: the walk's query count does not grow with the width."""
    with lodestore.init(project="zoo", id="ingest") as r:
        make(r, "data", "dataset", {"d": "1"})

    def queries_for_walk() -> tuple[int, int]:
        with _counting_queries(store) as count:
            graph = lodestore.Api().artifact("zoo/data:v0").lineage(direction="down")
        return count[0], len(graph.versions(type="model"))

    for i in range(3):
        with lodestore.init(project="zoo", id=f"t{i}") as r:
            r.use_artifact("zoo/data:v0")
            make(r, f"m{i}", "model", {"w": str(i)})
    narrow, n = queries_for_walk()
    assert n == 3
    for i in range(3, 40):
        with lodestore.init(project="zoo", id=f"t{i}") as r:
            r.use_artifact("zoo/data:v0")
            make(r, f"m{i}", "model", {"w": str(i)})
    wide, n = queries_for_walk()
    assert n == 40
    assert narrow > 0 and wide <= narrow + 2, (narrow, wide)
