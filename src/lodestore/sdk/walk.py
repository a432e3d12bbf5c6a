"""Walking a folder for add_dir: relative paths, exclusions, and the symlink policy.

Symlink policy (documented in the README): a symlink whose target stays inside the
folder is followed (its target's bytes are stored under the link's name). A symlink that
points outside the folder, or nowhere, is refused with a clear error, because silently
storing (or silently skipping) bytes from elsewhere surprises people; pass
``follow_external_symlinks=True`` to store the target's bytes anyway (a warning is shown).
A followed link to a folder is walked as if the folder were there: its files are stored
under the link's path. A link to a folder that contains it (a loop) is refused.

A file name that is not valid UTF-8 is refused (entry names are UTF-8 text in the
catalog). FIFOs, sockets and device files hold no content to version (reading a FIFO
would block forever): they are left out with a warning naming them.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from pathlib import Path

from rich.markup import escape

from lodestore.errors import InvalidInputError
from lodestore.names import is_utf8
from lodestore.sdk import ui


def matches(rel: str, patterns: list[str]) -> bool:
    """A pattern matches the relative path, its basename, or any of its parent folders."""
    name = rel.rsplit("/", 1)[-1]
    parts = rel.split("/")
    for pat in patterns:
        pat = pat.rstrip("/")
        if fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(name, pat):
            return True
        if any(fnmatch.fnmatchcase("/".join(parts[: i + 1]), pat) or fnmatch.fnmatchcase(parts[i], pat)
               for i in range(len(parts) - 1)):
            return True
    return False


def walk_files(root: Path, exclude: list[str], include: list[str] | None = None,
               follow_external_symlinks: bool = False) -> Iterator[tuple[str, str]]:
    """Yield (relative posix path, absolute path as str) of every file under root: each
    folder's files in name order, then its subfolders, depth first, in name order. Streamed:
    only the folders waiting to be read are held (a list of 1,000,000 files held ~250 MB).

    Plain strings, not Path objects: building 20,000 Paths cost more than the walk."""
    real_root = root.resolve()
    # each folder carries the real paths of the folders above it, to catch symlink loops
    stack: list[tuple[str, str, frozenset[Path]]] = [(str(real_root), "", frozenset([real_root]))]
    skipped: list[str] = []  # FIFOs, sockets, devices
    while stack:
        folder, prefix, above = stack.pop()
        out: list[tuple[str, str]] = []  # this folder's files
        below: list[tuple[str, str, frozenset[Path]]] = []  # its subfolders
        with os.scandir(folder) as it:
            for entry in it:
                name = entry.name
                rel = prefix + name
                if exclude and matches(rel, exclude):
                    continue
                if not name.isascii() and not is_utf8(name):
                    raise InvalidInputError(f"file name {os.fsencode(entry.path)!r} is not valid UTF-8; rename it "
                                            "(entry names are stored as UTF-8 text)")
                if entry.is_file(follow_symlinks=False):  # a regular file, not a link (most entries: first)
                    if include is None or matches(rel, include):
                        out.append((rel, entry.path))
                    continue
                if entry.is_symlink():
                    path = Path(entry.path)
                    target = Path(os.path.realpath(path))
                    if not target.exists():
                        raise InvalidInputError(f"symlink {path} points to {target}, which does not exist")
                    inside = target == real_root or real_root in target.parents
                    if not inside:
                        if not follow_external_symlinks:
                            raise InvalidInputError(
                                f"symlink {path} points outside {root} (to {target}); refusing to store bytes from "
                                "outside the folder. Pass follow_external_symlinks=True "
                                "(lode put --follow-external-symlinks) to store its target."
                            )
                        ui.notice(f"warning: following symlink {escape(str(path))} -> {escape(str(target))} "
                                  f"(outside {escape(str(root))})")
                    if target.is_dir():
                        if target in above:
                            raise InvalidInputError(
                                f"symlink {path} points to {target}, a folder it is inside of (a symlink loop)"
                            )
                        below.append((str(target), rel + "/", above | {target}))
                        continue
                    if not target.is_file():
                        skipped.append(str(path))
                    elif include is None or matches(rel, include):
                        out.append((rel, str(target)))
                    continue
                if entry.is_dir(follow_symlinks=False):
                    below.append((entry.path, rel + "/", above | {Path(os.path.realpath(entry.path))}))
                else:
                    skipped.append(entry.path)
        out.sort()
        yield from out
        below.sort(key=lambda x: x[1], reverse=True)  # popped in name order
        stack.extend(below)
    if skipped:
        shown = ", ".join(sorted(skipped)[:10]) + (", ..." if len(skipped) > 10 else "")
        ui.notice(f"warning: left out {len(skipped)} special file(s) (FIFO, socket or device), which hold "
                  f"no content to store: {shown}")
