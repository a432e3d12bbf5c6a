"""The bucket an S3 content store lives in: every request the store makes goes here.

One door to the object store (boto3): object names are relative to the store's prefix
(``s3://bucket/prefix`` -> ``prefix/<name>``); bounded timeouts and retries, so a wrong
endpoint or a dead server is one clear error within seconds, never an endless retry;
botocore's errors mapped to lodestore's (`RemoteStoreError` naming the store, exit 9);
conditional create (``If-None-Match: *``, proven on SeaweedFS by
tests/store/test_s3_conditional_create.py); multipart uploads with parallel parts for
large packs (s3transfer); and request counters (requests by operation, bytes sent and
received) that tests and the bench read to count what a session cost.

Endpoint and credentials come from the usual AWS_* variables (AWS_ENDPOINT_URL for an
S3-compatible server, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION),
which boto3 reads itself.
"""

from __future__ import annotations

import email.utils
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import boto3
import boto3.exceptions
import botocore.config
import botocore.exceptions
from boto3.s3.transfer import TransferConfig

from lodestore.errors import InvalidInputError, NotFoundError, RemoteStoreError
from lodestore.store import atomic

# A server that does not accept the connection within this long is unreachable (loopback
# and LAN servers connect in milliseconds; a cloud endpoint in well under a second).
CONNECT_TIMEOUT = 5.0
# A request that sends or receives nothing for this long has failed (a 64 MiB part takes
# about a second on a LAN).
READ_TIMEOUT = 60.0
# Attempts per request (the first included): transient errors (a dropped connection, 5xx,
# throttling) are retried with backoff, a dead server costs at most this many timeouts.
MAX_ATTEMPTS = 3
# Packs above this go up in parts, MULTIPART_PART bytes each, PARALLEL_PARTS at a time.
MULTIPART_THRESHOLD = 16 * 1024 * 1024
MULTIPART_PART = 16 * 1024 * 1024
PARALLEL_PARTS = 4
READ_STEP = 1024 * 1024  # bytes read from a response body at once (get_range_into)
WRITEBACK_STEP = 8 * 1024 * 1024  # a downloaded file's bytes handed to the disk at once (download_to)
_DELETE_BATCH = 1000  # the S3 API's cap per DeleteObjects
# Error codes that mean "these credentials are not accepted here".
_AUTH_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
               "AuthorizationHeaderMalformed", "Forbidden", "403"}
_NETWORK_ERRORS = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
                   botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectionClosedError,
                   botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object: its name under the prefix, size and last change (server clock)."""

    name: str
    size: int
    modified: float


@dataclass(frozen=True)
class PendingUpload:
    """A multipart upload started and neither completed nor aborted."""

    name: str
    upload_id: str
    initiated: float


class PreconditionFailed(Exception):
    """A conditional write lost: the object exists (create) or changed (If-Match)."""


def parse_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket/prefix`` (the prefix may be empty or nested)."""
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise InvalidInputError(f"not an S3 store URL (s3://bucket/prefix): {url!r}")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    prefix = prefix.strip("/")
    if not bucket or any(part in (".", "..") for part in prefix.split("/")):
        raise InvalidInputError(f"not an S3 store URL (s3://bucket/prefix): {url!r}")
    return bucket, prefix


class RequestCounters:
    """Requests sent by operation (retries included) and body bytes sent and received."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.bytes_sent = 0
        self.bytes_received = 0

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_sent = self.bytes_received = 0

    def _sent(self, request, event_name: str = "", **_) -> None:
        body = request.body
        size = len(body) if isinstance(body, (bytes, bytearray)) else _stream_length(body)
        op = event_name.rsplit(".", 1)[-1] or "?"  # before-send.s3.PutObject
        with self._lock:
            self.requests[op] += 1
            self.bytes_sent += size

    def _received(self, http_response=None, event_name: str = "", **_) -> None:
        if http_response is None or event_name.endswith(".HeadObject"):
            return  # a HEAD's Content-Length is the object's size, not bytes received
        size = int((http_response.headers or {}).get("content-length", 0) or 0)
        with self._lock:
            self.bytes_received += size


def _stream_length(body) -> int:
    if body is None:
        return 0
    try:
        return len(body)
    except TypeError:
        pass
    try:
        pos = body.tell()
        body.seek(0, os.SEEK_END)
        end = body.tell()
        body.seek(pos)
        return end - pos
    except (AttributeError, OSError):
        return 0


class Bucket:
    """The objects of one store: ``s3://bucket/prefix``. Thread-safe (one boto3 client)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.bucket, self.prefix = parse_url(url)
        config = botocore.config.Config(
            connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
            retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            max_pool_connections=32, s3={"addressing_style": "path"},
        )
        try:
            self.client = boto3.session.Session().client("s3", config=config)
        except botocore.exceptions.BotoCoreError as e:  # no region, a malformed endpoint...
            raise RemoteStoreError(f"cannot use the store {self.url}: {e}") from None
        self.endpoint = self.client.meta.endpoint_url
        self.counters = RequestCounters()
        self.client.meta.events.register("before-send.s3", self._before_send)
        self.client.meta.events.register("after-call.s3", self._after_call)
        self._transfer = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_PART,
                                        max_concurrency=PARALLEL_PARTS, use_threads=True)
        self._clock_offset = 0.0  # server clock - local clock, from the last response's Date

    # --- names and bookkeeping ----------------------------------------------------
    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _name(self, key: str) -> str:
        return key[len(self.prefix) + 1:] if self.prefix else key

    def _before_send(self, request, event_name: str = "", **_) -> None:
        self.counters._sent(request, event_name)

    def _after_call(self, http_response=None, parsed=None, event_name: str = "", **_) -> None:
        self.counters._received(http_response=http_response, event_name=event_name)
        date = (http_response.headers or {}).get("date") if http_response is not None else None
        if date:
            try:
                self._clock_offset = email.utils.parsedate_to_datetime(date).timestamp() - time.time()
            except (TypeError, ValueError):
                pass

    def server_now(self) -> float:
        """The server's clock, as of the last response (1 s resolution): leases and the gc
        lock are judged by the server's timestamps, never by comparing two machines' clocks."""
        return time.time() + self._clock_offset

    @contextmanager
    def _errors(self, doing: str, name: str = "") -> Iterator[None]:
        """botocore's errors as one clear lodestore error naming the store."""
        where = f"{self.url}/{name}" if name else self.url
        try:
            yield
        except botocore.exceptions.ClientError as e:
            raise self._client_error(e, doing, where) from None
        except boto3.exceptions.S3UploadFailedError as e:
            cause = e.__context__
            if isinstance(cause, botocore.exceptions.ClientError):
                raise self._client_error(cause, doing, where) from None
            raise RemoteStoreError(f"the store {self.url} failed while {doing}: {e}") from None
        except botocore.exceptions.NoCredentialsError:
            raise RemoteStoreError(f"no credentials for the store {self.url}: set AWS_ACCESS_KEY_ID and "
                                   "AWS_SECRET_ACCESS_KEY (or an AWS profile)") from None
        except _NETWORK_ERRORS as e:
            raise RemoteStoreError(f"the store {self.url} (endpoint {self.endpoint}) did not answer while "
                                   f"{doing}: {e}") from None
        except botocore.exceptions.BotoCoreError as e:
            raise RemoteStoreError(f"the store {self.url} failed while {doing}: {e}") from None

    def _client_error(self, e: botocore.exceptions.ClientError, doing: str, where: str) -> Exception:
        code = str(e.response.get("Error", {}).get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _AUTH_CODES or status == 403:
            return RemoteStoreError(f"the store {self.url} refused the credentials while {doing} ({code or status}): "
                                    "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
        if code == "NoSuchBucket":
            return RemoteStoreError(f"the bucket of the store {self.url} does not exist (endpoint {self.endpoint})")
        if code in ("NoSuchKey", "404", "NotFound"):
            return NotFoundError(f"{where} is not in the store")
        return RemoteStoreError(f"the store {self.url} failed while {doing}: {code or status} "
                                f"{e.response.get('Error', {}).get('Message', '')}".rstrip())

    # --- objects ------------------------------------------------------------------
    def put(self, name: str, body: bytes | IO[bytes], if_absent: bool = False) -> None:
        """Write an object (bytes, or a file read from its start); with `if_absent`, only
        if none exists (PreconditionFailed if one does)."""
        self._put(name, body, **({"IfNoneMatch": "*"} if if_absent else {}))

    def put_if_match(self, name: str, body: bytes, etag: str) -> None:
        """Replace an object only if it is still the version `etag` (PreconditionFailed if not)."""
        self._put(name, body, IfMatch=etag)

    def _put(self, name: str, body: bytes | IO[bytes], **condition: str) -> None:
        with self._errors("writing", name):
            try:
                self.client.put_object(Bucket=self.bucket, Key=self.key(name), Body=body, **condition)
            except botocore.exceptions.ClientError as e:
                status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if condition and (status == 412 or e.response.get("Error", {}).get("Code") == "PreconditionFailed"):
                    raise PreconditionFailed(name) from None
                raise

    def get(self, name: str) -> bytes | None:
        """The object's bytes, None if absent."""
        found = self.get_with_etag(name)
        return None if found is None else found[0]

    def get_with_etag(self, name: str) -> tuple[bytes, str] | None:
        try:
            with self._errors("reading", name):
                r = self.client.get_object(Bucket=self.bucket, Key=self.key(name))
                return r["Body"].read(), r["ETag"]
        except NotFoundError:
            return None

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        """`length` bytes at `offset` (NotFoundError if the object is absent)."""
        if length <= 0:
            return b""
        with self._errors("reading", name):
            r = self.client.get_object(Bucket=self.bucket, Key=self.key(name),
                                       Range=f"bytes={offset}-{offset + length - 1}")
            return r["Body"].read()

    def get_range_into(self, name: str, offset: int, buffer: memoryview) -> int:
        """Read the `len(buffer)` bytes at `offset` into `buffer`; returns how many came
        (fewer: the object ends sooner). NotFoundError if the object is absent. The body
        is read READ_STEP bytes at a time (urllib3's readinto reads into a temporary of
        the size asked, then copies): temporaries stay small and alike, so the allocator
        reuses them instead of keeping a large one per thread."""
        length = len(buffer)
        if length <= 0:
            return 0
        with self._errors("reading", name):
            r = self.client.get_object(Bucket=self.bucket, Key=self.key(name),
                                       Range=f"bytes={offset}-{offset + length - 1}")
            body = r["Body"]
            got = 0
            try:
                while got < length and (n := body.readinto(buffer[got : got + READ_STEP])):
                    got += n
            finally:
                body.close()
            return got

    def download_to(self, name: str, dest: Path) -> int:
        """The whole object written to a new file `dest` (left in place on error for the
        caller's temp folder to drop), one GET streamed READ_STEP bytes at a time through
        one small buffer: no buffers per part waiting for the disk (s3transfer's download
        held ~80 MB more at a pull's peak, kept by the allocator's per-thread heaps).
        Returns its size; NotFoundError if the object is absent. The file's writeback is
        started every WRITEBACK_STEP bytes (atomic.start_writeback), so the receiver's
        fsync finds most of it on disk already."""
        buffer = bytearray(READ_STEP)
        view = memoryview(buffer)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with self._errors("reading", name):
                body = self.client.get_object(Bucket=self.bucket, Key=self.key(name))["Body"]
                got = written_back = 0
                try:
                    while n := body.readinto(view):
                        done = 0
                        while done < n:  # a short write goes on where it stopped (the buffer is reused)
                            done += os.pwrite(fd, view[done:n], got + done)
                        got += n
                        if got - written_back >= WRITEBACK_STEP:
                            atomic.start_writeback(fd, written_back, got - written_back)
                            written_back = got
                finally:
                    body.close()
            return got
        finally:
            os.close(fd)

    def head(self, name: str) -> ObjectInfo | None:
        try:
            with self._errors("reading", name):
                r = self.client.head_object(Bucket=self.bucket, Key=self.key(name))
        except NotFoundError:
            return None
        return ObjectInfo(name, int(r["ContentLength"]), r["LastModified"].timestamp())

    def upload_file(self, name: str, path: Path, progress: Callable[[int], None] | None = None) -> None:
        """Upload a local file; multipart with parallel parts above MULTIPART_THRESHOLD."""
        with self._errors("uploading", name):
            self.client.upload_file(str(path), self.bucket, self.key(name), Config=self._transfer, Callback=progress)

    def download_file(self, name: str, dest: Path) -> None:
        """Download to `dest` atomically (temp beside it, then rename); NotFoundError if absent."""
        tmp = atomic.temp_beside(str(dest))
        try:
            with self._errors("downloading", name):
                self.client.download_file(self.bucket, self.key(name), tmp, Config=self._transfer)
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def objects(self, under: str = "") -> Iterator[ObjectInfo]:
        """Every object whose name starts with `under` (pages of 1,000)."""
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors("listing", under):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key(under)):
                for o in page.get("Contents", ()):
                    yield ObjectInfo(self._name(o["Key"]), int(o["Size"]), o["LastModified"].timestamp())

    def any(self, under: str) -> bool:
        with self._errors("listing", under):
            r = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.key(under), MaxKeys=1)
        return bool(r.get("Contents"))

    def delete(self, names: Iterable[str]) -> None:
        """Delete objects (absent ones are fine), up to 1,000 per request."""
        names = list(names)
        for i in range(0, len(names), _DELETE_BATCH):
            batch = names[i : i + _DELETE_BATCH]
            with self._errors("deleting", batch[0]):
                r = self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": self.key(n)} for n in batch], "Quiet": True})
            errors = [e for e in r.get("Errors", ()) if e.get("Code") != "NoSuchKey"]
            if errors:
                raise RemoteStoreError(f"the store {self.url} did not delete {errors[0].get('Key')}: "
                                       f"{errors[0].get('Code')} {errors[0].get('Message', '')}".rstrip())

    def copy(self, src: str, dst: str) -> None:
        with self._errors("copying", src):
            self.client.copy_object(Bucket=self.bucket, Key=self.key(dst),
                                    CopySource={"Bucket": self.bucket, "Key": self.key(src)})

    def pending_uploads(self, under: str = "") -> list[PendingUpload]:
        """Multipart uploads begun under `under` and neither completed nor aborted."""
        out: list[PendingUpload] = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        with self._errors("listing uploads", under):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key(under)):
                for u in page.get("Uploads", ()):
                    out.append(PendingUpload(self._name(u["Key"]), u["UploadId"], u["Initiated"].timestamp()))
        return out

    def abort_upload(self, upload: PendingUpload) -> None:
        try:
            with self._errors("aborting an upload", upload.name):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key(upload.name),
                                                   UploadId=upload.upload_id)
        except NotFoundError:
            pass  # completed or aborted meanwhile

    def close(self) -> None:
        self.client.close()
