"""Work folders under ``<store>/tmp/``: where a write session, gc's repack or fsck's
salvage writes packs before they are renamed into packs/.

Each folder carries ``owner.json`` (pid, host, start time) so that gc and fsck can tell
the folder of a live process from one a crash left behind (stale: removed by gc).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path

from lodestore.processes import pid_alive
from lodestore.testhooks import pause_point

OWNER_FILE = "owner.json"
# A folder without a readable owner.json (a crash between mkdir and its write) is stale
# once it is this old.
UNOWNED_STALE_SECONDS = 60.0


def new_work_dir(tmp_dir: Path, kind: str | None = None) -> Path:
    """A fresh folder under tmp_dir, owned by this process."""
    parts = [time.strftime("%Y%m%dT%H%M%S"), str(os.getpid())] + ([kind] if kind else []) + [uuid.uuid4().hex[:8]]
    d = tmp_dir / "-".join(parts)
    d.mkdir(parents=True)
    owner: dict[str, object] = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    if kind:
        owner["kind"] = kind
    (d / OWNER_FILE).write_text(json.dumps(owner))  # in a folder of its own: nobody reads a half file
    return d


def stale_work_dirs(tmp_dir: Path, grace: float = 0.0) -> list[Path]:
    """Folders whose owner process (on this host) is dead, or with no owner record and
    older than max(grace, UNOWNED_STALE_SECONDS)."""
    out = []
    host = socket.gethostname()
    listed = sorted(tmp_dir.iterdir()) if tmp_dir.exists() else []
    pause_point("work-dirs-listed")  # tests remove a listed folder here
    for d in listed:
        # A live session removes its folder when it ends, at any moment of this scan
        # (gc and fsck run beside writers): a folder gone is nobody's stale folder.
        if not d.is_dir():
            continue
        try:
            owner = json.loads((d / OWNER_FILE).read_text())
        except (OSError, ValueError):
            owner = None
        if owner is None:
            try:
                age = time.time() - d.stat().st_mtime
            except FileNotFoundError:
                continue
            if age > max(grace, UNOWNED_STALE_SECONDS):
                out.append(d)
            continue
        if owner.get("host") == host and not pid_alive(int(owner.get("pid", -1))):
            out.append(d)
    return out


def tree_size(path: Path) -> int:
    """Bytes of the files under a folder (0 if it is gone)."""
    total = 0
    for p in path.rglob("*") if path.exists() else ():
        try:
            total += p.stat().st_size if p.is_file() else 0
        except OSError:
            pass
    return total
