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

import importlib
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lodestore.catalog.records import (
    ARTIFACT_ORDERS,
    DIFF_SECTIONS,
    LATEST,
    VERSION_ORDERS,
    AliasEvent,
    ArtifactRecord,
    DiffRow,
    DraftPart,
    DraftRecord,
    HistoryRow,
    ManifestEntry,
    ReferenceEntry,
    RunRecord,
    SchemaUpgrade,
    VersionRecord,
    artifact_page_key,
    search_page_key,
    version_page_key,
)
from lodestore.config import resolve_root
from lodestore.errors import InvalidInputError, NotFoundError, VerificationError
from lodestore.json_values import json_dict
from lodestore.names import DEFAULT_PROJECT, ArtifactRef, normalize_entry_path, parse_ref, validate_alias
from lodestore.sdk import accounting, cache, lifecycle, locations, search
from lodestore.sdk.liveness import effective_state
from lodestore.sdk.local_folder import file_digest
from lodestore.sdk.locations import Location, Remote
from lodestore.sdk.repository import Repository, upgrade_catalog
from lodestore.sdk.tables import (
    PARTITIONED_SUFFIX,
    PREVIEW_ROWS,
    TABLE_SUFFIX,
    PartitionedTable,
    Table,
    TablesUnavailableError,
    table_name,
)
from lodestore.store.base import GcPlan

# Imported when used, not with the door: logging (draft, log_draft, distributed),
# downloads, references (urllib's HTTP and TLS), push/pull and bundles import Rich's
# progress bars and the write path, ~20 ms of every `lode ls`, `lode versions` and `lode
# info`, which read only the catalog and the store's index (python -X importtime, 2-core
# VM; tests/cli/test_startup.py keeps them out); diff and lineage ~2.5 ms more (their
# dataclasses). Each method imports what it runs; the records they return are
# re-exported below through `__getattr__`, on first use.
if TYPE_CHECKING:
    from lodestore.sdk.bundle import BundleResult
    from lodestore.sdk.diff import DiffListing, DiffOverview, VersionDiff, diff_item
    from lodestore.sdk.distributed import PartResult
    from lodestore.sdk.draft import Draft
    from lodestore.sdk.lineage import LineageGraph
    from lodestore.sdk.log_draft import LogResult
    from lodestore.sdk.pages import FolderItem, Pages, ParsedQuery, QueryTerm, TablePreview
    from lodestore.sdk.transfer import TransferResult, VersionCopy

_LAZY_EXPORTS = {
    "BundleResult": "lodestore.sdk.bundle",
    "DiffListing": "lodestore.sdk.diff",
    "DiffOverview": "lodestore.sdk.diff",
    "diff_item": "lodestore.sdk.diff",
    "Draft": "lodestore.sdk.draft",
    "LogResult": "lodestore.sdk.log_draft",
    "FolderItem": "lodestore.sdk.pages",
    "ParsedQuery": "lodestore.sdk.pages",
    "QueryTerm": "lodestore.sdk.pages",
    "TablePreview": "lodestore.sdk.pages",
    "PartResult": "lodestore.sdk.distributed",
    "TransferResult": "lodestore.sdk.transfer",
    "VersionCopy": "lodestore.sdk.transfer",
}


def __getattr__(name: str) -> Any:
    """The re-exported records of the modules imported when used (see above)."""
    if name in _LAZY_EXPORTS:
        return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Re-exported for entry points: they import the door, not the modules behind it.
__all__ = [
    "ADOPT_HINT",
    "ARTIFACT_ORDERS",
    "DIFF_SECTIONS",
    "LATEST",
    "PREVIEW_ROWS",
    "VERSION_ORDERS",
    "BundleResult",
    "DiffListing",
    "DiffOverview",
    "DiffRow",
    "Draft",
    "DraftPart",
    "DraftRecord",
    "FolderItem",
    "LogResult",
    "ParsedQuery",
    "PartResult",
    "QueryTerm",
    "RestoreResult",
    "RetentionUpdate",
    "Service",
    "StoreFigures",
    "StoreSummary",
    "TablePreview",
    "TablesUnavailableError",
    "TransferResult",
    "Usage",
    "VersionCopy",
    "VersionRecord",
    "artifact_page_key",
    "diff_item",
    "parse_duration",
    "search_page_key",
    "version_page_key",
]

Usage = accounting.Usage
StoreFigures = accounting.StoreFigures
StoreSummary = accounting.StoreSummary
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

    PREVIEW_ROWS = PREVIEW_ROWS  # rows a table preview shows (lode files, lode show)

    def __init__(self, repo: Repository):
        self._repo = repo

    @classmethod
    def open(cls, root: str | os.PathLike[str] | None = None, *, store: str | None = None,
             catalog: str | None = None, remote: str | None = None) -> Service:
        """The door to the store these settings name: the embedded folder `root` (else
        $LODESTORE_DIR, else ~/.lodestore), or a team pair (`store="s3://bucket/prefix"`,
        `catalog="postgresql://user@host/db"`, or a remote's name; sdk/locations.py)."""
        return cls(Repository.open(root, store=store, catalog=catalog, remote=remote))

    @property
    def root(self) -> Path:
        return self._repo.root

    @property
    def location(self) -> Location:
        """Where this store is (its folder, or its team pair)."""
        return self._repo.location

    # --- named remotes (client settings: sdk/locations.py) ----------------------------
    @staticmethod
    def remotes(root: str | os.PathLike[str] | None = None) -> list[Remote]:
        return locations.list_remotes(resolve_root(root))

    @staticmethod
    def add_remote(name: str, store: str | None, catalog: str | None, *, replace: bool = False,
                   root: str | os.PathLike[str] | None = None) -> Remote:
        return locations.add_remote(resolve_root(root), name, store, catalog, replace=replace)

    @staticmethod
    def remove_remote(name: str, root: str | os.PathLike[str] | None = None) -> Remote:
        return locations.remove_remote(resolve_root(root), name)

    @staticmethod
    def upgrade_catalog(catalog: str | None = None, root: str | os.PathLike[str] | None = None,
                        remote: str | None = None) -> SchemaUpgrade:
        """Migrate a catalog's schema (`lode db upgrade`) without opening a store: a URL, a
        remote's catalog, or the store folder's catalog.db. An older shared catalog is
        refused until this ran."""
        return upgrade_catalog(catalog, root, remote)

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
        from lodestore.sdk.log_draft import log_draft  # noqa: PLC0415  (imported when used: see the module's imports)

        return log_draft(self._repo, draft, project, aliases, run_id=run_id)

    def link(self, version: VersionRecord, project: str, name: str, aliases: Iterable[str] = ()) -> LogResult:
        """The same content as a version of `project/name` (W&B's `artifact.link`), no byte
        copied: sdk/log_draft.py `link_version`."""
        from lodestore.sdk.log_draft import link_version  # noqa: PLC0415  (imported when used: see the module's imports)

        return link_version(self._repo, version, project, name, aliases)

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
        from lodestore.sdk import download  # noqa: PLC0415  (imported when used: see the module's imports)

        return download.download(self._repo, version, Path(root), hardlink=hardlink, overwrite=overwrite,
                                 path_prefix=path_prefix)

    def download_entry(self, version: VersionRecord, entry: ManifestEntry, root: str | os.PathLike[str],
                       overwrite: bool = False) -> Path:
        from lodestore.sdk import download  # noqa: PLC0415  (imported when used: see the module's imports)

        return download.download_entry(self._repo, version, entry, Path(root), overwrite=overwrite)

    def checkout(self, version: VersionRecord, root: str | os.PathLike[str], hardlink: bool = False) -> Path:
        from lodestore.sdk import download  # noqa: PLC0415  (imported when used: see the module's imports)

        return download.checkout(self._repo, version, Path(root), hardlink=hardlink)

    def verify(self, version: VersionRecord, root: str | os.PathLike[str]) -> None:
        """The folder matches the version (files and fetched references), and every
        reference still names what was recorded (VerificationError listing each problem)."""
        from lodestore.sdk import download  # noqa: PLC0415  (imported when used: see the module's imports)

        download.verify(self._repo, version, Path(root), also=[r.path for r in self.references(version)])
        self.verify_references(version)

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
        from lodestore.sdk.lineage import build_graph  # noqa: PLC0415  (imported when used: see the module's imports)

        return build_graph(self._repo, version, direction=direction, depth=depth)

    def diff(self, a: VersionRecord, b: VersionRecord) -> VersionDiff:
        """Compare version `a` (old) with `b` (new), on fresh records (aliases move)."""
        from lodestore.sdk.diff import diff_versions  # noqa: PLC0415  (imported when used: see the module's imports)

        catalog = self._repo.catalog
        return diff_versions(catalog, catalog.get_version_by_id(a.id), catalog.get_version_by_id(b.id),
                             accounting.new_chunks(self._repo, a.id, b.id))

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

    # ================================================================== seeds (issue 15)
    # Doors the seed documents' samples need: bare names across projects, sweeps as run
    # groups, distributed drafts, references. Kept together so merges stay easy.
    def project_of(self, name: str, preferred_project: str | None = None, type: str | None = None) -> str:
        """The project holding the artifact `name` (a bare name): `preferred_project` (the
        run's, $LODESTORE_PROJECT) if it has one, else the only project that has it (of
        `type`, if given). Held by several: InvalidInputError listing each candidate. Held
        by none: `preferred_project` (or ``default``), whose lookup then says what exists."""
        holders = sorted({a.project for a in self.artifacts(name=name, type=type)})
        if not holders or preferred_project in holders:
            return preferred_project or DEFAULT_PROJECT
        if len(holders) > 1:
            shown = ", ".join(f"{p}/{name}" for p in holders)
            raise InvalidInputError(f"artifact name {name!r} is ambiguous: {len(holders)} projects have it "
                                    f"({shown}); name the project, e.g. {holders[0]}/{name}")
        return holders[0]

    def resolve(self, ref: str | ArtifactRef, preferred_project: str | None = None, *,
                include_deleted: bool = False) -> VersionRecord:
        """A version by reference, where a bare name (``bike-dataset:latest``) may live in
        any project (`project_of`); ``project/name:v3`` is taken as written."""
        if isinstance(ref, ArtifactRef) or "/" in ref.partition(":")[0]:
            return self.version(ref, include_deleted=include_deleted)
        bare = parse_ref(ref, default_project=preferred_project)
        project = self.project_of(bare.name, preferred_project)
        return self.version(ArtifactRef(project, bare.name, bare.selector), include_deleted=include_deleted)

    def read_entry(self, version: VersionRecord, path: str) -> bytes:
        """The bytes of one (small) file of a version, verified by the store on read."""
        return self._repo.store.read_bytes(self.entry(version, path).digest)

    def read_table(self, version: VersionRecord, name: str) -> Table:
        """The table added as `name` (``artifact.add(table, name)``); a partitioned table
        reads every part back as one (sdk/tables.py)."""
        paths = [e.path for e in self.entries(version)]
        if name + TABLE_SUFFIX in paths:
            return Table.from_parquet(self.read_entry(version, name + TABLE_SUFFIX))
        if name + PARTITIONED_SUFFIX in paths:
            partitioned = PartitionedTable.from_json(self.read_entry(version, name + PARTITIONED_SUFFIX))
            parts = partitioned.part_entries(paths)
            return Table.concat([Table.from_parquet(self.read_entry(version, p)) for p in parts])
        tables = sorted(n for p in paths if (n := table_name(p)) is not None)
        raise NotFoundError(f"{version.qualified_name} has no table {name!r}"
                            + (f" (tables: {', '.join(tables[:10])})" if tables else " (it holds no table)"))

    def table_names(self, version: VersionRecord) -> list[str]:
        """The tables of a version, by name; the parts of a partitioned table are left
        out (they are read as that table)."""
        paths = [e.path for e in self.entries(version)]
        parts: set[str] = set()
        for p in paths:
            if p.endswith(PARTITIONED_SUFFIX):
                parts.update(PartitionedTable.from_json(self.read_entry(version, p)).part_entries(paths))
        return [n for p in paths if p not in parts and (n := table_name(p)) is not None]

    @staticmethod
    def is_table_entry(path: str) -> bool:
        return table_name(path) is not None

    # ------------------------------------------------------------------ distributed drafts (sdk/distributed.py)
    def upsert_part(self, draft: Draft, project: str, distributed_id: str, part_id: str, run_id: str | None,
                    ttl: Any = None, new_version: bool = False) -> PartResult:
        """Add `draft`'s files as one part of the distributed draft `distributed_id` of
        ``project/<draft.name>`` (opened if new): a re-sent part is a no-op."""
        from lodestore.sdk import distributed  # noqa: PLC0415  (imported when used: see the module's imports)

        if not isinstance(distributed_id, str) or not distributed_id:
            raise InvalidInputError(f"distributed_id must be a non-empty string, not {distributed_id!r}")
        project = draft.project if draft.project is not None else project
        record = self._repo.catalog.open_draft(project, draft.name, draft.type, distributed_id,
                                               distributed.ttl_seconds(ttl), new_version=new_version)
        added = distributed.add_part(self._repo, record.id, part_id, draft, run_id, ttl)
        return distributed.PartResult(self._repo.catalog.get_draft(record.id), part_id, added)

    def finish_draft(self, draft: Draft, project: str, distributed_id: str, run_id: str | None,
                     aliases: Iterable[str] = (), expected_parts: Any = None, on_conflict: str = "error",
                     ttl: Any = None) -> LogResult:
        """Merge every part of the draft (and `draft`'s own files, as the last part) into
        one version; see sdk/distributed.py for what is refused and why."""
        from lodestore.sdk import distributed  # noqa: PLC0415  (imported when used: see the module's imports)

        project = draft.project if draft.project is not None else project
        record = self._repo.catalog.open_draft(project, draft.name, draft.type, distributed_id,
                                               distributed.ttl_seconds(ttl))
        if draft.files or draft.metadata:
            distributed.add_part(self._repo, record.id, distributed.FINISH_PART, draft, run_id, ttl)
        return distributed.finish(self._repo, record, draft.description, aliases, run_id, expected_parts,
                                  on_conflict, tags=draft.tags,
                                  ttl_seconds=None if draft.ttl is None else int(draft.ttl.total_seconds()))

    def drafts(self, project: str | None = None, name: str | None = None) -> list[DraftRecord]:
        return self._repo.catalog.list_drafts(project, name)

    def find_draft(self, which: str) -> DraftRecord:
        """A draft by id (``12``) or ``project/name@distributed_id`` (the newest such)."""
        if which.isdigit():
            return self._repo.catalog.get_draft(int(which))
        body, at, distributed_id = which.rpartition("@")
        if not at or not distributed_id:
            raise InvalidInputError(f"name a draft by its id or as project/name@distributed_id, not {which!r}")
        ref = parse_ref(body)
        found = self._repo.catalog.list_drafts(ref.project, ref.name)
        match = [d for d in found if d.distributed_id == distributed_id]
        if not match:
            shown = ", ".join(d.qualified_name for d in found[:5]) or "none"
            raise NotFoundError(f"no draft {which!r} (drafts of {ref.project}/{ref.name}: {shown})")
        return match[0]

    def draft_parts(self, draft: DraftRecord) -> list[DraftPart]:
        return self._repo.catalog.draft_parts(draft.id)

    def abort_draft(self, draft: DraftRecord) -> DraftRecord:
        """Drop an unfinished draft: its parts are forgotten, their bytes go at the next gc."""
        return self._repo.catalog.close_draft(draft.id, "aborted")

    # ------------------------------------------------------------------ reference entries (sdk/references.py)
    def references(self, version: VersionRecord) -> list[ReferenceEntry]:
        return self._repo.catalog.iter_references(version.id)

    def download_references(self, version: VersionRecord, root: str | os.PathLike[str],
                            path_prefix: str | None = None) -> list[Path]:
        """Fetch the version's references under `root`, each checked against what was
        recorded (S3 pinned to its version id or ETag); a file already there with the
        recorded size and digest is kept."""
        from lodestore.sdk.references import fetch as fetch_reference  # noqa: PLC0415  (imported when used: see the module's imports)

        written = []
        for ref in self.references(version):
            if path_prefix and not ref.path.startswith(path_prefix):
                continue
            dest = Path(root) / ref.path
            if not (dest.is_file() and ref.digest and ref.digest.startswith("blake3:")
                    and dest.stat().st_size == ref.size and file_digest(dest) == ref.digest[len("blake3:"):]):
                fetch_reference(ref, dest)
            written.append(dest)
        return written

    def verify_references(self, version: VersionRecord) -> None:
        """VerificationError listing every reference that changed or vanished since it
        was logged."""
        from lodestore.sdk.references import problem as reference_problem  # noqa: PLC0415  (imported when used: see the module's imports)

        problems = [p for ref in self.references(version) if (p := reference_problem(ref)) is not None]
        if problems:
            raise VerificationError(f"{version.qualified_name}: references no longer match:\n  "
                                    + "\n  ".join(problems))

    # ================================================================== transfer between stores (issue 14)
    # push, pull, export, import: sdk/transfer.py and sdk/bundle.py, one set of rules.
    def push(self, refs: Iterable[str], destination: Service, project: str | None = None,
             dry_run: bool = False) -> TransferResult:
        """Copy the versions `refs` name (``project/name:vN`` or ``:alias``, ``project/name``
        for every live version, ``project/`` or `project` for a whole project) with their
        runs and lineage into `destination`, moving only the chunks it lacks. Numbers are
        the destination's; a version whose content is there already is the same version."""
        from lodestore.sdk import transfer  # noqa: PLC0415  (imported when used: see the module's imports)

        if destination.root == self.root:
            raise InvalidInputError(f"{self.root} is both the source and the destination")
        calls: Counter = Counter()
        chosen = transfer.select_versions(self._repo, refs, project, calls)
        source = transfer.RepositorySource(self._repo, chosen, calls)
        return transfer.copy_versions(source, destination._repo, dry_run=dry_run, label="push", calls=calls)

    def pull(self, refs: Iterable[str], source: Service, project: str | None = None,
             dry_run: bool = False) -> TransferResult:
        """`push` the other way: versions of `source` into this store."""
        return source.push(refs, self, project=project, dry_run=dry_run)

    def export_bundle(self, refs: Iterable[str], path: str | os.PathLike[str],
                      project: str | None = None) -> BundleResult:
        """Write the versions `refs` name (as `push` reads them) to one bundle file."""
        from lodestore.sdk import bundle, transfer  # noqa: PLC0415  (imported when used: see the module's imports)

        return bundle.export_bundle(self._repo, transfer.select_versions(self._repo, refs, project), Path(path))

    def import_bundle(self, path: str | os.PathLike[str], dry_run: bool = False) -> TransferResult:
        """Check a whole bundle (CorruptionError, nothing imported, if a byte is off), then
        copy its versions into this store as a pull would."""
        from lodestore.sdk import bundle  # noqa: PLC0415  (imported when used: see the module's imports)

        return bundle.import_bundle(self._repo, Path(path), dry_run=dry_run)

    # ================================================================== for the web UI (issue 13)
    @cached_property
    def pages(self) -> Pages:
        """What a browsing page reads (sdk/pages.py: keyset pages, folders, kept figures,
        diff pages, previews), built on first use with its caches, one per Service."""
        from lodestore.sdk.pages import Pages  # noqa: PLC0415  (imported when used: see the module's imports)

        return Pages(self, self._repo)

    def artifact(self, project: str, name: str) -> ArtifactRecord:
        """One artifact; NotFoundError naming the project's artifacts if absent."""
        for a in self._repo.catalog.list_artifacts(project=project, name=name):
            if a.project == project and a.name == name:
                return a
        known = sorted(a.name for a in self._repo.catalog.list_artifacts(project=project))
        shown = (", ".join(known[:10]) + (" ..." if len(known) > 10 else "")) if known else "none"
        raise NotFoundError(f"artifact {project}/{name} not found; artifacts in project {project!r}: {shown}")

    @staticmethod
    def run_state(record: RunRecord) -> str:
        """The state to show for a run: "crashed" when it says running but went silent
        and its process is gone (the same rule as searches and lineage)."""
        return effective_state(record)

    def diff_listing(self, a: VersionRecord, b: VersionRecord) -> DiffListing:
        """`lode diff`: the diff's head and counts (`diff_overview`) and its lists, each
        streamed from the catalog when iterated (by path, renames by their old path)."""
        from lodestore.sdk.diff import DiffListing  # noqa: PLC0415  (imported when used: see the module's imports)

        return DiffListing(self.pages.diff_overview(a, b),
                           lambda lists: self._repo.catalog.iter_diff(a.id, b.id, lists))
