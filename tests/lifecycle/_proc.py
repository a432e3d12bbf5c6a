"""Worker process for lifecycle tests (real processes, no mocks).

    _proc.py writer ROOT NAME COUNT SEED [SECONDS]
        log COUNT versions (or, with SECONDS, keep logging until that long has passed);
        permanently delete every other one (garbage for gc); prints "COMMITTED <version>
        <sha> <time>" per kept version and "WRITER DONE <time>" at the end
    _proc.py gc ROOT GRACE LOOPS [SECONDS [REPACK_THRESHOLD]]
        run gc LOOPS times (or until SECONDS have passed); prints "FREED <bytes> <time>"
        for each run that deleted bytes, then "GC DONE <total>"
    _proc.py reader ROOT SECONDS
        download every live version of project zoo again and again until SECONDS have
        passed, each into a fresh folder; prints "READ ERROR <message>" per failed
        download, then "READER DONE <downloads> <errors>"
    _proc.py purge ROOT REF                permanent delete of REF
    _proc.py put ROOT NAME SEED SIZE       log one version
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sys
import time
from pathlib import Path

from lodestore.errors import LodestoreError, NotFoundError
from lodestore.sdk import lifecycle
from lodestore.sdk.artifact import Artifact
from lodestore.sdk.repository import Repository


def main() -> None:
    mode, root = sys.argv[1], Path(sys.argv[2])
    repo = Repository.open(root)
    if mode == "writer":
        name, count, seed = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        until = time.time() + float(sys.argv[6]) if len(sys.argv) > 6 else None
        rng = random.Random(seed)
        shared = rng.randbytes(300_000)  # dedups against earlier versions (and other writers' data)
        i = -1
        while True:
            i += 1
            if (until is None and i >= count) or (until is not None and time.time() >= until and i >= count):
                break
            folder = root.parent / f"w-{seed}-{i}"
            folder.mkdir(parents=True)
            (folder / "shared.bin").write_bytes(shared)
            (folder / "own.bin").write_bytes(rng.randbytes(rng.randint(1000, 200_000)))
            (folder / "small.txt").write_bytes(f"{seed}-{i}".encode())
            art = Artifact(name, type="dataset")
            art.add_dir(folder)
            art._log(repo, "zoo", [], run_id=None)
            h = hashlib.sha256()
            for p in sorted(folder.iterdir()):
                h.update(p.name.encode() + b"\0" + p.read_bytes())
            if i % 2 == 0:  # churn: delete half of what we write, so gc has work to do
                lifecycle.delete_version(repo, art._record, permanent=True)
                print(f"PURGED {art.version}", flush=True)
            else:
                print(f"COMMITTED {art.version} {h.hexdigest()} {time.time()}", flush=True)
        print(f"WRITER DONE {time.time()}", flush=True)
    elif mode == "gc":
        grace, loops = float(sys.argv[3]), int(sys.argv[4])
        until = time.time() + float(sys.argv[5]) if len(sys.argv) > 5 else None
        threshold = float(sys.argv[6]) if len(sys.argv) > 6 else 0.3
        freed = 0
        n = 0
        while (n < loops) if until is None else (time.time() < until):
            n += 1
            got = lifecycle.gc(repo, grace=grace, repack_threshold=threshold).bytes_freed
            if got > 0:
                print(f"FREED {got} {time.time()}", flush=True)
            freed += got
            time.sleep(0.05)
        print(f"GC DONE {freed}", flush=True)
    elif mode == "reader":
        until = time.time() + float(sys.argv[3])
        downloads = errors = 0
        while time.time() < until:
            for a in repo.catalog.list_artifacts("zoo"):
                for rec in repo.catalog.list_versions("zoo", a.name):
                    target = root.parent / f"r-{os.getpid()}-{downloads}"
                    downloads += 1
                    try:
                        Artifact._from_record(repo, rec).download(root=target)
                    except NotFoundError:
                        pass  # purged between the listing and the download
                    except LodestoreError as e:
                        errors += 1
                        print(f"READ ERROR {rec.qualified_name}: {e}", flush=True)
                    shutil.rmtree(target, ignore_errors=True)
        print(f"READER DONE {downloads} {errors}", flush=True)
    elif mode == "purge":
        from lodestore.names import parse_ref

        r = parse_ref(sys.argv[3])
        rec = repo.catalog.get_version(r.project, r.name, r.selector)
        lifecycle.delete_version(repo, rec, permanent=True, delete_aliases=True)
        print("PURGE DONE", flush=True)
    repo.close()


if __name__ == "__main__":
    os.environ.setdefault("LODESTORE_QUIET", "1")
    main()
