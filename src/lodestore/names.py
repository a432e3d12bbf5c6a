"""Naming rules for projects, artifacts, aliases, tags and artifact entries, and the
parser of artifact references like ``zoo/animals:v3``.

Names are kept to a portable subset so they are safe as URL segments, S3 key parts
and file names on every OS: letters, digits, ``-``, ``_`` and ``.``, starting with a
letter or digit, at most 128 characters, never ``.``/``..``.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath

from lodestore.errors import InvalidNameError

MAX_NAME_LENGTH = 128
MAX_ENTRY_PATH_LENGTH = 4096
# A folder or file name longer than this many UTF-8 bytes cannot be created on ext4, XFS,
# btrfs, APFS or NTFS, so such an entry could be logged but never downloaded.
MAX_ENTRY_COMPONENT_BYTES = 255
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_VERSION_RE = re.compile(r"v(\d+)")
MAX_VERSION_INDEX = 2**63 - 1  # the catalog stores version numbers as 64-bit integers
DEFAULT_PROJECT = "default"


def validate_name(name: str, what: str = "name") -> str:
    """Return `name` if it is a valid project/artifact/alias/tag name, else raise."""
    if not isinstance(name, str) or not name:
        raise InvalidNameError(f"{what} must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"{what} {name[:40]!r}... is {len(name)} characters; the limit is {MAX_NAME_LENGTH}")
    if name in (".", "..") or not _NAME_RE.fullmatch(name):
        raise InvalidNameError(
            f"invalid {what} {name!r}: use letters, digits, '-', '_' and '.', starting with a letter or digit"
        )
    return name


def validate_alias(alias: str) -> str:
    """Aliases follow the name rules, and may not look like a version index (``v3``)."""
    validate_name(alias, "alias")
    if _VERSION_RE.fullmatch(alias):
        raise InvalidNameError(f"alias {alias!r} looks like a version index; pick another name")
    return alias


def normalize_entry_path(path: str) -> str:
    """Normalise an entry name to a relative POSIX path that cannot escape the artifact.

    ``a/./b`` becomes ``a/b``; absolute paths, ``..`` segments, empty names and
    backslashes are refused. ``a..b.txt`` is a fine name: only whole ``..`` segments escape.
    """
    if not isinstance(path, str) or not path.strip():
        raise InvalidNameError("entry name must be a non-empty string")
    if "\x00" in path:
        raise InvalidNameError(f"entry name {path!r} contains a NUL byte")
    if "\\" in path:
        raise InvalidNameError(f"entry name {path!r} contains a backslash; use '/' to separate folders")
    if not is_utf8(path):
        raise InvalidNameError(f"entry name {os.fsencode(path)!r} is not valid UTF-8; rename the file "
                               "(entry names are stored as UTF-8 text)")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise InvalidNameError(f"entry name {path!r} is absolute; entries are relative to the artifact root")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        raise InvalidNameError(f"entry name {path!r} names the artifact root, not a file")
    if ".." in parts:
        raise InvalidNameError(f"entry name {path!r} escapes the artifact with '..'")
    for part in parts:
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > MAX_ENTRY_COMPONENT_BYTES:
            shown = f"{path[:60]!r}{'...' if len(path) > 60 else ''}"
            raise InvalidNameError(
                f"entry name {shown} has a file or folder name of {size} bytes; "
                f"file systems allow at most {MAX_ENTRY_COMPONENT_BYTES} bytes (UTF-8) per name"
            )
    normalized = str(PurePosixPath(*parts))
    if len(normalized) > MAX_ENTRY_PATH_LENGTH:
        raise InvalidNameError(f"entry name is {len(normalized)} characters; the limit is {MAX_ENTRY_PATH_LENGTH}")
    return normalized


def is_utf8(name: str) -> bool:
    """False for a name decoded from bytes that are not UTF-8 (os.listdir hands those
    over with lone surrogates, e.g. b'\\xff' as '\\udcff')."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def case_collisions(names: list[str]) -> list[list[str]]:
    """Groups of names that differ only in case (``Readme.TXT`` and ``readme.txt``): one
    would overwrite the other when downloaded on a case-insensitive file system (macOS
    and Windows by default)."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.casefold(), []).append(name)
    return [sorted(g) for g in groups.values() if len(g) > 1]


# Temp files are written beside a final path, then renamed over it. The name is short and
# fixed-length so that a file whose own name is near the 255-byte limit still has room
# (".<name>.<hex>.lodestore-tmp" would not), and exact so verify() can tell ours from a
# user's file that merely contains the word.
TEMP_PREFIX = ".lodestore-tmp-"
_TEMP_RE = re.compile(r"\.lodestore-tmp-[0-9a-f]{32}"
                      r"|\..+\.[0-9a-f]{8}\.lodestore-tmp")  # the earlier form ".<name>.<8 hex>..."


def temp_name() -> str:
    """A fresh temp file name (no folder) for writing beside a final path."""
    return TEMP_PREFIX + uuid.uuid4().hex


def is_temp_name(name: str) -> bool:
    """Is `name` (a base name) one of lodestore's own temp files?"""
    return _TEMP_RE.fullmatch(name) is not None


@dataclass(frozen=True)
class ArtifactRef:
    """A parsed ``[project/]name[:version-or-alias]`` reference."""

    project: str
    name: str
    selector: str | None  # "v3", an alias, or None

    @property
    def version_index(self) -> int | None:
        if self.selector is None:
            return None
        m = _VERSION_RE.fullmatch(self.selector)
        return int(m.group(1)) if m else None

    def __str__(self) -> str:
        base = f"{self.project}/{self.name}"
        return f"{base}:{self.selector}" if self.selector else base


def parse_ref(ref: str, default_project: str | None = None, default_selector: str | None = None) -> ArtifactRef:
    """Parse ``zoo/animals:v0``, ``animals:best`` or ``animals`` into an ArtifactRef."""
    if not isinstance(ref, str) or not ref:
        raise InvalidNameError("artifact reference must be a non-empty string like 'project/name:alias'")
    body, sep, selector = ref.partition(":")
    if sep and not selector:
        raise InvalidNameError(f"artifact reference {ref!r} has an empty version after ':'")
    parts = body.split("/")
    if len(parts) == 1:
        project, name = default_project or DEFAULT_PROJECT, parts[0]
    elif len(parts) == 2:
        project, name = parts
    else:
        raise InvalidNameError(f"artifact reference {ref!r} must look like 'project/name[:version]'")
    validate_name(project, "project name")
    validate_name(name, "artifact name")
    chosen: str | None = selector or default_selector
    if chosen is not None and (m := _VERSION_RE.fullmatch(chosen)):
        digits = m.group(1)  # length first: int() refuses strings of thousands of digits
        if len(digits) > len(str(MAX_VERSION_INDEX)) or int(digits) > MAX_VERSION_INDEX:
            raise InvalidNameError(f"artifact reference {ref!r}: version numbers go up to v{MAX_VERSION_INDEX}")
    elif chosen is not None:
        validate_name(chosen, "alias")
    return ArtifactRef(project, name, chosen)
