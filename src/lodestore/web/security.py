"""The guard in front of every request (an ASGI middleware, so it also covers streamed
downloads and the static files):

- **Host header** must be one of the names the server was started for (loopback names
  by default): a page on another site that rebinds its DNS name to 127.0.0.1 is refused.
- **Token**: the printed URL carries a token made at start (`secrets`); the first
  request that brings it gets it as an HttpOnly, SameSite=Strict cookie and is
  redirected to the same URL without it. That exchange happens once: a later request
  bringing the token in the URL without the cookie is refused (a URL copied from a
  terminal's scrollback, a shell history or a screen share opens nothing), while the
  browser holding the cookie keeps working (and is just redirected). Requests with
  neither the cookie nor ``Authorization: Bearer <token>`` are refused (401).
- **Mutations** (POST, PUT, PATCH, DELETE) must come from this origin: an ``Origin`` or
  ``Sec-Fetch-Site`` naming another site is refused, and a POST or any body must be JSON
  (a cross-site form cannot send that without a preflight this server never answers). With
  --read-only every mutation is refused (403).
- **Headers** on every response: ``Content-Security-Policy: default-src 'self'`` (no
  inline script, no other origin), no framing, no MIME sniffing, no referrer.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

COOKIE = "lode_token"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Guard:
    """What the guard checks against: the token, the accepted Host names, read-only."""

    token: str
    hosts: frozenset[str] = LOOPBACK_NAMES
    read_only: bool = False
    extra_hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def for_bind(cls, token: str, bind_host: str, read_only: bool) -> Guard:
        """Loopback names always; the bound name too when bound elsewhere on purpose."""
        extra = frozenset() if is_loopback(bind_host) or bind_host in ("0.0.0.0", "::") else {bind_host}
        return cls(token, LOOPBACK_NAMES | extra, read_only)

    def host_allowed(self, host_header: str) -> bool:
        host = host_header.strip().lower()
        if host.startswith("["):
            name = host.split("]", 1)[0] + "]"
        else:
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return name in self.hosts

    def token_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.token.encode())


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookie(headers: dict[str, str], name: str) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed cookie header is no token, not a crash
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


async def _refuse(scope: Scope, send: Send, status: int, message: str, code: int = 2,
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """A JSON error for the API (and for anything else: a refusal is not a page)."""
    body = json.dumps({"error": {"status": status, "code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store"), *SECURITY_HEADERS, *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    def __init__(self, app: App, guard: Guard):
        self.app = app
        self.guard = guard
        # The URL's token buys one cookie; set on the event loop's one thread, so two
        # requests racing with the token cannot both win.
        self.token_exchanged = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                return  # no websockets: closing without accepting refuses the handshake
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        g = self.guard
        if not g.host_allowed(headers.get("host", "")):
            await _refuse(scope, send, 403, f"Host {headers.get('host', '')[:100]!r} is not this server's name "
                          "(requests must use the printed URL; this refuses DNS rebinding)")
            return
        query = scope.get("query_string", b"").decode("latin-1")
        params = parse_qsl(query, keep_blank_values=True)
        url_token = next((v for k, v in params if k == "token"), None)
        if url_token is not None and scope["method"] == "GET":
            if not g.token_ok(url_token):
                await _refuse(scope, send, 401, "wrong token: use the URL `lode ui` printed")
                return
            rest = urlencode([(k, v) for k, v in params if k != "token"])
            location = [(b"location", (scope.get("root_path", "") + scope["path"] + (f"?{rest}" if rest else ""))
                         .encode("latin-1", "replace"))]
            if g.token_ok(_cookie(headers, COOKIE)):  # this browser exchanged it already
                await _refuse(scope, send, 303, "token already held", extra=location)
                return
            if self.token_exchanged:
                await _refuse(scope, send, 401, "this token was already exchanged for a cookie (it works once): "
                              "use the browser that opened it, or restart `lode ui` for a new one")
                return
            self.token_exchanged = True
            cookie = f"{COOKIE}={g.token}; HttpOnly; SameSite=Strict; Path=/"
            await _refuse(scope, send, 303, "token accepted",
                          extra=[*location, (b"set-cookie", cookie.encode())])
            return
        bearer = headers.get("authorization", "")
        presented = bearer[7:] if bearer.lower().startswith("bearer ") else _cookie(headers, COOKIE)
        if not g.token_ok(presented):
            await _refuse(scope, send, 401, "no valid token: open the URL `lode ui` printed (it carries the token)")
            return
        if scope["method"] in MUTATING:
            reason = self._mutation_refusal(scope["method"], headers)
            if reason:
                await _refuse(scope, send, 403, reason)
                return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    h for h in SECURITY_HEADERS if h[0] not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _mutation_refusal(self, method: str, headers: dict[str, str]) -> str | None:
        if self.guard.read_only:
            return "this server runs with --read-only: no edits"
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return "cross-origin request refused: edits come only from this server's own page"
        origin = headers.get("origin")
        if origin is not None:
            host = origin.split("://", 1)[-1]
            if origin == "null" or host.lower() != headers.get("host", "").lower():
                return "cross-origin request refused: edits come only from this server's own page"
        # A cross-site form can POST text/plain or form data without asking first; PUT, PATCH
        # and DELETE (and a JSON body) need a CORS preflight, which this server never grants.
        has_body = headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
        if (method == "POST" or has_body) and \
                headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return "edits are sent as JSON (Content-Type: application/json)"
        return None


def warn_if_exposed(host: str, read_only: bool) -> None:
    """A loud warning when the server listens beyond this machine."""
    if is_loopback(host):
        return
    bar = "!" * 78
    can = "read every artifact of this store" + ("" if read_only else " and edit it")
    print(f"{bar}\nWARNING: lode ui listens on {host}: other machines can reach it. Anyone holding the token\n"
          f"can {can}. Prefer the default 127.0.0.1 (or --read-only behind a firewall).\n{bar}",
          file=sys.stderr, flush=True)
