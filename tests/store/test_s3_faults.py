"""Faults of the object store under an S3ContentStore, on a SeaweedFS of the test's own:
the server killed mid-upload, wrong credentials, an endpoint nobody answers."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("boto3")

from real_services import free_port, kill, start_seaweedfs

from lodestore.errors import RemoteStoreError
from lodestore.store.s3 import S3ContentStore

from .data import MiB, random_bytes

BUCKET = "faults"


@pytest.fixture
def own_server(tmp_path, monkeypatch):
    """A SeaweedFS of this test's own (it gets killed), with the AWS_* variables set."""
    port = free_port()
    server = start_seaweedfs(tmp_path / "weed", port)
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    server.client().create_bucket(Bucket=BUCKET)
    yield server, port
    kill(server.process)


def test_server_killed_mid_upload_then_the_next_session_succeeds(own_server, tmp_path, big_file):
    server, port = own_server
    url = f"s3://{BUCKET}/team"
    store = S3ContentStore(url, tmp_path / "cache")
    errors: list[BaseException] = []

    def log() -> None:
        try:
            with store.session() as s:
                s.add_file(big_file)
                s.commit()
        except BaseException as e:
            errors.append(e)

    writer = threading.Thread(target=log)
    writer.start()
    deadline = time.monotonic() + 120
    while not store.counters.requests["UploadPart"]:  # a 64 MiB pack goes up in parts
        assert time.monotonic() < deadline, "no pack upload started"
        time.sleep(0.01)
    kill(server.process)
    started = time.monotonic()
    writer.join(timeout=120)
    assert not writer.is_alive()
    assert time.monotonic() - started < 60  # bounded: timeouts and a few retries, no endless retry
    (err,) = errors
    assert isinstance(err, RemoteStoreError) and url in str(err), repr(err)
    assert "\n" not in str(err)
    store.close()

    restarted = start_seaweedfs(tmp_path / "weed", port, tmp_path / "weed" / "data")
    try:
        assert not list(restarted.client().list_objects_v2(Bucket=BUCKET, Prefix="team/index/").get("Contents", []))
        again = S3ContentStore(url, tmp_path / "cache-2")
        assert list(again.iter_files()) == []  # nothing of the killed session is visible
        data = random_bytes(3 * MiB, 400)
        with again.session() as s:
            ref = s.add_bytes(data)
            s.commit()
        assert again.read_bytes(ref.digest) == data
        again.close()
    finally:
        kill(restarted.process)


def test_wrong_credentials_are_one_clear_line_naming_the_store(own_server, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    started = time.monotonic()
    with pytest.raises(RemoteStoreError) as info:
        S3ContentStore(f"s3://{BUCKET}/team", tmp_path / "cache")
    assert time.monotonic() - started < 15
    message = str(info.value)
    assert f"s3://{BUCKET}/team" in message and "credentials" in message and "\n" not in message
    assert info.value.exit_code == 9


def test_an_unreachable_endpoint_fails_within_bounded_time(tmp_path, monkeypatch):
    port = free_port()  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    started = time.monotonic()
    with pytest.raises(RemoteStoreError) as info:
        S3ContentStore("s3://nowhere/team", tmp_path / "cache")
    assert time.monotonic() - started < 30
    message = str(info.value)
    assert "s3://nowhere/team" in message and f"127.0.0.1:{port}" in message and "\n" not in message


def test_a_bucket_that_does_not_exist_is_named(own_server, tmp_path):
    with pytest.raises(RemoteStoreError, match="does not exist"):
        S3ContentStore("s3://no-such-bucket/team", tmp_path / "cache")
