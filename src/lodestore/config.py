"""Settings a user hands us, each checked by one function that the SDK and the CLI share:
where a store lives (``init(root=...)`` beats ``$LODESTORE_DIR`` beats ``~/.lodestore``),
durations (TTLs, ages) and gc's grace period."""

from __future__ import annotations

import math
import os
import re
from datetime import timedelta
from pathlib import Path

from lodestore import settings
from lodestore.errors import InvalidInputError

ENV_ROOT = settings.ROOT
DEFAULT_ROOT = Path("~/.lodestore")
# A TTL or age longer than this is a typo: 1,000 years keeps created_at + ttl a valid
# date (datetime stops at year 9999) and ttl_seconds well inside a 64-bit integer.
MAX_DURATION = timedelta(days=365 * 1000)


_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
          "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4}


def parse_size(text: str | int) -> int:
    """A size as users write it: 500MB, 1GB, 2GiB, 1000 (bytes)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).upper() not in _UNITS:
        raise InvalidInputError(f"not a size: {text!r} (e.g. 500MB, 1GB, 2GiB, 1000)")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def resolve_root(root: str | os.PathLike[str] | None = None) -> Path:
    if root is not None:
        return Path(checked_root(root, "root")).expanduser().resolve()
    env = settings.root_dir()
    if env:
        return Path(env).expanduser().resolve()
    return DEFAULT_ROOT.expanduser().resolve()


def checked_root(root: str | os.PathLike[str], what: str) -> str | os.PathLike[str]:
    """`root`, unless it is empty: Path("") is the current folder, and a store made
    there by a forgotten variable (``--root "$STORE"``) is a surprise, not a choice."""
    if isinstance(root, str) and not root.strip():
        raise InvalidInputError(f"{what} is empty; name the store folder (use '.' for the current folder)")
    return root


def checked_duration(seconds: float, what: str) -> timedelta:
    """A positive duration of at most MAX_DURATION (TTLs, ages); InvalidInputError otherwise."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds <= 0:
        raise InvalidInputError(f"{what} must be a positive duration, got {seconds!r}")
    if seconds > MAX_DURATION.total_seconds():
        raise InvalidInputError(f"{what} is too long: at most {MAX_DURATION.days:,} days")
    return timedelta(seconds=seconds)


def checked_grace(seconds: float, what: str) -> float:
    """gc's grace period in seconds: finite and >= 0 (NaN compares false with everything,
    so a NaN grace would have made every unreferenced byte old enough to delete)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds < 0:
        raise InvalidInputError(f"{what} must be a number of seconds >= 0, got {seconds!r}")
    return float(seconds)
