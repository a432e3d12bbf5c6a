"""The OpenAPI 3.1 document, made from the route table (api.ENDPOINTS): a route cannot
exist undocumented. /docs renders it with the page's own script (no CDN)."""

from __future__ import annotations

import re
from typing import Any

from lodestore import __version__

ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "object", "properties": {
    "status": {"type": "integer"}, "code": {"type": "integer", "description": "the CLI's exit code"},
    "kind": {"type": "string"}, "message": {"type": "string"},
    "column": {"type": "integer", "description": "query errors: 1-based column"}}}}}


def openapi_path(path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", path)


def openapi_document(endpoints: list[Any], read_only: bool = False) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        op: dict[str, Any] = {
            "summary": ep.summary, "tags": [ep.tag], "operationId": f"{ep.method.lower()}_{ep.handler.__name__}",
            "parameters": [{"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                            "description": p.description, "schema": {"type": p.type}} for p in ep.params],
            "responses": {
                "200": {"description": "paged: {items, next_cursor}" if ep.paged else "OK",
                        "content": {ep.content: {}}},
                "400": {"description": "bad input (code 2)", "content": {"application/json": {"schema": ERROR_SCHEMA}}},
                "401": {"description": "no token"},
                "404": {"description": "not found (code 3)",
                        "content": {"application/json": {"schema": ERROR_SCHEMA}}},
            },
        }
        if ep.body is not None:
            op["requestBody"] = {"required": True, "description": ep.body,
                                 "content": {"application/json": {"schema": {"type": "object"}}}}
            op["responses"]["403"] = {"description": "read-only server, or a cross-origin request"}
            op["responses"]["409"] = {"description": "conflict with the stored state (code 4)"}
        if ep.method != "GET":
            op["responses"].setdefault("403", {"description": "read-only server, or a cross-origin request"})
        paths.setdefault(openapi_path(ep.path), {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "lodestore API", "version": __version__,
                 "description": "Artifacts, versions, files, aliases, runs, lineage, search and diff of one store. "
                                "Every list is a cursor page; errors carry the CLI's exit code. "
                                + ("This server is read-only." if read_only else "")},
        "components": {"securitySchemes": {
            "cookie": {"type": "apiKey", "in": "cookie", "name": "lode_token"},
            "bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"cookie": []}, {"bearer": []}],
        "paths": paths,
    }
