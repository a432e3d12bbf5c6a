"""Logging a draft: every byte into the content store, then the version into the catalog.

The order is the promise "a version is visible only when all its bytes are stored":
the files stream into the store in one write session, which is committed first; the
catalog commit happens while the session is still open, because its shared gc lock
keeps `lode gc` from sweeping those bytes (new, or re-used and unreferenced) until the
version that references them exists. The door (`Service.log`) calls `log_draft`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lodestore.catalog.records import LATEST, NewVersion, VersionRecord
from lodestore.errors import ConflictError, InvalidInputError, SourceFileNotFoundError
from lodestore.gc_pause import gc_paused
from lodestore.json_values import json_dict
from lodestore.names import validate_alias
from lodestore.sdk import ui
from lodestore.sdk.draft import Draft, check_no_file_folder_clash, identical_notice, leave_out_the_store
from lodestore.sdk.manifest import ManifestBuffer, ManifestHasher
from lodestore.sdk.references import digest_line
from lodestore.testhooks import pause_point

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository

# Files handed to the store's write session at a time: what a log holds per file (the
# store's answers, the manifest entries before they join the ManifestBuffer) is one
# batch's, not the whole draft's.
LOG_BATCH = 8192


@dataclass(frozen=True)
class LogResult:
    """The version a log made, or the identical one it found (created False)."""

    version: VersionRecord
    created: bool


def wanted_aliases(aliases: Iterable[str]) -> list[str]:
    """The aliases a log sets, each valid, once, in order; `latest` is the store's and is
    moved by the commit anyway, so asking for it is no error."""
    wanted: list[str] = []
    for a in aliases:
        if a == LATEST:
            continue
        validate_alias(a)
        if a not in wanted:
            wanted.append(a)
    return wanted


def check_loggable(draft: Draft) -> None:
    """Refuse entries no folder can hold; warn of names a case-insensitive disk mixes up."""
    check_no_file_folder_clash(draft.files, draft.references)
    if clashes := draft.files.case_collisions():
        ui.notice(f"warning: entry names that differ only in case ({'; '.join(' vs '.join(g) for g in clashes)}) "
                  "overwrite each other when downloaded on a case-insensitive file system (macOS, Windows)")


def check_closed(draft: Draft) -> None:
    if draft.open_files:
        # their last writes may sit in a buffer: storing now would store truncated files
        raise InvalidInputError(f"close the file(s) opened with new_file() before logging: "
                                f"{', '.join(draft.open_files)} (use `with art.new_file(...) as f:`)")


def _total_bytes(draft: Draft) -> int:
    """The bytes to store, for a progress bar: only a drawn bar needs it (no second stat
    per file otherwise)."""
    if not ui.interactive():
        return 0
    total = 0
    for p in draft.files.values():
        try:
            total += os.stat(p.source).st_size
        except FileNotFoundError:
            raise SourceFileNotFoundError(f"{p.source} disappeared before it was logged") from None
    return total


def log_draft(repo: Repository, draft: Draft, project: str, aliases: Iterable[str] = (),
              run_id: str | None = None) -> LogResult:
    """Store every byte of `draft`, then commit it as a version of `project` (the draft's
    own project wins when it names one). Python's cycle collector is off meanwhile
    (gc_paused): a log of 100,000 files allocates millions of short-lived tuples and
    makes no reference cycles."""
    with gc_paused():
        return _log_draft(repo, draft, project, aliases, run_id)


def _log_draft(repo: Repository, draft: Draft, project: str, aliases: Iterable[str],
               run_id: str | None) -> LogResult:
    wanted = wanted_aliases(aliases)
    project = draft.project if draft.project is not None else project
    check_loggable(draft)
    # edited in place since add_metadata checked it: check again before any byte is stored
    metadata = json_dict(draft.metadata, "metadata")
    check_closed(draft)
    leave_out_the_store(draft.files, repo.root)
    items = draft.files.sorted_sources()
    references = sorted(draft.references.values(), key=lambda r: r.path)
    manifest = ManifestBuffer()
    digest = ManifestHasher(digest_line(r) for r in references)
    try:
        with repo.store.session() as session, ui.byte_progress(f"log {draft.name}", _total_bytes(draft)) as advance:
            while batch := list(itertools.islice(items, LOG_BATCH)):
                try:
                    answers = session.add_file_rows([source for _, source in batch], progress=advance)
                except SourceFileNotFoundError as e:
                    raise SourceFileNotFoundError(f"{e}: it disappeared before it was logged") from None
                # (path, digest, size) rows, not a ManifestEntry per file: what both take
                rows = [(path, digest, size) for (path, _), (digest, size) in zip(batch, answers, strict=True)]
                digest.add_rows(rows)
                manifest.extend_rows(rows)
            session.commit()
            pause_point("log-before-catalog-commit")
            # Still inside the session (see the module docstring).
            result = repo.catalog.commit_version(NewVersion(
                project=project, name=draft.name, type=draft.type, entries=manifest, references=references,
                digest=digest.hexdigest(),
                description=draft.description, metadata=metadata,
                tags=list(draft.tags), aliases=wanted, run_id=run_id,
                ttl_seconds=int(draft.ttl.total_seconds()) if draft.ttl is not None else None,
            ))
    finally:
        manifest.close()
    if not result.created:
        ui.notice(identical_notice(result.version, draft.description, metadata, draft.tags, wanted))
    return LogResult(result.version, result.created)


def link_version(repo: Repository, version: VersionRecord, project: str, name: str,
                 aliases: Iterable[str] = ()) -> LogResult:
    """Commit `version`'s files and references (with its description, metadata and tags)
    as a version of `project/name`: W&B's `artifact.link`, the same content in another
    collection. No byte moves: the store holds them all, and the write session keeps gc
    away while the catalog commits (the version is read again inside it, so one purged
    meanwhile is not linked). Its producer is the run that made `version`. Content
    identical to a version there already is that version (the aliases are added to it)."""
    wanted = wanted_aliases(aliases)
    with repo.store.session():
        source = repo.catalog.get_version_by_id(version.id)  # NotFoundError if purged meanwhile
        if source.state != "live":
            raise ConflictError(f"{source.qualified_name} is {source.state}: only a live version can be linked")
        result = repo.catalog.commit_version(NewVersion(
            project=project, name=name, type=source.type, entries=list(repo.catalog.iter_entries(source.id)),
            references=repo.catalog.iter_references(source.id), digest=source.digest,
            description=source.description, metadata=dict(source.metadata), tags=list(source.tags),
            aliases=wanted, run_id=source.created_by_run,
        ))
    return LogResult(result.version, result.created)
