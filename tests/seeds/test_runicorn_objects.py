"""Runicorn's `get_metadata()` and `get_manifest()` return objects, as its guide shows;
dict access keeps working (issue 15)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

import lodestore

# Also on the team pair (tests/conftest.py).
pytestmark = pytest.mark.team_too


def _logged() -> lodestore.Artifact:
    Path("model.pth").write_bytes(b"w" * 100)
    Path("cfg.json").write_text("{}")
    with lodestore.init(project="p") as run:
        art = lodestore.Artifact("my-model", type="model")
        art.add_file("model.pth")
        art.add_file("cfg.json")
        art.add_metadata({"val_acc": 0.95})
        art.add_tags("resnet")
        run.log_artifact(art, aliases=["production"])
        return run.use_artifact("my-model:latest")


def test_get_metadata_is_an_object_and_a_mapping(store):
    art = _logged()
    m = art.get_metadata()
    assert m.metadata["val_acc"] == 0.95
    assert isinstance(m.created_at, datetime) and m.size_bytes == 102 and m.file_count == 2
    assert m.version == "v0" and m.status == "ready" and "production" in m.aliases and m.tags == ("resnet",)
    assert m["val_acc"] == 0.95 and dict(m) == {"val_acc": 0.95} and m == {"val_acc": 0.95}
    m.metadata["val_acc"] = 0  # a copy: the artifact is unchanged
    assert art.metadata["val_acc"] == 0.95


def test_get_manifest_is_an_object_and_a_mapping(store):
    manifest = _logged().get_manifest()
    assert manifest.total_files == 2 and manifest.total_size == 102
    assert [(f.path, f.size) for f in manifest.files] == [("cfg.json", 2), ("model.pth", 100)]
    assert manifest["model.pth"]["size"] == 100 and sorted(manifest) == ["cfg.json", "model.pth"]
    assert manifest["model.pth"] == {"digest": manifest.files[1].digest, "size": 100}


def test_draft_metadata(store):
    art = lodestore.Artifact("d", type="dataset", metadata={"k": 1})
    m = art.get_metadata()
    assert m.status == "draft" and m.created_at is None and m.metadata == {"k": 1}
