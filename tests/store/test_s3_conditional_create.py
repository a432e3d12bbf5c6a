"""What the S3 content store relies on from the object store, proven on this SeaweedFS
before anything is built on it: a conditional create (`If-None-Match: *`) of one key by
many writers at once lets exactly one win; every other gets 412 Precondition Failed.
(An older SeaweedFS accepted concurrent conditional creates of one key; the gc lock of
store/s3_leases.py would then admit two collectors at once.)"""

from __future__ import annotations

import multiprocessing
import threading

import pytest
from botocore.exceptions import ClientError

pytest.importorskip("boto3")

WRITERS = 16
ROUNDS = 4


def _create(client, bucket: str, key: str, body: bytes) -> str:
    try:
        client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
        return "won"
    except ClientError as e:
        code = e.response["Error"]["Code"]
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        return "412" if status == 412 or code == "PreconditionFailed" else f"other:{code}:{status}"


def _process_writer(env: dict, bucket: str, key: str, body: bytes, start, results) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    start.wait()
    results.put((body, _create(client, bucket, key, body)))


def _bucket(url: str) -> tuple[str, str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix


def test_conditional_create_of_one_key_by_many_threads_admits_exactly_one(seaweedfs, s3_store_url):
    bucket, prefix = _bucket(s3_store_url)
    client = seaweedfs.client()
    for r in range(ROUNDS):
        key = f"{prefix}/locks/race-{r}.json"
        barrier = threading.Barrier(WRITERS)
        outcomes: dict[bytes, str] = {}

        def writer(i: int, key: str = key, barrier: threading.Barrier = barrier,
                   outcomes: dict[bytes, str] = outcomes) -> None:
            body = f"writer {i}".encode()
            barrier.wait()
            outcomes[body] = _create(client, bucket, key, body)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [b for b, o in outcomes.items() if o == "won"]
        assert len(winners) == 1, outcomes
        assert sorted(o for o in outcomes.values() if o != "won") == ["412"] * (WRITERS - 1), outcomes
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == winners[0]  # the winner's bytes stay


def test_conditional_create_of_one_key_by_many_processes_admits_exactly_one(seaweedfs, s3_store_url):
    bucket, prefix = _bucket(s3_store_url)
    ctx = multiprocessing.get_context("spawn")
    for r in range(2):
        key = f"{prefix}/locks/process-race-{r}.json"
        start, results = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_process_writer, args=(seaweedfs.env(), bucket, key, f"p{i}".encode(), start,
                                                           results)) for i in range(8)]
        for p in procs:
            p.start()
        start.set()
        outcomes = dict(results.get(timeout=60) for _ in procs)
        for p in procs:
            p.join(timeout=30)
        winners = [b for b, o in outcomes.items() if o == "won"]
        assert len(winners) == 1, outcomes
        assert sorted(o for o in outcomes.values() if o != "won") == ["412"] * 7, outcomes
        assert seaweedfs.client().get_object(Bucket=bucket, Key=key)["Body"].read() == winners[0]


def test_conditional_create_refuses_an_existing_key(seaweedfs, s3_store_url):
    bucket, prefix = _bucket(s3_store_url)
    client = seaweedfs.client()
    assert _create(client, bucket, f"{prefix}/x", b"first") == "won"
    assert _create(client, bucket, f"{prefix}/x", b"second") == "412"
    assert client.get_object(Bucket=bucket, Key=f"{prefix}/x")["Body"].read() == b"first"
