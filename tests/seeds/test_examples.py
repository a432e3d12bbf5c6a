"""The examples in examples/ run as written (real processes; Dask's LocalCluster)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import lodestore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                    reason="dask[distributed] is not installed (pip install -e '.[test]')")
def test_dask_example(store):
    done = subprocess.run([sys.executable, str(EXAMPLES / "parallel_dask.py"), "4"], capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "examples/dask-table:v0 [[0, 0], [1, 1], [2, 4], [3, 9]]" in done.stdout
    assert lodestore.Api().artifact("examples/dask-table:v0").get("squares").columns == ["i", "square"]


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="ray is not installed (optional: ~800 MB); tests/seeds/test_seed_samples.py runs the "
                           "same sample with multiprocessing in place of @ray.remote")
def test_ray_example(store):
    done = subprocess.run([sys.executable, str(EXAMPLES / "parallel_ray.py")], capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[[0, 0, 1], [1, 2, 2], [2, 4, 4], [3, 6, 8], [4, 8, 16]]" in done.stdout
