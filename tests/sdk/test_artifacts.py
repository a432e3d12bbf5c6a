"""The artifact workflow of the issue, end to end on a real store: logging, versions,
aliases, editing, downloading, verifying, deduplication and lineage."""

from __future__ import annotations

import os
import stat
from datetime import datetime
from pathlib import Path

import blake3
import pytest

import lodestore
from lodestore.errors import VerificationError
from lodestore.sdk.repository import Repository

from .helpers import dir_size, tree, write_random

# The main SDK suite runs on the embedded store and on the team pair (tests/conftest.py).
pytestmark = pytest.mark.team_too


def b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def log(
    root: Path | None,
    name: str,
    files: dict[str, bytes],
    aliases=(),
    project: str = "zoo",
    type: str = "dataset",
) -> lodestore.Artifact:
    """Log `files` (entry name -> bytes) as one version in its own run."""
    with lodestore.init(project=project, name="writer", root=root) as run:
        art = lodestore.Artifact(name, type=type)
        for path, data in files.items():
            with art.new_file(path, mode="wb") as f:
                f.write(data)
        return run.log_artifact(art, aliases=list(aliases))


def test_issue_walkthrough(store: Path, images: Path, monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    monkeypatch.chdir(images.parent)  # the example's relative paths: images/, labels.csv
    labels = Path("labels.csv").read_bytes()

    run = lodestore.init(project="zoo", name="prep")
    art = lodestore.Artifact("animals", type="dataset", description="pets", metadata={"source": "shelter"})
    art.add_dir("images/", exclude_patterns=["*.tmp"])
    art.add_file("labels.csv", name="meta/labels.csv")
    with art.new_file("README.txt") as f:
        f.write("cats and dogs")
    art.add_metadata({"num_samples": 3})
    art.add_tags("pets", "raw")
    logged = run.log_artifact(art, aliases=["best"])
    assert logged.version == "v0"
    assert logged.aliases == ["latest", "best"]
    run.finish()
    assert run.state == "finished"
    if backend == "local":
        assert (store / "catalog.db").is_file()  # $LODESTORE_DIR was used

    run = lodestore.init(project="zoo", name="train")
    a = run.use_artifact("animals:latest")
    for ref in ("zoo/animals:v0", "animals:best"):
        assert run.use_artifact(ref).digest == a.digest
    expected = {
        "README.txt": b"cats and dogs",
        "cat.jpg": b"\xff\xd8cat",
        "dogs/rex.jpg": b"\xff\xd8rex",
        "meta/labels.csv": labels,
    }

    path = a.download(root="data/")
    assert path == Path("data/")
    assert tree(path) == expected
    assert tree(a.download(target_dir="data2/")) == expected
    one = a.get_entry("meta/labels.csv").download(root="one/")
    assert one.read_bytes() == labels
    assert tree(Path("one")) == {"meta/labels.csv": labels}
    a.verify(root="data/")

    assert a.metadata == {"source": "shelter", "num_samples": 3}
    assert a.description == "pets"
    assert sorted(a.tags) == ["pets", "raw"]
    assert a.aliases == ["latest", "best"]
    assert a.version == "v0"
    assert a.digest == logged.digest and len(a.digest) == 64
    assert a.size == sum(len(b) for b in expected.values())
    assert a.file_count == 4
    assert isinstance(a.created_at, datetime) and a.created_at.tzinfo is not None
    assert [(e.path, e.size, e.digest) for e in a.files()] == [
        (p, len(b), b3(b)) for p, b in sorted(expected.items())
    ]

    a.description = "new"
    a.metadata["k"] = 1
    a.aliases.append("production")
    a.aliases.remove("best")
    a.save()
    run.finish()

    api = lodestore.Api()
    again = api.artifact("zoo/animals:v0")
    assert again.description == "new"
    assert again.metadata == {"source": "shelter", "num_samples": 3, "k": 1}
    assert again.aliases == ["latest", "production"]
    assert again.digest == logged.digest  # editing never touches the files
    folder = api.artifact("zoo/animals:v0").download()
    assert folder.resolve().is_relative_to(Path.cwd().resolve())
    assert tree(folder) == expected
    assert lodestore.sdk.run.current_run() is None  # Api works outside any run

    catalog = Repository.open().catalog
    prep_id = logged.logged_by_run_id
    assert [v.qualified_name for v in catalog.run_outputs(prep_id)] == ["zoo/animals:v0"]
    assert [v.qualified_name for v in catalog.run_inputs(run.id)] == ["zoo/animals:v0"]  # used 3x, one record


def test_init_root_overrides_environment(store: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-store"
    log(other, "animals", {"a.txt": b"a"})
    assert lodestore.Api(root=other).artifact("zoo/animals:v0").file_count == 1
    assert not lodestore.Api().artifact_exists("zoo/animals")  # $LODESTORE_DIR store is untouched


def test_context_manager_marks_failed_runs(store: Path) -> None:
    with pytest.raises(RuntimeError), lodestore.init(project="zoo") as run:
        raise RuntimeError("boom")
    assert lodestore.Api().run(run.id).state == "failed"


def test_versions_count_up_and_latest_follows_the_newest(store: Path) -> None:
    versions = [log(None, "model", {"w.bin": bytes([i]) * 10}).version for i in range(3)]
    assert versions == ["v0", "v1", "v2"]
    api = lodestore.Api()
    assert api.artifact("zoo/model:latest").version == "v2"
    assert api.artifact("zoo/model").version == "v2"  # no selector means latest
    assert [a.aliases for a in api.artifact_versions("dataset", "zoo/model")] == [[], [], ["latest"]]


def test_identical_content_returns_the_existing_version(store: Path, capsys: pytest.CaptureFixture) -> None:
    first = log(None, "animals", {"a.txt": b"a", "b.txt": b"b"})
    log(None, "animals", {"a.txt": b"changed"})
    capsys.readouterr()

    same = log(
        None, "animals", {"b.txt": b"b", "a.txt": b"a"}, aliases=["golden"]
    )  # other order, same content

    assert same.version == "v0" and same.digest == first.digest
    assert "no new version" in capsys.readouterr().err
    api = lodestore.Api()
    assert [a.version for a in api.artifact_versions("dataset", "zoo/animals")] == ["v0", "v1"]
    assert api.artifact("zoo/animals:golden").version == "v0"
    assert api.artifact("zoo/animals:latest").version == "v1"  # latest stays on the newest


def test_manifest_is_sorted_and_digest_is_content_only(store: Path, tmp_path: Path) -> None:
    files = {"z.txt": b"z", "a/b.txt": b"ab", "a.txt": b"a", "B.txt": b"B"}
    art = log(None, "animals", files)
    assert [e.path for e in art.files()] == sorted(files)
    assert art.get_manifest() == {p: {"digest": b3(b), "size": len(b)} for p, b in files.items()}
    other = log(tmp_path / "elsewhere", "animals", dict(reversed(files.items())))
    assert other.digest == art.digest  # same paths and bytes: same version digest anywhere


def test_only_description_metadata_tags_and_aliases_are_editable(store: Path) -> None:
    art = log(None, "animals", {"a.txt": b"a"}, aliases=["best"])
    digest, files = art.digest, art.files()
    art.description = "curated"
    art.metadata = {"rows": 1}
    art.tags = ["clean"]
    art.aliases = ["latest", "staging"]
    art.save()

    fresh = lodestore.Api().artifact("zoo/animals:v0")
    assert (fresh.description, fresh.metadata, fresh.tags, fresh.aliases) == (
        "curated",
        {"rows": 1},
        ["clean"],
        ["latest", "staging"],
    )
    assert (fresh.digest, fresh.files()) == (digest, files)
    with pytest.raises(AttributeError):
        fresh.type = "model"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        fresh.digest = "0" * 64  # type: ignore[misc]


def test_runicorn_spellings(store: Path, images: Path) -> None:
    art = lodestore.Artifact("animals", type="dataset", metadata={"nested": {"a": 1}})
    assert art.add_dir(images, exclude_patterns="*.tmp") == 2  # one pattern as a plain string
    assert art.get_metadata() == {"nested": {"a": 1}}
    art.get_metadata()["nested"]["a"] = 2  # a copy
    assert art.metadata == {"nested": {"a": 1}}
    with lodestore.init(project="zoo") as run:
        run.log_artifact(art)
    assert sorted(art.get_manifest()) == ["cat.jpg", "dogs/rex.jpg"]
    assert tree(art.download(target_dir="out")) == {"cat.jpg": b"\xff\xd8cat", "dogs/rex.jpg": b"\xff\xd8rex"}


def test_exclude_patterns_match_names_paths_and_folders(store: Path, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    for rel in (
        "keep.py",
        "pkg/mod.py",
        "pkg/__pycache__/mod.pyc",
        "logs/run1/out.txt",
        "data/x.tmp",
        "notes.txt",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    art = lodestore.Artifact("code", type="code")
    art.add_dir(root, exclude_patterns=["__pycache__", "logs/*", "*.tmp"], name="src")
    with lodestore.init(project="zoo") as run:
        run.log_artifact(art)
    assert [e.path for e in art.files()] == ["src/keep.py", "src/notes.txt", "src/pkg/mod.py"]


def test_aliases_are_unique_and_every_move_is_recorded(store: Path) -> None:
    v0 = log(None, "animals", {"a.txt": b"0"}, aliases=["best"])
    with lodestore.init(project="zoo", name="retrain") as run:
        art = lodestore.Artifact("animals", type="dataset")
        with art.new_file("a.txt") as f:
            f.write("1")
        run.log_artifact(art, aliases=["best"])
    assert lodestore.Api().artifact("zoo/animals:best").version == "v1"
    assert v0.refresh().aliases == []  # moved, not duplicated

    with lodestore.init(project="zoo", name="promote") as promote:
        old = promote.use_artifact("zoo/animals:v0")
        old.aliases.append("best")
        old.save()

    history = Repository.open().catalog.alias_history("zoo", "animals")
    moves = [(e.alias, e.from_index, e.to_index, e.run_id) for e in history]
    assert moves == [
        ("latest", None, 0, v0.logged_by_run_id),
        ("best", None, 0, v0.logged_by_run_id),
        ("latest", 0, 1, run.id),
        ("best", 0, 1, run.id),
        ("best", 1, 0, promote.id),  # save() inside a run records that run
    ]
    assert all(isinstance(e.at, datetime) for e in history)


@pytest.mark.local_only
def test_identical_content_is_stored_once(store: Path, tmp_path: Path) -> None:
    big = write_random(tmp_path / "big.bin", 3 * 1024 * 1024, seed=1)  # incompressible
    log(None, "animals", {"big.bin": big})
    repo = Repository.open(store)
    packs_after_one = dir_size(repo.store.root / "packs")
    assert packs_after_one >= len(big)

    log(None, "animals", {"big.bin": big, "small.txt": b"new"})  # v1 shares big.bin
    log(None, "copy", {"renamed/big.bin": big})  # another artifact, same bytes
    with lodestore.init(project="other") as run:  # another project, through add_file
        art = lodestore.Artifact("blob", type="model")
        art.add_file(tmp_path / "big.bin")
        run.log_artifact(art)

    stats = repo.store.stats()
    assert stats.file_count == 2  # big.bin and small.txt
    assert stats.chunk_bytes == len(big) + 3
    assert dir_size(repo.store.root / "packs") < packs_after_one + 64 * 1024


def test_download_gives_copies_edits_never_reach_the_store(store: Path) -> None:
    art = log(None, "animals", {"a.txt": b"original", "b/c.txt": b"c"})
    first = art.download(root="first")
    (first / "a.txt").write_bytes(b"edited by the user")
    assert os.stat(first / "a.txt").st_nlink == 1
    assert tree(art.download(root="second")) == {"a.txt": b"original", "b/c.txt": b"c"}
    with pytest.raises(lodestore.ConflictError, match="a.txt"):  # the user's edit is not replaced unasked
        art.download(root="first")
    assert tree(art.download(root="first", overwrite=True)) == {"a.txt": b"original", "b/c.txt": b"c"}
    art.verify(root="first")


def test_hardlinked_download_is_read_only_and_cannot_spoil_the_store(store: Path) -> None:
    art = log(None, "animals", {"a.txt": b"original", "b/c.txt": b"c"})
    linked = art.download(root="linked", hardlink=True)
    for name in ("a.txt", "b/c.txt"):
        st = os.stat(linked / name)
        assert st.st_nlink > 1
        assert not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    art.verify(root="linked")

    # Write through the link anyway (root ignores modes; anyone may chmod).
    os.chmod(linked / "a.txt", 0o644)
    with open(linked / "a.txt", "r+b") as f:
        f.write(b"SPOILED!")
    assert (linked / "a.txt").read_bytes() == b"SPOILED!"

    assert tree(art.download(root="again", hardlink=True))["a.txt"] == b"original"
    assert tree(art.download(root="copy"))["a.txt"] == b"original"
    assert art.get_entry("a.txt").download(root="entry").read_bytes() == b"original"
    with pytest.raises(lodestore.ConflictError, match="a.txt"):  # the spoiled file is the user's edit
        art.download(root="linked", hardlink=True)
    art.download(root="linked", hardlink=True, overwrite=True)  # asked: re-download repairs it
    art.verify(root="linked")


def test_plain_download_over_hardlinks_makes_private_copies(store: Path) -> None:
    art = log(None, "animals", {"a.txt": b"original"})
    art.download(root="data", hardlink=True)
    art.download(root="data")
    st = os.stat("data/a.txt")
    assert st.st_nlink == 1 and st.st_mode & stat.S_IWUSR
    Path("data/a.txt").write_bytes(b"mine")
    assert tree(art.download(root="other", hardlink=True)) == {"a.txt": b"original"}


def test_checkout_makes_the_folder_match_exactly(store: Path) -> None:
    art = log(None, "animals", {"a.txt": b"a", "sub/b.txt": b"b", "c": b"c"})
    target = Path("co")
    (target / "sub" / "deep").mkdir(parents=True)
    (target / "extra.txt").write_text("x")
    (target / "sub" / "deep" / "old.txt").write_text("x")
    (target / "a.txt").write_text("modified")
    (target / "c").mkdir()  # a folder where the version has a file
    (target / "c" / "inside.txt").write_text("x")
    (target / "empty").mkdir()

    assert art.checkout(root=target) == target
    assert tree(target) == {"a.txt": b"a", "sub/b.txt": b"b", "c": b"c"}
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        "a.txt",
        "c",
        "sub",
        "sub/b.txt",
    ]
    art.verify(root=target)


@pytest.mark.local_only
def test_checkout_never_deletes_the_store_inside_the_folder(tmp_path: Path, store: Path) -> None:
    project = tmp_path / "project"
    inner = project / ".lodestore"
    art = log(inner, "animals", {"a.txt": b"a"})
    art.checkout(root=project)
    assert tree(project).get("a.txt") == b"a"
    for inside in (inner, inner / "store"):
        with pytest.raises(lodestore.ConflictError, match="inside the store"):
            art.checkout(root=inside)
    assert (inner / "catalog.db").is_file()
    assert lodestore.Api(root=inner).artifact("zoo/animals:v0").files()[0].path == "a.txt"


def test_verify_reports_modified_missing_and_extra_files(store: Path) -> None:
    art = log(None, "animals", {"a.txt": b"a", "b.txt": b"b", "c.txt": b"c"})
    folder = art.download(root="data")
    (folder / "a.txt").write_bytes(b"A")  # same size, other bytes
    (folder / "b.txt").unlink()
    (folder / "new.txt").write_text("n")
    with pytest.raises(VerificationError) as err:
        art.verify(root=folder)
    message = str(err.value)
    assert "modified: a.txt" in message and "missing: b.txt" in message and "extra: new.txt" in message
    assert "c.txt" not in message
    with pytest.raises(VerificationError):
        art.verify(root="nowhere")


def test_verify_skips_only_lodestore_temp_files(store: Path) -> None:
    art = log(None, "animals", {"a.txt": b"a", "sub/b.txt": b"b"})
    folder = art.download(root="data")
    (folder / ".lodestore-tmp-0123456789abcdef0123456789abcdef").write_bytes(b"half")  # a killed download's
    (folder / "sub" / ".b.txt.0123abcd.lodestore-tmp").write_bytes(b"half")  # the earlier form
    art.verify(root=folder)
    for user_file in ("notes.lodestore-tmp", "my.lodestore-tmp.txt", ".lodestore-tmp-mine", "sub/x.lodestore-tmp"):
        (folder / user_file).write_text("mine")
        with pytest.raises(VerificationError, match=f"extra: {user_file}"):
            art.verify(root=folder)
        (folder / user_file).unlink()


def test_download_path_prefix_and_entry_default_folder(store: Path) -> None:
    art = log(None, "animals", {"train/a.txt": b"a", "test/b.txt": b"b"})
    assert tree(art.download(root="only-train", path_prefix="train/")) == {"train/a.txt": b"a"}
    dest = art.get_entry("test/b.txt").download()
    assert dest.read_bytes() == b"b" and dest.resolve().is_relative_to(Path.cwd().resolve())


def test_new_file_binary_and_text(store: Path) -> None:
    with lodestore.init(project="zoo") as run:
        art = lodestore.Artifact("cfg", type="config")
        with art.new_file("bin/w.bin", mode="wb") as f:
            f.write(b"\x00\x01")
        with art.new_file("cfg/ü.yaml") as f:
            f.write("héllo: wörld\n")
        run.log_artifact(art)
    assert tree(art.download(root="out")) == {
        "bin/w.bin": b"\x00\x01",
        "cfg/ü.yaml": "héllo: wörld\n".encode(),
    }


def test_symlink_inside_the_folder_is_stored_as_its_target(store: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "real").mkdir(parents=True)
    (root / "real" / "x.txt").write_text("x")
    (root / "alias.txt").symlink_to(root / "real" / "x.txt")
    (root / "real-dir-link").symlink_to(root / "real")  # followed: its files also under the link's path
    art = lodestore.Artifact("data", type="dataset")
    art.add_dir(root)
    with lodestore.init(project="zoo") as run:
        run.log_artifact(art)
    assert tree(art.download(root="out")) == {"alias.txt": b"x", "real/x.txt": b"x", "real-dir-link/x.txt": b"x"}


def test_logging_a_path_and_an_empty_artifact(store: Path, images: Path) -> None:
    with lodestore.init(project="zoo") as run:
        from_path = run.log_artifact(images, name="imgs", type="dataset")
        empty = run.log_artifact(lodestore.Artifact("nothing", type="dataset"))
    assert from_path.file_count == 3 and from_path.version == "v0"
    assert empty.file_count == 0 and tree(empty.download(root="empty")) == {}


def test_a_file_rewritten_right_after_logging_is_read_again(store: Path, tmp_path: Path) -> None:
    path = tmp_path / "w.txt"
    path.write_text("aaaa")
    before = os.stat(path)
    for content in ("bbbb", "cccc"):
        with lodestore.init(project="zoo") as run:
            art = lodestore.Artifact("weights", type="model")
            art.add_file(path)
            run.log_artifact(art)
        path.write_text(content)  # same size, within the same second
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # even with the old mtime back
    with lodestore.init(project="zoo") as run:
        art = lodestore.Artifact("weights", type="model")
        art.add_file(path)
        run.log_artifact(art)
    api = lodestore.Api()
    assert [
        api.artifact(f"zoo/weights:v{i}").get_entry("w.txt").download(root=f"v{i}").read_text()
        for i in range(3)
    ] == ["aaaa", "bbbb", "cccc"]


def test_many_small_files_download_and_hardlink(store: Path) -> None:
    files = {f"d{i % 7}/f{i:03d}.txt": f"file {i}".encode() * (i + 1) for i in range(150)}
    art = log(None, "many", files)
    assert tree(art.download(root="copies")) == files
    assert tree(art.download(root="links", hardlink=True)) == files
    assert all(os.stat(Path("links") / p).st_nlink > 1 for p in files)
    art.verify(root="copies")
    art.verify(root="links")
