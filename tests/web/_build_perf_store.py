"""Build the store of test_pages_and_figures.py (a subprocess: `python _build_perf_store.py ROOT WORK`).

zoo/blob: v0 (a 3 MB random file), v1 (the same bytes with 1 MB appended: most of its
chunks are v0's), v2 (v1's file renamed, and two identical small files); zoo/dups: v0 and v1 where
two removed and three added files share one digest (renames paired in path order); zoo/fragile:
v0 and v1 (v1's bytes in a pack of their own, which the test deletes to make v1 broken);
a run "fan" that used 510 versions of zoo/many (a lineage neighbourhood over 500 nodes);
zoo/a0..a5 for artifact pages."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import lodestore


def write(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return folder


def main(root: Path, work: Path) -> None:
    rng = random.Random(13)
    head, tail = rng.randbytes(3_000_000), rng.randbytes(1_000_000)  # chunked: over 1 MB
    with lodestore.init(project="zoo", name="blobs", root=root) as run:
        for i, files in enumerate(({"blob.bin": head}, {"blob.bin": head + tail},
                                   {"moved/blob.bin": head + tail, "e1.txt": b"same", "e2.txt": b"same"})):
            art = lodestore.Artifact("blob", type="dataset")
            art.add_dir(str(write(work / f"blob{i}", files)))
            run.log_artifact(art)
        for i, files in enumerate(({"x/1": b"dup", "x/2": b"dup", "k": b"keep"},
                                   {"y/1": b"dup", "y/2": b"dup", "y/3": b"dup", "k": b"kept"})):
            art = lodestore.Artifact("dups", type="dataset")
            art.add_dir(str(write(work / f"dups{i}", files)))
            run.log_artifact(art)
        for i in range(6):
            art = lodestore.Artifact(f"a{i}", type="dataset")
            art.add_dir(str(write(work / f"a{i}", {"x.txt": f"a{i}".encode()})))
            run.log_artifact(art)
        for i in range(2):
            before = set((root / "store" / "packs").rglob("*.pack"))
            art = lodestore.Artifact("fragile", type="dataset")
            art.add_dir(str(write(work / f"fragile{i}", {f"f{i}.bin": os.urandom(50_000)})))
            run.log_artifact(art)
        # the packs v1's log wrote hold only its bytes: the test deletes them
        (work / "fragile-v1-packs.txt").write_text("\n".join(
            str(p) for p in set((root / "store" / "packs").rglob("*.pack")) - before))
    with lodestore.init(project="zoo", name="many", root=root) as run:
        for i in range(510):
            art = lodestore.Artifact("many", type="dataset")
            art.add_dir(str(write(work / "many", {"n.txt": str(i).encode()})))
            run.log_artifact(art)
    with lodestore.init(project="zoo", name="fan", root=root, job_type="eval") as run:
        for i in range(510):
            run.use_artifact(f"zoo/many:v{i}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
