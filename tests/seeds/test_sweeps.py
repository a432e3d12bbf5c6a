"""`api.sweep("<entity>/<project>/<sweep_id>")`: a sweep is a run group (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

import lodestore

# Also on the team pair (tests/conftest.py).
pytestmark = pytest.mark.team_too


def _sweep_run(group: str, val_acc: float, project: str = "tune") -> str:
    with lodestore.init(project=project, group=group, config={"acc": val_acc}) as run:
        Path("model.pt").write_text(str(val_acc))
        run.log_artifact("model.pt", name=f"model-{run.id}", type="model")
        run.summary["val_acc"] = val_acc
        return run.id


def test_the_best_run_of_a_sweep(store):
    ids = [_sweep_run("sweep-7", acc) for acc in (0.5, 0.9, 0.7)]
    _sweep_run("other", 0.99)
    sweep = lodestore.Api().sweep("me/tune/sweep-7")
    assert sorted(r.id for r in sweep.runs) == sorted(ids)
    runs = sorted(sweep.runs, key=lambda run: run.summary.get("val_acc", 0), reverse=True)
    assert runs[0].id == ids[1] and sweep.best_run().id == ids[1]
    [artifact] = runs[0].logged_artifacts()
    assert (artifact.download() / "model.pt").read_text() == "0.9"


def test_sweep_paths(store):
    _sweep_run("s1", 0.1)
    api = lodestore.Api()
    assert len(api.sweep("tune/s1").runs) == 1 and len(api.sweep("s1").runs) == 1
    with pytest.raises(lodestore.NotFoundError, match=r"init\(group='s2'\)"):
        api.sweep("me/tune/s2")
    with pytest.raises(lodestore.NotFoundError):
        api.sweep("me/elsewhere/s1")
    with pytest.raises(lodestore.InvalidNameError):
        api.sweep("a/b/c/d")
