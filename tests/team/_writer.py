"""Worker process for the many-writers tests; the store is whatever the environment names
($LODESTORE_DIR, or $LODESTORE_STORE + $LODESTORE_CATALOG), so one worker serves every pair.

    _writer.py log NAME COUNT SEED WORKDIR GO_FILE
        wait for GO_FILE, then log COUNT versions of zoo/NAME through the public API, each
        one own file; prints "LOGGED <version> <sha256 of the file>" per version
    _writer.py churn NAME WORKDIR STOP_FILE
        until STOP_FILE exists: log a version of zoo/NAME, permanently delete it, run
        `gc --grace 0`; prints "CHURN <rounds>" at the end
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from pathlib import Path

import lodestore


def log(name: str, count: int, seed: int, workdir: Path, go: Path) -> None:
    while not go.exists():
        time.sleep(0.01)
    rng = random.Random(seed)
    run = lodestore.init(project="zoo", job_type="writer")
    for i in range(count):
        path = workdir / f"w{seed}-{i}.bin"
        data = rng.randbytes(rng.randint(10_000, 300_000))
        path.write_bytes(data)
        art = lodestore.Artifact(name, type="dataset", metadata={"seed": seed, "i": i})
        art.add_file(path, name="part.bin")
        logged = run.log_artifact(art)
        print(f"LOGGED {logged.version} {hashlib.sha256(data).hexdigest()}", flush=True)
    run.finish()


def churn(name: str, workdir: Path, stop: Path) -> None:
    api = lodestore.Api()
    rounds = 0
    while not stop.exists():
        path = workdir / f"churn-{rounds}.bin"
        path.write_bytes(random.randbytes(200_000))
        run = lodestore.init(project="zoo", job_type="churn")
        art = lodestore.Artifact(name, type="dataset")
        art.add_file(path)
        run.log_artifact(art)
        run.finish()
        api.artifact(f"zoo/{name}:{art.version}").delete(permanent=True)
        api.gc(grace=0)
        rounds += 1
    print(f"CHURN {rounds}", flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "log":
        log(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]), Path(sys.argv[6]))
    else:
        churn(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
