"""Issue 3's reliability promises, through the SDK and real processes: a corrupted chunk
is caught on download (naming artifact and file, writing nothing wrong); a writer killed
while logging a large file leaves no version and no trusted truncated pack; two
processes logging overlapping content both succeed and share chunks (and gc reclaims
the bytes both stored at once); re-logging identical content says what it ignored."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import blake3
import pytest
from store.sql import index_sql

import lodestore
from lodestore.errors import CorruptionError
from lodestore.sdk import repository
from lodestore.sdk.repository import Repository
from lodestore.store import packs

MiB = 1024 * 1024


def rnd(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def log_dir(root: Path, name: str, folder: Path, **kw) -> lodestore.Artifact:
    with lodestore.init(project="zoo", name="writer", root=root) as run:
        art = lodestore.Artifact(name, type="model", **kw)
        art.add_dir(folder)
        return run.log_artifact(art)


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


# --- corruption -------------------------------------------------------------------------
@pytest.mark.parametrize("size", [200_000, 5 * MiB], ids=["whole-file", "chunked"])
def test_corrupted_chunk_fails_download_naming_artifact_and_file(store: Path, tmp_path: Path, size: int):
    src = tmp_path / "src"
    src.mkdir()
    (src / "weights.bin").write_bytes(rnd(size, 1))
    (src / "notes.txt").write_bytes(b"fine " * 100)
    logged = log_dir(store, "net", src)
    repo = Repository.open(store)
    digest = next(e.digest for e in logged.files() if e.path == "weights.bin")
    row = repo.store.index.file_row(bytes.fromhex(digest))
    chunk = bytes.fromhex(digest) if row[2] is None else row[2][32:64]  # a chunk inside the file
    ((pack_id, offset, stored_len),) = index_sql(repo.store,
        "SELECT pack_id, offset, stored_len FROM chunks WHERE digest=?", [chunk])
    flip_byte(packs.pack_path(repo.store.packs_dir, pack_id), offset + stored_len // 2)
    repository.close_all()  # a fresh process's view: no cached descriptors

    out = tmp_path / "out"
    with pytest.raises(CorruptionError) as info:
        lodestore.Api(root=store).artifact("zoo/net:v0").download(root=out)
    message = str(info.value)
    assert "zoo/net:v0" in message and "weights.bin" in message
    left = {p.relative_to(out).as_posix() for p in out.rglob("*")} if out.exists() else set()
    assert "weights.bin" not in left  # nothing wrong under the final name
    assert not any("lodestore-tmp" in p for p in left)  # nor a temp file beside it
    if "notes.txt" in left:
        assert (out / "notes.txt").read_bytes() == b"fine " * 100


# --- kill -9 while logging a large file ---------------------------------------------------
KILLED_LOGGER = """
import os, sys
os.environ["LODESTORE_QUIET"] = "1"
from lodestore.sdk.artifact import Artifact
from lodestore.sdk.repository import Repository
repo = Repository.open(sys.argv[1])
art = Artifact("big", type="model")
art.add_file(sys.argv[2])
print("START", flush=True)
art._log(repo, "zoo", [], run_id=None)
print("LOGGED", flush=True)
"""


def test_kill_9_while_logging_leaves_no_version_and_next_log_succeeds(store: Path, tmp_path: Path,
                                                                     kill_once_a_pack_grows):
    big = tmp_path / "src" / "big.bin"
    big.parent.mkdir()
    with open(big, "wb") as f:  # 192 MiB: several 64 MiB packs, so the kill lands mid-log
        f.writelines(rnd(16 * MiB, 100 + i) for i in range(12))
    root = store
    proc = subprocess.Popen([sys.executable, "-c", KILLED_LOGGER, str(root), str(big)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "START", proc.stderr.read()
    finally:
        rest = kill_once_a_pack_grows(proc, root / "store" / "tmp", 8 * MiB)
    assert proc.returncode == -signal.SIGKILL and "LOGGED" not in rest, "the writer was not killed mid-way"

    repo = Repository.open(root)
    assert not repo.catalog.list_artifacts("zoo", name="big") or repo.catalog.list_versions("zoo", "big") == []
    indexed = {pid for (pid,) in index_sql(repo.store, "SELECT id FROM packs")}
    on_disk = {p.stem for p in repo.store.packs_dir.glob("*/*.pack")}
    assert on_disk == indexed  # nothing of the killed session reached packs/
    for pid in indexed:  # every pack the index trusts is whole
        packs.read_trailer(packs.pack_path(repo.store.packs_dir, pid))
    assert not repo.store.has(b3(big.read_bytes()))

    logged = log_dir(root, "big", big.parent)  # same content, next log
    assert logged.version == "v0"
    out = logged.download(root=tmp_path / "out")
    assert b3((out / "big.bin").read_bytes()) == b3(big.read_bytes())


# --- two processes logging overlapping content ------------------------------------------------
CONCURRENT_LOGGER = """
import json, os, sys, time
os.environ["LODESTORE_QUIET"] = "1"
go = sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.001)
from lodestore.sdk.artifact import Artifact
from lodestore.sdk.repository import Repository
repo = Repository.open(sys.argv[1])
art = Artifact(sys.argv[3], type="model")
art.add_dir(sys.argv[4])
art._log(repo, "zoo", [], run_id=None)
print(json.dumps({"version": art.version, "digest": art.digest}), flush=True)
repo.close()
"""


def test_two_processes_logging_overlapping_content(store: Path, tmp_path: Path):
    shared = rnd(24 * MiB, 7)
    folders = {}
    for name, seed in (("a", 8), ("b", 9)):
        d = tmp_path / f"src-{name}"
        d.mkdir()
        (d / "shared.bin").write_bytes(shared)
        (d / "own.bin").write_bytes(shared[: 4 * MiB] + rnd(2 * MiB, seed))  # shares a prefix too
        (d / f"{name}.txt").write_bytes(name.encode() * 5000)
        folders[name] = d
    Repository.open(store).close()  # the store exists before both start
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_LOGGER, str(store), str(go), name, str(d)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, d in folders.items()]
    time.sleep(0.5)
    go.touch()
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    assert [json.loads(o)["version"] for o, _ in results] == ["v0", "v0"]

    api = lodestore.Api(root=store)
    for name, d in folders.items():
        out = api.artifact(f"zoo/{name}:v0").download(root=tmp_path / f"out-{name}")
        for f in d.iterdir():
            assert (out / f.name).read_bytes() == f.read_bytes()
    repo = Repository.open(store)
    # shared chunks are indexed once: both versions point at the same chunk rows
    shared_row = repo.store.index.file_row(bytes.fromhex(b3(shared)))
    assert shared_row is not None
    unique = repo.store.stats().chunk_bytes
    assert unique < 2 * len(shared)  # 24 MiB shared + ~4 MiB own each, far below two copies
    # Both may have written the shared chunks into their own packs at the same moment; the
    # index keeps one copy, the other is dead bytes until gc repacks (after the grace).
    before = repo.store.stats().stored_bytes
    plan = api.gc(grace=0)
    after = repo.store.stats().stored_bytes
    assert after <= unique * 1.01 + 64 * 1024, (before, after, plan)
    print(f"stored before gc {before}, after {after}, unique chunk bytes {unique}")
    for name, d in folders.items():  # and gc kept every live byte
        out = api.artifact(f"zoo/{name}:v0").download(root=tmp_path / f"after-gc-{name}")
        for f in d.iterdir():
            assert (out / f.name).read_bytes() == f.read_bytes()


# --- identical content ---------------------------------------------------------------------
def test_identical_content_notice_names_what_was_not_applied(store: Path, tmp_path: Path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "w.bin").write_bytes(rnd(10_000, 3))
    first = log_dir(store, "net", src, description="first", metadata={"lr": 0.1})
    capsys.readouterr()
    with lodestore.init(project="zoo", name="again", root=store) as run:
        art = lodestore.Artifact("net", type="model", description="second", metadata={"lr": 0.2, "bs": 8})
        art.add_dir(src)
        art.add_tags("tuned")
        again = run.log_artifact(art, aliases=["best"])
    err = " ".join(capsys.readouterr().err.split())
    assert again.version == first.version == "v0"
    assert "identical to zoo/net:v0" in err
    assert "description 'second'" in err and "'lr'" in err and "'bs'" in err and "tuned" in err
    assert "best" in err  # aliases are applied, and said so
    assert again.description == "first" and again.metadata == {"lr": 0.1}
    assert "best" in again.aliases
