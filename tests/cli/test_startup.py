"""`lode` answers at once: what a command needs is imported when it runs, not when `lode`
starts (issue 12). Checked by the modules a real process has loaded, not by timing (the
machine is shared; bench/run.py prints the times)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Runs `lode ARGS` like its console script, then prints which modules the process loaded.
PROBE = """
import json, sys
from lodestore.cli.main import main
sys.argv[0] = "lode"
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""

HEAVY = ("sqlalchemy", "rich", "blake3", "zstandard", "pyfastcdc", "lodestore.sdk", "lodestore.store",
         "lodestore.catalog")


def loaded(*args: str, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120,
                          env=env)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY))


def test_help_imports_neither_the_sdk_nor_sqlalchemy_nor_rich() -> None:
    code, modules = loaded("--help")
    assert code == 0
    assert heavy(modules) == []


def test_a_usage_error_is_answered_without_the_sdk(tmp_path: Path) -> None:
    code, modules = loaded("versions")  # missing argument
    assert code == 2
    assert not [m for m in heavy(modules) if not m.startswith("rich")]  # the error line may use Rich


def test_import_lodestore_is_light_and_its_names_still_work() -> None:
    probe = ("import json, sys, lodestore; before = sorted(sys.modules); "
             "names = [lodestore.Artifact.__name__, lodestore.Api.__name__, lodestore.Run.__name__, "
             "lodestore.init.__name__, lodestore.current_run.__name__]; "
             "print(json.dumps({'before': before, 'names': names}))")
    out = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                                    timeout=120).stdout)
    assert heavy(set(out["before"])) == []
    assert out["names"] == ["Artifact", "Api", "Run", "init", "current_run"]


def test_every_public_name_of_the_package_resolves() -> None:
    import lodestore

    for name in lodestore.__all__:
        assert getattr(lodestore, name) is not None, name
    assert "Artifact" in dir(lodestore)
