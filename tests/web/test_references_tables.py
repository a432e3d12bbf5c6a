"""Reference entries and Parquet tables on the Files tab (issue 13 over issue 15's
artifacts), on their own store (_build_refs_store.py): a reference is listed with its
URI and never read, downloaded or fetched by the server; a Parquet file previews its
first 100 rows as a table. API first, then the same in headless Chromium."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.web._build_refs_store import HTTP_URI, S3_URI
from tests.web.conftest import HERE, build_store, shot, start_server, stop_server
from tests.web.test_browser import click_and_wait, goto

MIXED = "/api/v1/projects/zoo/artifacts/mixed/versions/v0"


@pytest.fixture(scope="module")
def refs_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("refs"), HERE / "_build_refs_store.py")


@pytest.fixture(scope="module")
def server(refs_store: Path):
    s = start_server(refs_store)
    yield s
    stop_server(s)


def by_name(items: list[dict]) -> dict[str, dict]:
    return {i["name"]: i for i in items}


def test_files_list_references_with_their_uri(server):
    root = by_name(server.get(MIXED + "/files").json()["items"])
    assert root["train.tar"] == {"kind": "reference", "name": "train.tar", "path": "train.tar", "size": None,
                                 "digest": None, "uri": S3_URI}
    assert root["ext"]["kind"] == "folder" and root["ext"]["files"] == 2  # a folder only references make
    assert root["stored.txt"]["kind"] == "file"
    ext = by_name(server.get(MIXED + "/files?folder=ext").json()["items"])
    assert ext["weights.bin"] == {"kind": "reference", "name": "weights.bin", "path": "ext/weights.bin",
                                  "size": 4096, "digest": "sha256:" + "ab" * 32, "uri": HTTP_URI}
    outside = ext["outside.txt"]
    assert outside["uri"].startswith("file:///") and outside["size"] == 34 and outside["digest"].startswith("blake3:")
    found = server.get(MIXED + "/files?filter=WEIGHTS").json()["items"]
    assert [(i["path"], i["kind"]) for i in found] == [("ext/weights.bin", "reference")]


def test_a_reference_is_shown_never_read_nor_fetched(server):
    # outside.txt was deleted after logging and nothing listens on HTTP_URI's port: any
    # read or fetch would fail, so these answers come from the catalog alone.
    entry = server.get(MIXED + "/files/ext/outside.txt").json()
    assert entry["kind"] == "reference" and entry["uri"].endswith("/outside.txt")
    for path, uri in (("ext/outside.txt", entry["uri"]), ("ext/weights.bin", HTTP_URI), ("train.tar", S3_URI)):
        p = server.get(f"{MIXED}/preview/{path}")
        assert p.status == 200 and p.json()["kind"] == "reference" and p.json()["uri"] == uri
        raw = server.get(f"{MIXED}/raw/{path}")
        assert raw.status == 404 and raw.error["code"] == 3
        assert uri in raw.error["message"] and "holds none of its bytes" in raw.error["message"]
    stored = server.get(MIXED + "/files/stored.txt").json()
    assert (stored["path"], stored["size"]) == ("stored.txt", 18) and "uri" not in stored


def test_parquet_previews_its_first_100_rows_as_a_table(server):
    p = server.get(MIXED + "/preview/scores.table.parquet").json()
    assert p["kind"] == "table" and p["header"] == ["id", "name", "score"]
    assert len(p["rows"]) == 100 and p["rows"][0] == [0, "<b>row0</b>", 0.0] and p["rows"][99][0] == 99
    assert p["truncated"] is True and p["total_rows"] == 150


def test_a_file_named_parquet_that_is_not_says_so(server):
    p = server.get(MIXED + "/preview/broken.parquet")
    assert p.status == 200 and p.json()["kind"] == "unsupported"
    assert p.json()["message"].startswith("not a readable Parquet file")


def test_the_web_api_does_not_import_pyarrow():
    """pyarrow costs ~200 ms and ~30 MB: `lode ui` imports it on the first Parquet preview."""
    code = "import sys, lodestore.web.app; assert 'pyarrow' not in sys.modules, 'pyarrow imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_browser_files_tab_shows_references_and_a_parquet_table(page, server):
    base = "/artifacts/zoo/mixed/v0"
    goto(page, server, base + "?tab=files")
    row = page.locator("#panel-files tr:has(a.reference:text-is('train.tar'))")
    assert row.locator(".uri").inner_text() == S3_URI
    assert row.locator("a[download]").count() == 0  # no bytes here to download
    assert page.locator("#panel-files tr:has(a.file:text-is('stored.txt')) a[download]").count() == 1
    click_and_wait(page, "#panel-files a.folder:text-is('ext/')")
    link = page.locator("#panel-files tr:has(a.reference:text-is('weights.bin')) a.uri-link")
    assert link.get_attribute("href") == HTTP_URI and link.get_attribute("rel") == "noopener noreferrer"
    click_and_wait(page, "#panel-files a.reference:text-is('outside.txt')")
    assert "holds none of its bytes" in page.inner_text("#reference-preview")
    assert page.locator("#preview pre, #preview table, #preview img").count() == 0
    shot(page, "20-files-references")
    goto(page, server, base + "?tab=files&preview=scores.table.parquet")
    page.wait_for_selector("#preview table")
    assert page.locator("#preview table thead th").all_inner_texts() == ["id", "name", "score"]
    assert page.locator("#preview table tbody tr").count() == 100
    assert page.locator("#preview table tbody tr").first.locator("td").nth(1).inner_text() == "<b>row0</b>"
    assert "first 100 of 150 rows" in page.inner_text("#preview")
    shot(page, "21-files-parquet")
