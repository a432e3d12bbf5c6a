"""Which API route each test covers: `@covers("GET", "/api/v1/...")` on a test; the meta
test (test_routes.py) fails when a route in api.ENDPOINTS has no test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

COVERED: set[tuple[str, str]] = set()
A = "/api/v1/projects/{project}/artifacts/{name}"
V = A + "/versions/{selector}"


def covers(method: str, path: str) -> Callable[[Any], Any]:
    def mark(fn: Any) -> Any:
        COVERED.add((method, path))
        return fn
    return mark
