"""A store on a read-only mount (a shared mount, a snapshot) is read as it is: every read
command and the SDK's download work, and every write is refused with one line (exit 9,
"the store is read-only") that changes nothing.

The mount is real (a read-only bind mount of the test's store): as root, chmod would not
stop anything, while a read-only mount refuses even root (EROFS)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lodestore.errors import OS_ERROR_EXIT_CODE, ReadOnlyStoreError
from lodestore.sdk import repository
from lodestore.sdk.api import Api
from lodestore.sdk.artifact import Artifact

from .conftest import content, log

FILES = {"big.bin": bytes(range(256)) * 12_000, "cat.jpg": b"cat", "dogs/rex.jpg": b"rex"}


def _mount_read_only(source: Path, view: Path) -> None:
    view.mkdir()
    bound = subprocess.run(["mount", "--bind", source, view], check=False, capture_output=True, text=True)
    if bound.returncode != 0:
        pytest.skip(f"cannot make a bind mount here (needs root): {bound.stderr.strip()}")
    ro = subprocess.run(["mount", "-o", "remount,bind,ro", view], check=False, capture_output=True, text=True)
    if ro.returncode != 0:
        subprocess.run(["umount", view], check=False)
        pytest.skip(f"cannot remount the bind mount read-only: {ro.stderr.strip()}")


@pytest.fixture
def read_only_store(repo, tmp_path: Path) -> Iterator[Path]:
    """zoo/pics:v0 and v1 (aliased `best`), then the store seen through a read-only bind
    mount; returns the mount's path."""
    log(repo, "pics", {"cat.jpg": b"old cat"})
    log(repo, "pics", FILES, aliases=["best"])
    repository.close_all()  # as a finished process leaves it: the WAL folded into catalog.db
    view = tmp_path / "ro"
    _mount_read_only(repo.root, view)
    try:
        yield view
    finally:
        repository.close_all()  # the mount's files must be closed before unmounting
        if subprocess.run(["umount", view], check=False, capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", view], check=False)


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))}


def _one_error_line(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_every_read_command_works(read_only_store: Path, lode_proc, tmp_path: Path) -> None:
    ro = read_only_store
    for args in (["ls"], ["versions", "zoo/pics"], ["info", "zoo/pics:best"], ["files", "zoo/pics"],
                 ["search", "pics"], ["lineage", "zoo/pics"], ["diff", "zoo/pics:v0", "zoo/pics:v1"]):
        done = lode_proc("--root", ro, *args)
        assert done.returncode == 0, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert "zoo/pics" in lode_proc("--root", ro, "ls").stdout
    assert "dogs/rex.jpg" in lode_proc("--root", ro, "files", "zoo/pics").stdout
    for flags in ([], ["--hardlink"]):  # hard links come from the cache, which cannot be written here
        target = tmp_path / f"out{len(flags)}"
        done = lode_proc("--root", ro, "get", "zoo/pics:best", "--root", target, *flags)
        assert done.returncode == 0, done.stderr
        assert {p: (target / p).read_bytes() for p in FILES} == FILES


def test_fsck_checks_a_read_only_store(read_only_store: Path, lode_proc) -> None:
    """A check is a read: it works, changes nothing, and still says what it found."""
    before = _tree(read_only_store)
    done = lode_proc("--root", read_only_store, "fsck")
    assert done.returncode == 0, done.stderr
    assert "fsck: clean" in done.stdout and "Traceback" not in done.stderr
    assert _tree(read_only_store) == before


def test_the_sdk_downloads(read_only_store: Path, tmp_path: Path) -> None:
    art = Api(root=read_only_store).artifact("zoo/pics:best")
    assert content(art, tmp_path) == FILES
    assert Api(root=read_only_store).artifact("zoo/pics:v0").download(root=tmp_path / "v0") == tmp_path / "v0"
    assert (tmp_path / "v0" / "cat.jpg").read_bytes() == b"old cat"


@pytest.mark.parametrize("args", [
    ["put", "{src}", "--name", "zoo/pics"],
    ["alias", "set", "zoo/pics:v0", "best"],
    ["rm", "zoo/pics:v0"],
    ["gc", "--grace", "0"],
])
def test_a_write_is_refused_in_one_line(read_only_store: Path, lode_proc, tmp_path: Path, args) -> None:
    src = tmp_path / "new"
    src.mkdir()
    (src / "a.txt").write_text("new")
    ro = read_only_store
    before = _tree(ro)
    versions = lode_proc("--root", ro, "versions", "zoo/pics").stdout
    done = lode_proc("--root", ro, *[a.format(src=src) for a in args])
    assert done.returncode == OS_ERROR_EXIT_CODE == 9, done.stderr
    _one_error_line(done, "the store is read-only")
    assert _tree(ro) == before
    assert lode_proc("--root", ro, "versions", "zoo/pics").stdout == versions


def test_the_sdk_refuses_a_log(read_only_store: Path, tmp_path: Path) -> None:
    folder = tmp_path / "new"
    folder.mkdir()
    (folder / "a.txt").write_text("new")
    repo = repository.Repository.open(read_only_store)
    assert repo.read_only
    art = Artifact("pics", type="dataset")
    art.add_dir(folder)
    with pytest.raises(ReadOnlyStoreError, match="the store is read-only"):
        art._log(repo, "zoo", [], run_id=None)


def test_commits_a_writer_holds_in_its_wal_are_seen(repo, tmp_path: Path, lode_proc) -> None:
    """The colleague's case: the store is written elsewhere while we read it through a
    read-only view. Its last commit is still in catalog.db-wal (the writer keeps the
    database open), and the reader must see it: `mode=ro`, not `immutable=1`, which
    would read only the main file."""
    log(repo, "pics", {"cat.jpg": b"old cat"})
    repository.close_all()
    repo = repository.Repository.open(repo.root)
    log(repo, "pics", FILES)  # this process keeps catalog.db open: v1 stays in the WAL
    assert (repo.root / "catalog.db-wal").stat().st_size > 0
    view = tmp_path / "ro"
    _mount_read_only(repo.root, view)
    try:
        done = lode_proc("--root", view, "versions", "zoo/pics")
        got = lode_proc("--root", view, "get", "zoo/pics:v1", "--root", tmp_path / "out")
    finally:
        if subprocess.run(["umount", view], check=False, capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", view], check=False)
    assert done.returncode == 0, done.stderr
    assert "v1" in done.stdout
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "out" / "dogs" / "rex.jpg").read_bytes() == b"rex"
