"""Long file names: what a file system can hold can be logged and downloaded again; what
no file system can hold (a name over 255 bytes) is refused when it is added."""

from __future__ import annotations

from pathlib import Path

import pytest

import lodestore
from lodestore.errors import InvalidNameError
from lodestore.names import MAX_ENTRY_COMPONENT_BYTES, is_temp_name, normalize_entry_path

from .helpers import tree


def test_names_near_the_limit_log_and_download(store: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    long_name = "x" * 245 + ".jpg"  # 249 bytes: the temp name beside it must not add to it
    (folder / ("d" * 250)).mkdir(parents=True)
    (folder / long_name).write_bytes(b"long")
    (folder / ("d" * 250) / ("é" * 127)).write_bytes(b"utf8")  # 254 bytes in UTF-8
    with lodestore.init(project="zoo", name="prep") as run:
        art = lodestore.Artifact("pics", type="dataset")
        art.add_dir(folder)
        logged = run.log_artifact(art)
    for hardlink in (False, True):
        out = logged.download(root=tmp_path / f"out-{hardlink}", hardlink=hardlink)
        assert tree(out) == tree(folder)
        logged.verify(root=out)
        assert not any(is_temp_name(p.name) for p in out.rglob("*"))
    one = logged.get_entry(long_name).download(root=tmp_path / "one")
    assert one.read_bytes() == b"long"
    checked = logged.checkout(root=tmp_path / "out-False")
    assert tree(checked) == tree(folder)


@pytest.mark.parametrize("name", [
    "a" * 256, "a" * 300, "dir/" + "b" * 256, "c" * 300 + "/file", "é" * 128,  # 256 bytes in UTF-8
])
def test_a_name_longer_than_255_bytes_is_refused(store: Path, tmp_path: Path, name: str) -> None:
    source = tmp_path / "labels.csv"
    source.write_text("x")
    art = lodestore.Artifact("pics", type="dataset")
    with pytest.raises(InvalidNameError, match=f"at most {MAX_ENTRY_COMPONENT_BYTES} bytes"):
        art.add_file(source, name=name)
    with pytest.raises(InvalidNameError, match="bytes"):
        art.new_file(name)
    with pytest.raises(InvalidNameError):
        normalize_entry_path(name)
    assert art.file_count == 0  # the draft is as it was
    art.add_file(source, name="a" * 255)  # exactly at the limit is fine
    assert art.file_count == 1
