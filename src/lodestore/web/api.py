"""The JSON REST API under /api/v1: one `Endpoint` per route, each a small function on the
service door. The same table makes the routes and the OpenAPI document (openapi.py), so
a route cannot exist undocumented. Resources are named for a future team server:
projects, artifacts, versions, files, aliases, runs, lineage, search, diff, stats.

Every path segment taken from a request goes through the naming rules (`lodestore.names`)
and every entry path through `normalize_entry_path`; every list is a cursor page
(paging.py); every error is JSON with the CLI's exit code (errors.py) as `code`.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import mimetypes
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from lodestore import __version__
from lodestore.errors import (
    ConflictError,
    CorruptionError,
    FileChangedError,
    ImmutableError,
    InvalidInputError,
    InvalidNameError,
    LodestoreError,
    NotFoundError,
)
from lodestore.names import normalize_entry_path, parse_ref, validate_name
from lodestore.sdk.service import (
    ARTIFACT_ORDERS,
    DIFF_SECTIONS,
    VERSION_ORDERS,
    Service,
    TablesUnavailableError,
    VersionRecord,
    artifact_page_key,
    diff_item,
    search_page_key,
    version_page_key,
)
from lodestore.web import json_out as out
from lodestore.web.paging import Page, keyset, paginate, paginate_ordered, paginate_sorted, parse_limit

PREVIEW_TEXT_BYTES = 1_000_000  # text and JSON previews: the first 1 MB
PREVIEW_TABLE_ROWS = 100  # CSV and Parquet previews: the first 100 rows
PREVIEW_TABLE_COLUMNS = 100  # ... of their first 100 columns
PREVIEW_CELL_CHARS = 1_000  # a Parquet cell longer than this is cut (a CSV preview is cut at 1 MB)
PREVIEW_PARQUET_BYTES = 16_000_000  # a Parquet file is read whole to take its head: only up to this size
TEXT_DIFF_BYTES = 256_000  # side by side diffs only for small text files
LINEAGE_MAX_NODES = 500  # nodes (cluster members included) per lineage response
CLUSTER_AT = 5  # this many siblings of one kind collapse into a cluster node
# Raster images are shown inline; anything else (HTML, SVG, notebooks, ...) is only ever
# served as a download, never rendered in this origin.
INLINE_IMAGES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
                 ".webp": "image/webp", ".bmp": "image/bmp"}
NEVER_RENDERED = (".html", ".htm", ".svg", ".ipynb", ".xhtml", ".xml")
MAX_RUN_ID = 200


# ---------------------------------------------------------------------------------- the route table
@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "path" | "query"
    description: str
    required: bool = False
    type: str = "string"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # Starlette syntax: {name} or {path:path}
    handler: Callable[[Service, Request], Any]
    summary: str
    tag: str
    params: tuple[Param, ...] = ()
    body: str | None = None  # a description of the JSON body, for mutations
    paged: bool = False
    content: str = "application/json"


ENDPOINTS: list[Endpoint] = []

P_PROJECT = Param("project", "path", "project name", True)
P_NAME = Param("name", "path", "artifact name", True)
P_SEL = Param("selector", "path", "vN or an alias (latest, production, ...)", True)
P_PATH = Param("path", "path", "entry path inside the version (a/b.txt)", True)
P_CURSOR = Param("cursor", "query", "the next_cursor of the previous page")
P_LIMIT = Param("limit", "query", "items per page (1-500, default 50)", type="integer")
PAGE = (P_CURSOR, P_LIMIT)
VERSION_PATH = "/api/v1/projects/{project}/artifacts/{name}/versions/{selector}"
ARTIFACT_PATH = "/api/v1/projects/{project}/artifacts/{name}"


def route(method: str, path: str, summary: str, tag: str, params: tuple[Param, ...] = (),
          body: str | None = None, paged: bool = False, content: str = "application/json"):
    def register(fn: Callable[[Service, Request], Any]) -> Callable[[Service, Request], Any]:
        all_params = tuple(params) + (PAGE if paged else ())
        ENDPOINTS.append(Endpoint(method, path, fn, summary, tag, all_params, body, paged, content))
        return fn
    return register


# ---------------------------------------------------------------------------------- errors
STATUS_OF: list[tuple[type[Exception], int]] = [
    (InvalidNameError, 400), (InvalidInputError, 400), (NotFoundError, 404), (ConflictError, 409),
    (ImmutableError, 409), (FileChangedError, 409), (CorruptionError, 500), (LodestoreError, 500),
]


def error_response(e: Exception) -> Response:
    """An error as JSON: HTTP status, the CLI's exit code, one message (no traceback)."""
    status = next((s for kind, s in STATUS_OF if isinstance(e, kind)), 500)
    if isinstance(e, LodestoreError):
        body: dict[str, Any] = {"status": status, "code": e.exit_code, "kind": type(e).__name__,
                                "message": str(e)}
        column = getattr(e, "column", None)
        if column is not None:
            body["column"] = column
    elif isinstance(e, OSError):
        body = {"status": 500, "code": 9, "kind": "OSError", "message": f"{e.strerror or e}"}
    else:
        print(f"lode ui: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        body = {"status": 500, "code": 1, "kind": "InternalError", "message": "internal error (see the server's log)"}
    return json_response({"error": body}, status=body["status"])


def json_response(data: Any, status: int = 200) -> Response:
    return Response(out.dumps(data), status_code=status, media_type="application/json",
                    headers={"cache-control": "no-store"})


def page_json(page: Page[Any], render: Callable[[Any], Any], **extra: Any) -> dict[str, Any]:
    return {"items": [render(x) for x in page.items], "next_cursor": page.next_cursor, **extra}


# ---------------------------------------------------------------------------------- request helpers
def q(request: Request, name: str, default: str | None = None) -> str | None:
    return request.query_params.get(name, default)


def flag(request: Request, name: str) -> bool:
    value = (q(request, name) or "").lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise InvalidInputError(f"{name} must be true or false, got {value[:20]!r}")


def names_of(request: Request) -> tuple[str, str]:
    p = request.path_params
    return validate_name(p["project"], "project name"), validate_name(p["name"], "artifact name")


def version_of(svc: Service, request: Request, include_deleted: bool = True) -> VersionRecord:
    project, name = names_of(request)
    selector = validate_name(request.path_params["selector"], "version or alias")
    return svc.version(parse_ref(f"{project}/{name}:{selector}"), include_deleted=include_deleted)


def entry_path_of(request: Request) -> str:
    """The one entry-path rule, on the path as the client sent it (decoded)."""
    return normalize_entry_path(request.path_params["path"])


def ref_param(svc: Service, request: Request, name: str) -> VersionRecord:
    text = q(request, name)
    if not text:
        raise InvalidInputError(f"give {name}=project/artifact:vN")
    ref = parse_ref(text)
    if ref.selector is None:
        raise InvalidInputError(f"{name}={text!r}: name a version (project/artifact:vN or :alias)")
    return svc.version(ref, include_deleted=True)


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > 1_000_000:
        raise InvalidInputError("request body over 1 MB")
    try:
        data = json.loads(raw or b"{}")
    except ValueError as e:
        raise InvalidInputError(f"request body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise InvalidInputError("request body must be a JSON object")
    return data


def str_list(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise InvalidInputError(f"{key} must be a list of strings")
    return value


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


# ---------------------------------------------------------------------------------- files
@route("GET", VERSION_PATH + "/files", "One folder of a version (sub-folders first, then files), or with filter "
       "every file under it whose path holds the text.", "files",
       (P_PROJECT, P_NAME, P_SEL, Param("folder", "query", "folder path ('' = the root)"),
        Param("filter", "query", "case-insensitive text in the path")), paged=True)
def files(svc: Service, request: Request) -> Any:
    v = version_of(svc, request)
    folder = q(request, "folder") or ""
    items = svc.pages.folder(v, folder, q(request, "filter") or None)  # sub-folders, then files, each by path
    page = paginate_sorted(items, lambda f: (0 if f.is_folder else 1, f.path), q(request, "cursor"),
                           parse_limit(q(request, "limit")))
    return page_json(page, out.folder_item, folder=normalize_entry_path(folder) if folder.strip("/") else "")


@route("GET", VERSION_PATH + "/files/{path:path}", "One file's entry: path, size, digest; a reference entry "
       "(kind reference) also its URI and what identifies its content.", "files",
       (P_PROJECT, P_NAME, P_SEL, P_PATH))
def file_entry(svc: Service, request: Request) -> Any:
    v, path = version_of(svc, request), entry_path_of(request)
    ref = svc.pages.reference(v, path)
    return out.reference(ref) if ref is not None else out.entry(svc.entry(v, path))


def refuse_reference(svc: Service, v: VersionRecord, path: str) -> None:
    """A reference entry has no bytes here, and the server never fetches a URI for a page."""
    ref = svc.pages.reference(v, path)
    if ref is not None:
        raise NotFoundError(f"{path} is a reference to {ref.uri}: the store holds none of its bytes "
                            f"(`lode download` fetches and checks it)")


def _disposition(path: str, inline: bool) -> str:
    base = path.rsplit("/", 1)[-1]
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in base)
    return f"{'inline' if inline else 'attachment'}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(base)}"


@route("GET", VERSION_PATH + "/raw/{path:path}", "A file's bytes, streamed and verified (a download; raster "
       "images inline with inline=true).", "files",
       (P_PROJECT, P_NAME, P_SEL, P_PATH, Param("inline", "query", "true: show a raster image in the page")),
       content="application/octet-stream")
def raw_file(svc: Service, request: Request) -> Any:
    v, path = version_of(svc, request), entry_path_of(request)
    refuse_reference(svc, v, path)
    entry, pieces = svc.pages.read_file(v, path)
    suffix = "." + entry.path.rsplit(".", 1)[-1].lower() if "." in entry.path else ""
    inline = flag(request, "inline") and suffix in INLINE_IMAGES
    media = INLINE_IMAGES[suffix] if inline else "application/octet-stream"
    first = next(pieces, b"")  # a corrupted first chunk is a JSON error, not a cut stream

    def body() -> Iterator[bytes]:
        yield first
        yield from pieces

    return StreamingResponse(body(), media_type=media, headers={
        "content-disposition": _disposition(entry.path, inline), "content-length": str(entry.size),
        "cache-control": "private, max-age=3600"})


class _Sink(io.RawIOBase):
    """Where tarfile writes; the stream takes what accumulated after each file part."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.parts.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


class _Chunks(io.RawIOBase):
    """A file's verified pieces as a readable stream (for tarfile.addfile)."""

    def __init__(self, pieces: Iterator[bytes]):
        self._pieces = pieces
        self._buf = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._buf += piece
        if n < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:n], self._buf[n:]
        return data


@route("GET", VERSION_PATH + "/archive", "The whole version as a tar archive, streamed (files verified as they "
       "are read).", "files", (P_PROJECT, P_NAME, P_SEL), content="application/x-tar")
def archive(svc: Service, request: Request) -> Any:
    v = version_of(svc, request)
    entries = svc.entries(v)
    if entries:
        svc.pages.read_file(v, entries[0].path)  # refuses a broken version before the first byte

    def body() -> Iterator[bytes]:
        sink = _Sink()
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for e in entries:
                info = tarfile.TarInfo(f"{v.name}-{v.version}/{e.path}")
                info.size = e.size
                info.mode = 0o644
                _, pieces = svc.pages.read_file(v, e.path)
                tar.addfile(info, _Chunks(pieces))
                yield sink.take()
        yield sink.take()

    return StreamingResponse(body(), media_type="application/x-tar", headers={
        "content-disposition": _disposition(f"{v.name}-{v.version}.tar", False)})


def _looks_text(data: bytes) -> bool:
    if b"\x00" in data[:8192]:
        return False
    try:
        data[:8192].decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start > 8180  # a multi-byte character cut at the sample's end
    return True


@route("GET", VERSION_PATH + "/preview/{path:path}", "A bounded preview: text and JSON (first 1 MB), CSV and "
       "Parquet (first 100 rows), raster images (by URL); HTML, SVG and notebooks as text only; a reference "
       "entry as its URI (never fetched).", "files",
       (P_PROJECT, P_NAME, P_SEL, P_PATH))
def preview(svc: Service, request: Request) -> Any:
    v = version_of(svc, request)
    path = entry_path_of(request)
    ref = svc.pages.reference(v, path)
    if ref is not None:
        return out.reference(ref)
    entry = svc.entry(v, path)
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    base: dict[str, Any] = {"path": entry.path, "size": entry.size, "digest": entry.digest}
    if suffix in INLINE_IMAGES:
        return {**base, "kind": "image", "media_type": INLINE_IMAGES[suffix]}
    if suffix == ".parquet":
        return _parquet_preview(svc, v, entry, base)
    _, head = svc.pages.read_head(v, path, PREVIEW_TEXT_BYTES)
    truncated = entry.size > len(head)
    if not _looks_text(head):
        return {**base, "kind": "binary", "media_type": mimetypes.guess_type(path)[0] or "application/octet-stream"}
    text = head.decode("utf-8", errors="replace")
    if suffix in (".csv", ".tsv"):
        reader = csv.reader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
        rows = []
        for row in reader:
            rows.append(row[:100])
            if len(rows) > PREVIEW_TABLE_ROWS:
                break
        return {**base, "kind": "table", "header": rows[0] if rows else [], "rows": rows[1:PREVIEW_TABLE_ROWS + 1],
                "truncated": truncated or len(rows) > PREVIEW_TABLE_ROWS}
    if suffix == ".json" and not truncated:
        try:
            return {**base, "kind": "json", "value": json.loads(text), "truncated": False}
        except ValueError:
            pass
    return {**base, "kind": "text", "text": text, "truncated": truncated,
            "rendered": False if suffix in NEVER_RENDERED else None}


def _cell(value: Any) -> Any:
    """A Parquet value as JSON: numbers, booleans and null as they are; anything else
    (dates, bytes, lists, ...) as its text, cut at PREVIEW_CELL_CHARS."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= PREVIEW_CELL_CHARS else text[:PREVIEW_CELL_CHARS] + "…"


def _parquet_preview(svc: Service, v: VersionRecord, entry: Any, base: dict[str, Any]) -> dict[str, Any]:
    """The first 100 rows of a Parquet file (tables of `artifact.add(Table)` among them), as
    a CSV preview is shown; a file over PREVIEW_PARQUET_BYTES, or without pyarrow installed,
    says why it is not shown instead."""
    if entry.size > PREVIEW_PARQUET_BYTES:
        return {**base, "kind": "unsupported", "message": f"Parquet previews read files up to "
                f"{PREVIEW_PARQUET_BYTES // 1_000_000} MB; this one is {entry.size:,} bytes: download it"}
    try:
        head = svc.pages.preview_table(v, entry.path, PREVIEW_TABLE_ROWS)
    except TablesUnavailableError as e:
        return {**base, "kind": "unsupported", "message": str(e)}
    except ValueError as e:  # pyarrow's ArrowInvalid: bytes that are not Parquet
        return {**base, "kind": "unsupported", "message": f"not a readable Parquet file: {str(e)[:200]}"}
    return {**base, "kind": "table", "header": head.columns[:PREVIEW_TABLE_COLUMNS],
            "rows": [[_cell(c) for c in row[:PREVIEW_TABLE_COLUMNS]] for row in head.rows],
            "truncated": head.total_rows > PREVIEW_TABLE_ROWS, "total_rows": head.total_rows}


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
        if not _looks_text(data):
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


# ---------------------------------------------------------------------------------- lineage
@dataclass
class _Graph:
    focus: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: list[dict[str, str]] = field(default_factory=list)


def _version_node(v: VersionRecord) -> dict[str, Any]:
    return {"id": v.qualified_name, "kind": "version", "label": v.qualified_name, "type": v.type,
            "state": v.state, "project": v.project, "name": v.name, "version": v.version,
            "aliases": list(v.aliases)}


def _run_node(svc: Service, r: Any) -> dict[str, Any]:
    return {"id": f"run:{r.id}", "kind": "run", "label": r.name or r.id, "type": r.job_type,
            "state": svc.run_state(r), "project": r.project, "run_id": r.id}


def _neighbourhood(svc: Service, node: str) -> _Graph:
    """`node`'s direct neighbours: a version's producing and using runs (with those runs'
    other inputs and outputs: one hop up and down), or a run's inputs and outputs."""
    if node.startswith("run:"):
        run_id = node[4:]
        if not run_id or len(run_id) > MAX_RUN_ID:
            raise InvalidInputError(f"{node[:60]!r} is not a run node")
        r = svc.run(run_id)
        g = _Graph(node)
        g.nodes[node] = _run_node(svc, r)
        for v in svc.run_inputs(run_id):
            g.nodes.setdefault(v.qualified_name, _version_node(v))
            g.edges.append({"source": v.qualified_name, "target": node, "kind": "used"})
        for v in svc.run_outputs(run_id):
            g.nodes.setdefault(v.qualified_name, _version_node(v))
            g.edges.append({"source": node, "target": v.qualified_name, "kind": "logged"})
        return g
    ref = parse_ref(node)
    if ref.selector is None:
        raise InvalidInputError(f"{node[:60]!r}: a lineage node is project/artifact:vN or run:ID")
    v = svc.version(ref, include_deleted=True)
    graph = svc.lineage(v, "both", depth=1)
    g = _Graph(v.qualified_name)
    for n in graph.nodes.values():
        g.nodes[n.key] = _version_node(n.record) if n.kind == "version" else _run_node(svc, n.record)
    g.edges = [{"source": e.source, "target": e.target, "kind": e.kind} for e in graph.edges]
    return g


def _cluster(g: _Graph) -> list[dict[str, Any]]:
    """Five or more siblings of one kind and type beside one node (e.g. 40 checkpoints a
    run logged) become one cluster node listing them; the focus is never clustered."""
    clusters: list[dict[str, Any]] = []
    taken: set[str] = set()
    near_far: dict[str, dict[str, list[str]]] = {"out": {}, "in": {}}  # node -> its neighbours, in edge order
    for e in g.edges:
        near_far["out"].setdefault(e["source"], []).append(e["target"])
        near_far["in"].setdefault(e["target"], []).append(e["source"])
    for anchor in sorted(g.nodes):
        for direction in ("out", "in"):
            groups: dict[tuple[str, str], list[str]] = {}
            for far in near_far[direction].get(anchor, ()):
                if far != g.focus and far not in taken:
                    n = g.nodes[far]
                    groups.setdefault((n["kind"], n["type"] or ""), []).append(far)
            for (kind, type_), members in sorted(groups.items()):
                members = sorted(set(members))
                if len(members) < CLUSTER_AT:
                    continue
                cid = f"cluster:{anchor}:{direction}:{kind}:{type_}"
                taken.update(members)
                clusters.append({"id": cid, "kind": "cluster", "member_kind": kind, "type": type_ or None,
                                 "label": f"{len(members)} {type_ or kind}{'s' if kind == 'run' else ''}",
                                 "anchor": anchor, "direction": direction,
                                 "members": [g.nodes[m] for m in members]})
    if not clusters:
        return []
    for c in clusters:
        ids = {m["id"] for m in c["members"]}
        for e in g.edges:
            if e["source"] in ids and e["target"] == c["anchor"]:
                e["source"] = c["id"]
            elif e["target"] in ids and e["source"] == c["anchor"]:
                e["target"] = c["id"]
        for m in ids:
            g.nodes.pop(m, None)
        g.nodes[c["id"]] = c
    seen: set[tuple[str, str]] = set()
    edges = []
    for e in g.edges:
        if e["source"] in g.nodes and e["target"] in g.nodes and (e["source"], e["target"]) not in seen:
            seen.add((e["source"], e["target"]))
            edges.append(e)
    g.edges = edges
    return clusters


@route("GET", "/api/v1/lineage", "One node's neighbourhood in the lineage graph (a version: its runs one hop up "
       "and down; a run: its inputs and outputs); large sibling groups as cluster nodes; at most 500 nodes.",
       "lineage", (Param("node", "query", "project/artifact:vN or run:ID", True),))
def lineage(svc: Service, request: Request) -> Any:
    g = _neighbourhood(svc, q(request, "node") or "")
    _cluster(g)
    truncated = False
    count = 0
    kept: dict[str, dict[str, Any]] = {}
    for key in [g.focus, *sorted(k for k in g.nodes if k != g.focus)]:
        n = g.nodes[key]
        size = 1 + len(n.get("members", ()))
        if count + size > LINEAGE_MAX_NODES:
            if n["kind"] == "cluster" and count + 1 < LINEAGE_MAX_NODES:
                room = LINEAGE_MAX_NODES - count - 1
                n = {**n, "members": n["members"][:room], "truncated": True}
                size = 1 + room
            else:
                truncated = True
                continue
        kept[key] = n
        count += size
        truncated = truncated or bool(n.get("truncated"))
    edges = [e for e in g.edges if e["source"] in kept and e["target"] in kept]
    return {"focus": g.focus, "nodes": list(kept.values()), "edges": edges, "truncated": truncated}
