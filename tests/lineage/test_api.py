"""The public Api outside any run: artifact lookups with the seed's spellings."""

from __future__ import annotations

from pathlib import Path

import pytest

import lodestore


def test_api_lookups(store: Path, make) -> None:
    with lodestore.init(project="zoo") as r:
        make(r, "animals", "dataset", {"a": "1"}, aliases=["best"])
        make(r, "animals", "dataset", {"a": "2"})
        make(r, "net", "model", {"w": "1"})
    api = lodestore.Api(root=store)
    assert api.artifact("zoo/animals:best").version == "v0"
    assert api.artifact("zoo/animals").version == "v1"  # latest by default
    assert [a.version for a in api.artifact_versions("dataset", "zoo/animals")] == ["v0", "v1"]
    assert api.artifact_types() == ["dataset", "model"]
    assert api.artifact_exists("zoo/net:v0") and not api.artifact_exists("zoo/net:v5")
    assert [(a.name, a.version_count) for a in api.artifacts(project="zoo", type="dataset")] == [("animals", 2)]
    with pytest.raises(lodestore.NotFoundError):
        api.run("no-such-run")
    assert [a.qualified_name for a in api.search("project=zoo type=model")] == ["zoo/net:v0"]
    assert api.lineage("zoo/net:v0", direction="up").runs()[0].project == "zoo"


def test_artifact_exists_is_false_for_a_reference_that_names_nothing(store: Path, make) -> None:
    with lodestore.init(project="zoo") as r:
        make(r, "net", "model", {"w": "1"})
    api = lodestore.Api()
    for bad in ("bad name!!", "a/b/c", "zoo/net:", "", "zoo/../x"):
        assert api.artifact_exists(bad) is False, bad
    assert api.artifact_exists("zoo/net") and not api.artifact_exists("zoo/net", type="dataset")


def test_the_seed_cleanup_loop_with_the_store_only_project(store: Path, make) -> None:
    """The seed spelling, no project anywhere: the store's only project is the default,
    and the loop keeps the latest version (it holds the alias "latest", as in W&B)."""
    with lodestore.init(project="zoo") as r:
        for i in range(4):
            make(r, "animals", "dataset", {"a": str(i)}, aliases=["golden"] if i == 1 else None)
    api = lodestore.Api()
    for v in api.artifact_versions("dataset", "animals"):
        if not v.aliases:
            v.delete()
    assert [(v.version, v.aliases) for v in api.artifact_versions("dataset", "animals")] == [
        ("v1", ["golden"]), ("v3", ["latest"])]
    assert api.artifact("animals").version == "v3"


def test_default_project_rules(store: Path, make, monkeypatch: pytest.MonkeyPatch) -> None:
    with lodestore.init(project="zoo") as r:
        make(r, "animals", "dataset", {"a": "1"})
    api = lodestore.Api()
    assert api.default_project == "zoo" and api.artifact("animals:v0").qualified_name == "zoo/animals:v0"
    with lodestore.init(project="lab") as r:  # a second project holding the name: no guessing any more
        make(r, "animals", "dataset", {"a": "2"})
    assert api.default_project is None
    with pytest.raises(lodestore.InvalidInputError, match="ambiguous.*lab/animals, zoo/animals"):
        api.artifact("animals")
    monkeypatch.setenv("LODESTORE_PROJECT", "lab")
    assert api.artifact("animals").qualified_name == "lab/animals:v0"
    assert lodestore.Api(project="zoo").artifact("animals").qualified_name == "zoo/animals:v0"
    assert len(api.runs()) == 1  # runs() follows $LODESTORE_PROJECT too


def test_a_code_artifact_needs_no_name(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's own spelling: Artifact(type="code").add_dir(".") honouring .gitignore."""
    repo = tmp_path / "my project"
    (repo / "pkg").mkdir(parents=True)
    (repo / "train.py").write_text("print('train')\n")
    (repo / "pkg" / "model.py").write_text("x = 1\n")
    (repo / "run.log").write_text("noise\n")
    (repo / ".gitignore").write_text("*.log\n")
    monkeypatch.chdir(repo)
    art = lodestore.Artifact(type="code")
    assert art.name == "source-my-project"
    art.add_dir(".", use_gitignore=True)
    with lodestore.init(project="zoo") as run:
        logged = run.log_artifact(art)
    assert logged.qualified_name == "zoo/source-my-project:v0"
    assert sorted(f.path for f in logged.files()) == [".gitignore", "pkg/model.py", "train.py"]
    assert lodestore.Artifact(type="code", project="zoo").name == "source-zoo"
    with pytest.raises(lodestore.InvalidInputError, match="needs a name"):
        lodestore.Artifact(type="dataset")
    with pytest.raises(lodestore.InvalidInputError, match="needs a type"):
        lodestore.Artifact("animals")
