"""What ships: every asset comes from the installed package and names no other origin
(no CDN, no network at run time), and the wheel holds the assets."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import zipfile
from importlib import resources
from pathlib import Path

from tests.web.conftest import REPO

# "https://host", "http://host", or a scheme-relative "//host" in a quote, url( or attribute
ORIGIN = re.compile(rb"(?:https?|wss?|ftp):/+[a-z0-9]|[\"'(=]\s*//[a-z0-9]", re.IGNORECASE)
ASSETS = sorted(p.name for p in resources.files("lodestore.web").joinpath("static").iterdir()
                if p.name.endswith((".html", ".js", ".css")))


def served_assets(server) -> dict[str, bytes]:
    pages = {path: server.get(path).body for path in ("/", "/docs", "/runs", "/artifacts/zoo/animals")}
    html = pages["/"].decode()
    linked = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assets = {path: server.get(path).body for path in linked}
    for body in list(assets.values()):  # modules the scripts import
        for name in re.findall(rb'from "\./([\w.-]+\.js)"', body):
            assets[f"/static/{name.decode()}"] = server.get(f"/static/{name.decode()}").body
    return {**pages, **assets, "/api/v1/openapi.json": server.get("/api/v1/openapi.json").body}


def test_no_served_page_script_or_style_names_another_origin(server):
    served = served_assets(server)
    assert {f"/static/{n}" for n in ASSETS if n != "index.html"} <= set(served)  # every asset reached
    for path, body in served.items():
        assert ORIGIN.findall(body) == [], path


def test_html_has_no_inline_script_or_style(server):
    html = server.get("/").body.decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == [] and "style=" not in html and "<style" not in html


def test_lode_ui_is_ready_quickly(web_store):
    """`lode ui` prints its URL and answers soon after start (the 1.5 s goal on a
    10,000-version store is measured by bench/web.py; here: a generous bound)."""
    from tests.web.conftest import start_server, stop_server

    t0 = time.monotonic()
    s = start_server(web_store)
    try:
        assert s.get("/api/v1/ping").status == 200
        assert time.monotonic() - t0 < 10
    finally:
        stop_server(s)


def test_the_wheel_holds_the_assets(tmp_path: Path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(tmp_path)],
                          timeout=600, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next(tmp_path.glob("lodestore-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in ASSETS:
        assert f"lodestore/web/static/{asset}" in names
