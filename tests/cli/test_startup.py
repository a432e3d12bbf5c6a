"""`lode` answers at once: what a command needs is imported when it runs, not when `lode`
starts (issue 12). Checked by the modules a real process has loaded, not by timing (the
machine is shared; bench/run.py prints the times)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Runs `lode ARGS` like its console script, then prints which modules the process loaded.
PROBE = """
import gc, json, sys
from lodestore.cli.main import main
sys.argv[0] = "lode"
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted(sys.modules), "frozen": gc.get_freeze_count()}), file=sys.stderr)
"""

HEAVY = ("sqlalchemy", "rich", "blake3", "zstandard", "pyfastcdc", "lodestore.sdk", "lodestore.store",
         "lodestore.catalog")


# What reading a small embedded store (SQLite catalog at the current schema, local
# store) never needs; each was imported by `lode ls` once, at a cost measured by
# python -X importtime (cli/app.py, cli/context.py, sdk/service.py say where it went).
NOT_FOR_READING = (
    "alembic",  # the schema is checked with one query; alembic is imported only to migrate
    "psycopg", "sqlalchemy.dialects.postgresql",  # a team's PostgreSQL catalog
    "boto3", "botocore", "lodestore.store.s3",  # a team's S3 store (s3, s3_index, ...)
    "pydantic",  # Typer's adapters for plain str and bool values (cli/app.py)
    "rich.progress", "lodestore.sdk.ui",  # progress bars: logging, downloads, transfers
    "lodestore.sdk.draft", "lodestore.sdk.log_draft", "lodestore.sdk.distributed",  # logging
    "lodestore.sdk.download", "lodestore.sdk.materialize",  # downloads
    "lodestore.sdk.references", "urllib.request",  # reference entries (HTTP, TLS)
    "lodestore.sdk.transfer", "lodestore.sdk.bundle",  # push, pull, export, import
    "lodestore.sdk.api", "lodestore.sdk.artifact", "lodestore.sdk.run",  # the Python objects
    "lodestore.sdk.diff", "lodestore.sdk.lineage",  # lode diff, lode lineage
    "pyarrow", "pandas",  # tables
    "starlette", "uvicorn", "lodestore.web",  # `lode ui`
)


def loaded(*args: str, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    code, modules, _ = probe(*args, env=env)
    return code, modules


def probe(*args: str, env: dict[str, str] | None = None) -> tuple[int, set[str], int]:
    """Run `lode ARGS` in a fresh process: (exit code, modules it loaded, objects frozen
    for the garbage collector)."""
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120,
                          env=env)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"]), report["frozen"]


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


@pytest.fixture
def small_store(lode, store: Path, images: Path) -> Path:
    """A store ($LODESTORE_DIR) holding one version, as the bench's small store does."""
    assert lode("put", images, "--name", "zoo/animals").code == 0
    return store


@pytest.mark.parametrize("command", [["ls"], ["versions", "zoo/animals"], ["info", "zoo/animals:v0"]])
def test_reading_a_small_store_imports_only_the_read_path(small_store: Path, command: list[str]) -> None:
    code, modules, _ = probe(*command)
    assert code == 0
    assert "lodestore.catalog.sql" in modules  # the probe did read the catalog
    assert sorted(m for m in modules if m.startswith(NOT_FOR_READING)) == []


def test_the_libraries_a_command_imports_are_not_rescanned_by_the_garbage_collector(small_store: Path) -> None:
    """The door is imported with the collector paused and then frozen (cli/context.py):
    its ~80,000 objects cost ~40 ms of rescans per command otherwise."""
    code, _, frozen = probe("ls")
    assert code == 0
    assert frozen > 10_000
