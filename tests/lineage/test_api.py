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
