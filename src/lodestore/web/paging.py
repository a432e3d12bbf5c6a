"""Cursor (keyset) pagination for every list the API serves.

A cursor is the sort key of the last item of a page, opaque to clients (URL-safe
base64 of JSON). The next page is every item whose key sorts after it, so a page is
stable while items are added or removed elsewhere in the list (no offsets that shift).
Each list defines its key; keys are tuples of JSON scalars. Pages hold at most
`MAX_LIMIT` items: no response is unbounded.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from lodestore.errors import InvalidInputError

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[Any, ...] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"cursor {cursor[:40]!r} is not one this server gave out") from None
    if not isinstance(key, list):
        raise InvalidInputError(f"cursor {cursor[:40]!r} is not one this server gave out")
    return tuple(key)


def parse_limit(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        raise InvalidInputError(f"limit must be a whole number, got {text[:20]!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


def _comparable(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """None sorts first, and values of different kinds never meet in a comparison."""
    out: list[Any] = []
    for v in key:
        if v is None:
            out.append((0, 0))
        elif isinstance(v, bool | int | float):
            out.append((1, v))
        else:
            out.append((2, str(v)))
    return tuple(out)


def paginate(items: Iterable[T], key: Callable[[T], tuple[Any, ...]], cursor: str | None, limit: int,
             descending: bool = False) -> Page[T]:
    """The page after `cursor` of `items` ordered by `key` (ascending unless `descending`)."""
    after = decode_cursor(cursor)
    decorated = sorted(((_comparable(key(x)), x) for x in items), key=lambda p: p[0], reverse=descending)
    if after is not None:
        mark = _comparable(after)
        decorated = [p for p in decorated if (p[0] < mark if descending else p[0] > mark)]
    page = decorated[:limit]
    more = len(decorated) > limit
    return Page([x for _, x in page], encode_cursor(key(page[-1][1])) if more and page else None)


def paginate_sorted(items: Sequence[T], key: Callable[[T], tuple[Any, ...]], cursor: str | None,
                    limit: int) -> Page[T]:
    """`paginate` for a list already in ascending `key` order (a folder's listing, built
    sorted once and kept): the page starts after the cursor by bisection, so a page of a
    1,000-file folder costs a slice, not a sort."""
    after = decode_cursor(cursor)
    start = 0 if after is None else bisect.bisect_right(items, _comparable(after), key=lambda x: _comparable(key(x)))
    page = list(items[start:start + limit])
    more = start + limit < len(items)
    return Page(page, encode_cursor(key(page[-1])) if more and page else None)


def keyset(fetch: Callable[[tuple[Any, ...] | None, int], list[T]], key: Callable[[T], Sequence[Any]],
           cursor: str | None, limit: int) -> Page[T]:
    """A page the backend cuts itself (a keyset query in SQL): `fetch(after, n)` returns
    at most n items whose key sorts after `after`; one more than the page is asked for,
    to know whether a next page exists."""
    items = fetch(decode_cursor(cursor), limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return Page(items, encode_cursor(key(items[-1])) if more and items else None)


def paginate_ordered(items: Sequence[T], ident: Callable[[T], Any], cursor: str | None, limit: int) -> Page[T]:
    """A page of a list already in its order (e.g. runs ordered in SQL by a summary key):
    the cursor names the last item seen; an item gone since starts over at the top is
    avoided by keeping the order stable (ties broken by creation, then id, in SQL)."""
    after = decode_cursor(cursor)
    start = 0
    if after is not None:
        ids = [ident(x) for x in items]
        try:
            start = ids.index(after[0]) + 1
        except ValueError:
            raise InvalidInputError("the cursor's item is gone from this list; start again from the first page") \
                from None
    page = list(items[start:start + limit])
    more = start + limit < len(items)
    return Page(page, encode_cursor([ident(page[-1])]) if more and page else None)
