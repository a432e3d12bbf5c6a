"""What a draft artifact holds before it is logged: its files (`DraftFiles`, owned by an
`Artifact`) and, when it is logged, the `Draft` handed to the door (`Service.log`,
implemented by sdk/log_draft.py), plus the checks and messages of logging it."""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from lodestore.catalog.base import ReferenceEntry, VersionRecord
from lodestore.errors import ConflictError, NotFoundError
from lodestore.names import normalize_entry_path
from lodestore.sdk import ui


@dataclass(frozen=True)
class PendingFile:
    """Where one entry's bytes are until the draft is logged."""

    source: str | Path  # absolute path of the bytes to store (a str from add_dir: cheaper)
    staged: bool = False  # written through new_file (lives in a staging folder)


class DraftFiles:
    """The entries of a draft: entry path -> where its bytes are. Files written through
    `new_file` live in a staging folder of their own, removed once the draft is logged
    or dropped (a draft dropped without logging leaves nothing behind)."""

    def __init__(self) -> None:
        self.pending: dict[str, PendingFile] = {}
        self._staging: Path | None = None
        self._handles: dict[str, IO[Any]] = {}

    def add(self, name: str, pending: PendingFile, owner: str) -> str:
        """Add entry `name` (normalized first); ConflictError if the draft `owner` has it."""
        path = normalize_entry_path(name)
        if path in self.pending:
            raise ConflictError(f"artifact {owner!r} already has an entry named {path!r}")
        self.pending[path] = pending
        return path

    def _staged_path(self, name: str, owner: str) -> tuple[str, Path]:
        """The entry path for `name` and a fresh place in the staging folder for its bytes."""
        path = normalize_entry_path(name)
        if path in self.pending:
            raise ConflictError(f"artifact {owner!r} already has an entry named {path!r}")
        if self._staging is None:
            self._staging = Path(tempfile.mkdtemp(prefix="lodestore-new-file-"))
            weakref.finalize(self, shutil.rmtree, self._staging, True)
        staged = self._staging / path
        staged.parent.mkdir(parents=True, exist_ok=True)
        return path, staged

    def add_snapshot(self, name: str, source: Path, owner: str) -> str:
        """Add entry `name` as a copy of `source` taken now (add_file's "mutable" policy):
        later edits of `source` do not reach the version."""
        path, staged = self._staged_path(name, owner)
        shutil.copyfile(source, staged)
        self.pending[path] = PendingFile(staged, staged=True)
        return path

    def new_file(self, name: str, mode: str, encoding: str | None, owner: str) -> IO[Any]:
        """Open a new staged file for writing as entry `name` (see Artifact.new_file)."""
        path, staged = self._staged_path(name, owner)
        if "b" not in mode and encoding is None:
            encoding = "utf-8"
        handle = open(staged, mode, encoding=encoding)  # noqa: SIM115  (the caller closes it, usually with `with`)
        self.pending[path] = PendingFile(staged, staged=True)
        self._handles[path] = handle
        return handle

    def remove(self, name: str, owner: str) -> None:
        path = normalize_entry_path(name)
        if self.pending.pop(path, None) is None:
            raise NotFoundError(f"draft {owner!r} has no entry {path!r}")

    def still_open(self) -> list[str]:
        """Entries written with new_file whose handle is not closed yet."""
        return sorted(p for p, h in self._handles.items() if not h.closed and p in self.pending)

    def discard(self) -> None:
        """Forget every entry and remove the staged files (after logging)."""
        self.pending = {}
        self._handles = {}
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None

    def size(self) -> int:
        return sum(os.stat(p.source).st_size for p in self.pending.values())


@dataclass
class Draft:
    """What logging a version needs: the draft's identity, its editable fields and its
    files (`files` is the Artifact's own dict: entries inside the store are left out of it)."""

    name: str
    type: str
    project: str | None  # None: the project the log call names
    description: str | None
    metadata: dict[str, Any]
    tags: list[str]
    ttl: timedelta | None
    files: dict[str, PendingFile]
    open_files: list[str] = field(default_factory=list)  # new_file handles not closed yet
    references: dict[str, ReferenceEntry] = field(default_factory=dict)  # path -> no bytes stored


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


def check_no_file_folder_clash(pending: dict[str, Any]) -> None:
    """`a` and `a/b` cannot both be entries: no folder can hold them once downloaded."""
    for path in pending:
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in pending:
                raise ConflictError(
                    f"entry {parent!r} is a file, so {path!r} cannot be inside it; rename one"
                )


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
