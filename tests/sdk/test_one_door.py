"""Issue 11, "one door": the SDK's public objects reach the catalog and the content store
only through `Service`, are composed (no mixins), and every LODESTORE_* variable is read
in lodestore/settings.py. These read the source, as `git grep` would."""

from __future__ import annotations

import re
from pathlib import Path

import lodestore

SRC = Path(lodestore.__file__).parent
PUBLIC_OBJECTS = ["sdk/api.py", "sdk/artifact.py", "sdk/artifact_files.py", "sdk/run.py", "sdk/run_end.py",
                  "sdk/public_run.py"]


def test_public_objects_and_cli_go_through_the_door() -> None:
    files = [SRC / f for f in PUBLIC_OBJECTS] + sorted((SRC / "cli").glob("*.py"))
    leaks = [f"{f.relative_to(SRC)}:{n}" for f in files for n, line in enumerate(f.read_text().splitlines(), 1)
             if re.search(r"\b_?repo\.(catalog|store)\b|(?<!lodestore)\.catalog\.|\._repo\b", line)]
    assert leaks == []


def test_no_mixins_in_the_sdk() -> None:
    text = (SRC / "sdk" / "artifact.py").read_text()
    assert re.search(r"^class Artifact:", text, re.M)
    assert not (SRC / "sdk" / "artifact_lineage.py").exists()


def test_environment_variables_are_read_in_one_module() -> None:
    readers = sorted(str(f.relative_to(SRC)) for f in SRC.rglob("*.py")
                     if re.search(r"os\.environ|os\.getenv", f.read_text()))
    # sdk/lifecycle.py's gc grace period is the store work's to move (to settings.gc_grace_seconds())
    assert [r for r in readers if r != "sdk/lifecycle.py"] == ["settings.py"]
