"""A store kept inside the folder being logged (LODESTORE_DIR=./.lodestore, then
`add_dir(".")`) is never logged into itself: its files are left out, with a warning."""

from __future__ import annotations

from pathlib import Path

import lodestore


def test_add_dir_of_a_folder_holding_the_store_leaves_the_store_out(tmp_path: Path, monkeypatch, capsys) -> None:
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "src" / "train.py").write_text("print('train')\n")
    (project / "README.md").write_text("hello\n")
    monkeypatch.chdir(project)
    monkeypatch.delenv("LODESTORE_QUIET", raising=False)
    store = project / ".lodestore"
    with lodestore.init(project="zoo", root=store) as run:
        first = lodestore.Artifact("notes", type="dataset")
        first.add_file("README.md")
        run.log_artifact(first)  # the store now has catalog.db, packs, ...
        assert any(store.rglob("*.db"))
        code = lodestore.Artifact(type="code")
        code.add_dir(".")
        logged = run.log_artifact(code)
    paths = [e.path for e in logged.files()]
    assert paths == ["README.md", "src/train.py"]
    assert "left out" in capsys.readouterr().err
    out = tmp_path / "out"
    logged.download(root=out)
    assert (out / "src" / "train.py").read_text() == "print('train')\n"
