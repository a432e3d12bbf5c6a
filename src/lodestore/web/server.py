"""Start the server: bind first (so the printed URL has the real port, even with
--port 0), print the URL with its token, then serve with uvicorn until interrupted."""

from __future__ import annotations

import secrets
import socket
import sys
import threading
import webbrowser

import uvicorn

from lodestore.sdk.service import Service
from lodestore.web.app import create_app
from lodestore.web.security import Guard, is_loopback, warn_if_exposed

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 23300  # Runicorn's port


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it, a response written in two parts
    # (headers, then body) waited ~40 ms for the client's delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_for(host: str, port: int, token: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/?token={token}"


def serve(svc: Service, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, read_only: bool = False,
          open_browser: bool = False) -> None:
    token = secrets.token_urlsafe(24)  # made for this run of the server; never stored
    sock = bind(host, port)
    guard = Guard.for_bind(token, host, read_only)
    app = create_app(svc, guard)
    url = url_for(host, sock.getsockname()[1], token)
    warn_if_exposed(host, read_only)
    mode = "read-only" if read_only else ("editing on" if is_loopback(host) else "editing on (not loopback!)")
    print(f"lode ui: serving {svc.root} ({mode})\n  {url}\nPress Ctrl-C to stop.", flush=True)
    # A browser keeps connections open: stop within 2 s of Ctrl-C instead of waiting for them.
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, ws="none",
                            server_header=False, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    if open_browser:
        threading.Timer(0.3, webbrowser.open, args=(url,)).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        sock.close()
