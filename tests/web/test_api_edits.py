"""The edit routes (their own server: they change the store): each goes through the door
with its rules (latest is not set by hand, aliased versions need delete_aliases, ...)."""

from __future__ import annotations

from tests.web.routes import A, V, covers

ANIMALS = "/api/v1/projects/zoo/artifacts/animals"


@covers("PATCH", V)
def test_edit_description_metadata_and_tags(server):
    r = server.request("PATCH", ANIMALS + "/versions/v0", body={
        "description": "new *text*", "metadata_set": {"owner": "ana", "split": {"train": 0.7}},
        "metadata_unset": ["payload"], "tags_add": ["gold"], "tags_remove": ["round0"]})
    assert r.status == 200, r.body
    v = r.json()
    assert v["description"] == "new *text*" and v["metadata"]["owner"] == "ana"
    assert "payload" not in v["metadata"] and v["metadata"]["split"] == {"train": 0.7}
    assert v["tags"] == ["gold", "pets"]
    assert server.get(ANIMALS + "/versions/v0").json()["tags"] == ["gold", "pets"]
    cleared = server.request("PATCH", ANIMALS + "/versions/v0", body={"description": None}).json()
    assert cleared["description"] is None and cleared["tags"] == ["gold", "pets"]


def test_bad_edits_are_400(server):
    for body in ({"colour": 1}, {"tags_add": "x"}, {"tags_add": ["bad tag"]}, {"metadata_set": [1]},
                 {"description": 5}):
        r = server.request("PATCH", ANIMALS + "/versions/v0", body=body)
        assert r.status == 400 and r.error["code"] == 2, body
    r = server.request("PATCH", ANIMALS + "/versions/v0", body=b"not json")
    assert r.status == 400


@covers("PUT", A + "/aliases/{alias}")
def test_move_an_alias_and_see_it_in_the_history(server):
    r = server.request("PUT", ANIMALS + "/aliases/production", body={"version": "v2"})
    assert r.status == 200 and "production" in r.json()["aliases"]
    latest = server.get(ANIMALS + "/aliases/history?limit=1").json()["items"][0]
    assert (latest["alias"], latest["from"], latest["to"]) == ("production", "v1", "v2")
    refused = server.request("PUT", ANIMALS + "/aliases/latest", body={"version": "v0"})
    assert refused.status == 400 and "latest" in refused.error["message"]
    assert server.request("PUT", ANIMALS + "/aliases/v7", body={"version": "v0"}).status == 400
    assert server.request("PUT", ANIMALS + "/aliases/x", body={"version": "v99"}).status == 404
    assert server.request("PUT", ANIMALS + "/aliases/x", body={}).status == 400


@covers("DELETE", A + "/aliases/{alias}")
def test_remove_an_alias(server):
    server.request("PUT", ANIMALS + "/aliases/temp", body={"version": "v0"})
    r = server.request("DELETE", ANIMALS + "/aliases/temp")
    assert r.status == 200 and r.json() == {"removed": "temp"}
    assert server.request("DELETE", ANIMALS + "/aliases/temp").status == 404
    assert server.request("DELETE", ANIMALS + "/aliases/latest").status == 400


@covers("DELETE", V)
@covers("POST", V + "/restore")
def test_soft_delete_and_restore(server):
    held = server.request("DELETE", ANIMALS + "/versions/v2")  # holds production and staging
    assert held.status == 409 and held.error["code"] == 4
    r = server.request("DELETE", ANIMALS + "/versions/v2?delete_aliases=true")
    assert r.status == 200 and r.json()["state"] == "deleted"
    listed = server.get(ANIMALS + "/versions?include_deleted=true").json()["items"]
    assert [v["state"] for v in listed] == ["deleted", "live", "live"]
    assert [v["version"] for v in server.get(ANIMALS + "/versions").json()["items"]] == ["v1", "v0"]
    assert server.request("PATCH", ANIMALS + "/versions/v2", body={"tags_add": ["x"]}).status == 404
    back = server.request("POST", ANIMALS + "/versions/v2/restore", body={})
    assert back.status == 200 and back.json()["state"] == "live" and "latest" in back.json()["aliases"]
    assert server.request("POST", ANIMALS + "/versions/v9/restore", body={}).status == 404
