"""End to end in headless Chromium (Playwright driving Debian's /usr/bin/chromium): every
page and tab, search with a valid and an invalid query, lineage expanded, two versions
compared, an alias moved and seen in the history, a version soft-deleted and restored,
payloads rendered inert. Screenshots: test-output/web/."""

from __future__ import annotations

from tests.web.conftest import shot

BASE = "/artifacts/zoo/animals"


def goto(page, server, path: str) -> None:
    page.evaluate("delete document.body.dataset.ready")
    page.goto(server.base + path)
    page.wait_for_selector("body[data-ready]")


def wait_render(page) -> None:
    page.wait_for_selector("body[data-ready]")


def click_and_wait(page, selector: str) -> None:
    page.evaluate("delete document.body.dataset.ready")
    page.click(selector)
    wait_render(page)


def confirm_dialogs(page, *values: dict[str, str]) -> None:
    """Fill the edit dialog(s) given, then press Confirm on the confirmation."""
    for fields in values:
        page.wait_for_selector("dialog[open]")
        for name, value in fields.items():
            page.fill(f"#dlg-{name}", value)
        page.click("#dialog-ok")
    page.wait_for_selector("dialog[open] >> text=Confirm")
    page.evaluate("delete document.body.dataset.ready")
    page.click("#dialog-ok")
    wait_render(page)


def test_artifacts_page_with_stat_cards_and_table(page, server):
    goto(page, server, "/")
    page.wait_for_selector("[data-stat='versions']")
    assert page.inner_text("[data-stat='versions'] .value") == "10"
    assert page.inner_text("[data-stat='artifacts'] .value") == "8"
    rows = page.locator("main table tbody tr")
    assert rows.count() == 8
    assert rows.first.inner_text().startswith("zoo/animals")
    shot(page, "01-artifacts")
    click_and_wait(page, "th:has-text('versions')")
    assert "sort=versions" in page.url
    page.evaluate("delete document.body.dataset.ready")
    page.select_option("#type-filter", "model")
    wait_render(page)
    assert "type=model" in page.url and page.locator("main table tbody tr").count() == 1


def test_search_valid_and_invalid(page, server):
    goto(page, server, "/")
    page.fill("#search", "type=dataset tag:round1")
    click_and_wait(page, "#search-form button[type=submit]")
    assert "q=type%3Ddataset" in page.url
    assert "type = dataset" in page.inner_text("#parsed") and "tag : round1" in page.inner_text("#parsed")
    assert page.locator("main table tbody tr").count() == 1
    assert "zoo/animals:v1" in page.inner_text("main table")
    shot(page, "02-search")
    page.fill("#search", "type=model AND")
    click_and_wait(page, "#search-form button[type=submit]")
    err = page.inner_text("#query-error")
    assert "column 12" in err
    caret_line = page.inner_text("#query-error pre").split("\n")[1]
    assert caret_line == " " * 11 + "^"
    shot(page, "03-search-error")


def test_overview_renders_payloads_inert(page, server):
    goto(page, server, BASE + "/v1")
    assert page.inner_text("#title").startswith("animals:v1")
    md = page.locator(".markdown")
    assert md.locator("strong").inner_text() == "Pets"
    assert md.locator("a").first.get_attribute("href") == "/docs"
    assert md.locator("a").nth(1).get_attribute("href") == "#"  # javascript: never becomes a link
    assert "<script>" in md.inner_text()  # shown as text
    assert page.locator("#metadata-tree").inner_text().count("<img src=x") == 2  # key and value, as text
    assert page.evaluate("window.__xss") is None
    assert page.locator("main script, main img[src='x']").count() == 0
    assert "production" in page.inner_text("#aliases")
    assert "prep" in page.inner_text("#facts")
    page.wait_for_function("document.getElementById('own-bytes').textContent.endsWith(' B')")  # filled in later
    assert page.evaluate("[...document.querySelector('#panel-overview').childNodes].some(n => n.nodeType === 3)") \
        is False  # no stray text (a null once showed as "null")
    assert page.locator("a:has-text('search by this key')").count() >= 3
    shot(page, "04-overview")
    click_and_wait(page, "#metadata-tree .leaf:has(.key:text-is('source')) a")
    assert "metadata.source%3Dshelter" in page.url
    assert page.locator("main table tbody tr").count() == 3


def test_versions_tab(page, server):
    goto(page, server, BASE + "/v2?tab=versions")
    rows = page.locator("#panel-versions tbody tr")
    assert rows.count() == 3
    assert rows.first.inner_text().startswith("v2")
    shot(page, "05-versions")


def test_files_tab_folders_filter_and_previews(page, server):
    goto(page, server, BASE + "/v2?tab=files")
    assert page.locator("#panel-files a.folder").count() == 4
    click_and_wait(page, "#panel-files a.folder:has-text('images/')")
    assert "folder=images" in page.url and "images" in page.inner_text("#crumbs")
    click_and_wait(page, "#panel-files a.file:has-text('cat.png')")
    page.wait_for_selector("#preview img.preview")
    assert page.evaluate("document.querySelector('#preview img').naturalWidth") == 4
    shot(page, "06-files-image")
    goto(page, server, BASE + "/v2?tab=files&preview=meta/labels.csv")
    page.wait_for_selector("#preview table")
    assert page.locator("#preview tbody tr").count() == 2
    goto(page, server, BASE + "/v2?tab=files&preview=page.html")
    page.wait_for_selector("#preview pre")
    assert "<script>" in page.inner_text("#preview pre") and page.evaluate("window.__xss") is None
    goto(page, server, BASE + "/v2?tab=files")
    page.fill("#file-filter", "onerror")
    click_and_wait(page, "#panel-files form button[type=submit]")
    assert "<img src=x onerror" in page.inner_text("#panel-files table")
    assert page.evaluate("window.__xss") is None
    shot(page, "07-files-filter")
    with page.expect_download() as dl:
        page.click("#download-archive")
    assert dl.value.suggested_filename == "animals-v2.tar"


def test_lineage_expands_clusters_and_navigates(page, server):
    goto(page, server, BASE + "/v2?tab=lineage")
    page.wait_for_selector("#lineage-canvas svg")
    nodes = page.locator("#lineage-canvas g.node")
    assert nodes.count() == 4  # the version, its two runs, one cluster of six checkpoints
    first_picture = page.inner_html("#lineage-canvas")
    shot(page, "08-lineage")
    page.locator("#lineage-canvas g.node.cluster").click()
    page.fill(".cluster-search", "ckpt3")
    assert page.locator("#lineage-panel li").count() == 1
    click_and_wait(page, "#lineage-panel li a")
    assert "expand=zoo%2Fckpt3%3Av0" in page.url
    page.wait_for_selector("#lineage-canvas g.node[data-id='zoo/ckpt3:v0']")
    page.evaluate("delete document.body.dataset.ready")
    page.locator("#lineage-canvas g.node.run:has-text('prep')").click()
    wait_render(page)
    page.wait_for_selector("#lineage-open")
    shot(page, "09-lineage-expanded")
    click_and_wait(page, "#lineage-open")
    assert "/runs/" in page.url and page.inner_text("h1").startswith("Run prep")
    goto(page, server, BASE + "/v2?tab=lineage")
    page.wait_for_selector("#lineage-canvas svg")
    assert page.inner_html("#lineage-canvas") == first_picture  # deterministic layout


def test_lineage_click_selects_and_expands_and_open_goes_there(page, server):
    """One click on a node selects it and expands it one hop (both in the URL); the
    panel's Open button, not the click, goes to the node's page."""
    goto(page, server, BASE + "/v1?tab=lineage")
    assert "Open button" in page.inner_text("#lineage-panel")  # the hint says how to go there
    before = page.locator("#lineage-canvas g.node").count()
    page.evaluate("delete document.body.dataset.ready")
    page.locator("#lineage-canvas g.node[data-id='zoo/model:v0']").click()
    wait_render(page)
    assert "/artifacts/zoo/animals/v1?" in page.url  # still this page: the click did not leave
    assert "expand=zoo%2Fmodel%3Av0" in page.url and "selected=zoo%2Fmodel%3Av0" in page.url
    assert page.locator("#lineage-canvas g.node.selected").get_attribute("data-id") == "zoo/model:v0"
    assert page.locator("#lineage-canvas g.node").count() >= before
    opener = page.locator("#lineage-open")
    assert opener.inner_text() == "Open" and opener.get_attribute("href") == "/artifacts/zoo/model/v0"
    shot(page, "09b-lineage-selected")
    click_and_wait(page, "#lineage-open")
    assert page.url.endswith("/artifacts/zoo/model/v0") and page.inner_text("h1").startswith("model:v0")


def test_compare_two_versions(page, server):
    goto(page, server, BASE + "/v2?tab=compare")
    assert page.input_value("#compare-a") == "v1" and page.input_value("#compare-b") == "v2"
    summary = page.inner_text("#diff-summary")
    assert "+1 files" in summary and "1 renamed" in summary
    assert "docs/README.md" in page.inner_text("#diff-renamed")
    assert "split.train" in page.inner_text("main") and "+tag round2" in page.inner_text("#diff-labels")
    page.click("button[data-diff='notes.txt']")
    page.wait_for_selector("#text-diff table")
    assert page.locator("#text-diff tr").count() == 5  # one row per line pair, side by side
    assert page.locator("#text-diff tr.insert td.new").last.inner_text() == "line 1"
    shot(page, "10-compare")
    page.select_option("#compare-a", "v0")  # the form's button navigates
    click_and_wait(page, "#panel-compare form button[type=submit]")
    assert "a=v0" in page.url and "2 files" not in page.inner_text("#diff-summary")


def test_runs_list_sorted_by_summary_and_run_page(page, server):
    goto(page, server, "/runs")
    rows = page.locator("main table tbody tr")
    assert rows.count() == 3
    assert page.evaluate("window.__xss") is None and "<script>" in page.inner_text("main table")
    click_and_wait(page, "th:has-text('summary.val_acc')")
    assert "order=-summary.val_acc" in page.url
    assert rows.first.inner_text().startswith("sweep")
    shot(page, "11-runs")
    click_and_wait(page, "main table tbody tr >> nth=0 >> a")
    assert page.inner_text("h1").startswith("Run sweep")
    assert "zoo/animals:v2" in page.inner_text("#run-inputs")
    assert page.locator("#run-outputs tbody tr").count() == 6
    shot(page, "12-run")


def test_api_docs_page(page, server):
    goto(page, server, "/docs")
    assert page.locator("[data-op]").count() >= 29
    assert page.locator("[data-op='get /api/v1/lineage']").count() == 1


def test_missing_things_show_a_not_found_page(page, server):
    for path in (BASE + "/v99", "/artifacts/zoo/nope", "/runs/nope"):
        response = page.goto(server.base + path)
        assert response.status == 404
        page.wait_for_selector("body[data-ready]")
        assert page.inner_text("h1") == "Not found" and "Traceback" not in page.content()
    shot(page, "13-not-found")


def test_move_an_alias_and_see_it_in_the_history(page, server):
    goto(page, server, BASE + "/v2")
    page.click("#add-alias")
    confirm_dialogs(page, {"alias": "production"})
    assert "production" in page.inner_text("#aliases")
    history = page.locator("#panel-overview table tbody tr").first.inner_text()
    assert "production" in history and "v1" in history and "v2" in history
    shot(page, "14-alias-moved")
    page.locator("[data-remove-alias='staging']").click()
    confirm_dialogs(page)
    assert "staging" not in page.inner_text("#aliases")


def test_edit_description_and_tags_through_dialogs(page, server):
    goto(page, server, BASE + "/v0")
    page.click("#edit-description")
    confirm_dialogs(page, {"description": "edited **here**"})
    assert page.locator(".markdown strong").inner_text() == "here"
    page.click("#edit-tags")
    confirm_dialogs(page, {"add": "gold", "remove": "round0"})
    assert "gold" in page.inner_text("#tags") and "round0" not in page.inner_text("#tags")
    page.click("#edit-metadata")
    confirm_dialogs(page, {"key": "owner", "value": '"ana"'})
    assert "owner" in page.inner_text("#metadata-tree")


def test_cancel_changes_nothing(page, server):
    goto(page, server, BASE + "/v0")
    page.click("#delete-version")
    page.wait_for_selector("dialog[open]")
    page.click("#dialog-cancel")
    goto(page, server, BASE + "/v0")
    assert "live" in page.inner_text("#title")


def test_soft_delete_and_restore(page, server):
    goto(page, server, BASE + "/v0")
    page.click("#delete-version")
    confirm_dialogs(page)
    assert "deleted" in page.inner_text("#title")
    goto(page, server, BASE + "/v2?tab=versions")
    deleted = page.locator("#panel-versions tbody tr.deleted")
    assert deleted.count() == 1 and deleted.inner_text().startswith("v0")
    shot(page, "15-deleted")
    page.click("[data-restore='v0']")
    confirm_dialogs(page)
    assert page.locator("#panel-versions tbody tr.deleted").count() == 0
