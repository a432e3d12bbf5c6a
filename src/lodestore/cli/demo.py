"""lode demo: make a small artifact with two versions and show them (the README's first command)."""

from __future__ import annotations

import csv
import random
import tempfile
from pathlib import Path

import lodestore  # the public package, as a user's script imports it
from lodestore.cli import context
from lodestore.cli.app import app
from lodestore.cli.output import human_size, stdout, table


def _write_dataset(folder: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / "images" / f"img{i:03d}.bin").write_bytes(rng.randbytes(4096))
    with open(folder / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label"])
        for i in range(n):
            w.writerow([f"img{i:03d}.bin", rng.choice(["cat", "dog"])])


@app.command()
def demo() -> None:
    """Log a tiny 'animals' dataset twice (v0, then v1 with new images) and show it."""

    where = context.where()  # the store this lode names: its folder, or a team pair
    shown = context.service().location.describe()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "animals"
        _write_dataset(data, 8, seed=1)
        with lodestore.init(project="demo", name="prep", **where) as run:
            art = lodestore.Artifact("animals", type="dataset", description="cats and dogs",
                                     metadata={"source": "lode demo", "num_samples": 8})
            art.add_dir(data / "images", name="images")
            art.add_file(data / "labels.csv", name="meta/labels.csv")
            v0 = run.log_artifact(art, aliases=["baseline"])
        _write_dataset(data, 12, seed=1)
        with lodestore.init(project="demo", name="prep-more", **where) as run:
            art = lodestore.Artifact("animals", type="dataset", description="cats and dogs, more of them",
                                     metadata={"source": "lode demo", "num_samples": 12})
            art.add_dir(data / "images", name="images")
            art.add_file(data / "labels.csv", name="meta/labels.csv")
            v1 = run.log_artifact(art, aliases=["best"])
        with lodestore.init(project="demo", name="train", **where) as run:
            used = run.use_artifact("demo/animals:best")
            out = used.download(root=Path(tmp) / "download")
            used.verify(root=out)
    stdout.print(f"store: {shown}\n", markup=False)
    table(["version", "files", "size", "aliases", "logged by"], [
        [a.version, a.file_count, human_size(a.size), ", ".join(a.refresh().aliases), a.logged_by_run_id]
        for a in (v0, v1)
    ], title="demo/animals")
    stdout.print("\nTry: [bold]lode versions demo/animals[/bold], [bold]lode info demo/animals:latest[/bold], "
                 "[bold]lode files demo/animals:v1[/bold], [bold]lode get demo/animals:best --root out/[/bold]")
