"""W&B and Runicorn calls beyond the seeds' samples that their users reach for: one
small test per call (`artifact.wait/file/link`, `api.artifact_collection(_exists)`,
Runicorn's version number from `log_artifact`, adding the same content twice)."""

from __future__ import annotations

from pathlib import Path

import pytest

import lodestore
import lodestore as rn

# Also on the team pair (tests/conftest.py).
pytestmark = pytest.mark.team_too


def _logged(name: str = "model", files: dict[str, str] | None = None, project: str = "p") -> lodestore.Artifact:
    art = lodestore.Artifact(name, type="model")
    for path, text in (files or {"model.pth": "weights"}).items():
        Path(path).write_text(text)
        art.add_file(path)
    with lodestore.init(project=project) as run:
        return run.log_artifact(art)


def test_wait_returns_the_logged_artifact_and_refuses_a_draft(store):
    logged = _logged()
    assert logged.wait() is logged and logged.wait(timeout=5) is logged  # committed when log_artifact returned
    with pytest.raises(lodestore.InvalidInputError, match="draft"):
        lodestore.Artifact("d", type="model").wait()


def test_file_downloads_a_one_file_artifact_and_returns_its_path(store):
    _logged("one")
    with lodestore.init(project="p") as run:
        path = run.use_artifact("one:latest").file()  # W&B: run.use_artifact(...).file()
    assert isinstance(path, str) and Path(path).read_text() == "weights"
    assert Path(lodestore.Api().artifact("p/one:v0").file(root="elsewhere")) == Path("elsewhere/model.pth")
    _logged("two", {"a.txt": "a", "b.txt": "b"})
    with pytest.raises(lodestore.InvalidInputError, match="holds 2 files"):
        lodestore.Api().artifact("p/two:v0").file()


def test_link_makes_the_same_content_a_version_of_another_artifact(store):
    logged = _logged(files={"model.pth": "weights", "cfg.json": "{}"})
    linked = logged.link("registry/best-models", aliases=["production"])
    assert linked.qualified_name == "registry/best-models:v0" and "production" in linked.aliases
    assert linked.digest == logged.digest and linked.type == "model"
    assert linked.logged_by().id == logged.logged_by().id  # made by the run that made the bytes
    assert Path(linked.download(root="dl"), "model.pth").read_text() == "weights"
    assert logged.link("entity/registry/best-models").version == "v0"  # the same content: the same version
    assert logged.link("copy").qualified_name == "p/copy:v0"  # a bare name: this version's project
    with pytest.raises(lodestore.InvalidInputError, match="no version"):
        logged.link("registry/best-models:v3")


def test_artifact_collection_and_exists(store):
    _logged("bike-dataset", project="bikes")
    Path("model.pth").write_text("v1")
    with lodestore.init(project="bikes") as run:
        art = lodestore.Artifact("bike-dataset", type="model")
        art.add_file("model.pth")
        run.log_artifact(art, aliases=["best"])
    api = lodestore.Api()
    collection = api.artifact_collection("model", "bike-dataset")  # a bare name: the project holding it
    assert (collection.project, collection.name, collection.type) == ("bikes", "bike-dataset", "model")
    assert [a.version for a in collection.artifacts()] == ["v0", "v1"] == [a.version for a in collection.versions()]
    assert collection.aliases == ["best", "latest"] and collection.is_sequence()
    assert api.artifact_collection("model", "me/bikes/bike-dataset").id == collection.id
    with pytest.raises(lodestore.NotFoundError, match="type 'model'"):
        api.artifact_collection("dataset", "bikes/bike-dataset")
    assert api.artifact_collection_exists("bike-dataset") and api.artifact_collection_exists("bikes/bike-dataset",
                                                                                            type="model")
    assert not api.artifact_collection_exists("bikes/bike-dataset", type="dataset")
    assert not api.artifact_collection_exists("nope") and not api.artifact_collection_exists("a/b/c/d")
    assert [c.name for c in api.artifact_collections("bikes", "model")] == ["bike-dataset"]


def test_runicorn_log_artifact_formats_as_its_version_number(store):
    Path("model.pth").write_text("w")
    run = rn.init(project="image_classification")
    model = rn.Artifact("resnet50-model", type="model")
    model.add_file("model.pth")
    version = run.log_artifact(model)
    assert f"Saved model: resnet50-model:v{version}" == "Saved model: resnet50-model:v0"  # versions count from v0
    assert int(version) == 0 and repr(version).startswith("<Artifact image_classification/resnet50-model:v0")
    assert f"{version!r:.9}" == "<Artifact"  # a format spec formats the repr, as before
    rn.finish()


def test_adding_the_same_content_twice_is_no_conflict(store):
    Path("checkpoints").mkdir()
    for name in ("a.pt", "run.log"):
        Path("checkpoints", name).write_text(name)
    Path("copy.pt").write_text("a.pt")
    Path("other.pt").write_text("other")
    art = lodestore.Artifact("my-model", type="model")
    art.add_dir("checkpoints/")
    art.add_dir("checkpoints/", exclude_patterns=["*.log"])  # Runicorn's sample adds the folder twice
    art.add_file("copy.pt", name="a.pt")  # the same bytes from another file
    assert sorted(art.draft.files) == ["a.pt", "run.log"]
    with pytest.raises(lodestore.ConflictError, match="'a.pt'"):
        art.add_file("other.pt", name="a.pt")  # other bytes under a taken name: never silently replaced
    art.add_file("other.pt", name="a.pt", overwrite=True)  # asked for
    with lodestore.init(project="p") as run:
        logged = run.log_artifact(art)
    assert {e.path: e.size for e in logged.files()} == {"a.pt": 5, "run.log": 7}
