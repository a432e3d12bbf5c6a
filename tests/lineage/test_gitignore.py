"""`.gitignore` handling for code artifacts: nested files, negation, folder-only,
anchored patterns, `**`, and `.git/` always left out."""

from __future__ import annotations

from pathlib import Path

import lodestore
from lodestore.sdk.gitignore import gitignore_filter


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_gitignore_rules(tmp_path: Path) -> None:
    root = _tree(tmp_path / "repo", {
        ".gitignore": "# comment\n*.log\n!keep.log\nbuild/\n/top.txt\ndocs/**/*.tmp\nsecret\\#1\ncache\n",
        "pkg/.gitignore": "*.bin\n!important.bin\n/local.cfg\n",
        ".git/config": "x", "a.py": "", "x.log": "", "keep.log": "", "sub/y.log": "", "sub/keep.log": "",
        "build/out.o": "", "src/build/deep.o": "", "top.txt": "", "sub/top.txt": "",
        "docs/a/b/c.tmp": "", "docs/c.tmp": "", "docs/readme.md": "", "secret#1": "",
        "cache": "", "sub/cache/f": "", "pkg/w.bin": "", "pkg/important.bin": "", "pkg/local.cfg": "",
        "pkg/deeper/local.cfg": "", "other/w.bin": "", "build.txt": "",
    })
    keep = gitignore_filter(root)
    kept = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    kept = {p for p in kept if keep(p)}
    assert kept == {
        ".gitignore", "pkg/.gitignore", "a.py", "keep.log", "sub/keep.log", "sub/top.txt", "docs/readme.md",
        "pkg/important.bin", "pkg/deeper/local.cfg", "other/w.bin", "build.txt",
    }


def test_reincluding_inside_an_ignored_folder_is_impossible(tmp_path: Path) -> None:
    root = _tree(tmp_path / "r", {".gitignore": "logs/\n!logs/keep.txt\n", "logs/keep.txt": "", "ok": ""})
    keep = gitignore_filter(root)
    assert not keep("logs/keep.txt") and keep("ok")


def test_add_dir_with_use_gitignore(store: Path, tmp_path: Path) -> None:
    root = _tree(tmp_path / "code", {".gitignore": "__pycache__/\n*.pyc\n", "train.py": "print()",
                                     "__pycache__/train.cpython.pyc": "", "lib/util.py": "", "lib/util.pyc": "",
                                     ".git/HEAD": "ref"})
    art = lodestore.Artifact("code", type="code")
    art.add_dir(root, use_gitignore=True)
    with lodestore.init(project="zoo") as run:
        run.log_artifact(art)
    assert sorted(f.path for f in art.files()) == [".gitignore", "lib/util.py", "train.py"]
