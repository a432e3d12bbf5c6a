"""`SqlCatalog`: the catalog on SQLAlchemy Core, SQLite by default, PostgreSQL for teams.

It implements the `Catalog` interface by handing each call to the collaborator that
owns the concept, each in its own module:

==================  ====================  =============================================
collaborator        module                owns
==================  ====================  =============================================
`Database`          sql_database.py       the engines; read and write transactions
`IdentityStore`     sql_identity.py       instance id, generation (changes of versions)
`VersionStore`      sql_versions.py       commit, read, list, edit and search versions
`ManifestStore`     sql_manifests.py      files of versions, referenced digests
`AliasStore`        sql_aliases.py        aliases and their history
`LifecycleStore`    sql_lifecycle.py      delete, restore, purge, broken; retention
`RunStore`          sql_runs.py           runs, their inputs/outputs/history; lineage
`DraftStore`        sql_drafts.py         distributed drafts: parts, seal, finish, abort
`PageStore`         sql_pages.py          keyset pages of artifacts and versions; diffs
==================  ====================  =============================================

Row lookups they share are plain functions of a connection (sql_lookups.py, sql_rows.py,
sql_values.py). Every public method runs in one transaction (writes through the write
engine, which takes the write lock up front on SQLite; see `engine.py`), so a failing
call changes nothing. Safe to share between threads of one process; each process opens
its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import EllipsisType
from typing import Any, Self

from sqlalchemy import URL

from lodestore.catalog.base import Catalog
from lodestore.catalog.engine import create_engines, display_url
from lodestore.catalog.migrate import ensure_schema, upgrade_schema
from lodestore.catalog.records import (
    DIFF_SECTIONS,
    AliasEvent,
    ArtifactRecord,
    CatalogIdentity,
    CommitResult,
    DiffCounts,
    DiffRow,
    DraftPart,
    DraftRecord,
    HistoryRow,
    LineageStep,
    ManifestEntry,
    NewVersion,
    ReferenceEntry,
    RunRecord,
    SchemaUpgrade,
    VersionRecord,
)
from lodestore.catalog.sql_aliases import AliasStore
from lodestore.catalog.sql_database import Database
from lodestore.catalog.sql_drafts import DraftStore
from lodestore.catalog.sql_identity import IdentityStore
from lodestore.catalog.sql_lifecycle import LifecycleStore
from lodestore.catalog.sql_manifests import ManifestStore
from lodestore.catalog.sql_pages import PageStore
from lodestore.catalog.sql_runs import RunStore
from lodestore.catalog.sql_versions import VersionStore
from lodestore.read_only import sqlite_read_only_query, sqlite_uri_path


class SqlCatalog(Catalog):
    """A catalog in a SQL database; see the module docstring.

    >>> cat = SqlCatalog.for_sqlite_file("~/.lodestore/catalog.db")  # doctest: +SKIP
    """

    def __init__(self, url: str | URL, **engine_kwargs: Any) -> None:
        self.url = url
        self.database = Database(create_engines(url, **engine_kwargs))
        try:
            ensure_schema(self.database.read_engine, self.database.write_engine)
        except BaseException:
            self.database.dispose()
            raise
        self._identity = IdentityStore(self.database, notify=self._generation_changed)
        self._versions = VersionStore(self.database, self._identity)
        self._manifests = ManifestStore(self.database)
        self._aliases = AliasStore(self.database)
        self._lifecycle = LifecycleStore(self.database, self._identity)
        self._runs = RunStore(self.database)
        self._drafts = DraftStore(self.database)
        self._pages = PageStore(self.database)

    @classmethod
    def for_sqlite_file(cls, path: str | Path, **engine_kwargs: Any) -> SqlCatalog:
        path = Path(path).expanduser().resolve()
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
        # Built from parts, never pasted into a string: a '?' or '#' in the folder
        # name would otherwise start the URL's query and the file would land elsewhere.
        read_only = sqlite_read_only_query(path)
        if read_only is None:
            return cls(URL.create("sqlite", database=str(path)), **engine_kwargs)
        # A folder this process cannot write: opened as it is (lodestore/read_only.py),
        # through a SQLite file: URI (its path percent-encoded) and the driver's uri flag.
        url = URL.create("sqlite", database=sqlite_uri_path(path), query={**read_only, "uri": "true"})
        return cls(url, **engine_kwargs)

    @staticmethod
    def upgrade_schema(url: str | URL | Path) -> SchemaUpgrade:
        """Migrate the catalog at `url` (a Path: a SQLite file) to the schema this code
        knows (`lode db upgrade`): the one way an older shared (PostgreSQL) catalog is
        upgraded; see migrate.py."""
        if isinstance(url, Path):
            url = URL.create("sqlite", database=str(url.expanduser().resolve()))
        engines = create_engines(url)
        try:
            return upgrade_schema(engines.read, engines.write)
        finally:
            engines.base.dispose()

    def __repr__(self) -> str:
        return f"SqlCatalog({display_url(self.database.read_engine.url)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.database.dispose()

    def _generation_changed(self, instance_id: str, generation: int) -> None:
        # Looked up at each change: the SDK sets on_generation after opening the catalog.
        if self.on_generation is not None:
            self.on_generation(instance_id, generation)

    # --- identity ------------------------------------------------------------------------
    def identity(self) -> CatalogIdentity:
        return self._identity.identity()

    # --- artifacts and versions ----------------------------------------------------------
    def commit_version(self, new: NewVersion, *, stored: Callable[[], None] | None = None) -> CommitResult:
        return self._versions.commit_version(new, stored)

    def get_version(self, project: str, name: str, selector: str | None = None,
                    include_deleted: bool = False) -> VersionRecord:
        return self._versions.get_version(project, name, selector, include_deleted)

    def get_version_by_id(self, version_id: int) -> VersionRecord:
        return self._versions.get_version_by_id(version_id)

    def get_versions(self, version_ids: Iterable[int]) -> dict[int, VersionRecord]:
        return self._versions.get_versions(version_ids)

    def list_artifacts(self, project: str | None = None, type: str | None = None,
                       name: str | None = None) -> list[ArtifactRecord]:
        return self._versions.list_artifacts(project, type, name)

    def list_versions(self, project: str, name: str, include_deleted: bool = False) -> list[VersionRecord]:
        return self._versions.list_versions(project, name, include_deleted)

    def list_projects(self) -> list[str]:
        return self._versions.list_projects()

    def artifact_types(self, project: str | None = None) -> list[str]:
        return self._versions.artifact_types(project)

    def update_version(self, version_id: int, *, description: str | EllipsisType | None = ...,
                       metadata: dict[str, Any] | None = None, tags: Iterable[str] | None = None,
                       aliases: Iterable[str] | None = None, run_id: str | None = None,
                       set_metadata: dict[str, Any] | None = None,
                       unset_metadata: Iterable[str] | None = None,
                       add_tags: Iterable[str] | None = None, remove_tags: Iterable[str] | None = None,
                       add_aliases: Iterable[str] | None = None,
                       remove_aliases: Iterable[str] | None = None) -> VersionRecord:
        return self._versions.update_version(
            version_id, description=description, metadata=metadata, tags=tags, aliases=aliases, run_id=run_id,
            set_metadata=set_metadata, unset_metadata=unset_metadata, add_tags=add_tags,
            remove_tags=remove_tags, add_aliases=add_aliases, remove_aliases=remove_aliases,
        )

    def search_versions(self, query: str, limit: int | None = None,
                        liveness: Any = None) -> list[VersionRecord]:
        return self._versions.search_versions(query, limit, liveness)

    # --- manifests -----------------------------------------------------------------------
    def iter_entries(self, version_id: int) -> Iterator[ManifestEntry]:
        return self._manifests.iter_entries(version_id)

    def get_entry(self, version_id: int, path: str) -> ManifestEntry:
        return self._manifests.get_entry(version_id, path)


    def iter_references(self, version_id: int) -> list[ReferenceEntry]:
        return self._manifests.iter_references(version_id)

    def referenced_digests(self, include_deleted: bool = True) -> set[str]:
        return self._manifests.referenced_digests(include_deleted)

    def version_digests(self, include_deleted: bool = True,
                        version_ids: Iterable[int] | None = None) -> Iterator[tuple[int, str, int]]:
        return self._manifests.version_digests(include_deleted, version_ids)

    def digest_holders(self, digests: Iterable[str]) -> Iterator[tuple[int, str]]:
        return self._manifests.digest_holders(digests)

    # --- aliases -------------------------------------------------------------------------
    def set_alias(self, project: str, name: str, alias: str, index: int, run_id: str | None = None) -> None:
        self._aliases.set_alias(project, name, alias, index, run_id)

    def remove_alias(self, project: str, name: str, alias: str, run_id: str | None = None) -> None:
        self._aliases.remove_alias(project, name, alias, run_id)

    def alias_history(self, project: str, name: str) -> list[AliasEvent]:
        return self._aliases.alias_history(project, name)

    # --- lifecycle -----------------------------------------------------------------------
    def delete_version(self, version_id: int, run_id: str | None = None) -> VersionRecord:
        return self._lifecycle.delete_version(version_id, run_id)

    def purge_version(self, version_id: int) -> None:
        self._lifecycle.purge_version(version_id)

    def set_version_state(self, version_id: int, state: str) -> VersionRecord:
        return self._lifecycle.set_version_state(version_id, state)

    def restore_version(self, version_id: int, run_id: str | None = None,
                        state: str = "live") -> VersionRecord:
        return self._lifecycle.restore_version(version_id, run_id, state)

    def get_retention(self, project: str, name: str) -> dict[str, Any] | None:
        return self._lifecycle.get_retention(project, name)

    def set_retention(self, project: str, name: str, policy: dict[str, Any] | None) -> None:
        self._lifecycle.set_retention(project, name, policy)

    # --- runs and lineage ----------------------------------------------------------------
    def create_run(self, run: RunRecord) -> RunRecord:
        return self._runs.create_run(run)

    def get_run(self, run_id: str) -> RunRecord:
        return self._runs.get_run(run_id)

    def get_runs(self, run_ids: Iterable[str]) -> dict[str, RunRecord]:
        return self._runs.get_runs(run_ids)

    def update_run(self, run_id: str, **fields: Any) -> RunRecord:
        return self._runs.update_run(run_id, **fields)

    def update_run_if(self, run_id: str, refuse: Callable[[RunRecord], str | None],
                      **fields: Any) -> RunRecord:
        return self._runs.update_run_if(run_id, refuse, **fields)

    def import_runs(self, runs: Iterable[RunRecord], links: Iterable[tuple[str, str, int]]) -> tuple[int, int]:
        return self._runs.import_runs(runs, links)

    def record_use(self, run_id: str, version_id: int) -> None:
        self._runs.record_use(run_id, version_id)

    def record_output(self, run_id: str, version_id: int) -> None:
        self._runs.record_output(run_id, version_id)

    def run_inputs(self, run_id: str) -> list[VersionRecord]:
        return self._runs.run_inputs(run_id)

    def run_outputs(self, run_id: str) -> list[VersionRecord]:
        return self._runs.run_outputs(run_id)

    def version_users(self, version_id: int) -> list[RunRecord]:
        return self._runs.version_users(version_id)

    def list_runs(self, project: str | None = None) -> list[RunRecord]:
        return self._runs.list_runs(project)

    def find_runs(self, filters: dict[str, Any] | str | None = None, project: str | None = None,
                  order: str | None = None, limit: int | None = None,
                  liveness: Any = None) -> list[RunRecord]:
        return self._runs.find_runs(filters, project, order, limit, liveness)

    def append_history(self, run_id: str, rows: Iterable[tuple[int, dict[str, Any]]]) -> None:
        self._runs.append_history(run_id, rows)

    def run_history(self, run_id: str) -> list[HistoryRow]:
        return self._runs.run_history(run_id)

    def lineage_hop(self, version_ids: Iterable[int], direction: str) -> list[tuple[str, int, int | None]]:
        return self._runs.lineage_hop(version_ids, direction)

    def lineage_step(self, version_ids: Iterable[int], direction: str) -> LineageStep:
        return self._runs.lineage_step(version_ids, direction)

    # --- distributed drafts --------------------------------------------------------------
    def open_draft(self, project: str, name: str, type: str, distributed_id: str, ttl_seconds: int,
                   new_version: bool = False) -> DraftRecord:
        return self._drafts.open_draft(project, name, type, distributed_id, ttl_seconds, new_version)

    def add_draft_part(self, draft_id: int, part: DraftPart, ttl_seconds: int) -> bool:
        return self._drafts.add_draft_part(draft_id, part, ttl_seconds)

    def seal_draft(self, draft_id: int) -> list[DraftPart]:
        return self._drafts.seal_draft(draft_id)

    def close_draft(self, draft_id: int, state: str, version_id: int | None = None) -> DraftRecord:
        return self._drafts.close_draft(draft_id, state, version_id)

    def get_draft(self, draft_id: int) -> DraftRecord:
        return self._drafts.get_draft(draft_id)

    def list_drafts(self, project: str | None = None, name: str | None = None) -> list[DraftRecord]:
        return self._drafts.list_drafts(project, name)

    def draft_parts(self, draft_id: int) -> list[DraftPart]:
        return self._drafts.draft_parts(draft_id)

    def draft_digests(self) -> set[str]:
        return self._drafts.draft_digests()

    # --- keyset pages (sql_pages.py; issue 13)
    def artifacts_page(self, project: str | None = None, type: str | None = None, order: str = "name",
                       descending: bool = False, after: tuple[Any, ...] | None = None,
                       limit: int = 50) -> list[ArtifactRecord]:
        return self._pages.artifacts_page(project, type, order, descending, after, limit)

    def versions_page(self, project: str, name: str, include_deleted: bool = False, order: str = "index",
                      descending: bool = False, after: tuple[Any, ...] | None = None,
                      limit: int = 50) -> list[VersionRecord]:
        return self._pages.versions_page(project, name, include_deleted, order, descending, after, limit)

    def search_page(self, query: str, after: tuple[Any, ...] | None = None, limit: int = 50,
                    liveness: Any = None) -> list[VersionRecord]:
        return self._pages.search_page(query, after, limit, liveness)

    def find_run_ids(self, filters: dict[str, Any] | str | None = None, project: str | None = None,
                     order: str | None = None, liveness: Any = None) -> list[str]:
        return self._pages.find_run_ids(filters, project, order, liveness)

    def version_states(self) -> dict[str, int]:
        return self._pages.version_states()

    def diff_counts(self, version_a: int, version_b: int) -> DiffCounts:
        return self._pages.diff_counts(version_a, version_b)

    def diff_page(self, version_a: int, version_b: int, section: str, after: str | None = None,
                  limit: int | None = None) -> list[DiffRow]:
        return self._pages.diff_page(version_a, version_b, section, after, limit)

    def iter_diff(self, version_a: int, version_b: int,
                  sections: Sequence[str] = DIFF_SECTIONS) -> Iterator[tuple[str, DiffRow]]:
        return self._pages.iter_diff(version_a, version_b, sections)

    def digests_only_in(self, version_id: int, other_id: int) -> list[str]:
        return self._pages.digests_only_in(version_id, other_id)
