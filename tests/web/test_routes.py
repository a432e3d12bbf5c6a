"""Every API route has a test: a route added to api.ENDPOINTS without one fails here."""

from __future__ import annotations

from tests.web import test_api, test_api_edits  # noqa: F401  (their @covers marks fill COVERED)
from tests.web.routes import COVERED


def test_every_route_has_a_test():
    from lodestore.web.api import ENDPOINTS

    routes = {(ep.method, ep.path) for ep in ENDPOINTS}
    assert routes - COVERED == set()
    assert COVERED - routes == set()  # no test claims a route that is gone
