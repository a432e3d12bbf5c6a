"""Parallel writers to one version (W&B's `run.upsert_artifact` / `run.finish_artifact`),
with what W&B leaves to the user made explicit:

- **Parts.** Each upsert is one *part* with an id (default: the writing run's id).
  Re-sending a part with the same files is a no-op, so a killed worker is retried with
  the same part id safely; other files under an id that holds a part are a conflict.
- **Bytes first.** A part's files go into the content store in one write session, and
  the part is recorded in the catalog while that session's shared gc lock is held (as
  a log does, sdk/log_draft.py). An open draft's files stay alive against gc
  (`Catalog.draft_digests`) until the draft expires: `ttl` after its last part.
- **Finish.** `finish` seals the draft (parts sent later are refused, never silently
  dropped), checks `expected_parts`, merges the parts sorted by part id, and commits one
  version. The same path with two contents is a conflict listing every such path,
  unless `on_conflict` picks a policy: ``"last"`` (the highest part id wins) or
  ``"first"``. A refused finish reopens the draft, so missing parts can still come.
- **Finish is final.** Upserts after it fail clearly, unless `new_version=True` starts
  the next version under the same distributed id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from lodestore.catalog.records import DraftPart, DraftRecord, ManifestEntry, NewVersion
from lodestore.errors import ConflictError, InvalidInputError, LodestoreError
from lodestore.json_values import json_dict
from lodestore.sdk.draft import Draft, leave_out_the_store
from lodestore.sdk.liveness import utc_now
from lodestore.sdk.log_draft import LogResult, check_closed, check_loggable, wanted_aliases
from lodestore.sdk.manifest import manifest_digest
from lodestore.testhooks import pause_point

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository

DEFAULT_DRAFT_TTL = timedelta(days=7)
FINISH_PART = "~finish"  # the finisher's own files; "~" sorts after letters and digits: merged last
MAX_PART_ID = 256
CONFLICT_POLICIES = ("error", "first", "last")


@dataclass(frozen=True)
class PartResult:
    """What an upsert did: the draft as it is now, and whether this part was new."""

    draft: DraftRecord
    part_id: str
    added: bool  # False: the same part was there already (a re-send)


def check_part_id(part_id: str) -> str:
    if not isinstance(part_id, str) or not part_id.strip() or len(part_id) > MAX_PART_ID \
            or any(ord(c) < 32 for c in part_id):
        raise InvalidInputError(f"part id must be printable text of 1 to {MAX_PART_ID} characters, not {part_id!r}")
    return part_id


def ttl_seconds(ttl: timedelta | float | None) -> int:
    if ttl is None:
        return int(DEFAULT_DRAFT_TTL.total_seconds())
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if seconds <= 0:
        raise InvalidInputError(f"a draft's ttl must be > 0, not {ttl!r}")
    return max(1, int(seconds))


def add_part(repo: Repository, draft_id: int, part_id: str, files: Draft, run_id: str | None,
             ttl: timedelta | float | None = None) -> bool:
    """Store the files of `files` and record them as part `part_id`; True if it was new."""
    check_part_id(part_id)
    check_loggable(files)
    check_closed(files)
    metadata = json_dict(files.metadata, "metadata")
    leave_out_the_store(files.files, repo.root)
    items = sorted(files.files.items())
    with repo.store.session() as session:
        refs = session.add_files([p.source for _, p in items])
        entries = tuple(ManifestEntry(path, ref.digest, ref.size) for (path, _), ref in zip(items, refs, strict=True))
        session.commit()
        pause_point("part-before-catalog")
        part = DraftPart(part_id, manifest_digest(list(entries)), metadata, run_id, utc_now(), entries)
        return repo.catalog.add_draft_part(draft_id, part, ttl_seconds(ttl))


def merge(parts: list[DraftPart], on_conflict: str = "error") -> tuple[list[ManifestEntry], dict, list[str]]:
    """Entries and metadata of every part, in part id order; with the paths held with
    different contents (each ``path: part a vs part b``) when `on_conflict` is "error"."""
    if on_conflict not in CONFLICT_POLICIES:
        raise InvalidInputError(f"on_conflict must be one of {', '.join(CONFLICT_POLICIES)}, not {on_conflict!r}")
    chosen: dict[str, tuple[ManifestEntry, str]] = {}
    conflicts: list[str] = []
    metadata: dict = {}
    for part in sorted(parts, key=lambda p: p.part_id):
        metadata.update(part.metadata)
        for entry in part.entries:
            held = chosen.get(entry.path)
            if held is None or on_conflict == "last":
                chosen[entry.path] = (entry, part.part_id)
            elif held[0].digest != entry.digest and on_conflict == "error":
                conflicts.append(f"{entry.path}: part {held[1]!r} vs part {part.part_id!r}")
    return sorted((e for e, _ in chosen.values()), key=lambda e: e.path), metadata, conflicts


def missing_parts(parts: list[DraftPart], expected: int | Iterable[str] | None) -> str | None:
    """Why the parts are not complete yet (None: complete, or nothing expected)."""
    if expected is None:
        return None
    writers = [p.part_id for p in parts if p.part_id != FINISH_PART]
    if isinstance(expected, int) and not isinstance(expected, bool):
        return None if len(writers) >= expected else f"{len(writers)} of {expected} expected parts are in"
    if isinstance(expected, str | bytes) or not isinstance(expected, Iterable):
        raise InvalidInputError(f"expected_parts is a count or a list of part ids, not {expected!r}")
    absent = sorted(set(expected) - set(writers))
    return f"parts not in yet: {', '.join(absent)}" if absent else None


def finish(repo: Repository, draft: DraftRecord, description: str | None, aliases: Iterable[str],
           run_id: str | None, expected_parts: int | Iterable[str] | None = None,
           on_conflict: str = "error", tags: Iterable[str] = (), ttl_seconds: int | None = None) -> LogResult:
    """Seal the draft, merge its parts and commit them as one version (module docstring)."""
    wanted = wanted_aliases(aliases)
    catalog = repo.catalog
    parts = catalog.seal_draft(draft.id)
    try:
        if reason := missing_parts(parts, expected_parts):
            raise ConflictError(f"draft {draft.qualified_name} is not complete: {reason}; finish again once "
                                "they are (the draft stays open)")
        entries, metadata, conflicts = merge(parts, on_conflict)
        if conflicts:
            more = f" and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
            raise ConflictError(f"draft {draft.qualified_name}: parts give one path different contents: "
                                f"{'; '.join(conflicts[:10])}{more} (pass on_conflict='last' or 'first' to choose)")
        pause_point("finish-before-commit")
        with repo.store.session():  # gc's shared lock: no sweep between the check and the commit
            result = catalog.commit_version(NewVersion(
                project=draft.project, name=draft.name, type=draft.type, entries=entries,
                digest=manifest_digest(entries), description=description, metadata=metadata,
                tags=list(tags), aliases=wanted, run_id=run_id, ttl_seconds=ttl_seconds))
    except LodestoreError:
        catalog.close_draft(draft.id, "open")
        raise
    for writer in sorted({p.run_id for p in parts if p.run_id and p.run_id != run_id}):
        catalog.record_output(writer, result.version.id)  # every writer made this version
    catalog.close_draft(draft.id, "finished", result.version.id)
    return LogResult(result.version, result.created)
