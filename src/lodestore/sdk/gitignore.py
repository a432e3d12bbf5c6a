"""`.gitignore` rules for `Artifact.add_dir(..., use_gitignore=True)` (code artifacts).

Follows git's rules (gitignore(5)): every `.gitignore` under the folder applies to its own
folder and below, deeper files override shallower ones, the last matching line wins,
``!`` re-includes, a trailing ``/`` matches folders only, a ``/`` at the start or middle
anchors the pattern to its `.gitignore`'s folder, ``**`` spans folders, and nothing under
an excluded folder can be re-included. ``.git/`` is always left out::

    keep = gitignore_filter(Path("."))
    keep("build/out.o")  # False when build/ is ignored
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rule:
    base: str  # folder of the .gitignore, relative to the root ("" for the root)
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _translate(pattern: str) -> str:
    """A gitignore glob (already stripped of !, trailing / and leading /) as a regex."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == n:
            out.append("/.*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = pattern.find("]", i + 2)
            if j < 0:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1:j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j + 1
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def parse_lines(lines: list[str], base: str = "") -> list[Rule]:
    rules: list[Rule] = []
    for raw in lines:
        line = raw.rstrip("\n").rstrip("\r")
        # trailing spaces are ignored unless escaped with a backslash
        while line.endswith(" ") and not line.endswith("\\ "):
            line = line[:-1]
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate or line.startswith("\\!") or line.startswith("\\#"):
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.lstrip("/")
        body = _translate(line)
        regex = ("" if anchored else "(?:.*/)?") + body
        rules.append(Rule(base, re.compile(regex + r"\Z", re.DOTALL), negate, dir_only))
    return rules


def gitignore_filter(root: str | os.PathLike[str]) -> Callable[[str], bool]:
    """A predicate `keep(rel_posix_path) -> bool` for files under `root`."""
    root = Path(root)
    rules: list[Rule] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        if ".gitignore" in filenames:
            rel = Path(dirpath).relative_to(root).as_posix()
            base = "" if rel == "." else rel
            try:
                text = (Path(dirpath) / ".gitignore").read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            rules.extend(parse_lines(text.splitlines(), base))
    # shallower files first, so a deeper .gitignore's lines come later and win
    rules.sort(key=lambda r: (r.base.count("/") + (1 if r.base else 0)))
    dir_cache: dict[str, bool] = {}

    def ignored(path: str, is_dir: bool) -> bool:
        result = False
        for r in rules:
            if r.base:
                if not path.startswith(r.base + "/"):
                    continue
                sub = path[len(r.base) + 1:]
            else:
                sub = path
            if r.dir_only and not is_dir:
                continue
            if r.regex.match(sub):
                result = not r.negate
        return result

    def dir_ignored(path: str) -> bool:
        if path not in dir_cache:
            parent = path.rsplit("/", 1)[0] if "/" in path else ""
            dir_cache[path] = (path == ".git" or path.endswith("/.git") or (bool(parent) and dir_ignored(parent))
                               or ignored(path, True))
        return dir_cache[path]

    def keep(rel: str) -> bool:
        parts = rel.split("/")
        if ".git" in parts[:-1]:
            return False
        if len(parts) > 1 and dir_ignored("/".join(parts[:-1])):
            return False
        return not ignored(rel, False)

    return keep
