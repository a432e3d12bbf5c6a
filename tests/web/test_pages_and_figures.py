"""Issue 13's remaining gaps, on a store of their own (_build_perf_store.py) and a real
`lode ui` process: `--open` runs the user's browser command; a broken version marked in
the Versions tab; a lineage neighbourhood over 500 nodes marked truncated (API and page);
keyset pages (artifacts, versions, search results) that stay put while versions and
artifacts are added; Compare's new chunk
bytes equal to `lode diff --json`'s; diff pages that add up to the whole diff `lode diff
--json` streams; stat cards equal to `lode stats`; own bytes measured again after a commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.web.conftest import HERE, Server, build_store, shot, start_server, stop_server

BLOB = "/api/v1/projects/zoo/artifacts/blob"


def lode(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LODESTORE_QUIET": "1"}
    return subprocess.run([sys.executable, "-m", "lodestore.cli.main", "--root", str(root), *args],
                          capture_output=True, text=True, env=env, timeout=120)


def log_files(root: Path, work: Path, name: str, files: dict[str, bytes]) -> None:
    """Log a version from another process (what a training job does while the page is open)."""
    folder = work / f"later-{name}-{time.monotonic_ns()}"
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    script = textwrap.dedent(f"""
        import lodestore
        with lodestore.init(project="zoo", name="later", root={str(root)!r}) as run:
            art = lodestore.Artifact({name!r}, type="dataset")
            art.add_dir({str(folder)!r})
            run.log_artifact(art)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120,
                   env={**os.environ, "LODESTORE_QUIET": "1"})


@pytest.fixture(scope="module")
def perf_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store, with zoo/fragile:v1 made broken the way it happens: its pack deleted,
    then `lode fsck --repair`."""
    where = tmp_path_factory.mktemp("perf")
    root = build_store(where, HERE / "_build_perf_store.py")
    for pack in (where / "work" / "fragile-v1-packs.txt").read_text().split():
        Path(pack).unlink()
    r = lode(root, "fsck", "--repair", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["repaired"]["marked_broken"] == ["zoo/fragile:v1"]
    return root


@pytest.fixture(scope="module")
def perf(perf_store: Path):
    s = start_server(perf_store)
    yield s
    stop_server(s)


@pytest.fixture(scope="module")
def perf_page(browser, perf: Server):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.goto(perf.url)
    tab.wait_for_selector("body[data-ready]")
    yield tab
    context.close()


def goto(tab, server: Server, path: str) -> None:
    tab.evaluate("delete document.body.dataset.ready")
    tab.goto(server.base + path)
    tab.wait_for_selector("body[data-ready]")


# ------------------------------------------------------------------------------ --open
def test_open_runs_the_browser_command_with_the_url(perf_store: Path, tmp_path: Path, monkeypatch):
    """`lode ui --open` hands the printed URL to the user's browser ($BROWSER, a real
    program here that writes down what it was given); without --open nothing runs."""
    record = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{record}.tmp" && mv "{record}.tmp" "{record}"\n')
    browser.chmod(0o755)
    monkeypatch.setenv("BROWSER", str(browser))
    quiet = start_server(perf_store)
    try:
        time.sleep(1.5)  # --open would have fired after 0.3 s
        assert not record.exists()
    finally:
        stop_server(quiet)
    opened = start_server(perf_store, "--open")
    try:
        deadline = time.monotonic() + 20
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert record.read_text() == opened.url
        assert opened.get("/api/v1/ping").status == 200
    finally:
        stop_server(opened)


# ------------------------------------------------------------------------------ broken versions
def test_broken_version_is_marked_in_the_versions_tab(perf: Server, perf_page):
    items = perf.get("/api/v1/projects/zoo/artifacts/fragile/versions?include_deleted=true").json()["items"]
    assert [(v["version"], v["state"]) for v in items] == [("v1", "broken"), ("v0", "live")]
    goto(perf_page, perf, "/artifacts/zoo/fragile/v0?tab=versions")
    rows = perf_page.locator("#panel-versions tbody tr")
    assert rows.count() == 2
    broken = perf_page.locator("#panel-versions tbody tr.broken")
    assert broken.count() == 1 and broken.first.inner_text().startswith("v1")
    assert "broken" in broken.locator(".chip.state-broken").inner_text()
    assert perf_page.locator("#panel-versions tbody tr.live").count() == 1
    shot(perf_page, "20-versions-broken")


# ------------------------------------------------------------------------------ lineage over 500
def test_lineage_over_500_nodes_is_truncated(perf: Server, perf_page):
    runs = perf.get("/api/v1/runs?project=zoo&limit=500").json()["items"]
    fan = next(r["id"] for r in runs if r["name"] == "fan")  # used 510 versions
    g = perf.get("/api/v1/lineage?node=" + quote(f"run:{fan}")).json()
    assert g["truncated"] is True
    size = sum(1 + len(n.get("members", ())) for n in g["nodes"])
    assert size == 500  # the run and a cluster cut to 499 of its 510 members
    assert [n.get("truncated") for n in g["nodes"] if n["kind"] == "cluster"] == [True]
    ids = {n["id"] for n in g["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in g["edges"])
    small = perf.get("/api/v1/lineage?node=" + quote("zoo/many:v0")).json()
    assert small["truncated"] is False
    goto(perf_page, perf, "/artifacts/zoo/many/v0?tab=lineage&expand=" + quote(f"run:{fan}"))
    perf_page.wait_for_selector("#lineage-canvas svg")
    assert "truncated" in perf_page.inner_text("#lineage-truncated")
    shot(perf_page, "21-lineage-truncated")


# ------------------------------------------------------------------------------ new chunk bytes
def test_compare_shows_the_new_chunk_bytes_lode_diff_reports(perf: Server, perf_page):
    d = perf.get("/api/v1/diff?a=zoo/blob:v0&b=zoo/blob:v1").json()
    cli = json.loads(lode(perf.root, "diff", "zoo/blob:v0", "zoo/blob:v1", "--json").stdout)
    assert (d["new_chunk_bytes"], d["new_chunk_raw_bytes"]) == (cli["new_chunk_bytes"], cli["new_chunk_raw_bytes"])
    # v1 is v0's 3 MB and 1 MB more: only the chunks from v0's last chunk boundary on are new
    assert 1_000_000 <= d["new_chunk_raw_bytes"] < 1_500_000 and d["new_chunk_bytes"] >= d["new_chunk_raw_bytes"]
    back = perf.get("/api/v1/diff?a=zoo/blob:v1&b=zoo/blob:v0").json()
    assert 0 < back["new_chunk_raw_bytes"] <= 256 * 1024  # v0's last chunk only (cut at its end)
    moved = perf.get("/api/v1/diff?a=zoo/blob:v1&b=zoo/blob:v2").json()
    assert moved["renamed"]["total"] == 1 and moved["new_chunk_raw_bytes"] == 4  # "same", held twice, once
    goto(perf_page, perf, "/artifacts/zoo/blob/v1?tab=compare")
    text = perf_page.inner_text("#diff-new-chunks")
    assert "new chunk bytes v1 adds" in text and "MB" in text
    shot(perf_page, "22-compare-new-chunks")


def test_diff_pages_agree_with_the_whole_diff(perf: Server):
    """Pages of one row cut by the cursor list what `lode diff --json` streams whole (one
    rule, catalog/diff_pages.py: the pages are cut by path, the CLI's renames come by old
    path), for two removed and three added files of one digest, both ways round."""
    for a, b in (("zoo/dups:v0", "zoo/dups:v1"), ("zoo/dups:v1", "zoo/dups:v0"), ("zoo/blob:v0", "zoo/blob:v2")):
        whole = json.loads(lode(perf.root, "diff", a, b, "--json").stdout)
        for section in ("added", "removed", "modified", "renamed"):
            items, cursor = [], ""
            while True:
                one = perf.get(f"/api/v1/diff?a={a}&b={b}&section={section}&limit=1&cursor={cursor}").json()
                assert one[section]["total"] == len(whole[section])
                items += one[section]["items"]
                cursor = one[section]["next_cursor"]
                if cursor is None:
                    break
            key = (lambda x: x["to"]) if section == "renamed" else (lambda x: x["path"])
            assert items == sorted(whole[section], key=key), (a, b, section)
    d = perf.get("/api/v1/diff?a=zoo/dups:v0&b=zoo/dups:v1").json()
    assert [(x["from"], x["to"]) for x in d["renamed"]["items"]] == [("x/1", "y/1"), ("x/2", "y/2")]
    assert [x["path"] for x in d["added"]["items"]] == ["y/3"] and d["modified"]["total"] == 1
    assert d["summary"] == "+1 files, ~1 modified, -0, 2 renamed, +3 B" and d["unchanged"] == 0


def test_stat_cards_say_what_lode_stats_says(perf: Server):
    cards = perf.get("/api/v1/stats").json()
    full = json.loads(lode(perf.root, "stats", "--json").stdout)
    for key in ("versions", "deleted_versions", "broken_versions", "logical_bytes", "unique_bytes",
                "dedup_saved_bytes", "compression_saved_bytes", "dedup_ratio"):
        assert cards[key] == full[key], key
    assert cards["artifacts"] == len(full["artifacts"]) and cards["broken_versions"] == 1


# ------------------------------------------------------------------------------ keyset pages (mutate: last)
def test_keyset_pages_stay_put_while_artifacts_and_versions_are_added(perf: Server, tmp_path: Path):
    first = perf.get("/api/v1/artifacts?sort=name&limit=3").json()
    assert [a["name"] for a in first["items"]] == ["a0", "a1", "a2"]
    newest = perf.get("/api/v1/projects/zoo/artifacts/many/versions?limit=2").json()
    assert [v["version"] for v in newest["items"]] == ["v509", "v508"]
    found = perf.get("/api/v1/search?limit=2&q=" + quote("name=many")).json()
    assert [v["version"] for v in found["items"]] == ["v509", "v508"]
    log_files(perf.root, tmp_path, "a10", {"x.txt": b"before the cursor"})
    log_files(perf.root, tmp_path, "a25", {"x.txt": b"after the cursor"})
    log_files(perf.root, tmp_path, "many", {"n.txt": b"v510"})
    second = perf.get(f"/api/v1/artifacts?sort=name&limit=3&cursor={first['next_cursor']}").json()
    assert [a["name"] for a in second["items"]] == ["a25", "a3", "a4"]  # no a2 again, a10 not slipped in
    older = perf.get(f"/api/v1/projects/zoo/artifacts/many/versions?limit=2&cursor={newest['next_cursor']}").json()
    assert [v["version"] for v in older["items"]] == ["v507", "v506"]
    more = perf.get(f"/api/v1/search?limit=2&cursor={found['next_cursor']}&q=" + quote("name=many")).json()
    assert [v["version"] for v in more["items"]] == ["v507", "v506"]  # the search's next page, cut in SQL
    again = perf.get("/api/v1/projects/zoo/artifacts/many/versions?limit=1").json()
    assert again["items"][0]["version"] == "v510"
    created = perf.get("/api/v1/artifacts?sort=-created&limit=2").json()
    assert [a["name"] for a in created["items"]] == ["a25", "a10"]
    rest = perf.get(f"/api/v1/artifacts?sort=-created&limit=50&cursor={created['next_cursor']}").json()
    assert "a25" not in {a["name"] for a in rest["items"]} and len(rest["items"]) == 10
    assert perf.get("/api/v1/artifacts?sort=size&cursor=" + first["next_cursor"]).status == 400  # another sort's


def test_own_bytes_are_measured_again_after_a_commit(perf: Server, tmp_path: Path):
    """Own bytes are kept between requests, but a version sharing v1's chunks, committed
    by another process, makes v1's own bytes smaller at once."""
    before = perf.get(BLOB + "/versions/v0?own_bytes=true").json()["own_bytes"]
    assert before == perf.get(BLOB + "/versions/v0?own_bytes=true").json()["own_bytes"] > 0
    raw = perf.get("/api/v1/projects/zoo/artifacts/blob/versions/v0/raw/blob.bin").body
    log_files(perf.root, tmp_path, "copy", {"same-as-blob-v0.bin": raw})
    assert perf.get(BLOB + "/versions/v0?own_bytes=true").json()["own_bytes"] == 0
