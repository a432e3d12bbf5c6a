"""The user's folder a version is downloaded into: hashing what is there (verify) and
clearing what does not belong (checkout)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import blake3


def remove_extras(target: Path, wanted: set[str], protect: Path) -> None:
    """Delete under `target` every file, symlink and folder not part of `wanted` (paths
    of files); folders on the way to wanted files stay. Nothing under `protect` is touched."""
    protect = protect.resolve()
    wanted_dirs = {p.rsplit("/", 1)[0] for p in wanted if "/" in p}
    wanted_dirs |= {d.rsplit("/", i)[0] for d in list(wanted_dirs) for i in range(1, d.count("/") + 1)}
    for dirpath, dirnames, filenames in os.walk(target, topdown=True):
        here = Path(dirpath)
        keep_dirs = []
        for d in dirnames:
            full = here / d
            rel = full.relative_to(target).as_posix()
            if full.is_symlink():
                full.unlink()  # versions hold regular files only; a link could lead outside
            elif full.resolve() == protect or protect in full.resolve().parents:
                continue
            elif rel in wanted_dirs:
                keep_dirs.append(d)
            elif protect.is_relative_to(full.resolve()):
                keep_dirs.append(d)  # holds the store somewhere below: walk in, delete around it
            else:
                shutil.rmtree(full)
        dirnames[:] = keep_dirs
        for f in filenames:
            full = here / f
            rel = full.relative_to(target).as_posix()
            if rel not in wanted or full.is_symlink():
                full.unlink()


def file_digest(path: Path) -> str:
    h = blake3.blake3()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(4 * 1024 * 1024)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()
