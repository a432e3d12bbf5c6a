"""The JSON REST API under /api/v1: one `Endpoint` per route, each a small function on the
service door. The table and what every route shares (errors, request helpers) is
routing.py; this module holds the catalog's routes (store-wide, artifacts, versions,
aliases, diff, runs) and importing it registers the file routes (file_routes.py) and the
lineage route (lineage_routes.py) too: `ENDPOINTS` is then the whole table. The same table
makes the routes and the OpenAPI document (openapi.py), so a route cannot exist
undocumented. Resources are named for a future team server: projects, artifacts,
versions, files, aliases, runs, lineage, search, diff, stats.

Every path segment taken from a request goes through the naming rules (`lodestore.names`)
and every entry path through `normalize_entry_path`; every list is a cursor page
(paging.py); every error is JSON with the CLI's exit code (errors.py) as `code`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from lodestore import __version__
from lodestore.errors import InvalidInputError
from lodestore.names import normalize_entry_path, parse_ref, validate_name
from lodestore.sdk.service import (
    ARTIFACT_ORDERS,
    DIFF_SECTIONS,
    VERSION_ORDERS,
    Service,
    VersionRecord,
    artifact_page_key,
    diff_item,
    search_page_key,
    version_page_key,
)
from lodestore.web import json_out as out
from lodestore.web import lineage_routes  # noqa: F401 (importing it registers its route)
from lodestore.web.file_routes import looks_text
from lodestore.web.paging import Page, keyset, paginate, paginate_ordered, parse_limit
from lodestore.web.routing import (
    ARTIFACT_PATH,
    MAX_RUN_ID,
    P_NAME,
    P_PROJECT,
    P_SEL,
    VERSION_PATH,
    Param,
    flag,
    json_body,
    names_of,
    page_json,
    q,
    ref_param,
    route,
    str_list,
    version_of,
)
from lodestore.web.routing import ENDPOINTS as ENDPOINTS  # the whole table, once this module is imported

TEXT_DIFF_BYTES = 256_000  # side by side diffs only for small text files


# ---------------------------------------------------------------------------------- store-wide
@route("GET", "/api/v1/ping", "A trivial call: the server is up (the reference latency of the bench).", "server")
def ping(svc: Service, request: Request) -> Any:
    return {"ok": True, "version": __version__}


@route("GET", "/api/v1/stats", "What the store holds: artifacts, versions, logical and stored bytes, savings.",
       "stats")
def stats(svc: Service, request: Request) -> Any:
    return out.stats(svc.pages.summary_kept())


@route("GET", "/api/v1/projects", "Projects, by name.", "projects", paged=True)
def projects(svc: Service, request: Request) -> Any:
    page = paginate(svc.projects(), lambda p: (p,), q(request, "cursor"), parse_limit(q(request, "limit")))
    return page_json(page, lambda p: {"name": p})


@route("GET", "/api/v1/types", "Artifact types (of one project if given).", "projects",
       (Param("project", "query", "project name"),), paged=True)
def types(svc: Service, request: Request) -> Any:
    project = q(request, "project") or None
    page = paginate(svc.artifact_types(project), lambda t: (t,), q(request, "cursor"),
                    parse_limit(q(request, "limit")))
    return page_json(page, lambda t: {"name": t})


def sort_spec(text: str | None, allowed: tuple[str, ...], default: str) -> tuple[str, bool]:
    text = text or default
    key, descending = (text[1:], True) if text.startswith("-") else (text, False)
    if key not in allowed:
        raise InvalidInputError(f"sort must be one of {', '.join(sorted(allowed))} (prefix - for descending), "
                                f"got {text[:40]!r}")
    return key, descending


@route("GET", "/api/v1/artifacts", "Artifacts, filtered by project and type, sorted.", "artifacts",
       (Param("project", "query", "only this project"), Param("type", "query", "only this type"),
        Param("sort", "query", "name, type, created, versions or size; prefix - for descending")), paged=True)
def artifacts(svc: Service, request: Request) -> Any:
    project, type_ = q(request, "project") or None, q(request, "type") or None
    order, descending = sort_spec(q(request, "sort"), ARTIFACT_ORDERS, "name")
    page = keyset(lambda after, n: svc.pages.artifacts_page(project, type_, order, descending, after, n),
                  lambda a: artifact_page_key(a, order), q(request, "cursor"), parse_limit(q(request, "limit")))
    return page_json(page, out.artifact)


@route("GET", "/api/v1/search", "Versions matching a `lode search` query, newest first, with the query as "
       "parsed; a syntax error is a 400 whose error carries the column.", "search",
       (Param("q", "query", "the query (type=model metadata.val_acc>=0.9 tag:prod ...)", True),), paged=True)
def search(svc: Service, request: Request) -> Any:
    text = q(request, "q") or ""
    parsed = svc.pages.parse_query(text)
    page = keyset(lambda after, n: svc.pages.search_page(text, after, n), search_page_key, q(request, "cursor"),
                  parse_limit(q(request, "limit")))
    return page_json(page, out.version, parsed=out.parsed_query(parsed))


@route("GET", "/api/v1/search/parse", "How a query parses, without running it.", "search",
       (Param("q", "query", "the query", True),))
def parse_query(svc: Service, request: Request) -> Any:
    return out.parsed_query(svc.pages.parse_query(q(request, "q") or ""))


# ---------------------------------------------------------------------------------- one artifact
@route("GET", ARTIFACT_PATH, "One artifact, its current aliases and retention policy.", "artifacts",
       (P_PROJECT, P_NAME))
def artifact(svc: Service, request: Request) -> Any:
    project, name = names_of(request)
    a = svc.artifact(project, name)
    return {**out.artifact(a), "retention": svc.retention(project, name)}


@route("GET", ARTIFACT_PATH + "/versions", "An artifact's versions (newest first by default), soft-deleted ones "
       "with include_deleted; each with the bytes only it holds.", "versions",
       (P_PROJECT, P_NAME, Param("include_deleted", "query", "true to list soft-deleted versions too"),
        Param("sort", "query", "index, created, size or files; prefix - for descending (default -index)")),
       paged=True)
def versions(svc: Service, request: Request) -> Any:
    project, name = names_of(request)
    order, descending = sort_spec(q(request, "sort"), VERSION_ORDERS, "-index")
    deleted_too = flag(request, "include_deleted")
    page = keyset(lambda after, n: svc.pages.versions_page(project, name, deleted_too, order, descending, after, n),
                  lambda v: version_page_key(v, order), q(request, "cursor"), parse_limit(q(request, "limit")))
    own = svc.pages.own_bytes(page.items)
    return page_json(page, lambda v: {**out.version(v), "own_bytes": own[v.id]})


@route("GET", VERSION_PATH, "One version: digest, sizes, metadata, aliases, its producing run; with "
       "own_bytes=true also the bytes only it holds (an accounting pass over its chunks).",
       "versions", (P_PROJECT, P_NAME, P_SEL, Param("own_bytes", "query", "true to measure own_bytes")))
def version(svc: Service, request: Request) -> Any:
    v = version_of(svc, request)
    producer = svc.producer_run(v)
    extra = {"own_bytes": svc.pages.own_bytes([v])[v.id]} if flag(request, "own_bytes") else {}
    return {**out.version(v), **extra,
            "producer": None if producer is None else out.run(producer, svc.run_state(producer))}


@route("PATCH", VERSION_PATH, "Edit a version's description, metadata keys and tags (only what is given "
       "changes).", "versions", (P_PROJECT, P_NAME, P_SEL),
       body='{"description": "text or null", "metadata_set": {"key": value}, "metadata_unset": ["key"], '
            '"tags_add": ["t"], "tags_remove": ["t"]}')
async def edit_version(svc: Service, request: Request) -> Any:
    data = await json_body(request)
    unknown = set(data) - {"description", "metadata_set", "metadata_unset", "tags_add", "tags_remove"}
    if unknown:
        raise InvalidInputError(f"unknown field(s): {', '.join(sorted(unknown))}")
    metadata_set = data.get("metadata_set") or {}
    if not isinstance(metadata_set, dict):
        raise InvalidInputError("metadata_set must be a JSON object")
    kwargs: dict[str, Any] = {}
    if "description" in data:
        if data["description"] is not None and not isinstance(data["description"], str):
            raise InvalidInputError("description must be a string or null")
        kwargs["description"] = data["description"]
    v = version_of(svc, request, include_deleted=False)
    edited = svc.edit(v, metadata_set=metadata_set, metadata_unset=str_list(data, "metadata_unset"),
                      tags_add=str_list(data, "tags_add"), tags_remove=str_list(data, "tags_remove"), **kwargs)
    return out.version(edited)


@route("DELETE", VERSION_PATH, "Soft-delete a version (restorable until gc); refused while it holds custom "
       "aliases unless delete_aliases=true.", "versions",
       (P_PROJECT, P_NAME, P_SEL, Param("delete_aliases", "query", "true to remove its aliases with it")))
def delete_version(svc: Service, request: Request) -> Any:
    v = version_of(svc, request, include_deleted=False)
    deleted = svc.delete(v, delete_aliases=flag(request, "delete_aliases"))
    return out.version(deleted) if deleted is not None else {"deleted": v.qualified_name}


@route("POST", VERSION_PATH + "/restore", "Undo the soft delete of a version.", "versions",
       (P_PROJECT, P_NAME, P_SEL), body="{}")
async def restore_version(svc: Service, request: Request) -> Any:
    await json_body(request)
    v = version_of(svc, request)
    return out.version(svc.restore_version(v))


# ---------------------------------------------------------------------------------- aliases
@route("GET", ARTIFACT_PATH + "/aliases", "The artifact's aliases and the version each points at.", "aliases",
       (P_PROJECT, P_NAME), paged=True)
def aliases(svc: Service, request: Request) -> Any:
    project, name = names_of(request)
    svc.artifact(project, name)
    held = [(a, v) for v in svc.versions(project, name) for a in v.aliases]
    page = paginate(held, lambda p: (p[0],), q(request, "cursor"), parse_limit(q(request, "limit")))
    return page_json(page, lambda p: {"alias": p[0], "version": p[1].version})


@route("GET", ARTIFACT_PATH + "/aliases/history", "Every alias move, newest first: alias, from, to, run, when.",
       "aliases", (P_PROJECT, P_NAME), paged=True)
def alias_history(svc: Service, request: Request) -> Any:
    project, name = names_of(request)
    svc.artifact(project, name)
    events = list(enumerate(svc.alias_history(project, name)))  # oldest first: the position is the key
    page = paginate(events, lambda p: (p[0],), q(request, "cursor"), parse_limit(q(request, "limit")),
                    descending=True)
    return page_json(page, lambda p: out.alias_event(p[1]))


@route("PUT", ARTIFACT_PATH + "/aliases/{alias}", "Point an alias at a version (moving it from another).",
       "aliases", (P_PROJECT, P_NAME, Param("alias", "path", "alias name", True)), body='{"version": "v3"}')
async def set_alias(svc: Service, request: Request) -> Any:
    project, name = names_of(request)
    data = await json_body(request)
    selector = data.get("version")
    if not isinstance(selector, str):
        raise InvalidInputError('give the version to point at: {"version": "v3"}')
    v = svc.set_alias(parse_ref(f"{project}/{name}:{validate_name(selector, 'version')}"),
                      request.path_params["alias"])
    return out.version(v)


@route("DELETE", ARTIFACT_PATH + "/aliases/{alias}", "Remove an alias from the artifact.", "aliases",
       (P_PROJECT, P_NAME, Param("alias", "path", "alias name", True)))
def remove_alias(svc: Service, request: Request) -> Any:
    project, name = names_of(request)
    svc.remove_alias(project, name, request.path_params["alias"])
    return {"removed": request.path_params["alias"]}


# ---------------------------------------------------------------------------------- diff
@route("GET", "/api/v1/diff", "Compare two versions (a old, b new): files added, removed, modified, renamed, "
       "metadata key paths, aliases, tags, the new chunk bytes b adds; the same data as `lode diff --json`, each "
       "file list a page (cut in SQL) with its total.", "diff",
       (Param("a", "query", "project/artifact:vN (old)", True), Param("b", "query", "project/artifact:vN (new)", True),
        Param("section", "query", "page only this list: added, removed, modified or renamed")), paged=True)
def diff(svc: Service, request: Request) -> Any:
    a, b = ref_param(svc, request, "a"), ref_param(svc, request, "b")
    limit = parse_limit(q(request, "limit"))
    section = q(request, "section")
    if section is not None and section not in DIFF_SECTIONS:
        raise InvalidInputError(f"section must be one of {', '.join(DIFF_SECTIONS)}")
    overview = svc.pages.diff_overview(a, b)
    lists: dict[str, Any] = {}
    for name in DIFF_SECTIONS:
        if section is not None and name != section:
            continue
        total = getattr(overview.counts, name)
        cursor = q(request, "cursor") if section == name else None
        page = keyset(lambda after, n, name=name, total=total: _diff_rows(svc, a, b, name, after, n, total),
                      lambda row: ((row.new or row.old).path,), cursor, limit)
        lists[name] = {"items": [diff_item(name, r) for r in page.items], "total": total,
                       "next_cursor": page.next_cursor}
    return {**overview.to_dict(), **lists}


def _diff_rows(svc: Service, a: VersionRecord, b: VersionRecord, section: str, after: tuple[Any, ...] | None,
               n: int, total: int) -> list[Any]:
    """A page of one diff list; none asked of the database for an empty list."""
    if total == 0:
        return []
    if after is not None and (len(after) != 1 or not isinstance(after[0], str)):
        raise InvalidInputError("the cursor is not one of this list's")
    return svc.pages.diff_page(a, b, section, None if after is None else after[0], n)


@route("GET", "/api/v1/diff/text", "Side by side line diff of one small text file in two versions.", "diff",
       (Param("a", "query", "old version", True), Param("b", "query", "new version", True),
        Param("path", "query", "the file in b (and in a unless old_path)", True),
        Param("old_path", "query", "the file's path in a, if renamed")))
def text_diff(svc: Service, request: Request) -> Any:
    a, b = ref_param(svc, request, "a"), ref_param(svc, request, "b")
    new_path = normalize_entry_path(q(request, "path") or "")
    old_path = normalize_entry_path(q(request, "old_path") or new_path)
    texts = []
    for v, path in ((a, old_path), (b, new_path)):
        entry = svc.entry(v, path)
        if entry.size > TEXT_DIFF_BYTES:
            raise InvalidInputError(f"{path} is {entry.size:,} bytes: side by side diffs are for text files up to "
                                    f"{TEXT_DIFF_BYTES:,} bytes")
        _, data = svc.pages.read_head(v, path, TEXT_DIFF_BYTES)
        if not looks_text(data):
            raise InvalidInputError(f"{path} is not a text file")
        texts.append(data.decode("utf-8", errors="replace").splitlines())
    old, new = texts
    rows: list[dict[str, Any]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        for k in range(max(i2 - i1, j2 - j1)):
            o, n = i1 + k, j1 + k
            rows.append({"op": op, "old_no": o + 1 if o < i2 else None, "old": old[o] if o < i2 else None,
                         "new_no": n + 1 if n < j2 else None, "new": new[n] if n < j2 else None})
    return {"a": a.qualified_name, "b": b.qualified_name, "old_path": old_path, "path": new_path, "rows": rows}


# ---------------------------------------------------------------------------------- runs
@route("GET", "/api/v1/runs", "Runs, filtered by project and a query over state, config and summary, ordered "
       "by any key (order=-summary.val_acc).", "runs",
       (Param("project", "query", "only this project"),
        Param("q", "query", "filter in the search language (state=finished config.lr<0.01 group=sweep-1)"),
        Param("order", "query", "a key, - for descending (default: oldest first)")), paged=True)
def runs(svc: Service, request: Request) -> Any:
    ids = svc.pages.find_run_ids(q(request, "project") or None, filters=q(request, "q") or None,
                           order=q(request, "order") or None)
    page = paginate_ordered(ids, lambda i: i, q(request, "cursor"), parse_limit(q(request, "limit")))
    return page_json(Page(svc.pages.runs_by_id(page.items), page.next_cursor), lambda r: out.run(r, svc.run_state(r)))


def _run_id(request: Request) -> str:
    run_id = request.path_params["run_id"]
    if not run_id or len(run_id) > MAX_RUN_ID or any(c in run_id for c in "/\\\x00"):
        raise InvalidInputError(f"{run_id[:40]!r} is not a run id")
    return run_id


@route("GET", "/api/v1/runs/{run_id}", "One run: config, summary, state.", "runs",
       (Param("run_id", "path", "run id", True),))
def run(svc: Service, request: Request) -> Any:
    r = svc.run(_run_id(request))
    return out.run(r, svc.run_state(r))


@route("GET", "/api/v1/runs/{run_id}/inputs", "The versions a run used.", "runs",
       (Param("run_id", "path", "run id", True),), paged=True)
def run_inputs(svc: Service, request: Request) -> Any:
    return _run_versions(svc, request, svc.run_inputs)


@route("GET", "/api/v1/runs/{run_id}/outputs", "The versions a run logged.", "runs",
       (Param("run_id", "path", "run id", True),), paged=True)
def run_outputs(svc: Service, request: Request) -> Any:
    return _run_versions(svc, request, svc.run_outputs)


def _run_versions(svc: Service, request: Request, versions_of: Callable[[str], list[Any]]) -> Any:
    """A page of the versions a run used or logged (404 for an unknown run, not an empty page)."""
    run_id = _run_id(request)
    svc.run(run_id)
    page = paginate_ordered(versions_of(run_id), lambda v: v.id, q(request, "cursor"),
                            parse_limit(q(request, "limit")))
    return page_json(page, out.version)


