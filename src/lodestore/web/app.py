"""The web application: the API routes (api.py), the OpenAPI document and its page, the
static assets shipped in the package, and the page routes, all behind the guard
(security.py). `create_app` takes an open service door; nothing here opens a catalog."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from lodestore.errors import NotFoundError
from lodestore.names import parse_ref, validate_name
from lodestore.sdk.service import Service
from lodestore.web import api, routing
from lodestore.web.openapi import openapi_document
from lodestore.web.security import Guard, GuardMiddleware

STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}


def _asset(name: str) -> bytes:
    return resources.files("lodestore.web").joinpath("static", name).read_bytes()


def _endpoint(svc: Service, ep: routing.Endpoint) -> Callable[[Request], Any]:
    """A route function: the handler's result as JSON (or its own Response), any
    error as a JSON error."""
    is_async = inspect.iscoroutinefunction(ep.handler)

    async def call(request: Request) -> Response:
        try:
            if is_async:
                result = await ep.handler(svc, request)
            else:
                result = await run_in_threadpool(ep.handler, svc, request)
        except Exception as e:  # every failure becomes one JSON error, never a traceback
            return routing.error_response(e)
        return result if isinstance(result, Response) else routing.json_response(result)

    return call


def _page(svc: Service, exists: Callable[[Request], None] | None = None) -> Callable[[Request], Any]:
    """The one HTML page (the script routes by URL); 404 when the URL names a missing
    artifact, version or run, so a pasted link to something gone says so at once."""
    async def page(request: Request) -> Response:
        status = 200
        if exists is not None:
            try:
                await run_in_threadpool(exists, request)
            except Exception:  # not found or not a valid name: the page explains (from the API)
                status = 404
        return Response(_asset("index.html"), status_code=status, media_type="text/html; charset=utf-8",
                        headers={"cache-control": "no-store"})
    return page


def _static(request: Request) -> Response:
    name = request.path_params["name"]
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    if "/" in name or name.startswith(".") or suffix not in STATIC_TYPES:
        return routing.error_response(NotFoundError(f"no asset {name[:60]!r}"))
    try:
        data = _asset(name)
    except (FileNotFoundError, IsADirectoryError):
        return routing.error_response(NotFoundError(f"no asset {name[:60]!r}"))
    return Response(data, media_type=STATIC_TYPES[suffix], headers={"cache-control": "no-cache"})


def create_app(svc: Service, guard: Guard) -> Any:
    routes: list[BaseRoute] = [
        Route(ep.path, _endpoint(svc, ep), methods=[ep.method], name=f"{ep.method} {ep.path}")
        for ep in api.ENDPOINTS
    ]
    spec = openapi_document(api.ENDPOINTS, read_only=guard.read_only)

    async def openapi_json(request: Request) -> Response:
        return routing.json_response(spec)

    async def config(request: Request) -> Response:
        return routing.json_response({"read_only": guard.read_only})

    def artifact_exists(request: Request) -> None:
        svc.artifact(validate_name(request.path_params["project"]), validate_name(request.path_params["name"]))

    def version_exists(request: Request) -> None:
        p = request.path_params
        svc.version(parse_ref(f"{validate_name(p['project'])}/{validate_name(p['name'])}:"
                              f"{validate_name(p['selector'])}"), include_deleted=True)

    def run_exists(request: Request) -> None:
        svc.run(request.path_params["run_id"])

    routes += [
        Route("/api/v1/openapi.json", openapi_json, methods=["GET"]),
        Route("/api/v1/config", config, methods=["GET"]),
        Route("/static/{name}", _static, methods=["GET"]),
        Route("/", _page(svc), methods=["GET"]),
        Route("/docs", _page(svc), methods=["GET"]),
        Route("/runs", _page(svc), methods=["GET"]),
        Route("/runs/{run_id}", _page(svc, run_exists), methods=["GET"]),
        Route("/artifacts/{project}/{name}", _page(svc, artifact_exists), methods=["GET"]),
        Route("/artifacts/{project}/{name}/{selector}", _page(svc, version_exists), methods=["GET"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return routing.error_response(NotFoundError(f"no API route {request.method} {request.url.path[:200]}"))
        return Response(_asset("index.html"), status_code=404, media_type="text/html; charset=utf-8")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return routing.json_response({"error": {"status": 405, "code": 2, "kind": "MethodNotAllowed",
                                            "message": f"{request.method} is not allowed on {request.url.path[:200]}"}},
                                 status=405)

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})
    return GuardMiddleware(app, guard)
