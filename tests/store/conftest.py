from __future__ import annotations

from pathlib import Path

import pytest

from .data import MiB, random_bytes


@pytest.fixture(scope="session")
def big_file(tmp_path_factory) -> Path:
    """200 MiB of random bytes, written once per test session: large enough that a
    store is still busy with it (several packs) when a test kills the writer."""
    path = tmp_path_factory.mktemp("big") / "big.bin"
    with open(path, "wb") as f:
        f.writelines(random_bytes(20 * MiB, 1000 + i) for i in range(10))
    return path
