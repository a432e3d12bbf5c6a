"""The examples in examples/ run as written (real processes; Dask's LocalCluster). The Ray
example runs in tests/seeds/test_ray.py, beside the FAQ sample it is made of (one Ray start)."""

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

