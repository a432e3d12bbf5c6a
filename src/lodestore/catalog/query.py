"""Compiling the search language to SQL: the queries behind search and run filters
(lineage hops: `catalog.lineage_query`; manifest diffs: `catalog.diff_pages`).

The language (parsed in `lodestore.catalog.query_parse`) serves the CLI (`lode search`),
the SDK (`Api.search`, `Api.runs`) and the web page::

    type=model metadata.val_acc>=0.9 tag:production created>2026-01-01 name~resnet
    alias:latest run.job_type=train project=zoo state=deleted -tag:stale OR type=dataset

The parsed tree is compiled into SQLAlchemy expressions with bound parameters: user
text never becomes SQL. The same expressions run on SQLite and PostgreSQL; where the two
differ (LIKE and case, byte-wise text, JSON paths) the compiler asks `catalog.dialect`.
JSON keys (``metadata.a.b``, ``summary.val_acc``) go through the dialect's JSON path
operators; numbers compare numerically (only against JSON numbers),
other values as strings. ``a!=b`` is exactly NOT ``a=b``, so it also holds when `a` is
missing (NULL), as in Mongo filters; ``{"group": None}`` means "is NULL".

Indexes (schema.py) serve the selective terms: type, name, project, created, tag:,
alias:, digest, run group/job_type/state. Comparisons inside JSON (``metadata.*``,
``summary.*``, ``config.*``) and substring matches (``name~x``) cannot use an index:
SQLite evaluates them on each candidate row the other terms leave, one pass in SQL, no
rows loaded into Python.

Run state: "crashed" is not stored (a SIGKILLed run cannot say it died); it is a
"running" run whose heartbeat is older than a bound `Liveness.stale_before`, unless it
runs on this host in a process still alive. That rule is a SQL CASE over bound values,
so every operator (``=``, ``!=``, ``$in``, ``$nin``, NOT, ``run.state`` in version
search) gives the same answer `PublicRun.state` reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from lodestore.catalog.dialect import bytewise, escape_like, json_is, json_kind, like, readable_json
from lodestore.catalog.query_parse import (  # noqa: F401  (re-exported: the language's public names)
    OPS,
    AllOf,
    AnyOf,
    Node,
    Query,
    Term,
    check_key,
    filters_query,
    iter_terms,
    looks_numeric,
    parse,
    parse_number,
    parse_when,
    query_error,
)
from lodestore.catalog.schema import (
    RUN_STATES,
    VERSION_STATES,
    UTCDateTime,
    aliases,
    artifacts,
    projects,
    runs,
    version_tags,
    versions,
)
from lodestore.errors import InvalidInputError


@dataclass(frozen=True)
class Liveness:
    """What decides "crashed" (see module docstring), as bound values: a "running" run
    whose last heartbeat is before `stale_before` is crashed unless its host is `host`
    and its pid is in `alive_pids`. The caller gives `pid_alive`; the catalog asks it
    about the few stale runs on this host (`bind_liveness`) before the real query."""

    stale_before: datetime
    host: str
    pid_alive: Callable[[int], bool] | None = None
    alive_pids: tuple[int, ...] = ()


# A run's last sign of life: its latest heartbeat, else its start.
_last_sign_of_life = func.coalesce(runs.c.heartbeat_at, runs.c.created_at)


def bind_liveness(conn: Connection, live: Liveness | None) -> Liveness | None:
    """`live` with `alive_pids` filled in: the stale "running" runs on this host whose
    process is still alive (a suspended job). One small indexed query."""
    if live is None or live.pid_alive is None:
        return live
    pids = conn.execute(
        select(runs.c.pid).distinct().where(
            runs.c.state == "running", _last_sign_of_life < literal(live.stale_before, UTCDateTime()),
            runs.c.host == live.host, runs.c.pid.is_not(None))
    ).scalars()
    return replace(live, pid_alive=None, alive_pids=tuple(sorted(p for p in pids if live.pid_alive(p))))


def run_state_expr(live: Liveness | None) -> Any:
    """The reported state of a run as SQL (stored state when `live` is None)."""
    if live is None:
        return runs.c.state
    held_here = and_(func.coalesce(runs.c.host, "") == live.host,
                     func.coalesce(runs.c.pid, -1).in_(live.alive_pids))
    crashed = and_(runs.c.state == "running", _last_sign_of_life < literal(live.stale_before, UTCDateTime()),
                   not_(held_here))
    return case((crashed, literal("crashed")), else_=runs.c.state)


# --------------------------------------------------------------------------- compiling
def _glob_to_like(pattern: str) -> str:
    """A glob (``*``, ``?``) as a LIKE pattern; every other character matches itself."""
    return "".join("%" if ch == "*" else "_" if ch == "?" else escape_like(ch) for ch in pattern)


def _not(cond: Any) -> ColumnElement[bool]:
    """NOT that treats an unknown (NULL) comparison as false first, so the negation of a
    condition on a missing value is true (``group!=x`` matches runs with no group)."""
    return not_(func.coalesce(cond, false()))


def _is_null(col: Any, t: Term, what: str) -> ColumnElement[bool] | None:
    """``{"key": None}`` / ``{"key": {"$ne": None}}``: IS [NOT] NULL. None otherwise."""
    if not (t.typed and t.value is None):
        return None
    if t.op not in ("=", "!="):
        raise InvalidInputError(f"{what}: None compares with = / != ($eq / $ne) only")
    return col.is_(None) if t.op == "=" else col.is_not(None)


def _text(dialect: str, col: Any, t: Term, what: str) -> ColumnElement[bool]:
    if (null := _is_null(col, t, what)) is not None:
        return null
    if t.op in ("in", "nin"):
        cond = col.in_([str(x) for x in t.value])
        return _not(cond) if t.op == "nin" else cond
    v = str(t.value)
    if t.op == "~":
        pattern = _glob_to_like(v) if any(c in v for c in "*?") else "%" + _glob_to_like(v) + "%"
        return like(dialect, col, pattern)
    if t.op in ("=", "!="):
        cond = like(dialect, col, _glob_to_like(v)) if any(c in v for c in "*?") else col == v
        return _not(cond) if t.op == "!=" else cond
    return _compare(col, t.op, v)


def _compare(col: Any, op: str, v: Any) -> ColumnElement[bool]:
    if op == "!=":
        return _not(col == v)
    return {"=": col == v, ">": col > v, ">=": col >= v, "<": col < v, "<=": col <= v}[op]


def _number(col: Any, t: Term, what: str, sizes: bool = False) -> ColumnElement[bool]:
    if (null := _is_null(col, t, what)) is not None:
        return null
    if t.op in ("in", "nin"):
        cond = col.in_([parse_number(x, what, sizes) for x in t.value])
        return _not(cond) if t.op == "nin" else cond
    if t.op == "~":
        raise InvalidInputError(f"{what} is a number: compare it with = != > >= < <=")
    return _compare(col, t.op, parse_number(t.value, what, sizes))


def _date(col: Any, t: Term, what: str) -> ColumnElement[bool]:
    if (null := _is_null(col, t, what)) is not None:
        return null
    if t.op in ("~", "in", "nin"):
        raise InvalidInputError(f"{what} is a date: compare it with = != > >= < <=")
    start, end = parse_when(t.value, what)
    if t.op in ("=", "!="):
        cond = and_(col >= start, col < end) if end > start else col == start
        return _not(cond) if t.op == "!=" else cond
    if t.op == ">":
        return col >= end if end > start else col > start
    if t.op == "<=":
        return col < end if end > start else col <= start
    return _compare(col, t.op, start)  # >= and < start at the beginning of the range


def _state(dialect: str, col: Any, t: Term, what: str, states: tuple[str, ...]) -> ColumnElement[bool]:
    """A state compared with text rules, but a misspelt state is an error, not silence."""
    values = t.value if t.op in ("in", "nin") else [t.value]
    for v in values:
        if t.op != "~" and not any(c in str(v) for c in "*?") and str(v) not in states:
            raise InvalidInputError(f"{what}: {v!r} is not a state; states are {', '.join(states)}")
    return _text(dialect, col, t, what)


def _json(dialect: str, col: Any, path: list[str], t: Term, what: str) -> ColumnElement[bool]:
    """Compare a JSON value at `path`: numbers numerically (JSON numbers only), text as text."""
    col = readable_json(dialect, col)
    if not path or any(not p for p in path):
        raise InvalidInputError(f"{what}: name a key, e.g. {what.split('.')[0]}.val_acc")
    check_key(".".join(path), f"{what.split('.')[0]} key")  # no quote can reach the JSON path
    elem = col[tuple(path)]
    as_num = json_number(dialect, col, path)
    as_text = bytewise(dialect, elem.as_string())
    value = t.value
    if (null := _is_null(as_text, t, what)) is not None:  # missing, or JSON null
        return null
    if t.op in ("in", "nin"):
        nums = [v for v in value if looks_numeric(v)]
        texts = [str(v) for v in value if not isinstance(v, (int, float)) or isinstance(v, bool)]
        cond = or_(as_num.in_([float(v) for v in nums]) if nums else false(),
                   as_text.in_(texts) if texts else false())
        return _not(cond) if t.op == "nin" else cond
    if t.op == "~":
        return like(dialect, as_text, "%" + _glob_to_like(str(value)) + "%")
    if isinstance(value, bool) or (not t.typed and str(value).lower() in ("true", "false")):
        b = value if isinstance(value, bool) else str(value).lower() == "true"
        if t.op not in ("=", "!="):
            raise InvalidInputError(f"{what}: true/false compare with = or != only")
        cond = json_is(dialect, col, path, b)
        return _not(cond) if t.op == "!=" else cond
    numeric = isinstance(value, (int, float)) if t.typed else looks_numeric(value)
    if numeric:
        return _compare(as_num, t.op, float(value))
    return _compare(as_text, t.op, str(value))


def json_number(dialect: str, col: Any, path: list[str]) -> Any:
    """The value at `path` as a float when it is a JSON number, else NULL (never a cast
    error on PostgreSQL, never "abc" read as 0 on SQLite)."""
    return case((json_kind(dialect, col, path)[1], col[tuple(path)].as_float()), else_=None)


def _json_key(key: str, prefixes: tuple[str, ...] | dict[str, Any]) -> tuple[str, list[str]] | None:
    for p in prefixes:
        if key.startswith(p + "."):
            return p, key[len(p) + 1:].split(".")
    return None


# Run fields, shared by the version search (as run.FIELD, the producing run) and run filters.
_RUN_TEXT = {"id": runs.c.id, "name": runs.c.name, "display_name": runs.c.name, "group": runs.c.group_name,
             "job_type": runs.c.job_type, "notes": runs.c.notes, "host": runs.c.host}
_RUN_DATES = {"created": runs.c.created_at, "created_at": runs.c.created_at,
              "finished": runs.c.finished_at, "finished_at": runs.c.finished_at,
              "heartbeat_at": runs.c.heartbeat_at}
_RUN_JSON = {"summary": runs.c.summary, "summary_metrics": runs.c.summary, "config": runs.c.config}
RUN_KEYS = ("id", "name", "group", "job_type", "state", "notes", "host", "project", "tag", "created",
            "finished", "exit_code", "summary.KEY", "config.KEY")


def run_condition(dialect: str, t: Term, live: Liveness | None = None) -> ColumnElement[bool]:
    """A condition on the `runs` table (joined with `projects`)."""
    key = t.key.lower() if not t.key.startswith(("summary.", "config.", "summary_metrics.")) else t.key
    what = t.key
    cond: ColumnElement[bool]
    if key in ("tag", "tags"):
        if t.op not in (":", "=", "!=", "~") or t.value is None:
            raise InvalidInputError("run tags: use tag:NAME (or -tag:NAME)")
        # tags are a JSON list: match the quoted element inside its JSON text
        cond = like(dialect, func.coalesce(cast(runs.c.tags, Text), ""), '%"' + _glob_to_like(str(t.value)) + '"%')
        return _not(cond) if (t.op == "!=") != t.negate else cond
    if key == "state":
        cond = _state(dialect, run_state_expr(live), t, what, RUN_STATES)
    elif key in _RUN_TEXT:
        cond = _text(dialect, _RUN_TEXT[key], t, what)
    elif key in _RUN_DATES:
        cond = _date(_RUN_DATES[key], t, what)
    elif key == "project":
        cond = _text(dialect, projects.c.name, t, what)
    elif key == "exit_code":
        cond = _number(runs.c.exit_code, t, what)
    elif (jk := _json_key(key, _RUN_JSON)) is not None:
        cond = _json(dialect, _RUN_JSON[jk[0]], jk[1], t, what)
    else:
        raise InvalidInputError(f"unknown run field {t.key!r}; use one of: {', '.join(RUN_KEYS)}")
    return _not(cond) if t.negate else cond


VERSION_KEYS = ("name", "type", "project", "state", "version", "size", "files", "digest", "description",
                "created", "tag:NAME", "alias:NAME", "metadata.KEY", "run.FIELD")


def version_condition(dialect: str, t: Term, live: Liveness | None = None) -> ColumnElement[bool]:
    """A condition on `versions` joined with `artifacts` and `projects`."""
    key = t.key if t.key.startswith(("metadata.", "run.")) else t.key.lower()
    what = t.key
    cond: ColumnElement[bool]
    if key in ("tag", "tags", "alias", "aliases"):
        if t.op not in (":", "=", "!="):
            raise InvalidInputError(f"{key}: use {key.rstrip('s')}:NAME (or -{key.rstrip('s')}:NAME)")
        table = version_tags if key.startswith("tag") else aliases
        col = table.c.tag if key.startswith("tag") else table.c.alias
        v = str(t.value)
        match = like(dialect, col, _glob_to_like(v)) if any(c in v for c in "*?") else col == v
        # IN (uncorrelated subquery), not a correlated EXISTS: SQLite then reads the few
        # matching rows from the tag/alias index instead of probing once per version.
        cond = versions.c.id.in_(select(table.c.version_id).where(match))
        negate = (t.op == "!=") != t.negate
        return not_(cond) if negate else cond
    if key == "name":
        cond = _text(dialect, artifacts.c.name, t, what)
    elif key == "type":
        cond = _text(dialect, artifacts.c.type, t, what)
    elif key == "project":
        cond = _text(dialect, projects.c.name, t, what)
    elif key == "state":
        cond = _state(dialect, versions.c.state, t, what, VERSION_STATES)
    elif key == "description":
        cond = _text(dialect, func.coalesce(versions.c.description, ""), t, what)
    elif key == "digest":
        v = str(t.value)
        if t.op in ("=", "~") and v and not any(c in v for c in "*?"):
            # a prefix as a range, which the digest index serves (LIKE would scan)
            cond = and_(versions.c.digest >= v, versions.c.digest < v[:-1] + chr(ord(v[-1]) + 1))
        elif t.op in ("=", "~"):
            cond = like(dialect, versions.c.digest, _glob_to_like(v) + "%")
        else:
            cond = _text(dialect, versions.c.digest, t, what)
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
        # IN (runs matching), not a correlated EXISTS: the run indexes (group, job_type,
        # state) pick the runs, then ix_versions_created_by_run their versions.
        if field == "project":  # the run's project, not the version's
            p2 = projects.alias("run_project")
            producers = (select(runs.c.id).join(p2, p2.c.id == runs.c.project_id)
                         .where(_text(dialect, p2.c.name, t, what)))
        else:
            sub = run_condition(dialect, Term(field, t.op, t.value, False, t.col, t.typed), live)
            producers = select(runs.c.id).where(sub)
        cond = versions.c.created_by_run.in_(producers)
    else:
        raise InvalidInputError(f"unknown field {t.key!r}; use one of: {', '.join(VERSION_KEYS)}")
    return _not(cond) if t.negate else cond


def _with_caret(q: Query, t: Term, fn, *args):
    """Run a compiler; a value error is re-raised pointing at the offending term."""
    try:
        return fn(*args)
    except InvalidInputError as e:
        if not q.text or "\n  " in str(e):
            raise
        raise q.error(t.col, str(e)) from None


def compile_node(node: Node, leaf: Callable[[Term], ColumnElement[bool]]) -> ColumnElement[bool]:
    if isinstance(node, Term):
        return leaf(node)
    parts = [compile_node(n, leaf) for n in node.items]
    return and_(true(), *parts) if isinstance(node, AllOf) else or_(false(), *parts)


def mentions(node: Node, *keys: str) -> bool:
    return any(t.key.lower() in keys for t in iter_terms(node))


def version_ids_query(dialect: str, q: Query, limit: int | None = None, live: Liveness | None = None):
    """SELECT versions.id matching the query, newest first. Deleted versions are left out
    of each OR branch that does not mention `state`."""
    def leaf(t: Term) -> ColumnElement[bool]:
        return _with_caret(q, t, version_condition, dialect, t, live)

    branches = q.root.items if isinstance(q.root, AnyOf) else (q.root,)
    conds = []
    for branch in branches:
        cond = compile_node(branch, leaf)
        if not mentions(branch, "state"):
            cond = and_(cond, versions.c.state != "deleted")
        conds.append(cond)
    stmt = (
        select(versions.c.id)
        .join(artifacts, artifacts.c.id == versions.c.artifact_id)
        .join(projects, projects.c.id == artifacts.c.project_id)
        .where(or_(*conds))
        .order_by(versions.c.created_at.desc(), versions.c.id.desc())
    )
    return stmt.limit(limit) if limit is not None else stmt


def run_ids_query(dialect: str, q: Query, project: str | None = None, order: str | None = None,
                  limit: int | None = None, live: Liveness | None = None):
    cond = compile_node(q.root, lambda t: _with_caret(q, t, run_condition, dialect, t, live))
    if project is not None:
        cond = and_(cond, projects.c.name == project)
    stmt = select(runs.c.id).join(projects, projects.c.id == runs.c.project_id).where(cond)
    stmt = stmt.order_by(*run_order(dialect, order, live), runs.c.created_at, runs.c.id)
    return stmt.limit(limit) if limit is not None else stmt


def run_order(dialect: str, order: str | None, live: Liveness | None = None) -> list[Any]:
    """``"-summary.val_acc"`` (descending), ``"+created_at"`` / ``"created_at"`` (ascending)."""
    if not order:
        return []
    if not isinstance(order, str):
        raise InvalidInputError(f"order must be a string like '-summary.val_acc', got {type(order).__name__}")
    desc = order.startswith("-")
    key = check_key(order[1:] if order[:1] in "+-" else order, "order key")
    if key == "state":
        col = run_state_expr(live)
    elif key in _RUN_TEXT:
        col = _RUN_TEXT[key]
    elif key in _RUN_DATES:
        col = _RUN_DATES[key]
    elif key == "exit_code":
        col = runs.c.exit_code
    elif (jk := _json_key(key, _RUN_JSON)) is not None and all(jk[1]):
        col = json_number(dialect, readable_json(dialect, _RUN_JSON[jk[0]]), jk[1])
    else:
        raise InvalidInputError(f"cannot order runs by {key!r}; use e.g. -summary.val_acc, created_at, name")
    return [(col.desc() if desc else col.asc()).nulls_last()]


def needs_liveness(q: Query, order: str | None = None, *, via_run: bool = False) -> bool:
    """Does the query (or order) look at run state, which needs `bind_liveness`?"""
    key = "run.state" if via_run else "state"
    return mentions(q.root, key) or (not via_run and isinstance(order, str) and order.lstrip("+-") == "state")
