"""One step of the team benchmark (bench/team.py) per process, so its peak RSS is its own.

Usage: python bench/team_steps.py STEP ARGS... ; prints one JSON line:
{"seconds": op time, "maxrss_mb": peak RSS of this process, ...step facts}.

Imports happen before any timer (as in bench/steps.py: a process's start and imports
are not the operation), including those lodestore makes lazily for a team pair.
The machine a step runs on is $LODESTORE_DIR (its local side of the team pair: index and
pack cache); the servers are the AWS_* variables and the catalog URL given. A STORE and
CATALOG of "" mean the embedded store at $LODESTORE_DIR. Time runs from opening the
store (S3 client, format check, PostgreSQL connection) to the end of the operation;
the references (`upload_ref`, `download_ref`) time boto3's client creation the same way.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import botocore.config
import psycopg  # noqa: F401  (imported here, before any timer: SQLAlchemy imports it lazily)
import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401  (likewise: loaded when the PostgreSQL engine is made)
from boto3.s3.transfer import TransferConfig
from steps import peak_rss_mb

import lodestore
from lodestore.sdk import transfer  # noqa: F401  (imported by Service.push/pull when first used, with rich)
from lodestore.sdk.repository import Repository
from lodestore.sdk.service import Service
from lodestore.store import s3, s3_objects  # noqa: F401  (s3: imported lazily by Repository.open)
from lodestore.store.s3_packs import pack_name
from lodestore.store.s3_session import UPLOAD_THREADS

# The reference transfers use the part size and concurrency lodestore's own uploads use
# (s3_objects.py: 16 MiB parts, 4 at a time per pack, 2 packs at a time): the same
# request sizes and as many connections, so the ratio is lodestore's overhead alone.
REFERENCE_TRANSFER = TransferConfig(multipart_threshold=s3_objects.MULTIPART_THRESHOLD,
                                    multipart_chunksize=s3_objects.MULTIPART_PART,
                                    max_concurrency=s3_objects.PARALLEL_PARTS * UPLOAD_THREADS, use_threads=True)
DOWNLOAD_THREADS = 4  # objects downloaded at once by the download reference (each in parallel parts)


def _repo(store: str, catalog: str) -> Repository:
    return Repository.open(store=store or None, catalog=catalog or None)


def _counters(repo: Repository) -> dict:
    """The S3 requests (by operation) and body bytes of this process's team store."""
    c = getattr(repo.store, "counters", None)
    if c is None:
        return {"requests": {}, "s3_requests": 0, "bytes_sent": 0, "bytes_received": 0}
    return {"requests": dict(c.requests), "s3_requests": c.total, "bytes_sent": c.bytes_sent,
            "bytes_received": c.bytes_received}


def _reset(repo: Repository) -> None:
    c = getattr(repo.store, "counters", None)
    if c is not None:
        c.reset()


def log(store: str, catalog: str, name: str, artifact_type: str, path: str) -> dict:
    """Log a file or folder as bench/NAME; S3 requests and bytes counted from the open on."""
    t = time.perf_counter()
    repo = _repo(store, catalog)
    art = lodestore.Artifact(name, type=artifact_type, project="bench")
    p = Path(path)
    if p.is_dir():
        art.add_dir(p)
    else:
        art.add_file(p, name=p.name)
    created = art._log(repo, "bench", [], None)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "version": art.version, "created": created, "size": art.size, **_counters(repo)}


def download(store: str, catalog: str, ref: str, target: str) -> dict:
    t = time.perf_counter()
    repo = _repo(store, catalog)
    svc = Service.of(repo)
    svc.download(svc.version(ref), target)
    return {"seconds": time.perf_counter() - t, **_counters(repo)}


def pull(store: str, catalog: str, ref: str, dest_root: str) -> dict:
    """Pull REF from the team pair into the (empty) embedded store DEST_ROOT. Also its CPU
    time (all threads): on a shared machine, the work done is steadier than the wall time."""
    t, cpu = time.perf_counter(), time.process_time()
    team = Service.open(store=store, catalog=catalog)
    here = Service.open(dest_root)
    result = here.pull([ref], team)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "copied": len(result.copied),
            "files_moved": result.files_moved,
            "bytes_moved": result.bytes_moved, "calls": result.calls, **_counters(_repo(store, catalog))}


def push(store: str, catalog: str, ref: str) -> dict:
    """Push REF from the embedded store at $LODESTORE_DIR to the team pair. `seconds` is
    the push alone; opening both stores (constant: a connection, a format check) is
    `open_seconds`, and the S3 requests counted are the push's own."""
    t = time.perf_counter()
    here = Service.open()
    team_repo = _repo(store, catalog)
    team = Service.of(team_repo)
    opened = time.perf_counter()
    open_requests = _counters(team_repo)["s3_requests"]
    _reset(team_repo)
    result = here.push([ref], team)
    seconds = time.perf_counter() - opened
    return {"seconds": seconds, "open_seconds": opened - t, "open_s3_requests": open_requests,
            "created": len(result.copied), "bytes_moved": result.bytes_moved, "files_moved": result.files_moved,
            "calls": result.calls, "catalog_calls": result.catalog_calls, "store_calls": result.store_calls,
            **_counters(team_repo)}


def pack_keys(store: str, catalog: str, ref: str) -> dict:
    """The bucket keys of the pack objects holding REF's chunks (what a pull must fetch)."""
    repo = _repo(store, catalog)
    svc = Service.of(repo)
    digests = [e.digest for e in svc.iter_entries(svc.version(ref))]
    recipes = repo.store.recipes(digests)
    chunks = [bytes.fromhex(c) for r in recipes.values() for c in r.chunks]
    where = repo.store.cache.index.locate(chunks)
    pack_ids = sorted({loc.pack_id for loc in where.values()})
    return {"seconds": 0.0, "bucket": repo.store.bucket.bucket,
            "keys": [repo.store.bucket.key(pack_name(p)) for p in pack_ids]}


def _client():
    """A plain boto3 client, with as many pooled connections as lodestore's (s3_objects.py),
    so the reference's parallel parts never wait for a connection."""
    return boto3.session.Session().client("s3", config=botocore.config.Config(max_pool_connections=32))


def upload_ref(path: str, bucket: str, key: str) -> dict:
    """The reference of a log: a plain boto3 multipart upload of the same file."""
    t = time.perf_counter()
    _client().upload_file(path, bucket, key, Config=REFERENCE_TRANSFER)
    return {"seconds": time.perf_counter() - t, "size": os.path.getsize(path)}


def download_ref(bucket: str, target: str, *keys: str) -> dict:
    """The reference of a pull: the same pack objects downloaded by boto3, DOWNLOAD_THREADS
    objects at a time, each in parallel parts, to plain files."""
    t = time.perf_counter()
    client = _client()
    Path(target).mkdir(parents=True, exist_ok=True)

    def fetch(i_key: tuple[int, str]) -> int:
        i, key = i_key
        dest = os.path.join(target, f"{i:05d}.pack")
        client.download_file(bucket, key, dest, Config=REFERENCE_TRANSFER)
        return os.path.getsize(dest)

    with ThreadPoolExecutor(DOWNLOAD_THREADS) as pool:
        size = sum(pool.map(fetch, enumerate(keys)))
    return {"seconds": time.perf_counter() - t, "size": size, "objects": len(keys)}


STEPS = {"log": log, "download": download, "pull": pull, "push": push, "pack_keys": pack_keys,
         "upload_ref": upload_ref, "download_ref": download_ref}


def main() -> None:
    step, *args = sys.argv[1:]
    result = STEPS[step](*args)
    result["maxrss_mb"] = peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
