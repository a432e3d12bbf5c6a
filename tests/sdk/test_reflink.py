"""Downloads are reflinks of the download cache's whole-file copies where the file system
has reflinks, and ordinary copies elsewhere.

The fallback runs on whatever file system holds tmp_path (ext4 here, no reflinks). The
reflink case needs a file system that has them: an XFS image made with `mkfs.xfs -m
reflink=1` on a loop device under tmp_path, which needs root, xfsprogs and loop devices;
without them those tests are skipped, saying why.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

import lodestore
from lodestore.names import is_temp_name
from lodestore.sdk.materialize import reflink
from lodestore.sdk.repository import Repository

from .helpers import write_random

FS_IOC_FIEMAP = 0xC020660B
FIEMAP_EXTENT_SHARED = 0x2000
_EXTENT = struct.Struct("=QQQQQIIII")  # struct fiemap_extent: 56 bytes


def extents(path: Path) -> list[tuple[int, int, int]]:
    """(physical offset, length, flags) of each extent, from the kernel (FIEMAP)."""
    count = 64
    header = struct.pack("=QQIIII", 0, 2**64 - 1, 1, 0, count, 0)  # FIEMAP_FLAG_SYNC
    buf = bytearray(header + bytes(_EXTENT.size * count))
    with open(path, "rb") as f:
        fcntl.ioctl(f.fileno(), FS_IOC_FIEMAP, buf)
    mapped = struct.unpack_from("=I", buf, 20)[0]
    out = []
    for i in range(mapped):
        _, physical, length, _, _, flags, *_ = _EXTENT.unpack_from(buf, 32 + i * _EXTENT.size)
        out.append((physical, length, flags))
    return out


def shared(path: Path) -> bool:
    ext = extents(path)
    return bool(ext) and all(flags & FIEMAP_EXTENT_SHARED for _, _, flags in ext)


def log_big(root: Path, source: Path) -> lodestore.Artifact:
    with lodestore.init(project="zoo", name="writer", root=root) as run:
        art = lodestore.Artifact("ckpt", type="model")
        art.add_file(source, name="model.bin")
        return run.log_artifact(art)


def cache_copy(root: Path, digest: str) -> Path:
    return Repository.open(root).cache_dir / "files" / digest[:2] / digest


def no_temp_files(folder: Path) -> bool:
    return not any(is_temp_name(p.name) for p in folder.rglob("*"))


# --- the fallback, on this machine's file system ----------------------------------------
def test_reflink_is_refused_cleanly_where_the_file_system_has_none(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    source = folder / "a.bin"
    source.write_bytes(b"x" * 100_000)
    probe = subprocess.run(["cp", "--reflink=always", source, tmp_path / "probe"],
                           check=False, capture_output=True)
    if probe.returncode == 0:
        pytest.skip("tmp_path's file system has reflinks; the fallback is not reachable here")
    assert reflink(source, folder / "b.bin") is False
    assert sorted(p.name for p in folder.iterdir()) == ["a.bin"]  # nothing left behind


def test_download_with_a_cache_copy_falls_back_to_a_private_copy(store: Path, tmp_path: Path) -> None:
    data = write_random(tmp_path / "model.bin", 3_000_000, seed=1)
    art = log_big(store, tmp_path / "model.bin")
    art.download(root=tmp_path / "linked", hardlink=True)  # puts a whole copy in the cache
    cached = cache_copy(store, art.files()[0].digest)
    assert cached.is_file()

    out = art.download(root=tmp_path / "copy") / "model.bin"
    assert out.read_bytes() == data
    st = out.stat()
    assert st.st_nlink == 1 and st.st_mode & 0o200  # the user's own, writable file
    assert not os.path.samestat(st, cached.stat())
    out.write_bytes(b"edited")
    assert cached.read_bytes() == data and (tmp_path / "linked" / "model.bin").read_bytes() == data
    assert no_temp_files(tmp_path / "copy")


# --- real reflinks, on an XFS image ------------------------------------------------------
@pytest.fixture
def xfs(tmp_path: Path):
    """A mounted XFS file system with reflinks, in a sparse 300 MB image (XFS's minimum)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a loop file system needs root")
    if shutil.which("mkfs.xfs") is None:
        pytest.skip("mkfs.xfs not installed (apt-get install xfsprogs)")
    image, mnt = tmp_path / "xfs.img", tmp_path / "xfs"
    with open(image, "wb") as f:
        f.truncate(300 * 1024 * 1024)
    made = subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)],
                          check=False, capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"mkfs.xfs -m reflink=1 failed: {made.stderr.strip()}")
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)],
                             check=False, capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a loop device here: {mounted.stderr.strip()}")
    try:
        yield mnt
    finally:
        from lodestore.sdk import repository

        repository.close_all()  # the store's files must be closed before unmounting
        if subprocess.run(["umount", str(mnt)], check=False, capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)  # busy: detach now, free when closed


def test_download_is_a_reflink_of_the_cache_copy(xfs: Path, tmp_path: Path) -> None:
    root = xfs / "store"
    data = write_random(tmp_path / "model.bin", 8_000_000, seed=2)
    art = log_big(root, tmp_path / "model.bin")
    digest = art.files()[0].digest
    art.download(root=xfs / "linked", hardlink=True)
    cached = cache_copy(root, digest)

    out = art.download(root=xfs / "copy") / "model.bin"
    assert out.read_bytes() == data
    assert shared(out) and shared(cached)  # the kernel says the blocks are shared
    assert sorted(p for p, _, _ in extents(out)) == sorted(p for p, _, _ in extents(cached))
    st = out.stat()
    assert st.st_nlink == 1 and st.st_mode & 0o200 and not os.path.samestat(st, cached.stat())

    # Copy-on-write: editing the download leaves the cache (and the hard-linked download) alone.
    with open(out, "r+b") as f:
        f.write(b"EDIT")
    assert out.read_bytes()[:4] == b"EDIT"
    assert cached.read_bytes() == data and (xfs / "linked" / "model.bin").read_bytes() == data
    assert no_temp_files(xfs / "copy")

    # Without a cache copy there is nothing to share: a plain copy from the store.
    cached.unlink()
    fresh = art.download(root=xfs / "fresh") / "model.bin"
    assert fresh.read_bytes() == data and not shared(fresh)


def test_a_spoiled_cache_copy_is_never_reflinked(xfs: Path, tmp_path: Path) -> None:
    root = xfs / "store"
    data = write_random(tmp_path / "model.bin", 2_000_000, seed=3)
    art = log_big(root, tmp_path / "model.bin")
    art.download(root=xfs / "linked", hardlink=True)
    cached = cache_copy(root, art.files()[0].digest)
    # Bit rot: the bytes change but the read-only mode and mtime mark stay as they were.
    st = cached.stat()
    cached.chmod(0o644)
    with open(cached, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00rot\x00")
    os.utime(cached, ns=(st.st_atime_ns, st.st_mtime_ns))
    cached.chmod(0o444)

    out = art.download(root=xfs / "copy") / "model.bin"
    assert out.read_bytes() == data  # written from the store, verified
    assert not shared(out)
    assert not cached.exists()  # the spoiled copy was dropped; the next hardlink download rewrites it
    assert no_temp_files(xfs / "copy")


def test_cp_p_over_a_hardlinked_download_is_never_reflinked_or_linked(xfs: Path, tmp_path: Path) -> None:
    """Issue 10: root's `cp -p` of one hard-linked download over another of the same size
    writes into the cache's inode and copies the mtime mark and mode: neither a reflink
    clone nor a hard link of that copy may serve the wrong bytes."""
    root = xfs / "store"
    src = tmp_path / "pair"
    src.mkdir()
    a = write_random(src / "a.bin", 2_000_000, seed=4)
    b = write_random(src / "b.bin", 2_000_000, seed=5)
    with lodestore.init(project="zoo", root=root) as run:
        art = lodestore.Artifact("pair", type="model")
        art.add_dir(src)
        run.log_artifact(art)
    art.download(root=xfs / "linked", hardlink=True)
    subprocess.run(["cp", "-p", str(xfs / "linked" / "a.bin"), str(xfs / "linked" / "b.bin")], check=True)

    again = art.download(root=xfs / "again", hardlink=True)
    assert (again / "b.bin").read_bytes() == b and (again / "a.bin").read_bytes() == a
    subprocess.run(["cp", "-p", str(again / "a.bin"), str(again / "b.bin")], check=True)  # once more
    out = art.download(root=xfs / "copy")
    assert (out / "b.bin").read_bytes() == b and (out / "a.bin").read_bytes() == a
    assert shared(out / "a.bin")  # the sound copy is still reflinked
