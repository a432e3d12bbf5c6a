"""The search language, and the catalog queries behind search, run filters, lineage and diff.

One small language serves the CLI (`lode search`), the SDK (`Api.search`, `Api.runs`) and
the web page::

    type=model metadata.val_acc>=0.9 tag:production created>2026-01-01 name~resnet
    alias:latest run.job_type=train project=zoo state=deleted -tag:stale

Terms are ANDed. A term is ``key OP value`` (OP one of ``= != > >= < <= ~``), ``tag:x`` /
``alias:x`` (``-`` in front negates), or a bare word (a name substring). Values may be
quoted (``notes~"two words"``). Queries are parsed into `Term`s, then compiled into
SQLAlchemy expressions with bound parameters: user text never becomes SQL. JSON keys
(``metadata.a.b``, ``summary.val_acc``) go through the dialect's JSON path operators;
numbers compare numerically (only against JSON numbers), other values as strings.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Text,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from lodestore.catalog.base import ManifestEntry
from lodestore.catalog.schema import (
    aliases,
    artifacts,
    manifest_entries,
    projects,
    run_inputs,
    run_outputs,
    runs,
    version_tags,
    versions,
)
from lodestore.errors import InvalidInputError

OPS = (">=", "<=", "!=", "=", ">", "<", "~", ":")
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_REL_RE = re.compile(r"(\d+)([smhdw])")
_REL_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Term:
    """One parsed condition. `typed` is True when `value` came from Python (dict filters)
    and keeps its type; False when it is query text to interpret per field."""

    key: str
    op: str
    value: Any
    negate: bool = False
    col: int = 0  # 0-based column in the query text, for error carets
    typed: bool = False


@dataclass(frozen=True)
class Query:
    text: str
    terms: tuple[Term, ...]

    def error(self, col: int, message: str) -> InvalidInputError:
        return query_error(self.text, col, message)


def query_error(text: str, col: int, message: str) -> InvalidInputError:
    """An InvalidInputError quoting the query with a caret under column `col`."""
    return InvalidInputError(f"{message} (column {col + 1})\n  {text}\n  {' ' * col}^")


# --------------------------------------------------------------------------- parsing
def parse(text: str) -> Query:
    """Tokenise and parse a query; InvalidInputError with a caret on any syntax error."""
    if not isinstance(text, str):
        raise InvalidInputError(f"a query must be a string, got {type(text).__name__}")
    terms: list[Term] = []
    i, n = 0, len(text)
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
            terms.append(Term("name", "~", value, negate, start))
            continue
        m = _KEY_RE.match(text, i)
        if m is None:
            raise query_error(text, i, f"unexpected {text[i]!r}: a term starts with a field name or a word")
        key, i = m.group(0), m.end()
        op = next((o for o in OPS if text.startswith(o, i)), None)
        if op is None:
            if i < n and not text[i].isspace():
                raise query_error(text, i, f"unexpected {text[i]!r} after {key!r}: expected an operator "
                                           f"({' '.join(OPS)}) or a space")
            if key.upper() == "AND":
                continue
            terms.append(Term("name", "~", key, negate, start))
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
        terms.append(Term(key, op, value, negate, start))
    return Query(text, tuple(terms))


def _quoted(text: str, i: int) -> tuple[str, int]:
    quote = text[i]
    j = text.find(quote, i + 1)
    if j < 0:
        raise query_error(text, i, "unterminated quote")
    return text[i + 1:j], j + 1


_MONGO_OPS = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<=",
              "$in": "in", "$nin": "nin", "$regex": "~", "$contains": "~"}


def terms_from_filters(filters: dict[str, Any] | str | None) -> tuple[str, list[Term]]:
    """A dict of Mongo-style filters (W&B's `runs(filters=...)`) or query text -> terms."""
    if filters is None:
        return "", []
    if isinstance(filters, str):
        q = parse(filters)
        return q.text, list(q.terms)
    if not isinstance(filters, dict):
        raise InvalidInputError(f"filters must be a dict or a query string, got {type(filters).__name__}")
    out: list[Term] = []
    for key, cond in filters.items():
        if key in ("$and",):
            for sub in cond:
                out.extend(terms_from_filters(sub)[1])
            continue
        if isinstance(cond, dict):
            for op, value in cond.items():
                if op not in _MONGO_OPS:
                    raise InvalidInputError(f"filter {key!r}: unknown operator {op!r}; use {', '.join(_MONGO_OPS)}")
                out.append(Term(key, _MONGO_OPS[op], value, typed=True))
        else:
            out.append(Term(key, "=", cond, typed=True))
    return repr(filters), out


# --------------------------------------------------------------------------- values
def parse_number(value: Any, what: str, sizes: bool = False) -> float:
    if isinstance(value, bool):
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


def _looks_numeric(value: Any) -> bool:
    if isinstance(value, bool):
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
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"{what}: {s!r} is not a date (2026-01-31, 2026-01-31T12:00, or 7d / 12h ago)") \
            from None
    dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return dt, dt


# --------------------------------------------------------------------------- compiling
def _glob_to_like(pattern: str) -> str:
    out = []
    for ch in pattern:
        if ch in "%_\\":
            out.append("\\" + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)


def _text(col: Any, t: Term, what: str) -> ColumnElement[bool]:
    v = str(t.value)
    if t.op in ("in", "nin"):
        vals = [str(x) for x in t.value]
        cond = col.in_(vals)
        return not_(cond) if t.op == "nin" else cond
    if t.op == "~":
        pattern = _glob_to_like(v) if any(c in v for c in "*?") else "%" + _glob_to_like(v) + "%"
        return col.like(pattern, escape="\\")
    if t.op in ("=", "!="):
        cond = col.like(_glob_to_like(v), escape="\\") if any(c in v for c in "*?") else col == v
        return not_(cond) if t.op == "!=" else cond
    return _compare(col, t.op, v)


def _compare(col: Any, op: str, v: Any) -> ColumnElement[bool]:
    return {"=": col == v, "!=": col != v, ">": col > v, ">=": col >= v, "<": col < v, "<=": col <= v}[op]


def _number(col: Any, t: Term, what: str, sizes: bool = False) -> ColumnElement[bool]:
    if t.op in ("in", "nin"):
        cond = col.in_([parse_number(x, what, sizes) for x in t.value])
        return not_(cond) if t.op == "nin" else cond
    if t.op == "~":
        raise InvalidInputError(f"{what} is a number: compare it with = != > >= < <=")
    return _compare(col, t.op, parse_number(t.value, what, sizes))


def _date(col: Any, t: Term, what: str) -> ColumnElement[bool]:
    if t.op in ("~", "in", "nin"):
        raise InvalidInputError(f"{what} is a date: compare it with = != > >= < <=")
    start, end = parse_when(t.value, what)
    if t.op == "=":
        return and_(col >= start, col < end) if end > start else col == start
    if t.op == "!=":
        return not_(and_(col >= start, col < end)) if end > start else col != start
    if t.op == ">":
        return col >= end if end > start else col > start
    if t.op == "<=":
        return col < end if end > start else col <= start
    return _compare(col, t.op, start)  # >= and < start at the beginning of the range


def _json(dialect: str, col: Any, path: list[str], t: Term, what: str) -> ColumnElement[bool]:
    """Compare a JSON value at `path`: numbers numerically (JSON numbers only), text as text."""
    if not path or any(not p for p in path):
        raise InvalidInputError(f"{what}: name a key, e.g. {what.split('.')[0]}.val_acc")
    elem = col[tuple(path)]
    kind, is_num, is_bool = _json_kind(dialect, col, path)
    as_num = json_number(dialect, col, path)
    as_text = elem.as_string()
    value = t.value
    if t.op in ("in", "nin"):
        nums = [v for v in value if _looks_numeric(v)]
        texts = [str(v) for v in value if not isinstance(v, (int, float)) or isinstance(v, bool)]
        cond = or_(as_num.in_([float(v) for v in nums]) if nums else false(),
                   as_text.in_(texts) if texts else false())
        return not_(cond) if t.op == "nin" else cond
    if t.op == "~":
        return as_text.like("%" + _glob_to_like(str(value)) + "%", escape="\\")
    if isinstance(value, bool) or (not t.typed and str(value).lower() in ("true", "false")):
        b = value if isinstance(value, bool) else str(value).lower() == "true"
        if t.op not in ("=", "!="):
            raise InvalidInputError(f"{what}: true/false compare with = or != only")
        cond = and_(is_bool, kind == ("true" if b else "false")) if dialect != "postgresql" else and_(
            is_bool, as_text == ("true" if b else "false"))
        return not_(cond) if t.op == "!=" else cond
    numeric = isinstance(value, (int, float)) if t.typed else _looks_numeric(value)
    if numeric:
        cond = _compare(as_num, t.op, float(value))
        return and_(is_num, cond) if t.op == "!=" else cond
    return _compare(as_text, t.op, str(value))


def _json_kind(dialect: str, col: Any, path: list[str]) -> tuple[Any, Any, Any]:
    """(JSON type name, is-a-number, is-a-boolean) of the value at `path`."""
    if dialect == "postgresql":
        kind = func.json_typeof(func.json_extract_path(col, *[literal(p, Text) for p in path]))
        return kind, kind == "number", kind == "boolean"
    kind = func.json_type(col, "$." + ".".join(f'"{p}"' for p in path))
    return kind, kind.in_(("integer", "real")), kind.in_(("true", "false"))


def json_number(dialect: str, col: Any, path: list[str]) -> Any:
    """The value at `path` as a float when it is a JSON number, else NULL (never a cast
    error on PostgreSQL, never "abc" read as 0 on SQLite)."""
    return case((_json_kind(dialect, col, path)[1], col[tuple(path)].as_float()), else_=None)


def _json_key(key: str, prefixes: Iterable[str]) -> tuple[str, list[str]] | None:
    for p in prefixes:
        if key.startswith(p + "."):
            return p, key[len(p) + 1:].split(".")
    return None


# Run fields, shared by the version search (as run.FIELD, the producing run) and run filters.
_RUN_TEXT = {"id": runs.c.id, "name": runs.c.name, "display_name": runs.c.name, "group": runs.c.group_name,
             "job_type": runs.c.job_type, "state": runs.c.state, "notes": runs.c.notes, "host": runs.c.host}
_RUN_DATES = {"created": runs.c.created_at, "created_at": runs.c.created_at,
              "finished": runs.c.finished_at, "finished_at": runs.c.finished_at,
              "heartbeat_at": runs.c.heartbeat_at}
_RUN_JSON = {"summary": runs.c.summary, "summary_metrics": runs.c.summary, "config": runs.c.config}
RUN_KEYS = ("id", "name", "group", "job_type", "state", "notes", "host", "project", "tag", "created",
            "finished", "exit_code", "summary.KEY", "config.KEY")


def run_condition(dialect: str, t: Term) -> ColumnElement[bool]:
    """A condition on the `runs` table (joined with `projects`)."""
    key = t.key.lower() if not t.key.startswith(("summary.", "config.", "summary_metrics.")) else t.key
    what = t.key
    if key in ("tag", "tags"):
        if t.op not in (":", "=", "!=", "~"):
            raise InvalidInputError("run tags: use tag:NAME (or -tag:NAME)")
        # tags are a JSON list: match the quoted element inside its JSON text
        cond = func.coalesce(cast(runs.c.tags, Text), "").like(
            '%"' + _glob_to_like(str(t.value)) + '"%', escape="\\")
        return not_(cond) if (t.op == "!=") != t.negate else cond
    if key in _RUN_TEXT:
        if key == "state" and str(t.value) in ("crashed",) and t.op == "=":
            cond = runs.c.state.in_(("running", "crashed"))  # refined in Python: crash is inferred
        else:
            cond = _text(_RUN_TEXT[key], t, what)
    elif key in _RUN_DATES:
        cond = _date(_RUN_DATES[key], t, what)
    elif key == "project":
        cond = _text(projects.c.name, t, what)
    elif key == "exit_code":
        cond = _number(runs.c.exit_code, t, what)
    elif (jk := _json_key(key, _RUN_JSON)) is not None:
        cond = _json(dialect, _RUN_JSON[jk[0]], jk[1], t, what)
    else:
        raise InvalidInputError(f"unknown run field {t.key!r}; use one of: {', '.join(RUN_KEYS)}")
    return not_(cond) if t.negate else cond


VERSION_KEYS = ("name", "type", "project", "state", "version", "size", "files", "digest", "description",
                "created", "tag:NAME", "alias:NAME", "metadata.KEY", "run.FIELD")


def version_condition(dialect: str, t: Term) -> ColumnElement[bool]:
    """A condition on `versions` joined with `artifacts` and `projects`."""
    key = t.key if t.key.startswith(("metadata.", "run.")) else t.key.lower()
    what = t.key
    if key in ("tag", "tags", "alias", "aliases"):
        if t.op not in (":", "=", "!="):
            raise InvalidInputError(f"{key}: use {key.rstrip('s')}:NAME (or -{key.rstrip('s')}:NAME)")
        table = version_tags if key.startswith("tag") else aliases
        col = table.c.tag if key.startswith("tag") else table.c.alias
        v = str(t.value)
        match = col.like(_glob_to_like(v), escape="\\") if any(c in v for c in "*?") else col == v
        cond = exists().where(table.c.version_id == versions.c.id, match)
        negate = (t.op == "!=") != t.negate
        return not_(cond) if negate else cond
    if key == "name":
        cond = _text(artifacts.c.name, t, what)
    elif key == "type":
        cond = _text(artifacts.c.type, t, what)
    elif key == "project":
        cond = _text(projects.c.name, t, what)
    elif key == "state":
        cond = _text(versions.c.state, t, what)
    elif key == "description":
        cond = _text(func.coalesce(versions.c.description, ""), t, what)
    elif key == "digest":
        v = str(t.value)
        cond = versions.c.digest.like(_glob_to_like(v) + "%", escape="\\") if t.op in ("=", "~") else \
            _text(versions.c.digest, t, what)
    elif key in ("version", "index", "v"):
        value = t.value[1:] if isinstance(t.value, str) and t.value.lower().startswith("v") else t.value
        cond = _number(versions.c.idx, Term(t.key, t.op, value, typed=t.typed), what)
    elif key == "size":
        cond = _number(versions.c.size, t, what, sizes=True)
    elif key in ("files", "file_count"):
        cond = _number(versions.c.file_count, t, what)
    elif key in ("created", "created_at"):
        cond = _date(versions.c.created_at, t, what)
    elif key in ("deleted", "deleted_at"):
        cond = _date(versions.c.deleted_at, t, what)
    elif key.startswith("metadata."):
        cond = _json(dialect, versions.c.metadata, key.split(".")[1:], t, what)
    elif key.startswith("run.") or key == "run":
        field = key[4:] if key.startswith("run.") else "id"
        if field == "project":  # the run's project, not the version's
            p2 = projects.alias("run_project")
            cond = exists().where(runs.c.id == versions.c.created_by_run, runs.c.project_id == p2.c.id,
                                  _text(p2.c.name, t, what))
        else:
            sub = run_condition(dialect, Term(field, t.op, t.value, False, t.col, t.typed))
            cond = exists().where(runs.c.id == versions.c.created_by_run, sub)
    else:
        raise InvalidInputError(f"unknown field {t.key!r}; use one of: {', '.join(VERSION_KEYS)}")
    return not_(cond) if t.negate else cond


def _with_caret(q: Query, t: Term, fn, *args):
    """Run a compiler; a value error is re-raised pointing at the offending term."""
    try:
        return fn(*args)
    except InvalidInputError as e:
        if not q.text or "\n  " in str(e):
            raise
        raise q.error(t.col, str(e)) from None


def version_ids_query(dialect: str, q: Query, limit: int | None = None):
    """SELECT versions.id matching the query, newest first. Deleted versions are left out
    unless the query mentions `state`."""
    conds = [_with_caret(q, t, version_condition, dialect, t) for t in q.terms]
    if not any(t.key.lower() == "state" for t in q.terms):
        conds.append(versions.c.state != "deleted")
    stmt = (
        select(versions.c.id)
        .join(artifacts, artifacts.c.id == versions.c.artifact_id)
        .join(projects, projects.c.id == artifacts.c.project_id)
        .where(and_(true(), *conds))
        .order_by(versions.c.created_at.desc(), versions.c.id.desc())
    )
    return stmt.limit(limit) if limit is not None else stmt


def run_ids_query(dialect: str, text: str, terms: list[Term], project: str | None = None,
                  order: str | None = None, limit: int | None = None):
    q = Query(text, tuple(terms))
    conds = [_with_caret(q, t, run_condition, dialect, t) for t in terms]
    if project is not None:
        conds.append(projects.c.name == project)
    stmt = select(runs.c.id).join(projects, projects.c.id == runs.c.project_id).where(and_(true(), *conds))
    stmt = stmt.order_by(*run_order(dialect, order), runs.c.created_at, runs.c.id)
    return stmt.limit(limit) if limit is not None else stmt


def run_order(dialect: str, order: str | None) -> list[Any]:
    """``"-summary.val_acc"`` (descending), ``"+created_at"`` / ``"created_at"`` (ascending)."""
    if not order:
        return []
    desc = order.startswith("-")
    key = order.lstrip("+-")
    if key in _RUN_TEXT:
        col = _RUN_TEXT[key]
    elif key in _RUN_DATES:
        col = _RUN_DATES[key]
    elif (jk := _json_key(key, _RUN_JSON)) is not None:
        col = json_number(dialect, _RUN_JSON[jk[0]], jk[1])
    else:
        raise InvalidInputError(f"cannot order runs by {key!r}; use e.g. -summary.val_acc, created_at, name")
    return [(col.desc() if desc else col.asc()).nulls_last()]


# --------------------------------------------------------------------------- lineage
def lineage_hop(conn: Connection, version_ids: set[int], direction: str) -> list[tuple[str, int, int | None]]:
    """One hop of the graph from a set of versions, in two queries whatever its size.

    "up": (run, version, input) for each producing run and each of its inputs (input may
    be None when the run used nothing). "down": (run, version, output) for each run that
    used a version and each of its outputs. Returned as (run_id, from_version, to_version).
    """
    if not version_ids:
        return []
    ids = sorted(version_ids)
    out: list[tuple[str, int, int | None]] = []
    if direction == "up":
        producers = conn.execute(
            select(run_outputs.c.run_id, run_outputs.c.version_id).where(run_outputs.c.version_id.in_(ids))
        ).all()
        # versions committed by a run that is not (or no longer) linked in run_outputs
        producers += conn.execute(
            select(versions.c.created_by_run, versions.c.id).where(
                versions.c.id.in_(ids), versions.c.created_by_run.is_not(None))
        ).all()
        producers = sorted(set(producers))
        run_ids = sorted({r for r, _ in producers})
        inputs: dict[str, list[int]] = defaultdict(list)
        if run_ids:
            for rid, vid in conn.execute(
                select(run_inputs.c.run_id, run_inputs.c.version_id).where(run_inputs.c.run_id.in_(run_ids))
                .order_by(run_inputs.c.at, run_inputs.c.version_id)
            ):
                inputs[rid].append(vid)
        for rid, vid in producers:
            out.extend((rid, vid, src) for src in inputs[rid]) if inputs[rid] else out.append((rid, vid, None))
    else:
        users = conn.execute(
            select(run_inputs.c.run_id, run_inputs.c.version_id).where(run_inputs.c.version_id.in_(ids))
            .order_by(run_inputs.c.at, run_inputs.c.run_id)
        ).all()
        run_ids = sorted({r for r, _ in users})
        outputs: dict[str, list[int]] = defaultdict(list)
        if run_ids:
            for rid, vid in conn.execute(
                select(run_outputs.c.run_id, run_outputs.c.version_id).where(run_outputs.c.run_id.in_(run_ids))
                .order_by(run_outputs.c.at, run_outputs.c.version_id)
            ):
                outputs[rid].append(vid)
        for rid, vid in users:
            out.extend((rid, vid, o) for o in outputs[rid]) if outputs[rid] else out.append((rid, vid, None))
    return out


# --------------------------------------------------------------------------- diff
def diff_entries(conn: Connection, a: int, b: int) -> tuple[list[ManifestEntry], list[ManifestEntry],
                                                             list[tuple[ManifestEntry, ManifestEntry]]]:
    """(removed, added, modified) between two manifests, in SQL: a full outer join on path
    emulated with two left joins over the (version_id, path) primary key, each one index
    probe per row. Rows are unpacked positionally (no per-row attribute lookups): with
    every file of a 100,000-file version changed, building the entries is most of the cost."""
    ea, eb = manifest_entries.alias("ea"), manifest_entries.alias("eb")
    left = conn.execute(
        select(ea.c.path, ea.c.digest, ea.c.size, eb.c.digest, eb.c.size)
        .select_from(ea.outerjoin(eb, and_(eb.c.version_id == b, eb.c.path == ea.c.path)))
        .where(ea.c.version_id == a, or_(eb.c.path.is_(None), eb.c.digest != ea.c.digest))
        .order_by(ea.c.path)
    ).all()
    entry = ManifestEntry
    removed: list[ManifestEntry] = []
    modified: list[tuple[ManifestEntry, ManifestEntry]] = []
    for path, digest, size, digest2, size2 in left:
        if digest2 is None:
            removed.append(entry(path, digest, size))
        else:
            modified.append((entry(path, digest, size), entry(path, digest2, size2)))
    added = [entry(path, digest, size) for path, digest, size in conn.execute(
        select(eb.c.path, eb.c.digest, eb.c.size)
        .select_from(eb.outerjoin(ea, and_(ea.c.version_id == a, ea.c.path == eb.c.path)))
        .where(eb.c.version_id == b, ea.c.path.is_(None))
        .order_by(eb.c.path)
    )]
    return removed, added, modified
