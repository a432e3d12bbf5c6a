"""The route table of the REST API and what every route shares: `Endpoint`s registered
by `@route` (the same table makes the routes and the OpenAPI document, so a route cannot
exist undocumented), errors as JSON with the CLI's exit code, and the request helpers
through which every path segment meets the naming rules (`lodestore.names`) and every
entry path `normalize_entry_path`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

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
from lodestore.sdk.service import Service, VersionRecord
from lodestore.web import json_out as out
from lodestore.web.paging import Page

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

