"""Bad input gets a clear error and loses nothing: no partial version, no changed draft,
earlier versions intact."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

import lodestore
from lodestore.errors import (
    ConflictError,
    FileChangedError,
    ImmutableError,
    InvalidInputError,
    InvalidNameError,
    NotFoundError,
    SourceFileNotFoundError,
)
from lodestore.sdk.repository import Repository

from .helpers import tree, write_random


@pytest.fixture
def v0(store: Path) -> lodestore.Artifact:
    """zoo/animals v0 (aliases latest, best) and v1 (latest): something that must survive."""
    with lodestore.init(project="zoo", name="prep") as run:
        art = lodestore.Artifact("animals", type="dataset")
        with art.new_file("a.txt") as f:
            f.write("a")
        run.log_artifact(art, aliases=["best"])
        newer = lodestore.Artifact("animals", type="dataset")
        with newer.new_file("a.txt") as f:
            f.write("a2")
        run.log_artifact(newer)
    return art


def assert_intact(store: Path, versions: list[str] = ["v0", "v1"]) -> None:  # noqa: B006
    api = lodestore.Api(root=store)
    assert [a.version for a in api.artifact_versions("dataset", "zoo/animals")] == versions
    assert tree(api.artifact("zoo/animals:v0").download(root="check-v0")) == {"a.txt": b"a"}


def stored_files(store: Path) -> int:
    return Repository.open(store).store.stats().file_count


# --- paths ---------------------------------------------------------------------------
def test_missing_paths(store: Path, tmp_path: Path) -> None:
    art = lodestore.Artifact("animals", type="dataset")
    with pytest.raises(SourceFileNotFoundError, match="no such file"):
        art.add_file(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError):  # the standard parent works too
        art.add_dir(tmp_path / "nope")
    assert art.file_count == 0


def test_directory_given_to_add_file_and_file_to_add_dir(store: Path, images: Path) -> None:
    art = lodestore.Artifact("animals", type="dataset")
    with pytest.raises(InvalidInputError, match="add_dir"):
        art.add_file(images)
    with pytest.raises(InvalidInputError, match="add_file"):
        art.add_dir(images / "cat.jpg")
    assert art.file_count == 0


def test_file_removed_before_logging(store: Path, v0, tmp_path: Path) -> None:
    (tmp_path / "gone.txt").write_text("soon gone")
    art = lodestore.Artifact("animals", type="dataset")
    art.add_file(tmp_path / "gone.txt")
    (tmp_path / "gone.txt").unlink()
    with lodestore.init(project="zoo") as run, pytest.raises(SourceFileNotFoundError, match="gone.txt"):
        run.log_artifact(art)
    assert art.version is None
    assert_intact(store)


# --- names ---------------------------------------------------------------------------
BAD_NAMES = ["..", ".", "/", "", "a" * 129, "-lead", ".hidden", "a b", "a/b/c", "ünï", "a\nb", "a*"]
GOOD_NAMES = ["a", "A1", "1x", "a-b_c.d", "a..b", "a" * 128]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_artifact_names_are_refused(store: Path, name: str) -> None:
    with pytest.raises(InvalidNameError):
        lodestore.Artifact(name, type="dataset")


@pytest.mark.parametrize("name", [n for n in BAD_NAMES if n not in ("/", "a/b/c")])
def test_invalid_project_names_are_refused(store: Path, name: str) -> None:
    if name:  # init(project="") is covered below
        with pytest.raises(InvalidNameError):
            lodestore.init(project=name)
    with pytest.raises(InvalidNameError):
        lodestore.Artifact("animals", type="dataset", project=name)
    with pytest.raises(InvalidNameError):
        lodestore.Api().artifact(f"{name}/animals:v0")
    assert lodestore.Api().projects() == []


def test_init_refuses_an_empty_project_name(store: Path) -> None:
    with pytest.raises(InvalidNameError):
        lodestore.init(project="")
    assert lodestore.current_run() is None and lodestore.Api().runs() == []  # no run was started


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_valid_names_are_accepted(store: Path, name: str) -> None:
    with lodestore.init(project=name) as run:
        art = lodestore.Artifact(name, type="dataset")
        with art.new_file("x.txt") as f:
            f.write("x")
        run.log_artifact(art)
    assert lodestore.Api().artifact(f"{name}/{name}:v0").file_count == 1


def test_version_is_not_part_of_a_draft_name(store: Path) -> None:
    with pytest.raises(InvalidInputError, match="':'"):
        lodestore.Artifact("animals:v1", type="dataset")
    with pytest.raises(InvalidNameError):
        lodestore.Artifact("animals", type="data set")


@pytest.mark.parametrize(
    "entry", ["/etc/passwd", "../x", "a/../../x", "a/../b", "..", "C:/x", "a\\b", "", ".", "./"]
)
def test_entry_names_that_escape_are_refused(store: Path, images: Path, entry: str) -> None:
    art = lodestore.Artifact("animals", type="dataset")
    with pytest.raises(InvalidNameError):
        art.add_file(images / "cat.jpg", name=entry)
    with pytest.raises(InvalidNameError):
        art.new_file(entry)
    if entry:  # add_dir(name="") means "no prefix"
        with pytest.raises(InvalidNameError):
            art.add_dir(images, name=entry)
    assert art.file_count == 0


def test_entry_names_with_dots_that_do_not_escape_are_fine(store: Path, images: Path) -> None:
    art = lodestore.Artifact("animals", type="dataset")
    for name in ("a..b.txt", "...", "..hidden", "x/./y.txt", "dir..x/file"):
        art.add_file(images / "cat.jpg", name=name)
    with lodestore.init(project="zoo") as run:
        run.log_artifact(art)
    assert sorted(tree(art.download(root="out"))) == ["...", "..hidden", "a..b.txt", "dir..x/file", "x/y.txt"]
    assert sorted(os.listdir(".")) == ["out"]  # nothing written beside the target


# --- duplicate and clashing entries ------------------------------------------------------
def test_two_entries_with_the_same_name(store: Path, images: Path, tmp_path: Path) -> None:
    art = lodestore.Artifact("animals", type="dataset")
    art.add_file(images / "cat.jpg", name="x/cat.jpg")
    with pytest.raises(ConflictError, match="x/cat.jpg"):
        art.add_file(images / "dogs" / "rex.jpg", name="x/./cat.jpg")
    with pytest.raises(ConflictError):
        art.new_file("x/cat.jpg")
    other = tmp_path / "other"  # a folder with another cat.jpg (the same bytes again would be no conflict)
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"another cat")
    (other / "z.jpg").write_bytes(b"z")
    with pytest.raises(ConflictError, match="x/cat.jpg"):
        art.add_dir(other, name="x")  # all or nothing: none of its files were added
    assert art.file_count == 1
    art.add_file(images / "dogs" / "rex.jpg", name="x/cat.jpg", overwrite=True)  # explicit replacement
    with lodestore.init(project="zoo") as run:
        run.log_artifact(art)
    assert tree(art.download(root="out")) == {"x/cat.jpg": b"\xff\xd8rex"}


def test_a_file_and_a_folder_with_the_same_name(store: Path, images: Path) -> None:
    art = lodestore.Artifact("animals", type="dataset")
    art.add_file(images / "cat.jpg", name="pets")
    art.add_file(images / "dogs" / "rex.jpg", name="pets/rex.jpg")
    with lodestore.init(project="zoo") as run:
        with pytest.raises(ConflictError, match="pets"):
            run.log_artifact(art)
        assert art.version is None and stored_files(store) == 0
        art.remove("pets")
        run.log_artifact(art)
    assert tree(art.download(root="out")) == {"pets/rex.jpg": b"\xff\xd8rex"}


# --- symlinks ----------------------------------------------------------------------------
@pytest.fixture
def linked(tmp_path: Path) -> Path:
    """data/ with a real file, plus a link to a file outside and a link to a folder outside."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.txt").write_text("secret")
    (outside / "dir" / "more.txt").write_text("more")
    data = tmp_path / "data"
    data.mkdir()
    (data / "own.txt").write_text("own")
    (data / "secret-link").symlink_to(outside / "secret.txt")
    (data / "dir-link").symlink_to(outside / "dir")
    return data


def test_symlink_pointing_outside_is_refused(store: Path, linked: Path) -> None:
    art = lodestore.Artifact("data", type="dataset")
    with pytest.raises(InvalidInputError, match="outside") as err:
        art.add_dir(linked)
    assert "follow_external_symlinks=True" in str(err.value)
    assert art.file_count == 0
    (linked / "secret-link").unlink()
    with pytest.raises(InvalidInputError, match="dir-link"):
        art.add_dir(linked)


def test_follow_external_symlinks_stores_the_target_with_a_warning(
    store: Path, linked: Path, capsys: pytest.CaptureFixture
) -> None:
    art = lodestore.Artifact("data", type="dataset")
    assert art.add_dir(linked, follow_external_symlinks=True) == 3
    assert "warning" in capsys.readouterr().err
    with lodestore.init(project="zoo") as run:
        run.log_artifact(art)
    assert tree(art.download(root="out")) == {
        "own.txt": b"own",
        "secret-link": b"secret",
        "dir-link/more.txt": b"more",
    }


def test_broken_symlink_is_refused(store: Path, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dangling").symlink_to(tmp_path / "missing")
    with pytest.raises(InvalidInputError, match="does not exist"):
        lodestore.Artifact("data", type="dataset").add_dir(tmp_path / "data", follow_external_symlinks=True)
    art = lodestore.Artifact("data", type="dataset")
    assert art.add_dir(tmp_path / "data", exclude_patterns=["dangling"]) == 0  # excluded: never looked at


@pytest.mark.timeout(20)
def test_followed_symlink_loop_is_refused(store: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("f")
    (outside / "again").symlink_to(outside)  # a loop, outside the folder
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "link").symlink_to(outside)
    with pytest.raises(InvalidInputError, match="loop"):
        lodestore.Artifact("data", type="dataset").add_dir(tmp_path / "data", follow_external_symlinks=True)


# --- unknown versions and aliases ----------------------------------------------------------
@pytest.mark.parametrize("ref", ["zoo/animals:v7", "zoo/animals:nope", "animals:production"])
def test_unknown_version_or_alias_lists_what_exists(store: Path, v0, ref: str) -> None:
    with lodestore.init(project="zoo") as run, pytest.raises(NotFoundError) as err:
        run.use_artifact(ref)
    message = str(err.value)
    for existing in ("v0", "v1", "latest", "best"):
        assert existing in message
    with pytest.raises(LookupError):
        lodestore.Api().artifact(ref)
    assert lodestore.Api().run(run.id) is not None and not Repository.open(store).catalog.run_inputs(run.id)


def test_unknown_artifact_and_project_list_what_exists(store: Path, v0) -> None:
    with pytest.raises(NotFoundError, match="animals"):
        lodestore.Api().artifact("zoo/animal:v0")
    with pytest.raises(NotFoundError, match="zoo"):
        lodestore.Api().artifact("zooo/animals:v0")


# --- immutability ----------------------------------------------------------------------------
def test_files_of_a_logged_version_cannot_change(store: Path, v0, images: Path) -> None:
    for art in (v0, lodestore.Api().artifact("zoo/animals:v0")):
        with pytest.raises(ImmutableError, match="immutable"):
            art.add_file(images / "cat.jpg")
        with pytest.raises(PermissionError):
            art.add_dir(images)
        with pytest.raises(ImmutableError):
            art.new_file("b.txt")
        with pytest.raises(ImmutableError):
            art.remove("a.txt")
        with pytest.raises(ImmutableError):
            art.add_reference(f"file://{images / 'cat.jpg'}")
    with lodestore.init(project="zoo") as run, pytest.raises(ImmutableError):
        run.log_artifact(v0)  # logging it again is not a way to add files
    assert_intact(store)


def test_bad_edits_are_refused_and_change_nothing(store: Path, v0) -> None:
    art = lodestore.Api().artifact("zoo/animals:v0")
    art.metadata["when"] = object()
    with pytest.raises(InvalidInputError):
        art.save()
    art = lodestore.Api().artifact("zoo/animals:v0")
    art.aliases.append("v9")
    with pytest.raises(InvalidNameError):
        art.save()
    with pytest.raises(InvalidInputError):
        art.metadata = {"when": object()}
    assert art.metadata == {}  # a refused assignment leaves the metadata as it was
    fresh = lodestore.Api().artifact("zoo/animals:v0")
    assert (fresh.metadata, fresh.aliases) == ({}, ["best"])
    with pytest.raises(InvalidInputError, match="draft"):
        lodestore.Artifact("draft", type="dataset").save()


# --- what log_artifact refuses ---------------------------------------------------------------
@pytest.mark.parametrize("alias", ["v3", "bad/alias", "", "a b"])
def test_invalid_alias_is_refused_before_any_byte_is_stored(store: Path, images: Path, alias: str) -> None:
    art = lodestore.Artifact("animals", type="dataset")
    art.add_dir(images)
    with lodestore.init(project="zoo") as run, pytest.raises(InvalidNameError):
        run.log_artifact(art, aliases=[alias])
    assert art.version is None and stored_files(store) == 0
    assert not lodestore.Api().artifact_exists("zoo/animals")


def test_an_artifact_keeps_its_type(store: Path, v0) -> None:
    art = lodestore.Artifact("animals", type="model")
    with art.new_file("m.bin") as f:
        f.write("m")
    with lodestore.init(project="zoo") as run, pytest.raises(ConflictError, match="type"):
        run.log_artifact(art)
    assert_intact(store)


def test_unusable_metadata_and_new_file_modes(store: Path) -> None:
    with pytest.raises(InvalidInputError, match="JSON"):
        lodestore.Artifact("animals", type="dataset", metadata={"f": lambda: 1})
    art = lodestore.Artifact("animals", type="dataset")
    with pytest.raises(InvalidInputError):
        art.add_metadata(["not", "a", "dict"])  # type: ignore[arg-type]
    for mode in ("r", "a", "w+"):
        with pytest.raises(InvalidInputError):
            art.new_file("x.txt", mode=mode)
    with pytest.raises(InvalidInputError, match="draft"):
        art.download(root="out")


# --- a file that changes while it is read -------------------------------------------------------
def test_file_changing_while_logged_creates_no_version(store: Path, v0, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    write_random(big, 50 * 1024 * 1024, seed=3)
    art = lodestore.Artifact("animals", type="dataset")
    art.add_file(big)
    files_before = stored_files(store)

    stop = threading.Event()
    started = threading.Event()

    def keep_appending() -> None:
        with open(big, "ab") as f:
            while not stop.is_set():
                f.write(b"x" * 4096)
                f.flush()
                started.set()
                time.sleep(0.0005)

    writer = threading.Thread(target=keep_appending)
    writer.start()
    try:
        started.wait(5)
        with lodestore.init(project="zoo") as run, pytest.raises(FileChangedError, match="changed"):
            run.log_artifact(art, aliases=["torn"])
    finally:
        stop.set()
        writer.join()

    assert art.version is None
    assert stored_files(store) == files_before
    assert_intact(store)
    with pytest.raises(NotFoundError):
        lodestore.Api().artifact("zoo/animals:torn")
    assert not list((store / "store" / "tmp").iterdir())  # the write session was cleaned up

    with lodestore.init(project="zoo") as run:  # the file is still now: the same draft logs fine
        run.log_artifact(art)
    assert art.version == "v2" and art.size == big.stat().st_size


# --- new_file handles, download targets in the way ---------------------------------------------
def test_new_file_left_open_is_refused_not_truncated(store: Path) -> None:
    art = lodestore.Artifact("notes", type="text")
    f = art.new_file("big.txt")
    f.write("x" * 100_000)  # partly still in the buffer
    with lodestore.init(project="zoo") as run:
        with pytest.raises(InvalidInputError, match="big.txt"):
            run.log_artifact(art)
        assert art.version is None and stored_files(store) == 0
        f.close()
        run.log_artifact(art)
    assert art.get_entry("big.txt").size == 100_000


def test_abandoned_draft_leaves_no_staged_files(store: Path) -> None:
    import gc

    art = lodestore.Artifact("notes", type="text")
    with art.new_file("n.txt") as f:
        f.write("n")
    staged = Path(f.name)
    assert staged.is_file()
    del art
    gc.collect()
    assert not staged.exists()


def test_download_refuses_folders_and_files_in_the_way(store: Path, v0) -> None:
    with lodestore.init(project="zoo") as run:
        art = lodestore.Artifact("nested", type="dataset")
        with art.new_file("d/x.txt") as f:
            f.write("x")
        with art.new_file("y.txt") as f:
            f.write("y")
        run.log_artifact(art)
    Path("t1").mkdir()
    Path("t1/d").write_text("a file where the version has a folder")
    with pytest.raises(ConflictError, match="checkout"):
        art.download(root="t1")
    assert Path("t1/d").read_text().startswith("a file")  # nothing lost
    Path("t2/y.txt").mkdir(parents=True)
    with pytest.raises(ConflictError, match="folder"):
        art.download(root="t2")
    Path("t3").write_text("a file where the target folder goes")
    with pytest.raises(ConflictError):
        art.download(root="t3")
    art.checkout(root="t1", hardlink=True)
    assert tree(Path("t1")) == {"d/x.txt": b"x", "y.txt": b"y"}
    assert not os.stat("t1/y.txt").st_mode & 0o222


def test_unknown_entry_names_similar_ones(store: Path, v0) -> None:
    with pytest.raises(NotFoundError, match="a.txt"):
        v0.get_entry("a.tx")
    with pytest.raises(InvalidNameError):
        v0.get_entry("../a.txt")


def test_use_gitignore_honours_it(store: Path, images: Path) -> None:
    (images / ".gitignore").write_text("*.tmp\n")
    art = lodestore.Artifact("animals", type="dataset")
    art.add_dir(images, use_gitignore=True)
    with lodestore.init(project="zoo") as run:
        run.log_artifact(art)
    assert sorted(art.get_manifest()) == [".gitignore", "cat.jpg", "dogs/rex.jpg"]


# --- numbers and settings out of range: one clear error, from the SDK and the CLI alike ------
def test_a_version_number_past_64_bits_is_refused_and_does_not_exist(store: Path, v0, lode) -> None:
    for ref in ("zoo/animals:v9223372036854775808", "zoo/animals:v" + "9" * 5000):
        with pytest.raises(InvalidNameError, match="version numbers go up to"):
            lodestore.Api().artifact(ref)
        assert lodestore.Api().artifact_exists(ref) is False
        result = lode("info", ref)
        assert result.code == 2 and result.err.startswith("error:") and "Traceback" not in result.err
    assert lodestore.Api().artifact_exists("zoo/animals:v9223372036854775807") is False  # the largest: fine


def test_search_queries_are_bounded_up_front(store: Path, v0, lode) -> None:
    from lodestore.catalog.query_parse import MAX_QUERY_CHARS, MAX_QUERY_TERMS

    api = lodestore.Api()
    started = time.monotonic()
    with pytest.raises(InvalidInputError, match="at most"):
        api.search(" ".join(["name=x"] * 100_000))
    with pytest.raises(InvalidInputError, match=f"at most {MAX_QUERY_TERMS} terms"):
        api.search(" ".join(["name=x"] * (MAX_QUERY_TERMS + 1)))
    with pytest.raises(InvalidInputError, match=f"at most {MAX_QUERY_TERMS} terms"):
        api.runs("zoo", filters={"$or": [{"name": str(i)} for i in range(MAX_QUERY_TERMS + 1)]})
    with pytest.raises(InvalidInputError, match="nest"):
        nested: dict = {"name": "x"}
        for _ in range(1000):
            nested = {"$or": [nested]}
        api.runs("zoo", filters=nested)
    assert time.monotonic() - started < 5  # refused before any SQL runs (it took 52 s)
    result = lode("search", "x" * (MAX_QUERY_CHARS + 1))
    assert result.code == 2 and "characters" in result.err
    assert len(api.search(" ".join(["type=dataset"] * MAX_QUERY_TERMS))) == 2  # at the bound: fine


def test_durations_and_grace_out_of_range_are_refused(store: Path, v0, lode, monkeypatch) -> None:
    from lodestore.sdk import lifecycle
    from lodestore.sdk.repository import Repository

    (Path("f.txt")).write_text("f")
    for ttl in ("99999999999999999999d", "9" * 5000, "0d"):
        result = lode("put", "f.txt", "--name", "zoo/ttl", "--ttl", ttl)
        assert result.code == 2 and result.err.startswith("error:") and "Traceback" not in result.err, result.err
    with pytest.raises(InvalidInputError, match="too long"):
        lodestore.Artifact("ttl", type="dataset", ttl=timedelta(days=999_999_999))
    assert not lodestore.Api().artifact_exists("zoo/ttl")
    for grace in ("nan", "inf", "-1"):
        result = lode("gc", "--grace", grace)
        assert result.code == 2 and "grace" in result.err, (grace, result.err)
        with pytest.raises(InvalidInputError, match="grace"):
            lifecycle.gc(Repository.open(store), grace=float(grace))
        monkeypatch.setenv("LODESTORE_GC_GRACE_SECONDS", grace)
        assert lode("gc").code == 2
    monkeypatch.delenv("LODESTORE_GC_GRACE_SECONDS")
    assert_intact(store)


def test_an_empty_root_is_refused_not_taken_for_the_current_folder(store: Path, lode) -> None:
    before = set(os.listdir("."))
    result = lode("--root", "", "ls")
    assert result.code == 2 and "--root is empty" in result.err
    with pytest.raises(InvalidInputError, match="root is empty"):
        lodestore.init(project="zoo", root="")
    with pytest.raises(InvalidInputError, match="root is empty"):
        lodestore.Api(root="  ")
    assert set(os.listdir(".")) == before  # no catalog.db in the current folder
