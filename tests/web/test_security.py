"""The guard and the bad-input rules, over real HTTP: no token, a foreign Host, a
cross-origin edit, --read-only, security headers, and a list of path-traversal payloads
on every route that takes a path (never a 200, never a 500, never a byte outside)."""

from __future__ import annotations

import pytest

from tests.web.conftest import start_server, stop_server

ANIMALS = "/api/v1/projects/zoo/artifacts/animals"
TRAVERSALS = ["../x", "..%2fx", "%2e%2e/x", "%2e%2e%2fx", "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "a/../../x",
              "%2fetc%2fpasswd", "/etc/passwd", "a%00b", "a%5cb", "..%5c..%5cx", "C:%5cwindows", "a/%2e%2e/%2e%2e/x"]
SEGMENT_PAYLOADS = ["..", "%2e%2e", "a%00b", "a%5cb", "%2e%2e%2f%2e%2e", "a%2fb"]


def path_routes() -> list[str]:
    """Every route with a file path in it, with {path} left to fill."""
    v = ANIMALS + "/versions/v2"
    return [v + "/files/{path}", v + "/raw/{path}", v + "/preview/{path}", v + "/files?folder={path}",
            "/api/v1/diff/text?a=zoo/animals:v0&b=zoo/animals:v2&path={path}",
            "/api/v1/diff/text?a=zoo/animals:v0&b=zoo/animals:v2&path=notes.txt&old_path={path}"]


def segment_routes() -> list[str]:
    """Every route with a name segment (project, artifact, version, alias, run), {x} to fill."""
    return ["/api/v1/projects/{x}/artifacts/animals", "/api/v1/projects/zoo/artifacts/{x}",
            "/api/v1/projects/zoo/artifacts/{x}/versions", ANIMALS + "/versions/{x}", ANIMALS + "/versions/{x}/files",
            ANIMALS + "/versions/{x}/archive", "/api/v1/projects/zoo/artifacts/{x}/aliases/history",
            "/api/v1/runs/{x}", "/api/v1/runs/{x}/inputs", "/api/v1/lineage?node={x}", "/api/v1/diff?a={x}&b={x}",
            "/artifacts/zoo/{x}", "/artifacts/zoo/animals/{x}", "/runs/{x}"]


@pytest.mark.parametrize("payload", TRAVERSALS)
def test_path_traversal_is_refused_on_every_path_route(server, payload):
    for route in path_routes():
        r = server.get(route.replace("{path}", payload))
        assert r.status in (400, 404), (route, payload, r.status, r.body[:200])
        assert b"root:" not in r.body and b"Traceback" not in r.body
        if r.headers["content-type"].startswith("application/json"):
            assert r.json()["error"]["message"]


@pytest.mark.parametrize("payload", SEGMENT_PAYLOADS)
def test_bad_names_are_refused_on_every_name_route(server, payload):
    for route in segment_routes():
        r = server.get(route.replace("{x}", payload))
        assert r.status in (400, 404), (route, payload, r.status, r.body[:200])
        assert b"Traceback" not in r.body


def test_edits_refuse_traversal_in_alias_and_version(server):
    for alias in SEGMENT_PAYLOADS:
        r = server.request("PUT", f"{ANIMALS}/aliases/{alias}", body={"version": "v0"})
        assert r.status in (400, 404), alias
    for version in ("../v0", "v0/../v1", "\u0000"):
        assert server.request("PUT", f"{ANIMALS}/aliases/ok", body={"version": version}).status == 400


def test_no_token_is_refused_everywhere(server):
    for path in ("/", "/api/v1/ping", ANIMALS, "/static/app.js", "/docs", "/api/v1/openapi.json"):
        r = server.get(path, token=False)
        assert r.status == 401, path
    assert server.get("/api/v1/ping", token=False, headers={"Authorization": "Bearer wrong"}).status == 401
    assert server.get("/api/v1/ping", token=False, headers={"Cookie": "lode_token=wrong"}).status == 401
    assert server.get("/?token=wrong", token=False).status == 401


def test_the_printed_token_becomes_a_strict_httponly_cookie(server):
    r = server.get(f"/artifacts/zoo/animals?tab=files&token={server.token}", token=False)
    assert r.status == 303 and r.headers["location"] == "/artifacts/zoo/animals?tab=files"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"lode_token={server.token};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    ok = server.get("/api/v1/ping", token=False, headers={"Cookie": f"lode_token={server.token}"})
    assert ok.status == 200


def test_the_printed_token_buys_one_cookie_only(web_store):
    """A second exchange of the URL's token is refused; the cookie (and a browser that
    already holds it, opening the URL again) keeps working."""
    s = start_server(web_store)
    try:
        first = s.get(f"/?token={s.token}", token=False)
        assert first.status == 303 and "set-cookie" in first.headers
        again = s.get(f"/runs?token={s.token}", token=False)
        assert again.status == 401 and "set-cookie" not in again.headers
        assert "already exchanged" in again.error["message"]
        cookie = {"Cookie": f"lode_token={s.token}"}
        held = s.get(f"/runs?token={s.token}", token=False, headers=cookie)
        assert held.status == 303 and held.headers["location"] == "/runs" and "set-cookie" not in held.headers
        assert s.get("/api/v1/ping", token=False, headers=cookie).status == 200
        assert s.get("/runs", token=False, headers=cookie).status == 200
        assert s.get(f"/?token={s.token}x", token=False).status == 401  # a wrong token is still just wrong
    finally:
        stop_server(s)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:23300", "127.0.0.1.evil.example", "", "192.168.1.5"])
def test_a_foreign_host_header_is_refused(server, host):
    r = server.get("/api/v1/ping", headers={"Host": host})
    assert r.status == 403 and "Host" in r.json()["error"]["message"]


def test_loopback_host_names_are_accepted(server):
    port = server.host.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        assert server.get("/api/v1/ping", headers={"Host": host}).status == 200


def test_cross_origin_edits_are_refused(server):
    path = ANIMALS + "/versions/v0"
    body = {"tags_add": ["pwned"]}
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "same-site"}, {"Content-Type": "text/plain"}):
        r = server.request("PATCH", path, body=body, headers=headers)
        assert r.status == 403, headers
    form = server.request("POST", ANIMALS + "/versions/v0/restore", body=b"x=1",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 403
    assert "pwned" not in server.get(path).json()["tags"]
    same = server.request("PATCH", path, body={"tags_add": ["ok"]},
                          headers={"Origin": f"http://{server.host}", "Sec-Fetch-Site": "same-origin"})
    assert same.status == 200


def test_security_headers_on_every_response(server):
    for path in ("/", "/api/v1/ping", "/static/app.js", "/api/v1/nothing", ANIMALS + "/versions/v2/raw/notes.txt"):
        h = server.get(path).headers
        assert h["content-security-policy"].startswith("default-src 'self'"), path
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"


def test_unknown_pages_are_html_404s_not_stack_traces(server):
    for path in ("/artifacts/zoo/nope", "/artifacts/zoo/animals/v99", "/runs/nope", "/no/such/page"):
        r = server.get(path)
        assert r.status == 404 and r.headers["content-type"].startswith("text/html"), path
        assert b"Traceback" not in r.body


def test_read_only_server_refuses_every_edit(web_store):
    s = start_server(web_store, "--read-only")
    try:
        assert "read-only" in "".join(s.output)
        for method, path, body in (("PATCH", ANIMALS + "/versions/v0", {"tags_add": ["x"]}),
                                   ("PUT", ANIMALS + "/aliases/x", {"version": "v0"}),
                                   ("DELETE", ANIMALS + "/aliases/production", None),
                                   ("DELETE", ANIMALS + "/versions/v0", None),
                                   ("POST", ANIMALS + "/versions/v0/restore", {})):
            r = s.request(method, path, body=body)
            assert r.status == 403 and "read-only" in r.json()["error"]["message"], (method, path)
        assert s.get("/api/v1/config").json() == {"read_only": True}
        assert s.get(ANIMALS).status == 200
    finally:
        stop_server(s)


def test_binding_beyond_loopback_warns_loudly(web_store):
    s = start_server(web_store, "--host", "0.0.0.0")
    try:
        text = "".join(s.output)
        assert "WARNING" in text and "other machines" in text
        assert s.url.startswith("http://127.0.0.1:")
    finally:
        stop_server(s)
