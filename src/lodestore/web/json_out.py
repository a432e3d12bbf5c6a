"""Records of the door as JSON: one function per record type, so every route (and the
page that reads them) sees the same shape. Values pass through `finite_json`: a NaN
read from an old row is null here, as in `--json` output."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lodestore.json_values import finite_json

if TYPE_CHECKING:  # the records travel through the door; their classes are only named here
    from lodestore.catalog.records import (
        AliasEvent,
        ArtifactRecord,
        ManifestEntry,
        ReferenceEntry,
        RunRecord,
        VersionRecord,
    )
    from lodestore.sdk.service import FolderItem, ParsedQuery, StoreSummary


def when(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def dumps(data: Any) -> bytes:
    """`data` as compact JSON, non-finite floats as null. Encoded first as it is (the C
    encoder, which refuses NaN and infinity); only data holding one is walked and
    cleaned in Python, a walk that cost more than the rest of a request (0.6 ms for the
    four lists of a compare page)."""
    try:
        return json.dumps(data, allow_nan=False, separators=(",", ":")).encode()
    except ValueError:  # a NaN or infinity read from an old row
        return json.dumps(finite_json(data), allow_nan=False, separators=(",", ":")).encode()


def artifact(a: ArtifactRecord) -> dict[str, Any]:
    return {"id": a.id, "project": a.project, "name": a.name, "type": a.type, "created_at": when(a.created_at),
            "version_count": a.version_count, "latest": None if a.latest_index is None else f"v{a.latest_index}",
            "logical_bytes": a.total_size}


def version(v: VersionRecord) -> dict[str, Any]:
    return {"id": v.id, "project": v.project, "name": v.name, "type": v.type, "version": v.version,
            "index": v.index, "ref": v.qualified_name, "digest": v.digest, "logical_bytes": v.size,
            "file_count": v.file_count, "description": v.description, "metadata": v.metadata,
            "tags": list(v.tags), "aliases": list(v.aliases), "created_at": when(v.created_at),
            "created_by_run": v.created_by_run, "state": v.state, "deleted_at": when(v.deleted_at),
            "ttl_seconds": v.ttl_seconds}


def run(r: RunRecord, state: str | None = None) -> dict[str, Any]:
    return {"id": r.id, "project": r.project, "name": r.name, "group": r.group, "job_type": r.job_type,
            "tags": list(r.tags), "notes": r.notes, "config": r.config, "summary": r.summary,
            "state": state or r.state, "exit_code": r.exit_code, "created_at": when(r.created_at),
            "finished_at": when(r.finished_at), "heartbeat_at": when(r.heartbeat_at), "host": r.host}


def alias_event(e: AliasEvent) -> dict[str, Any]:
    return {"alias": e.alias, "from": None if e.from_index is None else f"v{e.from_index}",
            "to": None if e.to_index is None else f"v{e.to_index}", "run_id": e.run_id, "at": when(e.at)}


def entry(e: ManifestEntry) -> dict[str, Any]:
    return {"path": e.path, "digest": e.digest, "size": e.size}


def folder_item(f: FolderItem) -> dict[str, Any]:
    if f.is_folder:
        return {"kind": "folder", "name": f.name, "path": f.path, "size": f.size, "files": f.files}
    if f.uri is not None:  # named by URI: the store holds no bytes to download or preview
        return {"kind": "reference", "name": f.name, "path": f.path, "size": f.size, "digest": f.digest,
                "uri": f.uri}
    return {"kind": "file", "name": f.name, "path": f.path, "size": f.size, "digest": f.digest}


def reference(r: ReferenceEntry) -> dict[str, Any]:
    """A reference entry: its URI and what identifies its content (None: not recorded)."""
    return {"kind": "reference", "path": r.path, "uri": r.uri, "size": r.size, "digest": r.digest,
            "etag": r.etag, "object_version": r.object_version, "last_modified": r.last_modified}


def parsed_query(q: ParsedQuery) -> dict[str, Any]:
    return {"text": q.text, "groups": [[asdict(t) for t in g] for g in q.groups]}


def stats(s: StoreSummary) -> dict[str, Any]:
    """The stat cards: what `lode stats` measures, the few numbers a page shows first."""
    return {"artifacts": s.artifacts, "versions": s.versions,
            "deleted_versions": s.deleted_versions, "broken_versions": s.broken_versions,
            "logical_bytes": s.logical_bytes, "stored_bytes": s.stored_bytes,
            "unique_bytes": s.unique_bytes, "dedup_saved_bytes": s.dedup_saved_bytes,
            "compression_saved_bytes": s.compression_saved_bytes, "dedup_ratio": s.dedup_ratio}
