"""The search language: text (and Mongo-style dict filters) to a tree of `Term`s.

::

    type=model metadata.val_acc>=0.9 tag:production created>2026-01-01 name~resnet
    alias:latest run.job_type=train project=zoo state=deleted -tag:stale
    type=model tag:production OR type=dataset NOT tag:raw

Terms side by side are ANDed (``AND`` may be written). ``OR`` separates groups and binds
looser than AND: ``a b OR c`` is (a AND b) OR c. ``NOT`` (or ``-`` in front) negates the
next term. There are no parentheses. A term is ``key OP value`` (OP one of
``= != > >= < <= ~``), ``tag:x`` / ``alias:x``, or a bare word (a name substring);
values may be quoted (``notes~"two words"``), and a quoted bare word is always a name
search (``"OR"`` finds names containing OR). The keywords are case-insensitive.

Keys follow one rule everywhere (query text, dict filters, ``order=``): a letter or
``_``, then letters, digits and ``_ . - /``, with no empty dotted part. This module only
parses; `lodestore.catalog.query` compiles the tree to SQL with bound parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lodestore.errors import InvalidInputError

OPS = (">=", "<=", "!=", "=", ">", "<", "~", ":")
KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*")
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_REL_RE = re.compile(r"(\d+)([smhdw])")
_REL_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Bounds checked before any SQL is built: each term is a condition evaluated per row, and a
# query of 100,000 terms used to run for a minute before failing deep inside SQLite.
MAX_QUERY_CHARS = 10_000
MAX_QUERY_TERMS = 200
MAX_LIST_VALUES = 10_000  # values in all $in / $nin lists of one filter together
MAX_FILTER_DEPTH = 20  # nested $and / $or dicts


@dataclass(frozen=True)
class Term:
    """One parsed condition. `typed` is True when `value` came from Python (dict filters)
    and keeps its type (None means "is null"); False when it is query text to interpret
    per field."""

    key: str
    op: str
    value: Any
    negate: bool = False
    col: int = 0  # 0-based column in the query text, for error carets
    typed: bool = False


@dataclass(frozen=True)
class AllOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Node, ...]


Node = Term | AllOf | AnyOf


def iter_terms(node: Node):
    if isinstance(node, Term):
        yield node
    else:
        for item in node.items:
            yield from iter_terms(item)


@dataclass(frozen=True)
class Query:
    text: str
    root: Node

    @property
    def terms(self) -> tuple[Term, ...]:
        """Every term, in order, whatever the ANDs and ORs around them."""
        return tuple(iter_terms(self.root))

    def error(self, col: int, message: str) -> InvalidInputError:
        return query_error(self.text, col, message)


def query_error(text: str, col: int, message: str) -> InvalidInputError:
    """An InvalidInputError quoting the query with a caret under column `col`."""
    error = InvalidInputError(f"{message} (column {col + 1})\n  {text}\n  {' ' * col}^")
    error.column = col + 1  # a web page puts its own caret there
    return error


def check_key(key: Any, what: str = "field") -> str:
    """The one key rule (see module docstring); InvalidInputError otherwise. A key that
    passes is safe inside a JSON path: it holds no quote, backslash or bracket."""
    if not isinstance(key, str) or KEY_RE.fullmatch(key) is None or "" in key.split("."):
        raise InvalidInputError(
            f"bad {what} {key!r}: a key is a letter or '_', then letters, digits and _ . - /, "
            f"with dots between non-empty parts (e.g. summary.val_acc, metadata.train/loss)")
    return key


# --------------------------------------------------------------------------- text
def parse(text: str) -> Query:
    """Tokenise and parse a query; InvalidInputError with a caret on any syntax error."""
    if not isinstance(text, str):
        raise InvalidInputError(f"a query must be a string, got {type(text).__name__}")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidInputError(
            f"a query is at most {MAX_QUERY_CHARS:,} characters; this one has {len(text):,}")
    groups: list[list[Term]] = []
    current: list[Term] = []
    not_col: int | None = None  # column of a NOT waiting for its term
    or_col: int | None = None  # column of the last OR
    and_col: int | None = None  # column of an AND waiting for its right-hand term
    i, n = 0, len(text)

    def add(term: Term) -> None:
        nonlocal not_col, and_col
        and_col = None
        if not_col is not None:
            term = Term(term.key, term.op, term.value, not term.negate, term.col, term.typed)
            not_col = None
        current.append(term)

    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        negate = False
        if text[i] == "-" and i + 1 < n and not text[i + 1].isspace():
            negate, i = True, i + 1
        if text[i] in "\"'":
            value, i = _quoted(text, i)
            add(Term("name", "~", value, negate, start))
            continue
        m = KEY_RE.match(text, i)
        if m is None:
            raise query_error(text, i, f"unexpected {text[i]!r}: a term starts with a field name or a word "
                                       f"(no parentheses: OR binds looser than AND)")
        key, i = m.group(0), m.end()
        op = next((o for o in OPS if text.startswith(o, i)), None)
        if op is None:
            if i < n and not text[i].isspace():
                raise query_error(text, i, f"unexpected {text[i]!r} after {key!r}: expected an operator "
                                           f"({' '.join(OPS)}) or a space")
            word = key.upper()
            if word in ("AND", "OR", "NOT") and not negate:
                if not_col is not None:
                    raise query_error(text, not_col, "NOT must be followed by a term")
                if and_col is not None and word != "NOT":  # `a AND NOT b` is fine
                    raise query_error(text, and_col, "AND needs a term on each side")
                if word == "AND" and not current:
                    raise query_error(text, start, "AND needs a term on each side")
                if word == "AND":
                    and_col = start
                elif word == "OR":
                    if not current:
                        raise query_error(text, start, "OR needs a term on each side")
                    groups.append(current)
                    current, or_col = [], start
                elif word == "NOT":
                    not_col = start
                continue
            add(Term("name", "~", key, negate, start))
            continue
        op_col = i
        i += len(op)
        if i >= n or text[i].isspace():
            raise query_error(text, i, f"missing value after {key}{op}")
        if text[i] in "\"'":
            value, i = _quoted(text, i)
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            value, i = text[i:j], j
            at = next((k for k, c in enumerate(value) if c in "=<>"), None)
            if at is not None:
                raise query_error(text, i - len(value) + at, f"unexpected {value[at]!r} in value {value!r}")
        if op == ":" and key.lower() not in ("tag", "alias", "tags", "aliases"):
            raise query_error(text, op_col, f"':' is for tag:NAME and alias:NAME; use {key}=VALUE")
        if "" in key.split("."):
            raise query_error(text, start + negate, f"bad field {key!r}: empty part between dots")
        add(Term(key, op, value, negate, start))
    if not_col is not None:
        raise query_error(text, not_col, "NOT must be followed by a term")
    if and_col is not None:
        raise query_error(text, and_col, "AND needs a term on each side")
    if groups and not current:
        raise query_error(text, or_col or 0, "OR needs a term on each side")
    if not groups:
        return within_bounds(Query(text, AllOf(tuple(current))))
    groups.append(current)
    return within_bounds(Query(text, AnyOf(tuple(AllOf(tuple(g)) for g in groups))))


def _quoted(text: str, i: int) -> tuple[str, int]:
    quote = text[i]
    j = text.find(quote, i + 1)
    if j < 0:
        raise query_error(text, i, "unterminated quote")
    return text[i + 1:j], j + 1


# --------------------------------------------------------------------------- dicts
MONGO_OPS = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<=",
             "$in": "in", "$nin": "nin", "$regex": "~", "$contains": "~"}


def filters_query(filters: dict[str, Any] | str | None) -> Query:
    """A dict of Mongo-style filters (W&B's ``runs(filters=...)``: ``{"group": "g",
    "summary.acc": {"$gte": 0.9}, "$or": [{...}, {...}]}``) or query text -> a Query."""
    if filters is None:
        return Query("", AllOf(()))
    if isinstance(filters, str):
        return parse(filters)
    return within_bounds(Query("", _dict_node(filters)))


def within_bounds(q: Query) -> Query:
    """`q`, or InvalidInputError if it has more terms (or list values) than we run."""
    terms = q.terms
    if len(terms) > MAX_QUERY_TERMS:
        raise InvalidInputError(f"a query has at most {MAX_QUERY_TERMS} terms; this one has {len(terms):,}")
    values = sum(len(t.value) for t in terms if t.op in ("in", "nin") and isinstance(t.value, list))
    if values > MAX_LIST_VALUES:
        raise InvalidInputError(
            f"a filter's $in / $nin lists hold at most {MAX_LIST_VALUES:,} values together; "
            f"this one has {values:,}")
    return q


def _dict_node(filters: Any, depth: int = 0) -> Node:
    if depth > MAX_FILTER_DEPTH:
        raise InvalidInputError(f"filters nest $and / $or at most {MAX_FILTER_DEPTH} deep")
    if not isinstance(filters, dict):
        raise InvalidInputError(f"filters must be a dict or a query string, got {type(filters).__name__}")
    out: list[Node] = []
    for key, cond in filters.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, (list, tuple)) or not cond:
                raise InvalidInputError(f"filter {key!r} takes a non-empty list of filter dicts")
            items = tuple(_dict_node(sub, depth + 1) for sub in cond)
            out.append(AllOf(items) if key == "$and" else AnyOf(items))
            continue
        check_key(key, "filter key")
        if isinstance(cond, dict):
            for op, value in cond.items():
                if op not in MONGO_OPS:
                    raise InvalidInputError(
                        f"filter {key!r}: unknown operator {op!r}; use {', '.join(MONGO_OPS)}")
                if MONGO_OPS[op] in ("in", "nin") and (isinstance(value, (str, bytes, dict))
                                                       or not hasattr(value, "__iter__")):
                    raise InvalidInputError(f"filter {key!r}: {op} takes a list of values, got {value!r}")
                if value is None and MONGO_OPS[op] not in ("=", "!="):
                    raise InvalidInputError(f"filter {key!r}: None compares with $eq / $ne only")
                out.append(Term(key, MONGO_OPS[op], list(value) if MONGO_OPS[op] in ("in", "nin") else value,
                                typed=True))
        else:
            out.append(Term(key, "=", cond, typed=True))
    return AllOf(tuple(out))


# --------------------------------------------------------------------------- values
def parse_number(value: Any, what: str, sizes: bool = False) -> float:
    if isinstance(value, bool) or value is None:
        raise InvalidInputError(f"{what}: expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return value
    s = str(value).strip().replace("_", "").replace(",", "")
    if sizes:
        m = re.fullmatch(r"([0-9.]+)\s*([A-Za-z]*)", s)
        if m and (m.group(2).lower() in _SIZE_UNITS or not m.group(2)):
            try:
                return float(m.group(1)) * _SIZE_UNITS.get(m.group(2).lower() or "b", 1)
            except ValueError:
                pass
    try:
        return float(s)
    except ValueError:
        raise InvalidInputError(f"{what}: expected a number, got {value!r}") from None


def looks_numeric(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, (int, float)):
        return True
    try:
        float(str(value))
        return True
    except ValueError:
        return False


def parse_when(value: Any, what: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """A date/time as a half-open UTC range [start, end): ``2026-01-01`` is that whole day,
    ``2026-01-01T12:00`` an instant, ``7d`` / ``12h`` the instant that long ago."""
    if isinstance(value, datetime):
        v = value if value.tzinfo else value.replace(tzinfo=UTC)
        return v, v
    if isinstance(value, date):
        start = datetime(value.year, value.month, value.day, tzinfo=UTC)
        return start, start + timedelta(days=1)
    s = str(value).strip()
    m = _REL_RE.fullmatch(s)
    if m:
        at = (now or datetime.now(UTC)) - timedelta(**{_REL_UNITS[m.group(2)]: int(m.group(1))})
        return at, at
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            d = date.fromisoformat(s)
            start = datetime(d.year, d.month, d.day, tzinfo=UTC)
            return start, start + timedelta(days=1)
        dt = datetime.fromisoformat(s)  # 3.11 reads a trailing Z as UTC
    except ValueError:
        raise InvalidInputError(
            f"{what}: {s!r} is not a date (2026-01-31, 2026-01-31T12:00, or 7d / 12h ago)") from None
    dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return dt, dt
