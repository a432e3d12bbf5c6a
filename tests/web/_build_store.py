"""Build the store the web tests browse (run as a subprocess: `python _build_store.py ROOT`).

zoo/animals: v0, v1 (production), v2 (latest, staging) with folders, text, JSON, CSV, an
image, an HTML file, and payloads in the description, metadata and file names that must
render inert; zoo/model logged by a train run that used animals:v1; one sweep run that
logged six checkpoints (a cluster in the lineage graph)."""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

import lodestore

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


def png(width: int = 4, height: int = 4) -> bytes:
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def write(folder: Path, files: dict[str, bytes | str]) -> Path:
    for name, data in files.items():
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    return folder


def main(root: Path, work: Path) -> None:
    base = {
        "images/cat.png": png(), "images/dog.bin": b"\x00\x01" * 500, "meta/labels.csv": "name,label\ncat,0\ndog,1\n",
        "README.md": "# animals\n", "config.json": json.dumps({"lr": 0.1, "layers": [1, 2]}),
        "notes.txt": "line one\nline two\nline three\n", "page.html": "<h1>hi</h1><script>window.__xss=3</script>",
        f"odd/{'<img src=x onerror=window.__xss=4>'}.txt": "odd name",
    }
    with lodestore.init(project="zoo", name="prep", root=root, config={"seed": 1}) as run:
        for i in range(3):
            files = dict(base)
            files["notes.txt"] = base["notes.txt"] + "".join(f"line {n}\n" for n in range(i))
            if i >= 1:
                files[f"images/extra{i}.bin"] = bytes([i]) * 3000
            if i == 2:
                files.pop("README.md")
                files["docs/README.md"] = "# animals\n"  # a rename
            art = lodestore.Artifact("animals", type="dataset",
                                     description=f"**Pets** v{i}, see [the docs](/docs) and "
                                                 f"[bad](javascript:alert(1)) {XSS}",
                                     metadata={"source": "shelter", "split": {"train": 0.8 + i / 100, "test": 0.2},
                                               "payload": XSS, XSS: "key payload", "round": i})
            art.add_dir(str(write(work / f"animals{i}", files)))
            aliases = ["production"] if i == 1 else (["staging"] if i == 2 else [])
            art.add_tags("pets", f"round{i}")
            run.log_artifact(art, aliases=aliases)
    with lodestore.init(project="zoo", name=f"train {XSS}", root=root, job_type="train", group="sweep-1",
                        config={"lr": 0.01}, notes=XSS) as run:
        run.use_artifact("animals:production")
        run.summary["val_acc"] = 0.91
        model = lodestore.Artifact("model", type="model", metadata={"val_acc": 0.91})
        model.add_dir(str(write(work / "model", {"weights.bin": b"\x01" * 4000})))
        run.log_artifact(model, aliases=["best"])
    with lodestore.init(project="zoo", name="sweep", root=root, job_type="train", group="sweep-1",
                        config={"lr": 0.001}) as run:
        run.use_artifact("animals:v2")
        run.summary["val_acc"] = 0.95
        for i in range(6):
            ckpt = lodestore.Artifact(f"ckpt{i}", type="checkpoint")
            ckpt.add_dir(str(write(work / f"ckpt{i}", {"w.bin": bytes([i + 1]) * 2000})))
            run.log_artifact(ckpt)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
