"""Build the store of the reference and table tests (a subprocess: `python _build_refs_store.py ROOT WORK`).

zoo/mixed:v0 holds one stored file, a Table of 150 rows (``scores.table.parquet``), a
file named .parquet that is not Parquet, and three references: a local file (deleted
after logging, so a server that read it would fail), an http URL on a port nothing
listens on, and an s3 URI with a given checksum (nothing is read for either)."""

from __future__ import annotations

import sys
from pathlib import Path

import lodestore

HTTP_URI = "http://127.0.0.1:9/weights.bin"  # the discard port: a fetch would fail
S3_URI = "s3://my-bucket/imagenet/train.tar"


def main(root: Path, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    local = work / "outside.txt"
    local.write_text("bytes that live outside the store\n")
    stored = work / "stored.txt"
    stored.write_text("held by the store\n")
    broken = work / "broken.parquet"
    broken.write_text("not parquet at all\n")
    with lodestore.init(project="zoo", name="refs", root=root) as run:
        art = lodestore.Artifact("mixed", type="dataset")
        art.add_file(str(stored), "stored.txt")
        art.add_file(str(broken), "broken.parquet")
        art.add(lodestore.Table(columns=["id", "name", "score"],
                                data=[[i, f"<b>row{i}</b>", i / 4] for i in range(150)]), "scores")
        art.add_reference(local.as_uri(), name="ext/outside.txt")
        art.add_reference(HTTP_URI, name="ext/weights.bin", checksum="sha256:" + "ab" * 32, size=4096)
        art.add_reference(S3_URI, name="train.tar", checksum=False)
        run.log_artifact(art)
    local.unlink()


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve())
