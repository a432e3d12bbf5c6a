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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lodestore.catalog.base import LATEST, AliasEvent, ArtifactRecord, ManifestEntry, RunRecord, VersionRecord
from lodestore.errors import InvalidInputError, NotFoundError
from lodestore.names import ArtifactRef, parse_ref, validate_alias
from lodestore.sdk import accounting, cache, lifecycle, search
from lodestore.sdk.diff import VersionDiff, diff_versions
from lodestore.sdk.lineage import LineageGraph, build_graph
from lodestore.sdk.repository import Repository
from lodestore.store.base import GcPlan

if TYPE_CHECKING:
    from lodestore.sdk.artifact import Artifact

# Re-exported for entry points: they import the door, not the modules behind it.
__all__ = ["ADOPT_HINT", "LATEST", "RestoreResult", "RetentionUpdate", "Service", "Usage", "VersionRecord", "parse_duration"]

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

    @property
    def repository(self) -> Repository:
        """For the SDK's own objects (Artifact, Run) that are built on this door."""
        return self._repo

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
        return list(self._repo.catalog.iter_entries(version.id))

    def entry(self, version: VersionRecord, path: str) -> ManifestEntry:
        return self._repo.catalog.get_entry(version.id, path)

    # ------------------------------------------------------------------ logging
    def log(self, draft: Artifact, project: str, aliases: Iterable[str] = (), run_id: str | None = None) -> bool:
        """Store every byte of a draft artifact, then commit it as a version (or find the
        identical one). True if a new version was made."""
        return draft._log(self._repo, project, aliases, run_id=run_id)

    # ------------------------------------------------------------------ aliases
    @staticmethod
    def check_settable_alias(alias: str) -> str:
        """The rule for every hand-made alias change: `latest` is the store's to move."""
        if alias == LATEST:
            raise InvalidInputError(f"{LATEST!r} is managed automatically: it always points at the newest "
                                    "version, so it cannot be set or removed by hand")
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
        self.check_settable_alias(alias)
        self._repo.catalog.remove_alias(project, name, alias, run_id=run_id)

    def alias_history(self, project: str, name: str) -> list[AliasEvent]:
        return self._repo.catalog.alias_history(project, name)

    # ------------------------------------------------------------------ search, runs, lineage, diff
    def search(self, query: str, limit: int | None = None) -> list[VersionRecord]:
        return search.search_versions(self._repo, query, limit)

    def find_runs(self, project: str | None = None, filters: dict[str, Any] | str | None = None,
                  order: str | None = None, limit: int | None = None) -> list[RunRecord]:
        return search.search_runs(self._repo, project, filters, order, limit)

    def run(self, run_id: str) -> RunRecord:
        return self._repo.catalog.get_run(run_id)

    def lineage(self, version: VersionRecord, direction: str = "both", depth: int | None = None) -> LineageGraph:
        return build_graph(self._repo, version, direction=direction, depth=depth)

    def diff(self, a: VersionRecord, b: VersionRecord) -> VersionDiff:
        """Compare version `a` (old) with `b` (new), on fresh records (aliases move)."""
        catalog = self._repo.catalog
        return diff_versions(catalog, catalog.get_version_by_id(a.id), catalog.get_version_by_id(b.id))

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
