"""Issue 10, downloads: never serve wrong bytes from the hard-link cache, never write into
the store or outside the target, say when a download stopped part-way, and never replace
a file the user edited unless asked. Real hard links, real `cp -p`, real symlinks, real
`lode` processes."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from store.sql import index_sql

import lodestore
from lodestore.errors import ConflictError, CorruptionError, VerificationError
from lodestore.sdk import repository
from lodestore.sdk.materialize import INCOMPLETE_MARKER
from lodestore.sdk.repository import Repository
from lodestore.store import packs

from .helpers import tree


def rnd(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def log(root: Path | None, name: str, files: dict[str, bytes]) -> lodestore.Artifact:
    with lodestore.init(project="zoo", name="writer", root=root) as run:
        art = lodestore.Artifact(name, type="dataset")
        for path, data in files.items():
            with art.new_file(path, mode="wb") as f:
                f.write(data)
        return run.log_artifact(art)


def lode(*args: str) -> subprocess.CompletedProcess:
    """`lode ARGS` in its own process (the store comes from $LODESTORE_DIR)."""
    return subprocess.run([sys.executable, "-c", "import sys; from lodestore.cli.main import main; sys.exit(main())",
                           *map(str, args)], check=False, capture_output=True, text=True, timeout=120)


# --- the hard-link cache -------------------------------------------------------------------
@pytest.mark.skipif(os.geteuid() != 0, reason="only root's cp -p writes through a read-only hard link")
def test_cp_p_over_a_hardlinked_download_never_serves_the_other_files_bytes(store: Path) -> None:
    a, b = rnd(300_000, 1), rnd(300_000, 2)  # the same size: the size check cannot tell
    log(None, "pair", {"a.bin": a, "b.bin": b})
    assert lode("get", "zoo/pair:v0", "--root", "d1", "--hardlink").returncode == 0
    # the careless copy: writes a's bytes into b's inode, which is the cache's copy of b,
    # and copies a's mtime (the cache's mark) and read-only mode along
    subprocess.run(["cp", "-p", "d1/a.bin", "d1/b.bin"], check=True)
    cached_b = store / "cache" / "files"
    assert any(p.read_bytes() == a for p in cached_b.glob("*/*") if p.stat().st_ino == os.stat("d1/b.bin").st_ino)

    got = lode("get", "zoo/pair:v0", "--root", "d2", "--hardlink")
    assert got.returncode == 0, got.stderr
    assert Path("d2/b.bin").read_bytes() == b and Path("d2/a.bin").read_bytes() == a
    assert Path("d1/b.bin").read_bytes() == a  # the user's own copy keeps what they did to it
    art = lodestore.Api().artifact("zoo/pair:v0")
    assert art.download(root="d3", hardlink=True) and tree(Path("d3")) == {"a.bin": a, "b.bin": b}
    assert art.get_entry("b.bin").download(root="d4").read_bytes() == b  # plain copies too
    assert tree(art.download(root="d5")) == {"a.bin": a, "b.bin": b}


@pytest.mark.skipif(os.geteuid() != 0, reason="only root's cp -p writes through a read-only hard link")
def test_cache_verify_finds_a_cp_p_tamper(store: Path) -> None:
    log(None, "pair", {"a.bin": rnd(50_000, 1), "b.bin": rnd(50_000, 2)})
    assert lode("get", "zoo/pair:v0", "--root", "d1", "--hardlink").returncode == 0
    subprocess.run(["cp", "-p", "d1/a.bin", "d1/b.bin"], check=True)
    found = lode("cache", "verify")
    assert found.returncode == 6 and "content does not match its digest" in found.stdout
    assert lode("cache", "verify", "--fix").returncode == 0
    assert lode("cache", "verify").returncode == 0


# --- never into the store ------------------------------------------------------------------
def test_no_download_path_writes_into_the_store(store: Path, tmp_path: Path) -> None:
    log(None, "evil", {"catalog.db": b"not a catalog", "store/format.json": b"{}"})
    for target in (store, store / "store", store / "cache"):
        r = lode("get", "zoo/evil:v0", "--root", target)
        assert r.returncode == 4 and "inside the store" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert lode("get", "zoo/evil:v0", "--root", target, "--hardlink").returncode == 4
    art = lodestore.Api().artifact("zoo/evil:v0")
    for attempt in (lambda: art.download(root=store), lambda: art.download(root=store, hardlink=True),
                    lambda: art.get_entry("catalog.db").download(root=store),
                    lambda: art.download(target_dir=store / "store"), lambda: art.checkout(root=store)):
        with pytest.raises(ConflictError, match="inside the store"):
            attempt()
    assert (store / "catalog.db").read_bytes().startswith(b"SQLite format 3\0")
    assert (store / "store" / "format.json").read_bytes() != b"{}"
    assert lodestore.Api().artifact("zoo/evil:v0").file_count == 2  # the store still opens


def test_a_download_into_a_folder_holding_the_store_never_lands_inside_it(store: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    inner = project / ".lodestore"
    art = log(inner, "evil", {"ok.txt": b"fine", ".lodestore/catalog.db": b"not a catalog"})
    for attempt in (lambda: art.download(root=project), lambda: art.download(root=project, hardlink=True),
                    lambda: art.get_entry(".lodestore/catalog.db").download(root=project)):
        with pytest.raises(ConflictError, match="inside the store"):
            attempt()
    assert (inner / "catalog.db").read_bytes().startswith(b"SQLite format 3\0")
    assert not (project / "ok.txt").exists()  # refused before anything was written
    assert art.get_entry("ok.txt").download(root=project).read_bytes() == b"fine"  # what lands outside is fine


# --- never outside the target --------------------------------------------------------------
def test_a_symlinked_folder_in_the_target_is_a_conflict_not_a_way_out(store: Path, tmp_path: Path) -> None:
    art = log(None, "data", {"sub/x.txt": b"from the version", "top.txt": b"t"})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.txt").write_bytes(b"the user's own file")
    for n, attempt in enumerate((lambda t: art.download(root=t), lambda t: art.download(root=t, hardlink=True),
                                 lambda t: art.get_entry("sub/x.txt").download(root=t),
                                 lambda t: art.download(root=t, overwrite=True))):
        target = Path(f"t{n}")
        target.mkdir()
        (target / "sub").symlink_to(outside)
        with pytest.raises(ConflictError, match="symlink"):
            attempt(target)
    target = Path("t-cli")
    target.mkdir()
    (target / "sub").symlink_to(outside)
    r = lode("get", "zoo/data:v0", "--root", target)
    assert r.returncode == 4 and "symlink" in r.stderr and "Traceback" not in r.stderr
    deeper = Path("t-deep")
    (deeper / "sub").mkdir(parents=True)
    art2 = log(None, "deep", {"sub/inner/x.txt": b"x"})
    (deeper / "sub" / "inner").symlink_to(outside)
    with pytest.raises(ConflictError, match="symlink"):
        art2.download(root=deeper)
    assert os.listdir(outside) == ["x.txt"] and (outside / "x.txt").read_bytes() == b"the user's own file"

    # the target itself may be a link the user chose; checkout clears a link on the way
    real = tmp_path / "real"
    real.mkdir()
    Path("chosen").symlink_to(real)
    assert tree(art.download(root="chosen")) == {"sub/x.txt": b"from the version", "top.txt": b"t"}
    assert art.checkout(root="t0") and tree(Path("t0")) == {"sub/x.txt": b"from the version", "top.txt": b"t"}
    assert (outside / "x.txt").read_bytes() == b"the user's own file"


# --- a download that stops part-way --------------------------------------------------------
def test_a_download_that_fails_part_way_leaves_a_marker_until_one_succeeds(store: Path) -> None:
    files = {f"f{i}.bin": rnd(20_000 + i, i) for i in range(9)}
    v0 = log(None, "many", files)
    repo = Repository.open(store)
    bad = next(e for e in v0.files() if e.path == "f4.bin")  # in the middle
    ((pack_id, offset, stored_len),) = index_sql(repo.store,
        "SELECT pack_id, offset, stored_len FROM chunks WHERE digest=?", [bytes.fromhex(bad.digest)])
    with open(packs.pack_path(repo.store.packs_dir, pack_id), "r+b") as f:
        f.seek(offset + stored_len // 2)
        byte = f.read(1)
        f.seek(offset + stored_len // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    repository.close_all()

    for target, how in (("plain", {}), ("linked", {"hardlink": True})):
        with pytest.raises(CorruptionError, match="f4.bin") as err:
            lodestore.Api().artifact("zoo/many:v0").download(root=target, **how)
        assert INCOMPLETE_MARKER in str(err.value)
        assert (Path(target) / INCOMPLETE_MARKER).is_file()
        assert not (Path(target) / "f4.bin").exists()
        with pytest.raises(VerificationError, match="incomplete"):
            lodestore.Api().artifact("zoo/many:v0").verify(root=target)
    r = lode("get", "zoo/many:v0", "--root", "cli")
    assert r.returncode == 6 and INCOMPLETE_MARKER in r.stderr and (Path("cli") / INCOMPLETE_MARKER).is_file()

    rest = {k: v for k, v in files.items() if k != "f4.bin"}
    v1 = log(None, "many", rest)  # the same files but the lost one: completes the folder
    for name in rest:  # one file at a time says nothing about the rest: the mark stays
        v1.get_entry(name).download(root="cli")
    assert (Path("cli") / INCOMPLETE_MARKER).is_file()
    v1.download(root="cli")  # the whole version, nothing left to write: the mark goes
    assert not (Path("cli") / INCOMPLETE_MARKER).exists()
    v1.download(root="plain")
    assert not (Path("plain") / INCOMPLETE_MARKER).exists()
    assert tree(Path("plain")) == rest
    v1.verify(root="plain")


# --- the user's edits ----------------------------------------------------------------------
def test_an_edited_file_is_a_conflict_unless_overwrite_is_asked(store: Path) -> None:
    art = log(None, "animals", {"a.txt": b"original", "b.txt": b"b", "c/d.txt": b"d"})
    folder = art.download(root="data")
    kept = os.stat(folder / "b.txt").st_ino
    (folder / "a.txt").write_bytes(b"edited by the user")
    (folder / "c" / "d.txt").unlink()
    with pytest.raises(ConflictError, match="a.txt") as err:
        art.download(root="data")
    assert "overwrite" in str(err.value)
    assert (folder / "a.txt").read_bytes() == b"edited by the user"
    assert not (folder / "c" / "d.txt").exists()  # refused before anything was written
    for how in ({"hardlink": True}, {}):
        with pytest.raises(ConflictError):
            art.download(root="data", **how)
    with pytest.raises(ConflictError):
        art.get_entry("a.txt").download(root="data")
    art.get_entry("c/d.txt").download(root="data")  # that one file is not in the way

    r = lode("get", "zoo/animals:v0", "--root", "data")
    assert r.returncode == 4 and "a.txt" in r.stderr and "--overwrite" in r.stderr
    assert (folder / "a.txt").read_bytes() == b"edited by the user"
    assert lode("get", "zoo/animals:v0", "--root", "data", "--overwrite").returncode == 0
    assert tree(folder) == {"a.txt": b"original", "b.txt": b"b", "c/d.txt": b"d"}
    assert os.stat(folder / "b.txt").st_ino == kept  # the right content is kept as it is

    (folder / "a.txt").write_bytes(b"again")
    assert art.download(root="data", overwrite=True) == folder and (folder / "a.txt").read_bytes() == b"original"


def test_a_symlink_where_a_file_goes_is_a_conflict_and_overwrite_replaces_only_the_link(
        store: Path, tmp_path: Path) -> None:
    art = log(None, "animals", {"a.txt": b"original"})
    mine = tmp_path / "mine.txt"
    mine.write_bytes(b"mine")
    Path("data").mkdir()
    Path("data/a.txt").symlink_to(mine)
    with pytest.raises(ConflictError, match="a.txt"):
        art.download(root="data")
    art.download(root="data", overwrite=True)
    assert not Path("data/a.txt").is_symlink() and Path("data/a.txt").read_bytes() == b"original"
    assert mine.read_bytes() == b"mine"
