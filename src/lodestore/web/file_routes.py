"""The file routes of the REST API: a version's folders, one entry, its bytes (streamed
and verified), the whole version as a tar stream, and bounded previews (text, JSON, CSV,
Parquet, raster images; what a browser could run is only ever text or a download)."""

from __future__ import annotations

import csv
import io
import json
import mimetypes
import tarfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import StreamingResponse

from lodestore.errors import NotFoundError
from lodestore.names import normalize_entry_path
from lodestore.sdk.service import Service, TablesUnavailableError, VersionRecord
from lodestore.web import json_out as out
from lodestore.web.paging import paginate_sorted, parse_limit
from lodestore.web.routing import (
    P_NAME,
    P_PATH,
    P_PROJECT,
    P_SEL,
    VERSION_PATH,
    Param,
    entry_path_of,
    flag,
    page_json,
    q,
    route,
    version_of,
)

PREVIEW_TEXT_BYTES = 1_000_000  # text and JSON previews: the first 1 MB
PREVIEW_TABLE_ROWS = 100  # CSV and Parquet previews: the first 100 rows
PREVIEW_TABLE_COLUMNS = 100  # ... of their first 100 columns
PREVIEW_CELL_CHARS = 1_000  # a Parquet cell longer than this is cut (a CSV preview is cut at 1 MB)
PREVIEW_PARQUET_BYTES = 16_000_000  # a Parquet file is read whole to take its head: only up to this size
# Raster images are shown inline; anything else (HTML, SVG, notebooks, ...) is only ever
# served as a download, never rendered in this origin.
INLINE_IMAGES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
                 ".webp": "image/webp", ".bmp": "image/bmp"}
NEVER_RENDERED = (".html", ".htm", ".svg", ".ipynb", ".xhtml", ".xml")


# ---------------------------------------------------------------------------------- files
@route("GET", VERSION_PATH + "/files", "One folder of a version (sub-folders first, then files), or with filter "
       "every file under it whose path holds the text.", "files",
       (P_PROJECT, P_NAME, P_SEL, Param("folder", "query", "folder path ('' = the root)"),
        Param("filter", "query", "case-insensitive text in the path")), paged=True)
def files(svc: Service, request: Request) -> Any:
    v = version_of(svc, request)
    folder = q(request, "folder") or ""
    items = svc.pages.folder(v, folder, q(request, "filter") or None)  # sub-folders, then files, each by path
    page = paginate_sorted(items, lambda f: (0 if f.is_folder else 1, f.path), q(request, "cursor"),
                           parse_limit(q(request, "limit")))
    return page_json(page, out.folder_item, folder=normalize_entry_path(folder) if folder.strip("/") else "")


@route("GET", VERSION_PATH + "/files/{path:path}", "One file's entry: path, size, digest; a reference entry "
       "(kind reference) also its URI and what identifies its content.", "files",
       (P_PROJECT, P_NAME, P_SEL, P_PATH))
def file_entry(svc: Service, request: Request) -> Any:
    v, path = version_of(svc, request), entry_path_of(request)
    ref = svc.pages.reference(v, path)
    return out.reference(ref) if ref is not None else out.entry(svc.entry(v, path))


def refuse_reference(svc: Service, v: VersionRecord, path: str) -> None:
    """A reference entry has no bytes here, and the server never fetches a URI for a page."""
    ref = svc.pages.reference(v, path)
    if ref is not None:
        raise NotFoundError(f"{path} is a reference to {ref.uri}: the store holds none of its bytes "
                            f"(`lode download` fetches and checks it)")


def _disposition(path: str, inline: bool) -> str:
    base = path.rsplit("/", 1)[-1]
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in base)
    return f"{'inline' if inline else 'attachment'}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(base)}"


@route("GET", VERSION_PATH + "/raw/{path:path}", "A file's bytes, streamed and verified (a download; raster "
       "images inline with inline=true).", "files",
       (P_PROJECT, P_NAME, P_SEL, P_PATH, Param("inline", "query", "true: show a raster image in the page")),
       content="application/octet-stream")
def raw_file(svc: Service, request: Request) -> Any:
    v, path = version_of(svc, request), entry_path_of(request)
    refuse_reference(svc, v, path)
    entry, pieces = svc.pages.read_file(v, path)
    suffix = "." + entry.path.rsplit(".", 1)[-1].lower() if "." in entry.path else ""
    inline = flag(request, "inline") and suffix in INLINE_IMAGES
    media = INLINE_IMAGES[suffix] if inline else "application/octet-stream"
    first = next(pieces, b"")  # a corrupted first chunk is a JSON error, not a cut stream

    def body() -> Iterator[bytes]:
        yield first
        yield from pieces

    return StreamingResponse(body(), media_type=media, headers={
        "content-disposition": _disposition(entry.path, inline), "content-length": str(entry.size),
        "cache-control": "private, max-age=3600"})


class _Sink(io.RawIOBase):
    """Where tarfile writes; the stream takes what accumulated after each file part."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.parts.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


class _Chunks(io.RawIOBase):
    """A file's verified pieces as a readable stream (for tarfile.addfile)."""

    def __init__(self, pieces: Iterator[bytes]):
        self._pieces = pieces
        self._buf = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._buf += piece
        if n < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:n], self._buf[n:]
        return data


@route("GET", VERSION_PATH + "/archive", "The whole version as a tar archive, streamed (files verified as they "
       "are read).", "files", (P_PROJECT, P_NAME, P_SEL), content="application/x-tar")
def archive(svc: Service, request: Request) -> Any:
    v = version_of(svc, request)
    entries = svc.entries(v)
    if entries:
        svc.pages.read_file(v, entries[0].path)  # refuses a broken version before the first byte

    def body() -> Iterator[bytes]:
        sink = _Sink()
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for e in entries:
                info = tarfile.TarInfo(f"{v.name}-{v.version}/{e.path}")
                info.size = e.size
                info.mode = 0o644
                _, pieces = svc.pages.read_file(v, e.path)
                tar.addfile(info, _Chunks(pieces))
                yield sink.take()
        yield sink.take()

    return StreamingResponse(body(), media_type="application/x-tar", headers={
        "content-disposition": _disposition(f"{v.name}-{v.version}.tar", False)})


def looks_text(data: bytes) -> bool:
    if b"\x00" in data[:8192]:
        return False
    try:
        data[:8192].decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start > 8180  # a multi-byte character cut at the sample's end
    return True


@route("GET", VERSION_PATH + "/preview/{path:path}", "A bounded preview: text and JSON (first 1 MB), CSV and "
       "Parquet (first 100 rows), raster images (by URL); HTML, SVG and notebooks as text only; a reference "
       "entry as its URI (never fetched).", "files",
       (P_PROJECT, P_NAME, P_SEL, P_PATH))
def preview(svc: Service, request: Request) -> Any:
    v = version_of(svc, request)
    path = entry_path_of(request)
    ref = svc.pages.reference(v, path)
    if ref is not None:
        return out.reference(ref)
    entry = svc.entry(v, path)
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    base: dict[str, Any] = {"path": entry.path, "size": entry.size, "digest": entry.digest}
    if suffix in INLINE_IMAGES:
        return {**base, "kind": "image", "media_type": INLINE_IMAGES[suffix]}
    if suffix == ".parquet":
        return _parquet_preview(svc, v, entry, base)
    _, head = svc.pages.read_head(v, path, PREVIEW_TEXT_BYTES)
    truncated = entry.size > len(head)
    if not looks_text(head):
        return {**base, "kind": "binary", "media_type": mimetypes.guess_type(path)[0] or "application/octet-stream"}
    text = head.decode("utf-8", errors="replace")
    if suffix in (".csv", ".tsv"):
        reader = csv.reader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
        rows = []
        for row in reader:
            rows.append(row[:100])
            if len(rows) > PREVIEW_TABLE_ROWS:
                break
        return {**base, "kind": "table", "header": rows[0] if rows else [], "rows": rows[1:PREVIEW_TABLE_ROWS + 1],
                "truncated": truncated or len(rows) > PREVIEW_TABLE_ROWS}
    if suffix == ".json" and not truncated:
        try:
            return {**base, "kind": "json", "value": json.loads(text), "truncated": False}
        except ValueError:
            pass
    return {**base, "kind": "text", "text": text, "truncated": truncated,
            "rendered": False if suffix in NEVER_RENDERED else None}


def _cell(value: Any) -> Any:
    """A Parquet value as JSON: numbers, booleans and null as they are; anything else
    (dates, bytes, lists, ...) as its text, cut at PREVIEW_CELL_CHARS."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= PREVIEW_CELL_CHARS else text[:PREVIEW_CELL_CHARS] + "…"


def _parquet_preview(svc: Service, v: VersionRecord, entry: Any, base: dict[str, Any]) -> dict[str, Any]:
    """The first 100 rows of a Parquet file (tables of `artifact.add(Table)` among them), as
    a CSV preview is shown; a file over PREVIEW_PARQUET_BYTES, or without pyarrow installed,
    says why it is not shown instead."""
    if entry.size > PREVIEW_PARQUET_BYTES:
        return {**base, "kind": "unsupported", "message": f"Parquet previews read files up to "
                f"{PREVIEW_PARQUET_BYTES // 1_000_000} MB; this one is {entry.size:,} bytes: download it"}
    try:
        head = svc.pages.preview_table(v, entry.path, PREVIEW_TABLE_ROWS)
    except TablesUnavailableError as e:
        return {**base, "kind": "unsupported", "message": str(e)}
    except ValueError as e:  # pyarrow's ArrowInvalid: bytes that are not Parquet
        return {**base, "kind": "unsupported", "message": f"not a readable Parquet file: {str(e)[:200]}"}
    return {**base, "kind": "table", "header": head.columns[:PREVIEW_TABLE_COLUMNS],
            "rows": [[_cell(c) for c in row[:PREVIEW_TABLE_COLUMNS]] for row in head.rows],
            "truncated": head.total_rows > PREVIEW_TABLE_ROWS, "total_rows": head.total_rows}


