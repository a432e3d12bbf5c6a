"""A bare artifact name (``bike-dataset:latest``) resolves across projects when exactly
one project holds it; held by several, the error lists the candidates (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

import lodestore

# Also on the team pair (tests/conftest.py).
pytestmark = pytest.mark.team_too


def _log(project: str, name: str, content: str, type: str = "dataset") -> None:
    Path("f.txt").write_text(content)
    with lodestore.init(project=project) as run:
        art = lodestore.Artifact(name, type=type)
        art.add_file("f.txt")
        run.log_artifact(art)


def test_bare_name_found_in_the_one_project_holding_it(store):
    _log("bikes", "bike-dataset", "a")
    _log("cars", "car-dataset", "b")  # a second project: the old default rule gave up here
    api = lodestore.Api()
    assert api.artifact("bike-dataset:latest").qualified_name == "bikes/bike-dataset:v0"
    assert [v.version for v in api.artifact_versions("dataset", "bike-dataset")] == ["v0"]


def test_run_in_another_project_uses_a_bare_name(store):
    _log("image_classification", "resnet50-model", "w", type="model")
    with lodestore.init(project="inference") as run:
        art = run.use_artifact("resnet50-model:latest")
    assert art.project == "image_classification"
    assert [a.qualified_name for a in lodestore.Api().run(run.id).used_artifacts()] == [art.qualified_name]


def test_ambiguous_bare_name_lists_the_candidates(store):
    _log("p1", "shared", "a")
    _log("p2", "shared", "b")
    api = lodestore.Api()
    with pytest.raises(lodestore.InvalidInputError, match=r"ambiguous.*p1/shared, p2/shared"):
        api.artifact("shared:latest")
    with pytest.raises(lodestore.InvalidInputError, match="p1/shared, p2/shared"):
        api.artifact_versions("dataset", "shared")
    assert api.artifact("p2/shared:v0").project == "p2"  # naming the project settles it


def test_the_run_project_wins_over_others(store):
    _log("p1", "shared", "a")
    _log("p2", "shared", "b")
    with lodestore.init(project="p2") as run:
        assert run.use_artifact("shared:latest").project == "p2"


def test_unknown_bare_name_is_not_found(store):
    _log("p1", "x", "a")
    _log("p2", "y", "b")
    with pytest.raises(lodestore.NotFoundError):
        lodestore.Api().artifact("nowhere:latest")
