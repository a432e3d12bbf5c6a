"""Where a store lives: arguments, named remotes, $LODESTORE_* variables, the embedded
default; remotes kept in the local folder's remotes.json; bad locations refused with one
line. The pairs here are local parts (a folder + a SQLite file named by URL), so they run
without servers; tests/team/test_team_backends.py runs the same on S3 + PostgreSQL."""

from __future__ import annotations

import json
import os
import stat

import pytest

import lodestore
from lodestore.errors import InvalidInputError, NotFoundError
from lodestore.sdk.locations import mask_password, resolve_location


def _log(tmp_path, **where):
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights" * 1000)
    run = lodestore.init(project="zoo", **where)
    art = lodestore.Artifact("model", type="model")
    art.add_file(src)
    run.log_artifact(art)
    run.finish()


def test_embedded_default_is_the_local_folder(store):
    loc = resolve_location()
    assert loc.embedded and loc.root == store.resolve()


def test_init_with_a_store_and_catalog_pair_writes_there_not_to_the_local_store(store, tmp_path):
    pair = {"store": str(tmp_path / "team-bytes"), "catalog": f"sqlite:///{tmp_path / 'team.db'}"}
    _log(tmp_path, **pair)
    assert (tmp_path / "team.db").exists() and (tmp_path / "team-bytes" / "packs").is_dir()
    assert lodestore.Api(**pair).artifact("zoo/model:latest").version == "v0"
    with pytest.raises(NotFoundError):  # the embedded store did not get it
        lodestore.Api().artifact("zoo/model:latest")


def test_environment_variables_name_the_pair(store, tmp_path, monkeypatch, lode):
    monkeypatch.setenv("LODESTORE_STORE", str(tmp_path / "env-bytes"))
    monkeypatch.setenv("LODESTORE_CATALOG", f"sqlite:///{tmp_path / 'env.db'}")
    _log(tmp_path)
    assert (tmp_path / "env.db").exists()
    r = lode("versions", "zoo/model", "--json")
    assert r.code == 0, r.err
    assert [v["version"] for v in r.json()] == ["v0"]


def test_remote_add_ls_rm_and_using_it(store, tmp_path, lode):
    cat = f"sqlite:///{tmp_path / 'team.db'}"
    r = lode("remote", "add", "team", "--store", str(tmp_path / "team-bytes"), "--catalog", cat)
    assert r.code == 0, r.err
    remotes = lode("remote", "ls", "--json").json()
    assert remotes == [{"name": "team", "store": str(tmp_path / "team-bytes"), "catalog": cat}]
    assert stat.S_IMODE(os.stat(store / "remotes.json").st_mode) == 0o600
    _log(tmp_path, remote="team")
    assert lode("--remote", "team", "ls", "--json").json()[0]["name"] == "zoo/model"
    assert lode("ls", "--json").json() == []  # the embedded store is untouched
    assert lode("remote", "add", "team", "--store", "s3://other").code == 2  # exists: --replace
    assert lode("remote", "rm", "team").code == 0
    r = lode("--remote", "team", "ls")
    assert r.code == 3 and "no remote named 'team'" in r.err


@pytest.mark.parametrize(("store_url", "catalog_url", "says"), [
    ("ftp://host/x", None, "unsupported store"),
    ("s3://Bad_Bucket/x", None, "not an S3 bucket name"),
    ("s3://bucket/../x", None, "not a store location"),
    (None, "mysql://u@h/db", "unsupported catalog"),
    (None, "sqlite://relative.db", "a SQLite catalog is a file"),
])
def test_bad_locations_are_refused_with_one_line(store, store_url, catalog_url, says):
    with pytest.raises(InvalidInputError, match=says):
        resolve_location(store=store_url, catalog=catalog_url)


def test_a_password_never_shows(store, lode):
    url = "postgresql://ann:s3cret@db.example:5432/team"
    assert mask_password(url) == "postgresql://ann:***@db.example:5432/team"
    assert lode("remote", "add", "t", "--catalog", url).code == 0
    r = lode("remote", "ls")
    assert "s3cret" not in r.out and "***" in r.out
    assert json.loads((store / "remotes.json").read_text())["t"]["catalog"] == url


def test_a_damaged_remotes_file_is_one_clear_line(store, lode):
    store.mkdir(parents=True, exist_ok=True)
    (store / "remotes.json").write_text("{not json")
    r = lode("remote", "ls")
    assert r.code == 2 and "remotes.json is not readable JSON" in r.err


def test_push_and_pull_name_a_remote(store, tmp_path, lode):
    cat = f"sqlite:///{tmp_path / 'backup.db'}"
    assert lode("remote", "add", "backup", "--store", str(tmp_path / "backup-bytes"), "--catalog", cat).code == 0
    _log(tmp_path)
    r = lode("push", "zoo/model:v0", "--to", "backup", "--json")
    assert r.code == 0, r.err
    assert lode("--remote", "backup", "versions", "zoo/model", "--json").json()[0]["version"] == "v0"
    assert lode("rm", "zoo/model:v0", "--permanent").code == 0
    r = lode("pull", "zoo/model:latest", "--from", "backup")
    assert r.code == 0, r.err
    assert lode("versions", "zoo/model", "--json").json()[0]["version"] == "v1"  # numbered by the destination
