"""The one door: every operation on a store, for every entry point.

The Python objects (`Api`, `Artifact`, `Run`), the `lode` command line and the web API
all come through `Service`; none of them touches the catalog or the content store
directly, so each rule (``latest`` is never set by hand, how a retention policy is
merged, a broken version is never served) is written once, here or in the module this
door delegates to. Results are typed records (`lodestore.catalog.base` dataclasses, the
plans and reports of lifecycle and accounting), never string-keyed dicts::

    svc = Service.open()                       # $LODESTORE_DIR, else ~/.lodestore
    v = svc.version("zoo/animals:production")
    svc.set_alias("zoo/animals:v3", "production")
    svc.gc(dry_run=True).reclaimable_bytes
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lodestore.catalog.base import (
    LATEST,
    AliasEvent,
    ArtifactRecord,
    HistoryRow,
    ManifestEntry,
    RunRecord,
    VersionRecord,
)
from lodestore.errors import InvalidInputError, NotFoundError
from lodestore.json_values import json_dict
from lodestore.names import ArtifactRef, normalize_entry_path, parse_ref, validate_alias
from lodestore.sdk import accounting, cache, download, lifecycle, search
from lodestore.sdk.diff import VersionDiff, diff_versions
from lodestore.sdk.draft import Draft
from lodestore.sdk.lineage import LineageGraph, build_graph
from lodestore.sdk.log_draft import LogResult, log_draft
from lodestore.sdk.repository import Repository
from lodestore.store.base import GcPlan

# Re-exported for entry points: they import the door, not the modules behind it.
__all__ = ["ADOPT_HINT", "LATEST", "Draft", "LogResult", "RestoreResult", "RetentionUpdate", "Service", "Usage",
           "VersionRecord", "parse_duration"]

Usage = accounting.Usage
parse_duration = lifecycle.parse_duration
ADOPT_HINT = lifecycle.ADOPT_HINT  # what to do when the catalog is not the store's own


@dataclass(frozen=True)
class RestoreResult:
    """What `restore` did: the version as it is now, and its state before."""

    version: VersionRecord
    was: str | None  # "deleted" when it was restored; another state means nothing changed

    @property
    def restored(self) -> bool:
        return self.was == "deleted"


@dataclass(frozen=True)
class RetentionUpdate:
    """Settings to change in a retention policy: None keeps the current value."""

    keep_last: int | None = None
    keep_aliased: bool | None = None
    max_age_seconds: int | None = None
    unset: tuple[str, ...] = ()  # setting names to remove ("keep_last", "max_age_seconds")


class Service:
    """Every operation on one store (a content store and its catalog)."""

    def __init__(self, repo: Repository):
        self._repo = repo

    @classmethod
    def open(cls, root: str | os.PathLike[str] | None = None) -> Service:
        return cls(Repository.open(root))

    @property
    def root(self) -> Path:
        return self._repo.root

    @classmethod
    def of(cls, where: Service | Repository) -> Service:
        """The door to `where` (a Service already, or an open Repository)."""
        return where if isinstance(where, Service) else cls(where)

    # ------------------------------------------------------------------ reading
    def ref(self, ref: str | ArtifactRef, default_project: str | None = None) -> ArtifactRef:
        return ref if isinstance(ref, ArtifactRef) else parse_ref(ref, default_project=default_project)

    def version(self, ref: str | ArtifactRef, *, include_deleted: bool = False,
                default_project: str | None = None) -> VersionRecord:
        """One version by reference (``zoo/animals:v3``, ``:production``; latest if none)."""
        r = self.ref(ref, default_project)
        return self._repo.catalog.get_version(r.project, r.name, r.selector, include_deleted=include_deleted)

    def version_by_id(self, version_id: int) -> VersionRecord:
        return self._repo.catalog.get_version_by_id(version_id)

    def versions(self, project: str, name: str, include_deleted: bool = False) -> list[VersionRecord]:
        return self._repo.catalog.list_versions(project, name, include_deleted=include_deleted)

    def artifacts(self, project: str | None = None, type: str | None = None,
                  name: str | None = None) -> list[ArtifactRecord]:
        return self._repo.catalog.list_artifacts(project=project, type=type, name=name)

    def projects(self) -> list[str]:
        return self._repo.catalog.list_projects()

    def artifact_types(self, project: str | None = None) -> list[str]:
        return self._repo.catalog.artifact_types(project)

    def entries(self, version: VersionRecord) -> list[ManifestEntry]:
        return list(self.iter_entries(version))

    def iter_entries(self, version: VersionRecord) -> Iterator[ManifestEntry]:
        """A version's files sorted by path, a page at a time: memory stays flat for a
        version of a million files (`lode files --json` streams them out)."""
        return self._repo.catalog.iter_entries(version.id)

    def entry(self, version: VersionRecord, path: str) -> ManifestEntry:
        return self._repo.catalog.get_entry(version.id, normalize_entry_path(path))

    # ------------------------------------------------------------------ logging and editing
    def log(self, draft: Draft, project: str, aliases: Iterable[str] = (), run_id: str | None = None) -> LogResult:
        """Store every byte of a draft, then commit it as a version (or find the identical
        one): sdk/log_draft.py."""
        return log_draft(self._repo, draft, project, aliases, run_id=run_id)

    def edit(self, version: VersionRecord, *, description: str | None = ...,  # type: ignore[assignment]
             metadata_set: dict[str, Any] | None = None, metadata_unset: Iterable[str] = (),
             tags_add: Iterable[str] = (), tags_remove: Iterable[str] = (),
             aliases_add: Iterable[str] = (), aliases_remove: Iterable[str] = (),
             run_id: str | None = None) -> VersionRecord:
        """Change a logged version's editable fields in one transaction; only what is given
        changes (`description=None` clears it; leaving it out keeps it), so another
        process's edit of something else survives. Returns the version as stored now."""
        aliases_add, aliases_remove = list(aliases_add), list(aliases_remove)
        for alias in aliases_add:
            self.check_settable_alias(alias, "added to a version")
        for alias in aliases_remove:
            self.check_settable_alias(alias, "removed from a version")
        edits: dict[str, Any] = {}
        if description is not ...:
            edits["description"] = description
        if metadata_set:
            edits["set_metadata"] = json_dict(metadata_set, "metadata")
        for key, values in (("unset_metadata", metadata_unset), ("add_tags", tags_add),
                            ("remove_tags", tags_remove), ("add_aliases", aliases_add),
                            ("remove_aliases", aliases_remove)):
            if values := list(values):
                edits[key] = values
        return self._repo.catalog.update_version(version.id, run_id=run_id, **edits)

    # ------------------------------------------------------------------ a version's files in a folder
    def download(self, version: VersionRecord, root: str | os.PathLike[str], *, hardlink: bool = False,
                 overwrite: bool = False, path_prefix: str | None = None) -> Path:
        """Write the version's files under `root` (sdk/download.py); returns the folder."""
        return download.download(self._repo, version, Path(root), hardlink=hardlink, overwrite=overwrite,
                                 path_prefix=path_prefix)

    def download_entry(self, version: VersionRecord, entry: ManifestEntry, root: str | os.PathLike[str],
                       overwrite: bool = False) -> Path:
        return download.download_entry(self._repo, version, entry, Path(root), overwrite=overwrite)

    def checkout(self, version: VersionRecord, root: str | os.PathLike[str], hardlink: bool = False) -> Path:
        return download.checkout(self._repo, version, Path(root), hardlink=hardlink)

    def verify(self, version: VersionRecord, root: str | os.PathLike[str]) -> None:
        download.verify(self._repo, version, Path(root))

    # ------------------------------------------------------------------ aliases
    @staticmethod
    def check_settable_alias(alias: str, change: str = "set") -> str:
        """The rule for every hand-made alias change: `latest` is the store's to move.
        `change` says what was tried ("set", "added", "removed") for the message."""
        if alias == LATEST:
            raise InvalidInputError(f"{LATEST!r} cannot be {change} by hand: it is managed automatically and "
                                    "always points at the newest version (delete a version to move it)")
        return validate_alias(alias)

    def set_alias(self, ref: str | ArtifactRef, alias: str, run_id: str | None = None) -> VersionRecord:
        """Point `alias` at the version `ref` names (moving it from another version)."""
        self.check_settable_alias(alias)
        r = self.ref(ref)
        if r.selector is None:
            raise InvalidInputError("say which version: project/artifact:vN (or :alias)")
        version = self._repo.catalog.get_version(r.project, r.name, r.selector)
        self._repo.catalog.set_alias(r.project, r.name, alias, version.index, run_id=run_id)
        return self._repo.catalog.get_version_by_id(version.id)

    def remove_alias(self, project: str, name: str, alias: str, run_id: str | None = None) -> None:
        self.check_settable_alias(alias, "removed")
        self._repo.catalog.remove_alias(project, name, alias, run_id=run_id)

    def alias_history(self, project: str, name: str) -> list[AliasEvent]:
        return self._repo.catalog.alias_history(project, name)

    # ------------------------------------------------------------------ search, runs, lineage, diff
    def search(self, query: str, limit: int | None = None) -> list[VersionRecord]:
        return search.search_versions(self._repo, query, limit)

    def find_runs(self, project: str | None = None, filters: dict[str, Any] | str | None = None,
                  order: str | None = None, limit: int | None = None) -> list[RunRecord]:
        return search.search_runs(self._repo, project, filters, order, limit)

    def lineage(self, version: VersionRecord, direction: str = "both", depth: int | None = None) -> LineageGraph:
        return build_graph(self._repo, version, direction=direction, depth=depth)

    def diff(self, a: VersionRecord, b: VersionRecord) -> VersionDiff:
        """Compare version `a` (old) with `b` (new), on fresh records (aliases move)."""
        catalog = self._repo.catalog
        return diff_versions(catalog, catalog.get_version_by_id(a.id), catalog.get_version_by_id(b.id))

    def producer_run(self, version: VersionRecord) -> RunRecord | None:
        """The run that logged `version`: the one recorded on it, else the first lineage
        edge into it; None if no run made it."""
        run_id = version.created_by_run
        if run_id is None:
            producers = self._repo.catalog.lineage_hop([version.id], "up")
            run_id = producers[0][0] if producers else None
        return None if run_id is None else self.run(run_id)

    def version_users(self, version: VersionRecord) -> list[RunRecord]:
        """Runs that used `version`, in the order they first used it."""
        return self._repo.catalog.version_users(version.id)

    # ------------------------------------------------------------------ runs
    def run(self, run_id: str) -> RunRecord:
        return self._repo.catalog.get_run(run_id)

    def find_run(self, run_id: str) -> RunRecord | None:
        try:
            return self.run(run_id)
        except NotFoundError:
            return None

    def create_run(self, record: RunRecord) -> RunRecord:
        return self._repo.catalog.create_run(record)

    def update_run(self, run_id: str, **fields: Any) -> RunRecord:
        return self._repo.catalog.update_run(run_id, **fields)

    def resume_run(self, run_id: str, refuse: Callable[[RunRecord], str | None], **fields: Any) -> RunRecord:
        """Update the run in one transaction unless `refuse(current record)` gives a reason
        (ConflictError with it): two processes must not both resume one run."""
        return self._repo.catalog.update_run_if(run_id, refuse, **fields)

    def append_history(self, run_id: str, rows: list[tuple[int, dict[str, Any]]]) -> None:
        self._repo.catalog.append_history(run_id, rows)

    def run_history(self, run_id: str) -> list[HistoryRow]:
        return self._repo.catalog.run_history(run_id)

    def record_use(self, run_id: str, version: VersionRecord) -> None:
        self._repo.catalog.record_use(run_id, version.id)

    def run_outputs(self, run_id: str) -> list[VersionRecord]:
        return self._repo.catalog.run_outputs(run_id)

    def run_inputs(self, run_id: str) -> list[VersionRecord]:
        return self._repo.catalog.run_inputs(run_id)

    # ------------------------------------------------------------------ delete, restore, retention
    def delete(self, version: VersionRecord, permanent: bool = False, delete_aliases: bool = False,
               run_id: str | None = None) -> VersionRecord | None:
        return lifecycle.delete_version(self._repo, version, permanent=permanent,
                                        delete_aliases=delete_aliases, run_id=run_id)

    def restore(self, ref: str | ArtifactRef, run_id: str | None = None) -> RestoreResult:
        r = self.ref(ref)
        if r.selector is None:
            raise InvalidInputError(f"{ref!s}: name a version, e.g. {r.project}/{r.name}:v0")
        try:
            was: str | None = self.version(r, include_deleted=True).state
        except NotFoundError:
            was = None  # restore_version explains what is missing
        record = lifecycle.restore_version(self._repo, r.project, r.name, r.selector, run_id=run_id)
        return RestoreResult(record, was)

    def restore_version(self, version: VersionRecord, run_id: str | None = None) -> VersionRecord:
        """Undo the soft delete of `version` (broken if its bytes were lost meanwhile)."""
        return lifecycle.restore_record(self._repo, version, run_id=run_id)

    def retention(self, project: str, name: str) -> dict[str, Any] | None:
        return self._repo.catalog.get_retention(project, name)

    def retentions(self) -> list[tuple[ArtifactRecord, dict[str, Any] | None]]:
        """Every artifact with its policy (None where it has none)."""
        return [(a, self.retention(a.project, a.name)) for a in self.artifacts()]

    def set_retention(self, project: str, name: str, update: RetentionUpdate | None = None,
                      clear: bool = False) -> dict[str, Any] | None:
        """Change only the settings `update` gives; `clear` removes the whole policy.
        Returns the policy now in force (None: no policy)."""
        catalog = self._repo.catalog
        if clear:
            if update is not None and update != RetentionUpdate():
                raise InvalidInputError("clearing removes the whole policy; give no settings with it")
            catalog.set_retention(project, name, None)
            return None
        update = update or RetentionUpdate()
        given = {"keep_last": update.keep_last, "max_age_seconds": update.max_age_seconds}
        if any(given.get(k) is not None for k in update.unset):
            raise InvalidInputError("a setting cannot be both given and removed")
        policy = dict(catalog.get_retention(project, name) or {})
        for key in update.unset:
            policy.pop(key, None)
        policy = lifecycle.merge_policy(policy, keep_last=update.keep_last, keep_aliased=update.keep_aliased,
                                        max_age_seconds=update.max_age_seconds)
        catalog.set_retention(project, name, policy or None)
        return policy or None

    def prune(self, dry_run: bool = False,
              on_plan: Callable[[lifecycle.PrunePlan], None] | None = None) -> lifecycle.PrunePlan:
        return lifecycle.prune(self._repo, dry_run=dry_run, on_plan=on_plan)

    @staticmethod
    def custom_aliases(version: VersionRecord) -> list[str]:
        return lifecycle.custom_aliases(version)

    # ------------------------------------------------------------------ bytes: gc, fsck, usage, stats
    def gc(self, dry_run: bool = False, grace: float | None = None, repack_threshold: float = 0.5,
           on_plan: Callable[[GcPlan], None] | None = None, adopt_catalog: bool = False) -> GcPlan:
        """Reclaim unreferenced bytes; refused while the catalog is not the store's own
        unless `adopt_catalog` (docs/damage.md)."""
        return lifecycle.gc(self._repo, dry_run=dry_run, grace=grace, repack_threshold=repack_threshold,
                            on_plan=on_plan, adopt=adopt_catalog)

    def fsck(self, repair: bool = False) -> lifecycle.FsckResult:
        return lifecycle.fsck(self._repo, repair=repair)

    def stats(self) -> accounting.StoreFigures:
        return lifecycle.stats(self._repo)

    def usage(self, versions: Iterable[VersionRecord]) -> dict[int, accounting.Usage]:
        """Per version: the bytes only it holds (freed if it alone is deleted)."""
        return lifecycle.usage(self._repo, [v.id for v in versions])

    def version_usage(self, version: VersionRecord) -> accounting.Usage:
        return lifecycle.version_usage(self._repo, version.id)

    # ------------------------------------------------------------------ the download cache
    def cache_entries(self) -> list[cache.CacheEntry]:
        return cache.entries(cache.cache_dir(self._repo))

    @staticmethod
    def cache_max_bytes() -> int | None:
        return cache.max_bytes()

    def cache_cleanup(self, max_bytes: int | str, dry_run: bool = False) -> list[cache.CacheEntry]:
        return cache.cleanup(cache.cache_dir(self._repo), cache.parse_size(max_bytes), dry_run=dry_run)

    def cache_verify(self, fix: bool = False) -> list[tuple[cache.CacheEntry, str]]:
        return cache.verify(cache.cache_dir(self._repo), fix=fix)
