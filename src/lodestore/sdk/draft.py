"""What a draft artifact holds before it is logged, and the checks and messages of
logging it (Artifact._log). Kept apart so artifact.py reads as the Artifact API."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lodestore.catalog.base import VersionRecord
from lodestore.errors import ConflictError
from lodestore.sdk import ui


@dataclass(frozen=True)
class PendingFile:
    """Where one entry's bytes are until the draft is logged."""

    source: str | Path  # absolute path of the bytes to store (a str from add_dir: cheaper)
    staged: bool = False  # written through new_file (lives in a staging folder)


def plain_entry(entry: str) -> bool:
    """True if `entry` (a normalized prefix + names joined by '/' from a directory walk)
    is already what normalize_entry_path would return: no backslash, no drive-letter
    look, not blank, no name that could pass 255 UTF-8 bytes (< 64 characters cannot),
    within the length limit. Walked names are never '', '.', '..' and hold no '/' or NUL.
    Calling the full rules only for the rare rest cut add_dir of 20,000 files by ~0.13 s."""
    if "\\" in entry or entry[1:2] == ":" or not entry.strip() or len(entry) > 4096:
        return False
    return len(entry) < 64 or max(map(len, entry.split("/"))) < 64


def leave_out_the_store(pending: dict[str, PendingFile], store_root: Path) -> None:
    """`add_dir(".")` from a folder that holds the store (LODESTORE_DIR=./.lodestore) would
    log the store's own databases and packs into itself, changing as they are read: those
    entries are left out, with a warning. One string test per file (sources are absolute)."""
    roots = {os.path.join(str(store_root.absolute()), ""), os.path.join(os.path.realpath(store_root), "")}
    inside = [path for path, p in pending.items()
              if not p.staged and any(str(p.source).startswith(r) for r in roots)]
    for path in inside:
        del pending[path]
    if inside:
        ui.notice(f"warning: left out {len(inside)} file(s) inside the store folder {store_root} "
                  f"(e.g. {inside[0]}): a store is never logged into itself")


def patterns(patterns: str | Iterable[str] | None) -> list[str]:
    """A single pattern may be passed as a plain string (not split into characters)."""
    if patterns is None:
        return []
    return [patterns] if isinstance(patterns, str) else list(patterns)


def check_no_file_folder_clash(pending: dict[str, PendingFile]) -> None:
    """`a` and `a/b` cannot both be entries: no folder can hold them once downloaded."""
    for path in pending:
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in pending:
                raise ConflictError(
                    f"entry {parent!r} is a file, so {path!r} cannot be inside it; rename one"
                )


def pause_for_tests(phase: str) -> None:
    """Test hook (tests/lifecycle/test_gc_commit_window.py): with LODESTORE_TEST_PAUSE_AT=
    <phase>, print ``PAUSED <phase>`` to stderr and wait while the file named by
    LODESTORE_TEST_PAUSE_FILE exists (at most 10 minutes), so a real process can be held
    at that point and then let go."""
    if os.environ.get("LODESTORE_TEST_PAUSE_AT") != phase:
        return
    import sys
    import time

    sys.stderr.write(f"PAUSED {phase}\n")
    sys.stderr.flush()
    hold = os.environ.get("LODESTORE_TEST_PAUSE_FILE")
    deadline = time.monotonic() + 600
    while hold and os.path.exists(hold) and time.monotonic() < deadline:
        time.sleep(0.02)


def identical_notice(existing: VersionRecord, description: str | None, metadata: dict[str, Any],
                      tags: list[str], aliases: list[str]) -> str:
    """Logging content identical to a version makes no new version; the draft's aliases
    move to it, but its description, metadata and tags are not applied: say which."""
    ignored = []
    if description is not None and description != existing.description:
        ignored.append(f"description {description!r}")
    changed = sorted(k for k, v in metadata.items() if existing.metadata.get(k, object()) != v)
    if changed:
        ignored.append("metadata " + ", ".join(repr(k) for k in changed))
    new_tags = [t for t in tags if t not in existing.tags]
    if new_tags:
        ignored.append("tags " + ", ".join(new_tags))
    msg = f"content identical to {existing.qualified_name}; no new version was created"
    if aliases:
        msg += f" (aliases {', '.join(aliases)} now point at it)"
    if ignored:
        msg += (f"; not applied: {'; '.join(ignored)} (edit {existing.qualified_name} and call save() "
                "to change them)")
    return msg
