"""Reference entries: files a version names by URI without storing their bytes
(``add_reference``), for ``s3://``, ``file://`` and ``http(s)://``.

What is recorded identifies the content, so a download never hands over silently
different bytes and `verify` can tell a reference that changed or vanished:

- ``s3://bucket/key``: ETag (opaque: a multipart ETag is not an MD5), version id when
  the bucket is versioned, size, last-modified. A download asks for that version (or,
  unversioned, sends ``If-Match: <etag>``), so a changed object is an error.
- ``file:///path``: path, size and BLAKE3 of the content.
- ``http(s)://``: ETag and Last-Modified if the server sends them, size, and the BLAKE3
  of the body (it is read once to compute it).
- ``checksum="sha256:…"`` (Runicorn) records the given digest (and ``size=``) without
  reading anything; ``checksum=False`` records the URI only.

A prefix or folder expands to one entry per object, at most `max_objects`. S3 needs
boto3 (``pip install 'lodestore[s3]'``), imported on the first s3:// operation (it costs
~100 ms and ~20 MB that every `lode` command would pay otherwise); the endpoint and
credentials come from the usual AWS settings (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import blake3

from lodestore.catalog.records import ManifestEntry, ReferenceEntry
from lodestore.errors import FileChangedError, InvalidInputError, LodestoreError, NotFoundError
from lodestore.names import normalize_entry_path, temp_name

DEFAULT_MAX_OBJECTS = 10_000  # W&B's default bound on a prefix's expansion
SCHEMES = ("s3", "file", "http", "https")
BLOCK = 1 << 20


def _s3() -> Any:
    try:
        import boto3  # noqa: PLC0415  (optional and heavy: imported on the first s3:// operation)
    except ImportError:
        raise LodestoreError("s3:// references need boto3: pip install 'lodestore[s3]'") from None
    return boto3.client("s3")


def _client_error() -> type[Exception]:
    """botocore's ClientError; an except clause evaluates this only once a call raised,
    by which time boto3 (and so botocore) is imported."""
    from botocore.exceptions import ClientError  # noqa: PLC0415  (as _s3)

    return ClientError


def _split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _entry_path(name: str | None, rel: str) -> str:
    return normalize_entry_path(f"{name}/{rel}" if name and rel else (name or rel))


def resolve(uri: str, name: str | None = None, checksum: bool | str = True, max_objects: int | None = None,
            size: int | None = None) -> list[ReferenceEntry]:
    """The entries `add_reference(uri, ...)` records (module docstring)."""
    scheme = urlparse(uri).scheme
    if scheme not in SCHEMES:
        raise InvalidInputError(f"reference {uri!r}: the scheme must be one of {', '.join(SCHEMES)}")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise InvalidInputError(f"add_reference size= must be a byte count >= 0, not {size!r}")
    limit = DEFAULT_MAX_OBJECTS if max_objects is None else max_objects
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInputError(f"max_objects must be a positive int, not {max_objects!r}")
    base = name or Path(urlparse(uri).path.rstrip("/")).name or urlparse(uri).netloc
    if isinstance(checksum, str):  # a digest given by the caller (Runicorn): nothing is read
        if ":" not in checksum:
            raise InvalidInputError(f"checksum= takes True/False or 'algorithm:hex' like 'sha256:…', not {checksum!r}")
        return [ReferenceEntry(_entry_path(base, ""), uri, size, checksum)]
    if not isinstance(checksum, bool):
        raise InvalidInputError(f"add_reference checksum= takes True, False or 'sha256:…', not {checksum!r}")
    if not checksum:
        return [ReferenceEntry(_entry_path(base, ""), uri, size)]
    found = list(_expand(uri, scheme, limit + 1))
    if len(found) > limit:
        raise InvalidInputError(f"reference {uri!r} holds more than max_objects={limit} objects; pass a larger "
                                "max_objects or a narrower prefix")
    if not found:
        raise NotFoundError(f"reference {uri!r}: no such object, file or folder")
    single = len(found) == 1 and found[0][0] == ""
    entries = [_with_path(ref, _entry_path(name or (base if single else None), rel) if not single
                          else _entry_path(base, "")) for rel, ref in found]
    if size is not None and (len(entries) != 1 or entries[0].size != size):
        raise FileChangedError(f"reference {uri!r} has {entries[0].size if len(entries) == 1 else 'many'} bytes, "
                               f"not the {size} given as size=")
    return entries


def _with_path(ref: ReferenceEntry, path: str) -> ReferenceEntry:
    return ReferenceEntry(path, ref.uri, ref.size, ref.digest, ref.etag, ref.object_version, ref.last_modified)


def _expand(uri: str, scheme: str, limit: int) -> Iterator[tuple[str, ReferenceEntry]]:
    """(path relative to the prefix or folder, "" for a single object; its entry)."""
    if scheme == "file":
        yield from _expand_file(uri, limit)
    elif scheme == "s3":
        yield from _expand_s3(uri, limit)
    else:
        yield "", _http_identity(uri)


def _expand_file(uri: str, limit: int) -> Iterator[tuple[str, ReferenceEntry]]:
    root = Path(unquote(urlparse(uri).path))
    if root.is_file():
        yield "", _file_identity(root, uri)
        return
    if not root.is_dir():
        return
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            path = Path(dirpath, f)
            rel = path.relative_to(root).as_posix()
            yield rel, _file_identity(path, path.as_uri())
            count += 1
            if count >= limit:
                return


def _file_identity(path: Path, uri: str) -> ReferenceEntry:
    return ReferenceEntry("", uri, path.stat().st_size, "blake3:" + _blake3_file(path),
                          last_modified=str(path.stat().st_mtime_ns))


def _blake3_file(path: Path) -> str:
    h = blake3.blake3()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            h.update(block)
    return h.hexdigest()


def _s3_entry(uri: str, head: dict[str, Any]) -> ReferenceEntry:
    version = head.get("VersionId")
    return ReferenceEntry("", uri, int(head.get("ContentLength", head.get("Size", 0))), None,
                          str(head.get("ETag", "")).strip('"') or None,
                          None if version in (None, "null") else version, str(head.get("LastModified")))


def _expand_s3(uri: str, limit: int) -> Iterator[tuple[str, ReferenceEntry]]:
    client = _s3()
    bucket, key = _split_s3(uri)
    if key and not key.endswith("/"):
        try:
            yield "", _s3_entry(uri, client.head_object(Bucket=bucket, Key=key))
            return
        except _client_error() as e:
            if _status(e) != 404:
                raise LodestoreError(f"reference {uri!r}: {e}") from None
    prefix = key.rstrip("/") + "/" if key else ""
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            obj_uri = f"s3://{bucket}/{obj['Key']}"
            head = client.head_object(Bucket=bucket, Key=obj["Key"])  # the version id is only in HEAD
            yield obj["Key"][len(prefix):], _s3_entry(obj_uri, head)
            count += 1
            if count >= limit:
                return


def _status(e: Exception) -> int:
    response = getattr(e, "response", {}) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _http_identity(uri: str) -> ReferenceEntry:
    h = blake3.blake3()
    size = 0
    try:
        with urllib.request.urlopen(uri, timeout=60) as resp:
            etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
            while block := resp.read(BLOCK):
                h.update(block)
                size += len(block)
    except urllib.error.HTTPError as e:
        raise NotFoundError(f"reference {uri!r}: HTTP {e.code}") from None
    except urllib.error.URLError as e:
        raise LodestoreError(f"reference {uri!r}: {e.reason}") from None
    return ReferenceEntry("", uri, size, "blake3:" + h.hexdigest(), etag, None, modified)


def digest_line(ref: ReferenceEntry) -> ManifestEntry:
    """A reference as a line of the version's manifest digest: what identifies it."""
    ident = "|".join(str(x) for x in ("ref", ref.uri, ref.digest, ref.etag, ref.object_version))
    return ManifestEntry(ref.path, ident, ref.size or 0)


# ----------------------------------------------------------------------------- reading back
def fetch(ref: ReferenceEntry, dest: Path) -> None:
    """Write the referenced bytes to `dest` (temp file, then rename), refusing content
    other than what was recorded: FileChangedError, or NotFoundError if it is gone."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / temp_name()
    try:
        with open(tmp, "wb") as out:
            size, digests = _copy(ref, out)
            out.flush()
            os.fsync(out.fileno())
        _check_content(ref, size, digests)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _copy(ref: ReferenceEntry, out: Any) -> tuple[int, dict[str, str]]:
    hashers: dict[str, Any] = {"blake3": blake3.blake3(), "sha256": hashlib.sha256()}
    size = 0
    for block in _read(ref):
        out.write(block)
        size += len(block)
        for h in hashers.values():
            h.update(block)
    return size, {k: h.hexdigest() for k, h in hashers.items()}


def _check_content(ref: ReferenceEntry, size: int, digests: dict[str, str]) -> None:
    if ref.size is not None and size != ref.size:
        raise FileChangedError(f"reference {ref.path} ({ref.uri}) changed: {size} bytes, {ref.size} recorded")
    if ref.digest is not None:
        algo, _, want = ref.digest.partition(":")
        got = digests.get(algo)
        if got is not None and got != want.lower():
            raise FileChangedError(f"reference {ref.path} ({ref.uri}) changed: its {algo} is not the one recorded")


def _read(ref: ReferenceEntry) -> Iterator[bytes]:
    scheme = urlparse(ref.uri).scheme
    if scheme == "file":
        path = Path(unquote(urlparse(ref.uri).path))
        try:
            with open(path, "rb") as f:
                while block := f.read(BLOCK):
                    yield block
        except FileNotFoundError:
            raise NotFoundError(f"reference {ref.path} vanished: {path} no longer exists") from None
    elif scheme == "s3":
        yield from _read_s3(ref)
    else:
        yield from _read_http(ref)


def _read_s3(ref: ReferenceEntry) -> Iterator[bytes]:
    bucket, key = _split_s3(ref.uri)
    pin: dict[str, str] = {}
    if ref.object_version:
        pin["VersionId"] = ref.object_version
    elif ref.etag:
        pin["IfMatch"] = f'"{ref.etag}"'
    try:
        body = _s3().get_object(Bucket=bucket, Key=key, **pin)["Body"]
    except _client_error() as e:
        if _status(e) == 412:
            raise FileChangedError(f"reference {ref.path} ({ref.uri}) changed: its ETag is no longer "
                                   f"{ref.etag}") from None
        if _status(e) in (404, 400):
            raise NotFoundError(f"reference {ref.path} vanished: {ref.uri} (version "
                                f"{ref.object_version or 'unversioned'}) no longer exists") from None
        raise LodestoreError(f"reference {ref.uri}: {e}") from None
    while block := body.read(BLOCK):
        yield block


def _read_http(ref: ReferenceEntry) -> Iterator[bytes]:
    try:
        with urllib.request.urlopen(ref.uri, timeout=60) as resp:
            etag = resp.headers.get("ETag")
            if ref.etag and etag and etag != ref.etag:
                raise FileChangedError(f"reference {ref.path} ({ref.uri}) changed: ETag {etag}, {ref.etag} recorded")
            while block := resp.read(BLOCK):
                yield block
    except urllib.error.HTTPError as e:
        raise NotFoundError(f"reference {ref.path} vanished: {ref.uri} answers HTTP {e.code}") from None


def problem(ref: ReferenceEntry) -> str | None:
    """Why the reference no longer names what was recorded ("changed: …", "vanished: …"),
    or None. S3 objects are checked by HEAD (version id, ETag, size); files and HTTP
    bodies are read and hashed."""
    try:
        if urlparse(ref.uri).scheme == "s3":
            _check_s3_head(ref)
        else:
            with open(os.devnull, "wb") as sink:
                size, digests = _copy(ref, sink)
            _check_content(ref, size, digests)
    except NotFoundError as e:
        return f"vanished: {ref.path} ({ref.uri}): {e}"
    except FileChangedError as e:
        return f"changed: {ref.path} ({ref.uri}): {e}"
    return None


def _check_s3_head(ref: ReferenceEntry) -> None:
    """The object now at the URI is the one recorded (same version id, ETag, size). In a
    versioned bucket a newer version counts as a change even though `download()` can
    still fetch the recorded one."""
    bucket, key = _split_s3(ref.uri)
    try:
        head = _s3().head_object(Bucket=bucket, Key=key)
    except _client_error() as e:
        if _status(e) in (404, 400):
            raise NotFoundError("no such object") from None
        raise LodestoreError(f"reference {ref.uri}: {e}") from None
    etag, version = str(head.get("ETag", "")).strip('"'), head.get("VersionId")
    if ref.object_version and version != ref.object_version:
        raise FileChangedError(f"version {version} is there now, {ref.object_version} recorded "
                               "(download() still fetches the recorded one while the bucket keeps it)")
    if ref.etag and etag != ref.etag:
        raise FileChangedError(f"ETag {etag}, {ref.etag} recorded")
    if ref.size is not None and int(head.get("ContentLength", -1)) != ref.size:
        raise FileChangedError(f"{head.get('ContentLength')} bytes, {ref.size} recorded")
