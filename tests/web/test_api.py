"""Every read route of /api/v1 on a real server over a real store: the JSON shape,
cursor pagination, and the 400/404 errors with the CLI's codes."""

from __future__ import annotations

import io
import tarfile
from urllib.parse import quote

from tests.web.routes import A, V, covers

ANIMALS = "/api/v1/projects/zoo/artifacts/animals"


def all_pages(server, path: str, limit: int) -> list:
    items, cursor, pages = [], None, 0
    while True:
        sep = "&" if "?" in path else "?"
        r = server.get(f"{path}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status == 200, r.body
        body = r.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            return items


@covers("GET", "/api/v1/ping")
def test_ping(server):
    r = server.get("/api/v1/ping")
    assert r.status == 200 and r.json()["ok"] is True
    assert r.headers["content-type"] == "application/json"


@covers("GET", "/api/v1/stats")
def test_stats_cards(server):
    s = server.get("/api/v1/stats").json()
    assert s["artifacts"] == 8 and s["versions"] == 10
    for key in ("logical_bytes", "stored_bytes", "dedup_saved_bytes", "compression_saved_bytes"):
        assert isinstance(s[key], int)


@covers("GET", "/api/v1/projects")
def test_projects(server):
    assert server.get("/api/v1/projects").json() == {"items": [{"name": "zoo"}], "next_cursor": None}


@covers("GET", "/api/v1/types")
def test_types(server):
    names = [t["name"] for t in server.get("/api/v1/types?project=zoo").json()["items"]]
    assert names == ["checkpoint", "dataset", "model"]


@covers("GET", "/api/v1/artifacts")
def test_artifacts_paged_sorted_filtered(server):
    items = all_pages(server, "/api/v1/artifacts?sort=name", 3)
    assert [a["name"] for a in items] == ["animals", "ckpt0", "ckpt1", "ckpt2", "ckpt3", "ckpt4", "ckpt5", "model"]
    assert items[0] == {**items[0], "project": "zoo", "type": "dataset", "version_count": 3, "latest": "v2"}
    desc = all_pages(server, "/api/v1/artifacts?sort=-name", 5)
    assert [a["name"] for a in desc] == [a["name"] for a in reversed(items)]
    models = server.get("/api/v1/artifacts?type=model").json()["items"]
    assert [a["name"] for a in models] == ["model"]
    by_size = server.get("/api/v1/artifacts?sort=-size&limit=1").json()["items"]
    assert by_size[0]["name"] == "animals"


def test_bad_sort_limit_and_cursor_are_400(server):
    for query in ("sort=colour", "limit=0", "limit=100000", "limit=x", "cursor=%%%", "cursor=bm90IGpzb24"):
        r = server.get(f"/api/v1/artifacts?{query}")
        assert r.status == 400, query
        assert r.error["code"] == 2 and r.error["message"]


@covers("GET", "/api/v1/search")
def test_search_returns_versions_and_how_the_query_parsed(server):
    r = server.get("/api/v1/search?q=" + quote("type=dataset tag:round1 OR name~model"))
    body = r.json()
    assert sorted(v["ref"] for v in body["items"]) == ["zoo/animals:v1", "zoo/model:v0"]
    groups = body["parsed"]["groups"]
    assert [[(t["key"], t["op"], t["value"]) for t in g] for g in groups] == [
        [("type", "=", "dataset"), ("tag", ":", "round1")], [("name", "~", "model")]]
    assert groups[1][0]["column"] == 28  # 1-based


def test_search_pages_with_a_cursor(server):
    items = all_pages(server, "/api/v1/search?q=" + quote("project=zoo"), 4)
    assert len(items) == 10 and len({v["id"] for v in items}) == 10


def test_search_syntax_error_points_at_the_column(server):
    r = server.get("/api/v1/search?q=" + quote("type=model AND"))
    assert r.status == 400
    assert r.error["code"] == 2 and r.error["column"] == 12 and "AND" in r.error["message"]


@covers("GET", "/api/v1/search/parse")
def test_parse_only(server):
    body = server.get("/api/v1/search/parse?q=" + quote("-tag:x size>1MB")).json()
    assert [(t["key"], t["negate"]) for t in body["groups"][0]] == [("tag", True), ("size", False)]
    assert server.get("/api/v1/search/parse?q=" + quote("a=")).error["column"] == 3


@covers("GET", A)
def test_artifact(server):
    a = server.get(ANIMALS).json()
    assert (a["project"], a["name"], a["type"], a["latest"]) == ("zoo", "animals", "dataset", "v2")
    assert a["retention"] is None
    r = server.get("/api/v1/projects/zoo/artifacts/nope")
    assert r.status == 404 and r.error["code"] == 3 and "animals" in r.error["message"]


@covers("GET", A + "/versions")
def test_versions_newest_first_with_own_bytes(server):
    items = all_pages(server, ANIMALS + "/versions", 2)
    assert [v["version"] for v in items] == ["v2", "v1", "v0"]
    assert all(v["own_bytes"] >= 0 and v["file_count"] >= 8 for v in items)
    assert items[1]["aliases"] == ["production"] and "latest" in items[0]["aliases"]
    oldest = server.get(ANIMALS + "/versions?sort=index&limit=1").json()["items"]
    assert oldest[0]["version"] == "v0"
    assert server.get("/api/v1/projects/zoo/artifacts/nope/versions").status == 404


@covers("GET", V)
def test_version_detail(server):
    v = server.get(ANIMALS + "/versions/production?own_bytes=true").json()
    assert v["version"] == "v1" and v["ref"] == "zoo/animals:v1"
    assert v["metadata"]["split"]["test"] == 0.2 and v["tags"] == ["pets", "round1"]
    assert v["producer"]["name"] == "prep" and v["producer"]["state"] == "finished"
    assert len(v["digest"]) == 64 and v["logical_bytes"] > 0 and v["own_bytes"] >= 0
    assert "own_bytes" not in server.get(ANIMALS + "/versions/production").json()  # measured only on request
    for bad, status in (("v99", 404), ("nosuchalias", 404), ("bad name", 400)):
        r = server.get(ANIMALS + "/versions/" + quote(bad))
        assert r.status == status, bad


@covers("GET", V + "/files")
def test_files_one_folder_at_a_time(server):
    root = server.get(ANIMALS + "/versions/v2/files").json()
    kinds = [(i["kind"], i["name"]) for i in root["items"]]
    assert kinds[:4] == [("folder", "docs"), ("folder", "images"), ("folder", "meta"), ("folder", "odd")]
    assert ("file", "config.json") in kinds and ("file", "notes.txt") in kinds
    images = server.get(ANIMALS + "/versions/v2/files?folder=images").json()
    assert images["folder"] == "images"
    assert [i["path"] for i in images["items"]] == ["images/cat.png", "images/dog.bin", "images/extra2.bin"]
    assert all(len(i["digest"]) == 64 for i in images["items"])
    folder = next(i for i in root["items"] if i["name"] == "images")
    assert folder["files"] == 3 and folder["size"] == sum(i["size"] for i in images["items"])
    paged = all_pages(server, ANIMALS + "/versions/v2/files", 2)
    assert [i["path"] for i in paged] == [i["path"] for i in root["items"]]
    found = server.get(ANIMALS + "/versions/v2/files?filter=EXTRA").json()["items"]
    assert [i["path"] for i in found] == ["images/extra2.bin"]
    assert server.get(ANIMALS + "/versions/v2/files?folder=nope").status == 404


@covers("GET", V + "/files/{path:path}")
def test_file_entry(server):
    e = server.get(ANIMALS + "/versions/v2/files/meta/labels.csv").json()
    assert e["path"] == "meta/labels.csv" and e["size"] == 23 and len(e["digest"]) == 64
    r = server.get(ANIMALS + "/versions/v2/files/meta/nope.csv")
    assert r.status == 404 and r.error["code"] == 3


@covers("GET", V + "/raw/{path:path}")
def test_raw_download(server):
    r = server.get(ANIMALS + "/versions/v2/raw/meta/labels.csv")
    assert r.status == 200 and r.body == b"name,label\ncat,0\ndog,1\n"
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith("attachment;")
    img = server.get(ANIMALS + "/versions/v2/raw/images/cat.png?inline=true")
    assert img.headers["content-type"] == "image/png" and img.body.startswith(b"\x89PNG")
    html = server.get(ANIMALS + "/versions/v2/raw/page.html?inline=true")
    assert html.headers["content-type"] == "application/octet-stream"  # never rendered in this origin
    assert html.headers["content-disposition"].startswith("attachment;")


@covers("GET", V + "/archive")
def test_archive_streams_the_whole_version(server):
    r = server.get(ANIMALS + "/versions/v1/archive")
    assert r.status == 200 and r.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(r.body)) as tar:
        names = sorted(tar.getnames())
        labels = tar.extractfile("animals-v1/meta/labels.csv").read()
    assert "animals-v1/images/extra1.bin" in names and len(names) == 9
    assert labels == b"name,label\ncat,0\ndog,1\n"


@covers("GET", V + "/preview/{path:path}")
def test_previews_are_bounded_and_typed(server):
    p = lambda path: server.get(ANIMALS + "/versions/v2/preview/" + path).json()  # noqa: E731
    assert p("notes.txt")["kind"] == "text" and p("notes.txt")["text"].startswith("line one")
    assert p("config.json") == {**p("config.json"), "kind": "json", "value": {"lr": 0.1, "layers": [1, 2]}}
    table = p("meta/labels.csv")
    assert table["kind"] == "table" and table["header"] == ["name", "label"]
    assert table["rows"] == [["cat", "0"], ["dog", "1"]]
    assert p("images/cat.png")["kind"] == "image"
    assert p("images/dog.bin")["kind"] == "binary"
    html = p("page.html")
    assert html["kind"] == "text" and html["rendered"] is False


@covers("GET", A + "/aliases")
def test_aliases(server):
    items = server.get(ANIMALS + "/aliases").json()["items"]
    assert items == [{"alias": "latest", "version": "v2"}, {"alias": "production", "version": "v1"},
                     {"alias": "staging", "version": "v2"}]


@covers("GET", A + "/aliases/history")
def test_alias_history_newest_first(server):
    items = all_pages(server, ANIMALS + "/aliases/history", 2)
    assert items[0]["at"] >= items[-1]["at"]
    assert {"alias": "production", "from": None, "to": "v1"}.items() <= next(
        e for e in items if e["alias"] == "production").items()


@covers("GET", "/api/v1/diff")
def test_diff_matches_lode_diff(server):
    d = server.get("/api/v1/diff?a=zoo/animals:v1&b=zoo/animals:v2").json()
    assert d["a"] == "zoo/animals:v1" and d["b"] == "zoo/animals:v2"
    assert [x["path"] for x in d["added"]["items"]] == ["images/extra2.bin"]
    assert [x["path"] for x in d["removed"]["items"]] == ["images/extra1.bin"]
    assert [(x["from"], x["to"]) for x in d["renamed"]["items"]] == [("README.md", "docs/README.md")]
    assert [x["path"] for x in d["modified"]["items"]] == ["notes.txt"]
    assert d["metadata"]["changed"]["round"] == {"old": 1, "new": 2}
    assert "split.train" in d["metadata"]["changed"]
    assert d["tags"] == {"added": ["round2"], "removed": ["round1"]}
    assert d["aliases"]["removed"] == ["production"]
    pages, cursor = [], ""
    while True:  # every file of animals:v2 is new beside a checkpoint: page through them one by one
        one = server.get(f"/api/v1/diff?a=zoo/ckpt0:v0&b=zoo/animals:v2&section=added&limit=1&cursor={cursor}").json()
        assert one["added"]["total"] == 9 and len(one["added"]["items"]) == 1 and "removed" not in one
        pages.append(one["added"]["items"][0]["path"])
        cursor = one["added"]["next_cursor"]
        if cursor is None:
            break
    assert len(pages) == 9 and pages == sorted(pages) and one["same_artifact"] is False
    assert server.get("/api/v1/diff?a=zoo/animals:v1").status == 400
    assert server.get("/api/v1/diff?a=zoo/animals:v1&b=zoo/animals:v9").status == 404


@covers("GET", "/api/v1/diff/text")
def test_text_diff_side_by_side(server):
    d = server.get("/api/v1/diff/text?a=zoo/animals:v0&b=zoo/animals:v2&path=notes.txt").json()
    assert [r["op"] for r in d["rows"]] == ["equal", "equal", "equal", "insert", "insert"]
    assert d["rows"][3] == {"op": "insert", "old_no": None, "old": None, "new_no": 4, "new": "line 0"}
    binary = server.get("/api/v1/diff/text?a=zoo/animals:v0&b=zoo/animals:v2&path=images/dog.bin")
    assert binary.status == 400 and "not a text file" in binary.error["message"]


@covers("GET", "/api/v1/runs")
def test_runs_filtered_and_sorted_by_a_summary_key(server):
    items = all_pages(server, "/api/v1/runs?project=zoo", 1)
    assert len(items) == 3 and items[0]["name"] == "prep"
    best = server.get("/api/v1/runs?q=" + quote("group=sweep-1") + "&order=-summary.val_acc").json()["items"]
    assert [r["summary"]["val_acc"] for r in best] == [0.95, 0.91]
    assert best[0]["config"] == {"lr": 0.001} and best[0]["state"] == "finished"
    assert server.get("/api/v1/runs?q=" + quote("state=")).status == 400


@covers("GET", "/api/v1/runs/{run_id}")
def test_run(server):
    run_id = server.get("/api/v1/runs?q=" + quote("name=sweep")).json()["items"][0]["id"]
    r = server.get(f"/api/v1/runs/{run_id}").json()
    assert r["name"] == "sweep" and r["job_type"] == "train" and r["group"] == "sweep-1"
    assert server.get("/api/v1/runs/nosuchrun").status == 404


@covers("GET", "/api/v1/runs/{run_id}/inputs")
@covers("GET", "/api/v1/runs/{run_id}/outputs")
def test_run_inputs_and_outputs(server):
    run_id = server.get("/api/v1/runs?q=" + quote("name=sweep")).json()["items"][0]["id"]
    inputs = server.get(f"/api/v1/runs/{run_id}/inputs").json()["items"]
    assert [v["ref"] for v in inputs] == ["zoo/animals:v2"]
    outputs = all_pages(server, f"/api/v1/runs/{run_id}/outputs", 4)
    assert sorted(v["name"] for v in outputs) == [f"ckpt{i}" for i in range(6)]
    assert server.get("/api/v1/runs/nosuchrun/inputs").status == 404


@covers("GET", "/api/v1/lineage")
def test_lineage_one_hop_with_clusters(server):
    g = server.get("/api/v1/lineage?node=" + quote("zoo/animals:v2")).json()
    ids = {n["id"]: n for n in g["nodes"]}
    assert g["focus"] == "zoo/animals:v2" and not g["truncated"]
    runs = [n for n in g["nodes"] if n["kind"] == "run"]
    assert {r["label"] for r in runs} == {"prep", "sweep"}
    clusters = [n for n in g["nodes"] if n["kind"] == "cluster"]
    assert len(clusters) == 1 and len(clusters[0]["members"]) == 6 and clusters[0]["type"] == "checkpoint"
    assert not any(i.startswith("zoo/ckpt") for i in ids)  # inside the cluster, not beside it
    assert {(e["source"], e["target"]) for e in g["edges"]} >= {(runs[0]["id"] if runs[0]["label"] == "prep"
                                                                 else runs[1]["id"], "zoo/animals:v2")}
    sweep = next(r for r in runs if r["label"] == "sweep")
    run_view = server.get("/api/v1/lineage?node=" + quote(sweep["id"])).json()
    assert run_view["focus"] == sweep["id"]
    assert any(n["kind"] == "cluster" for n in run_view["nodes"])
    same = server.get("/api/v1/lineage?node=" + quote("zoo/animals:v2")).json()
    assert same == g  # deterministic
    assert server.get("/api/v1/lineage?node=zoo/animals").status == 400
    assert server.get("/api/v1/lineage?node=run:nope").status == 404


def test_openapi_documents_every_route(server):
    from lodestore.web.api import ENDPOINTS
    from lodestore.web.openapi import openapi_path

    spec = server.get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for ep in ENDPOINTS:
        assert ep.method.lower() in spec["paths"][openapi_path(ep.path)], ep.path


def test_unknown_api_route_is_a_json_404(server):
    r = server.get("/api/v1/nothing")
    assert r.status == 404 and r.error["code"] == 3
    r = server.request("POST", "/api/v1/ping", body={})
    assert r.status == 405 and "error" in r.json()
