"""`lode`: every command of the issue, its `--json`, its exit codes, on a real store."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import blake3
import pytest

import lodestore

# The main CLI suite runs on the embedded store and on the team pair (tests/conftest.py).
pytestmark = pytest.mark.team_too

IMAGES = {"cat.jpg": b"\xff\xd8cat", "dogs/rex.jpg": b"\xff\xd8rex", "scratch.tmp": b"half-written"}


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


# --- end to end, as a shell sees it ----------------------------------------------------------
def test_put_then_get_end_to_end(lode_proc, images: Path, store: Path, tmp_path: Path, backend: str) -> None:
    put = lode_proc(
        "put",
        images,
        "--name",
        "zoo/animals",
        "--type",
        "dataset",
        "--alias",
        "best",
        "--alias",
        "golden",
        "--description",
        "pets",
        "--metadata",
        '{"source": "shelter"}',
        "--tag",
        "raw",
        "--tag",
        "pets",
    )
    assert put.code == 0, put.err
    assert "zoo/animals:v0" in put.out

    got = lode_proc("get", "zoo/animals:latest", "--root", "out")
    assert got.code == 0, got.err
    assert tree(Path("out")) == IMAGES

    # global --root is the store, get's --root the target; $LODESTORE_DIR points elsewhere
    # (an explicit --root is that embedded store: on the team pair the data is not there)
    if backend == "local":
        elsewhere = {"LODESTORE_DIR": str(tmp_path / "empty-store")}
        got = lode_proc("--root", store, "get", "zoo/animals:best", "--root", "out2", env=elsewhere)
        assert got.code == 0, got.err
        assert tree(Path("out2")) == IMAGES

    info = lode_proc("info", "zoo/animals:v0", "--json")  # stdout is the JSON alone
    assert info.code == 0
    record = json.loads(info.out)
    assert (record["description"], record["metadata"], sorted(record["tags"]), record["aliases"]) == (
        "pets",
        {"source": "shelter"},
        ["pets", "raw"],
        ["latest", "best", "golden"],
    )


def test_exit_codes_of_the_installed_command(lode_proc, lode, images: Path) -> None:
    assert lode("put", images, "--name", "zoo/animals", "--alias", "best").code == 0

    bad_json = lode_proc("put", images, "--name", "zoo/animals", "--metadata", "{not json")
    assert bad_json.code == 2
    assert "--metadata is not valid JSON" in bad_json.err and "Traceback" not in bad_json.err

    unknown = lode_proc("get", "zoo/animals:v9", "--root", "out")
    assert unknown.code == 3
    assert "v9" in unknown.err and "v0" in unknown.err and "best" in unknown.err  # lists what exists
    assert not Path("out").exists()

    usage = lode_proc("get")
    assert usage.code == 2 and "Missing argument" in usage.err and "Traceback" not in usage.err
    assert [v["version"] for v in lode("versions", "zoo/animals", "--json").json()] == ["v0"]


def test_exit_codes_and_messages(lode, images: Path) -> None:
    assert lode("put", images, "--name", "zoo/animals").code == 0
    assert lode("info", "zoo/nothing").code == 3
    assert lode("versions", "nowhere/animals").code == 3
    assert lode("files", "zoo/animals:v3").code == 3
    missing = lode("put", "no/such/folder", "--name", "zoo/animals")
    assert missing.code == 3 and "no/such/folder" in missing.err
    for usage in (["get"], ["frobnicate"], ["ls", "--type"], ["put", images], []):
        result = lode(*usage)
        assert result.code == 2, usage
        assert result.err, usage


# --- put -----------------------------------------------------------------------------------
def test_put_json_and_identical_content(lode, images: Path) -> None:
    first = lode("put", images, "--name", "zoo/animals", "--exclude", "*.tmp", "--json")
    assert first.code == 0, first.err
    record = first.json()
    assert (record["name"], record["version"], record["created"], record["file_count"]) == (
        "zoo/animals:v0",
        "v0",
        True,
        2,
    )
    assert record["digest"] and record["aliases"] == ["latest"]

    again = lode("put", images, "--name", "zoo/animals", "--exclude", "*.tmp", "--alias", "best", "--json")
    assert again.code == 0
    assert (again.json()["version"], again.json()["created"]) == ("v0", False)
    assert again.json()["aliases"] == ["latest", "best"]
    assert "no new version" in again.err

    (images / "new.txt").write_text("new")
    third = lode("put", images, "--name", "zoo/animals", "--json")
    assert (third.json()["version"], third.json()["file_count"]) == ("v1", 4)


def test_put_refuses_bad_input(lode, images: Path) -> None:
    assert lode("put", images, "--name", "zoo/animals").code == 0
    for name in ("zoo/..", "zoo/a b", "../x", "zoo/" + "a" * 129, "", "zoo/animals:v1", "a/b/c"):
        result = lode("put", images, "--name", name)
        assert result.code == 2, (name, result.err)
        assert "error:" in result.err
    for metadata in ("[1, 2]", "{bad", '{"x": NaN}'):
        assert lode("put", images, "--name", "zoo/animals", "--metadata", metadata).code == 2
    assert lode("put", images, "--name", "zoo/animals", "--alias", "v3").code == 2
    assert lode("put", images, "--name", "zoo/animals", "--type", "model").code == 4  # type is fixed
    outside = images.parent / "secret.txt"
    outside.write_text("s")
    (images / "link").symlink_to(outside)
    refused = lode("put", images, "--name", "zoo/animals")
    assert refused.code == 2 and "outside" in refused.err
    assert [v["version"] for v in lode("versions", "zoo/animals", "--json").json()] == ["v0"]
    followed = lode("put", images, "--name", "zoo/animals", "--follow-external-symlinks", "--json")
    assert followed.code == 0 and "link" in followed.err  # the warning names the link
    assert followed.json()["version"] == "v1"
    assert {f["path"] for f in lode("files", "zoo/animals:v1", "--json").json()} >= {"link", "cat.jpg"}
    assert lode("get", "zoo/animals:v1", "--root", "out").code == 0
    assert (Path("out") / "link").read_text() == "s" and not (Path("out") / "link").is_symlink()


# --- listings --------------------------------------------------------------------------------
def test_ls_filters_and_json(lode, images: Path) -> None:
    lode("put", images, "--name", "zoo/animals", "--type", "dataset")
    lode("put", images / "dogs", "--name", "zoo/dogs-model", "--type", "model")
    lode("put", images / "cat.jpg", "--name", "farm/cat", "--type", "dataset")

    everything = lode("ls", "--json").json()
    assert [a["name"] for a in everything] == ["farm/cat", "zoo/animals", "zoo/dogs-model"]
    assert {a["name"]: a["size"] for a in everything}["farm/cat"] == len(IMAGES["cat.jpg"])
    assert [a["name"] for a in lode("ls", "--type", "model", "--json").json()] == ["zoo/dogs-model"]
    assert [a["name"] for a in lode("ls", "--project", "zoo", "--type", "dataset", "--json").json()] == [
        "zoo/animals"
    ]
    assert lode("ls", "--project", "nowhere", "--json").json() == []

    table = lode("ls")
    assert table.code == 0
    for name in ("farm/cat", "zoo/animals", "zoo/dogs-model", "model"):
        assert name in table.out


def test_versions_info_and_files(lode, images: Path, store: Path) -> None:
    with lodestore.init(project="zoo", name="prep") as run:
        art = lodestore.Artifact(
            "animals", type="dataset", description="pets", metadata={"source": "shelter"}
        )
        art.add_dir(images)
        run.log_artifact(art, aliases=["best"])
    (images / "cat.jpg").write_bytes(b"a new cat")
    assert lode("put", images, "--name", "zoo/animals").code == 0

    versions = lode("versions", "zoo/animals", "--json").json()
    assert [(v["version"], v["aliases"], v["logged_by"]) for v in versions] == [
        ("v0", ["best"], run.id),
        ("v1", ["latest"], None),
    ]
    table = lode("versions", "zoo/animals")
    assert "v0" in table.out and "v1" in table.out and run.id in table.out

    info = lode("info", "zoo/animals:best")
    assert info.code == 0
    for expected in (
        "zoo/animals:v0",
        "type:",
        "dataset",
        "created:",
        "size:",
        "files:",
        "3",
        "aliases:",
        "best",
        "source",
        "shelter",
        "pets",
        run.id,
    ):
        assert expected in info.out, expected
    as_json = lode("info", "zoo/animals:v0", "--json").json()
    assert (as_json["type"], as_json["file_count"], as_json["logged_by"], as_json["metadata"]) == (
        "dataset",
        3,
        run.id,
        {"source": "shelter"},
    )
    assert as_json["created_at"].startswith(str(as_json["created_at"][:4]))

    files = lode("files", "zoo/animals:v1", "--json").json()
    assert [f["path"] for f in files] == sorted(IMAGES)
    assert files[0] == {"path": "cat.jpg", "size": 9, "digest": blake3.blake3(b"a new cat").hexdigest()}
    shown = lode("files", "zoo/animals:v1")
    assert "dogs/rex.jpg" in shown.out and files[0]["digest"][:16] in shown.out


# --- aliases ---------------------------------------------------------------------------------
def test_alias_set_rm_and_history(lode, images: Path) -> None:
    lode("put", images, "--name", "zoo/animals")
    (images / "new.txt").write_text("n")
    lode("put", images, "--name", "zoo/animals")

    assert lode("alias", "set", "zoo/animals:v1", "production").code == 0
    assert lode("alias", "set", "zoo/animals:v0", "production").code == 0  # moves, stays unique
    assert lode("info", "zoo/animals:production", "--json").json()["version"] == "v0"
    assert lode("info", "zoo/animals:v1", "--json").json()["aliases"] == ["latest"]
    assert lode("alias", "rm", "zoo/animals", "production").code == 0

    history = lode("alias", "history", "zoo/animals", "--json").json()
    assert [(e["alias"], e["from_index"], e["to_index"]) for e in history] == [
        ("latest", None, 0),
        ("latest", 0, 1),
        ("production", None, 1),
        ("production", 1, 0),
        ("production", 0, None),
    ]
    assert all(e["at"] for e in history)
    table = lode("alias", "history", "zoo/animals")
    assert table.code == 0 and "production" in table.out

    gone = lode("alias", "rm", "zoo/animals", "production")
    assert gone.code == 3 and "latest" in gone.err  # lists the aliases there are
    assert lode("alias", "set", "zoo/animals:v9", "x").code == 3
    assert lode("alias", "set", "zoo/animals:v0", "v1").code == 2
    assert lode("alias", "set", "zoo/animals", "x").code == 2  # which version?
    # latest is bad input for both, said the same way (it follows the newest version)
    for args in (("set", "zoo/animals:v0", "latest"), ("rm", "zoo/animals", "latest")):
        r = lode("alias", *args)
        assert r.code == 2 and "managed automatically" in r.err and "newest version" in r.err
    assert lode("info", "zoo/animals:latest", "--json").json()["version"] == "v1"
    # commands about a whole artifact refuse a version instead of ignoring it
    for args in (("versions", "zoo/animals:v0"), ("alias", "history", "zoo/animals:v0"),
                 ("alias", "rm", "zoo/animals:v0", "production")):
        r = lode(*args)
        assert r.code == 2 and "without a version" in r.err and "lode info zoo/animals:v0" in r.err


# --- get -------------------------------------------------------------------------------------
def test_get_checkout_and_hardlink(lode, images: Path) -> None:
    lode("put", images, "--name", "zoo/animals")
    out = Path("out")
    (out / "junk").mkdir(parents=True)
    (out / "junk" / "old.txt").write_text("old")
    (out / "cat.jpg").write_text("edited")

    edited = lode("get", "zoo/animals", "--root", out)  # the edit is not replaced unasked
    assert edited.code == 4 and "cat.jpg" in edited.err and "--overwrite" in edited.err
    assert (out / "cat.jpg").read_text() == "edited"
    plain = lode("get", "zoo/animals", "--root", out, "--overwrite")
    assert plain.code == 0 and "zoo/animals:v0" in plain.out
    assert tree(out) == {**IMAGES, "junk/old.txt": b"old"}  # get keeps what is not in the version

    assert lode("get", "zoo/animals:v0", "--root", out, "--checkout").code == 0
    assert tree(out) == IMAGES and not (out / "junk").exists()

    assert lode("get", "zoo/animals:v0", "-o", "linked", "--hardlink").code == 0
    st = os.stat("linked/cat.jpg")
    assert st.st_nlink > 1 and not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert tree(Path("linked")) == IMAGES

    assert lode("get", "zoo/animals").code == 0  # default folder under the working directory
    assert tree(Path("artifacts/animals-v0")) == IMAGES

    Path("a-file").write_text("keep me")
    in_the_way = lode("get", "zoo/animals", "--root", "a-file")
    assert in_the_way.code == 4 and "a-file" in in_the_way.err and "Traceback" not in in_the_way.err
    assert Path("a-file").read_text() == "keep me"

    (out / "extra.txt").write_text("x")
    assert lode("get", "zoo/animals", "--root", out, "--checkout", "--hardlink").code == 0
    assert tree(out) == IMAGES and os.stat(out / "cat.jpg").st_nlink > 1


# --- demo and output safety ----------------------------------------------------------------------
def test_demo(lode) -> None:
    demo = lode("demo")
    assert demo.code == 0, demo.err
    assert "demo/animals" in demo.out
    versions = lode("versions", "demo/animals", "--json").json()
    assert [(v["version"], v["file_count"]) for v in versions] == [("v0", 9), ("v1", 13)]
    assert versions[1]["aliases"] == ["latest", "best"] and versions[0]["aliases"] == ["baseline"]
    assert lode("get", "demo/animals:best", "--root", "out").code == 0
    assert len(tree(Path("out"))) == 13
    assert lode("demo").code == 0  # again: same content, no new versions
    assert len(lode("versions", "demo/animals", "--json").json()) == 2


def test_names_and_values_are_printed_verbatim_not_as_markup(lode, tmp_path: Path) -> None:
    folder = tmp_path / "odd[/x]"  # "odd[" holding "x]"
    folder.mkdir(parents=True)
    (folder / "[bold]f.txt").write_text("f")
    put = lode(
        "put", folder, "--name", "zoo/odd", "--metadata", '{"note": "[/x] [red]"}', "--description", "[b]d"
    )
    assert put.code == 0, put.err
    info = lode("info", "zoo/odd:v0")
    assert info.code == 0, info.err
    assert "[/x] [red]" in info.out and "[b]d" in info.out
    files = lode("files", "zoo/odd:v0")
    assert files.code == 0 and "[bold]f.txt" in files.out
    got = lode("get", "zoo/odd:v0", "--root", tmp_path / "out[/y]")
    assert got.code == 0 and "out[/y]" in got.out
    missing = lode("get", "zoo/odd:[nope]")
    assert missing.code == 2  # not a valid alias name: a usage error, printed without crashing
