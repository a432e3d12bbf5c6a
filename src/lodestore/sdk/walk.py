"""Walking a folder for add_dir: relative paths, exclusions, and the symlink policy.

Symlink policy (documented in the README): a symlink whose target stays inside the
folder is followed (its target's bytes are stored under the link's name). A symlink that
points outside the folder, or nowhere, is refused with a clear error, because silently
storing (or silently skipping) bytes from elsewhere surprises people; pass
``follow_external_symlinks=True`` to store the target's bytes anyway (a warning is shown).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from pathlib import Path

from rich.markup import escape

from lodestore.errors import InvalidInputError
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
    """Yield (relative posix path, absolute path as str) of every file under root, sorted.

    Plain strings, not Path objects: building 20,000 Paths cost more than the walk."""
    real_root = root.resolve()
    # each folder carries the real paths of the folders above it, to catch symlink loops
    stack: list[tuple[str, str, frozenset[Path]]] = [(str(real_root), "", frozenset([real_root]))]
    out: list[tuple[str, str]] = []
    while stack:
        folder, prefix, above = stack.pop()
        with os.scandir(folder) as it:
            for entry in it:
                rel = f"{prefix}{entry.name}"
                if exclude and matches(rel, exclude):
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
                                "outside the folder. Pass follow_external_symlinks=True (lode put --follow-external-symlinks) to "
                                "store its target."
                            )
                        ui.notice(f"warning: following symlink {escape(str(path))} -> {escape(str(target))} "
                                  f"(outside {escape(str(root))})")
                    if target.is_dir():
                        if inside:
                            continue  # a link to a folder inside: its files are already walked there
                        if target in above:
                            raise InvalidInputError(
                                f"symlink {path} points to {target}, a folder it is inside of (a symlink loop)"
                            )
                        stack.append((str(target), rel + "/", above | {target}))
                        continue
                    if include is None or matches(rel, include):
                        out.append((rel, str(target)))
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, rel + "/", above | {Path(os.path.realpath(entry.path))}))
                elif entry.is_file(follow_symlinks=False) and (include is None or matches(rel, include)):
                    out.append((rel, entry.path))
    out.sort()
    yield from out
