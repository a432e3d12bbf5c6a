"""Every argument the SDK accepts does what it says (issue 11: is_tmp, skip_cache, policy,
checksum, size and per_page were accepted and ignored); what cannot be honoured is refused."""

from __future__ import annotations

from pathlib import Path

import blake3
import pytest

import lodestore
from lodestore.errors import FileChangedError, InvalidInputError


def _log(art: lodestore.Artifact) -> lodestore.Artifact:
    with lodestore.init(project="zoo") as run:
        run.log_artifact(art)
    return art


def test_add_file_is_tmp_names_the_entry_by_its_content(store: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "tmpx1.tar.gz").write_bytes(b"first")
    (b / "tmpx1.tar.gz").write_bytes(b"second")  # the same temp name, other content: no collision
    art = lodestore.Artifact("scratch", type="dataset")
    art.add_file(a / "tmpx1.tar.gz", is_tmp=True)
    art.add_file(b / "tmpx1.tar.gz", name="sub/tmpx1.tar.gz", is_tmp=True)
    _log(art)
    first, second = (blake3.blake3(x).hexdigest()[:20] for x in (b"first", b"second"))
    assert sorted(art.get_manifest()) == [f"{first}.tar.gz", f"sub/{second}.tar.gz"]


def test_add_file_mutable_policy_snapshots_the_file_now(store: Path, tmp_path: Path) -> None:
    src = tmp_path / "weights.bin"
    src.write_bytes(b"epoch 1")
    snap, late = lodestore.Artifact("snap", type="model"), lodestore.Artifact("late", type="model")
    snap.add_file(src, policy="mutable")
    late.add_file(src)  # "immutable", the default: read when logged
    src.write_bytes(b"epoch 2, written after add_file")
    _log(snap), _log(late)
    snap.download(root="s"), late.download(root="l")
    assert Path("s/weights.bin").read_bytes() == b"epoch 1"
    assert Path("l/weights.bin").read_bytes() == b"epoch 2, written after add_file"
    with pytest.raises(InvalidInputError, match="policy"):
        lodestore.Artifact("x", type="model").add_file(src, policy="copy")


def test_add_file_flags_must_be_booleans_and_logging_never_fills_the_cache(store: Path, tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_text("f")
    art = lodestore.Artifact("flags", type="dataset")
    for flag in ("is_tmp", "skip_cache", "overwrite"):
        with pytest.raises(InvalidInputError, match=flag):
            art.add_file(src, **{flag: "yes"})
    assert art.file_count == 0
    art.add_file(src, skip_cache=False)
    _log(art)
    assert not any(p.is_file() for p in (store / "cache").rglob("*"))  # as W&B's skip_cache=True, always


def test_add_reference_checks_size_and_records_without_storing(store: Path, tmp_path: Path) -> None:
    """Changed by issue 15: a file:// reference no longer copies bytes into the store;
    checksum=False records the URI only (W&B), size= is checked against the file."""
    src = tmp_path / "data.csv"
    src.write_text("a,b\n1,2\n")
    art = lodestore.Artifact("ref", type="dataset")
    with pytest.raises(FileChangedError, match="8 bytes, not the 9"):
        art.add_reference(src.as_uri(), size=9)
    assert art.add_reference(src.as_uri(), name="loose.csv", checksum=False) == ["loose.csv"]
    art.add_reference(src.as_uri(), size=8)
    logged = _log(art)
    assert logged.file_count == 0  # no bytes stored
    assert [(r.path, r.size) for r in logged.references()] == [("data.csv", 8), ("loose.csv", None)]


def test_runs_per_page_is_checked(store: Path) -> None:
    with lodestore.init(project="zoo", id="r1"):
        pass
    api = lodestore.Api()
    assert [r.id for r in api.runs("zoo", per_page=1)] == ["r1"]  # a page size, not a limit
    for bad in (0, -5, "10", True):
        with pytest.raises(InvalidInputError, match="per_page"):
            api.runs("zoo", per_page=bad)
