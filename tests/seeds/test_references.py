"""Reference artifacts: `add_reference` for s3:// (a real SeaweedFS), file:// and
http(s):// (a local server) stores no bytes, records what identifies the content,
downloads pinned content and reports changed or vanished references (issue 15)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import lodestore

# Also on the team pair (tests/conftest.py).
pytestmark = pytest.mark.team_too


def _log(art: lodestore.Artifact) -> lodestore.Artifact:
    with lodestore.init(project="refs") as run:
        run.log_artifact(art)
    return lodestore.Api().artifact(f"refs/{art.source_name}:latest")


def _bucket(s3, name: str, versioned: bool) -> str:
    """A bucket holding nothing: made, or (a test run again on another backend pair in the
    same session) emptied of every object version."""
    try:
        s3.create_bucket(Bucket=name)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        listed = s3.list_object_versions(Bucket=name)
        for v in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
            s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def test_s3_prefix_expands_records_identity_and_downloads_pinned(store, s3, tmp_path, lode):
    bucket = _bucket(s3, "animals-v", versioned=True)
    for key, body in (("animals/cat.png", b"cat" * 100), ("animals/dog.png", b"dog" * 50), ("other/x", b"x")):
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    art = lodestore.Artifact("animals", type="dataset")
    assert art.add_reference(f"s3://{bucket}/animals") == ["cat.png", "dog.png"]  # relative to the prefix
    logged = _log(art)
    assert logged.file_count == 0 and not any((store / "store" / "packs").rglob("*.pack"))  # no bytes stored
    refs = {r.path: r for r in logged.references()}
    assert refs["cat.png"].size == 300 and refs["cat.png"].etag
    assert refs["cat.png"].object_version and refs["cat.png"].last_modified
    shown = lode("files", "refs/animals:latest")
    assert f"reference s3://{bucket}/animals/cat.png" in shown.out and "2 references" in shown.out

    folder = logged.download(root=tmp_path / "dl")
    assert (folder / "cat.png").read_bytes() == b"cat" * 100
    logged.verify(root=folder)
    # the object changes: the download still gets the recorded version; verify reports it
    s3.put_object(Bucket=bucket, Key="animals/cat.png", Body=b"new cat")
    again = logged.download(root=tmp_path / "dl2")
    assert (again / "cat.png").read_bytes() == b"cat" * 100
    with pytest.raises(lodestore.VerificationError, match="changed: cat.png"):
        logged.verify(root=again)


def test_s3_unversioned_changed_object_is_an_error_never_other_bytes(store, s3, tmp_path):
    bucket = _bucket(s3, "plain", versioned=False)
    s3.put_object(Bucket=bucket, Key="model.bin", Body=b"A" * 1000)
    art = lodestore.Artifact("model", type="model")
    art.add_reference(f"s3://{bucket}/model.bin")
    logged = _log(art)
    assert logged.references()[0].object_version is None
    s3.put_object(Bucket=bucket, Key="model.bin", Body=b"B" * 1000)
    with pytest.raises(lodestore.FileChangedError, match="changed"):
        logged.download(root=tmp_path / "dl")
    assert not (tmp_path / "dl" / "model.bin").exists()
    s3.delete_object(Bucket=bucket, Key="model.bin")
    with pytest.raises(lodestore.VerificationError, match="vanished: model.bin"):
        logged.verify(root=tmp_path / "dl")


def test_max_objects_bounds_the_expansion(store, s3):
    bucket = _bucket(s3, "many", versioned=False)
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"p/{i}", Body=b"%d" % i)
    art = lodestore.Artifact("many", type="dataset")
    with pytest.raises(lodestore.InvalidInputError, match="more than max_objects=3"):
        art.add_reference(f"s3://{bucket}/p", max_objects=3)
    assert len(art.add_reference(f"s3://{bucket}/p", name="all", max_objects=5)) == 5


def test_runicorn_reference_with_a_given_checksum_reads_nothing(store):
    dataset = lodestore.Artifact("imagenet-full", type="dataset")
    dataset.add_reference(uri="s3://my-bucket/imagenet-full", checksum="sha256:abc123...", size=150_000_000_000)
    [ref] = _log(dataset).references()
    assert (ref.uri, ref.digest, ref.size) == ("s3://my-bucket/imagenet-full", "sha256:abc123...", 150_000_000_000)


def test_file_references_record_path_size_blake3_and_detect_changes(store, tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("alpha")
    (data / "sub" / "b.txt").write_text("beta")
    art = lodestore.Artifact("local", type="dataset")
    assert art.add_reference(data.as_uri(), name="d") == ["d/a.txt", "d/sub/b.txt"]
    logged = _log(art)
    [a, _] = logged.references()
    assert a.uri == (data / "a.txt").as_uri() and a.size == 5 and a.digest.startswith("blake3:")
    folder = logged.download(root=tmp_path / "dl")
    assert (folder / "d/sub/b.txt").read_text() == "beta"
    (data / "a.txt").write_text("ALPHA")
    with pytest.raises(lodestore.FileChangedError):
        logged.download(root=tmp_path / "dl2")
    os.remove(data / "sub" / "b.txt")
    with pytest.raises(lodestore.VerificationError) as err:
        logged.verify(root=folder)
    assert "changed: d/a.txt" in str(err.value) and "vanished: d/sub/b.txt" in str(err.value)


def test_http_references(store, http_files, tmp_path):
    base, folder = http_files
    (folder / "weights.bin").write_bytes(b"w" * 4096)
    art = lodestore.Artifact("web", type="model")
    art.add_reference(f"{base}/weights.bin")
    logged = _log(art)
    [ref] = logged.references()
    assert ref.size == 4096 and ref.digest.startswith("blake3:") and ref.last_modified
    assert (logged.download(root=tmp_path / "dl") / "weights.bin").read_bytes() == b"w" * 4096
    (folder / "weights.bin").write_bytes(b"v" * 4096)
    with pytest.raises(lodestore.VerificationError, match="changed: weights.bin"):
        logged.verify(root=tmp_path / "dl")
    Path(folder / "weights.bin").unlink()
    with pytest.raises(lodestore.VerificationError, match="vanished: weights.bin"):
        logged.verify(root=tmp_path / "dl")


def test_a_version_size_counts_its_references_recorded_sizes(store, tmp_path, lode):
    """As W&B's `artifact.size`: files plus the references' recorded sizes (a reference
    recorded without a size counts 0); the store holds none of their bytes."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha")  # 5 bytes, recorded from the file
    Path("local.txt").write_text("stored!")  # 7 bytes, stored
    art = lodestore.Artifact("mixed", type="dataset")
    art.add_file("local.txt")
    art.add_reference(data.as_uri(), name="d")
    art.add_reference("s3://b/imagenet", checksum="sha256:" + "ab" * 32, size=150_000_000_000)
    art.add_reference("s3://b/unsized", checksum=False)  # the URI only: no size recorded, counts 0
    assert art.size == 7 + 5 + 150_000_000_000  # a draft counts them too
    logged = _log(art)
    size = 7 + 5 + 150_000_000_000
    assert logged.size == size and logged.get_metadata().size_bytes == size
    assert logged.exclusive_size < 1_000  # stored bytes: the one stored file only
    [listed] = lode("ls", "--json").json()
    assert listed["size"] == size  # the artifact's total (live versions)
    [version] = lode("versions", "refs/mixed", "--json").json()
    assert version["size"] == size and version["exclusive_size"] == logged.exclusive_size
    assert lode("info", "refs/mixed:v0", "--json").json()["size"] == size
    assert "150.0 GB" in lode("info", "refs/mixed:v0").out
    stats = lode("stats", "--json").json()  # storage figures count what the store holds
    assert stats["logical_bytes"] == 7 and stats["artifacts"][0]["logical_bytes"] == 7
    # a reference-only version: its size is its references', nothing stored
    ref_only = lodestore.Artifact("only-refs", type="dataset")
    ref_only.add_reference("s3://b/x", checksum="sha256:" + "cd" * 32, size=1234)
    assert _log(ref_only).size == 1234 and lodestore.Api().artifact("refs/only-refs:v0").exclusive_size == 0
