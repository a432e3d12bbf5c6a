"""The catalog interface: projects, artifacts, versions, manifests, aliases (with their
history), tags, runs and their inputs/outputs.

The catalog knows nothing of where bytes live: a manifest entry names a file by its
content digest, and the content store (a separate foundation) maps digests to bytes.
Every method is one transaction; a method that fails changes nothing.

Its records (what the methods take and return) are `catalog/records.py`.

Backends: `SqlCatalog` (SQLAlchemy 2 Core; SQLite by default, PostgreSQL for teams).
Every backend passes the shared contract suite in ``tests/catalog/contract.py``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import EllipsisType
from typing import Any

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
    VersionRecord,
)

# Called with (instance_id, generation) after each transaction that changed the set
# of versions has committed (the SDK records it in the content store).
GenerationListener = Callable[[str, int], None]


class Catalog(abc.ABC):
    """Abstract catalog; see module docstring. Errors: NotFoundError (message lists what
    exists), ConflictError, InvalidNameError from lodestore.errors."""

    #: set by the SDK (sdk/repository.py); see GenerationListener
    on_generation: GenerationListener | None = None

    @abc.abstractmethod
    def identity(self) -> CatalogIdentity:
        """This catalog's instance id, generation, and whether it holds any version."""

    # --- artifacts and versions -------------------------------------------------
    @abc.abstractmethod
    def commit_version(self, new: NewVersion, *, stored: Callable[[], None] | None = None) -> CommitResult:
        """In one transaction: create project/artifact if needed (ConflictError if the
        artifact exists with another type); if a live version with the same digest
        exists, add `new.aliases` to it and return it with created=False; otherwise
        insert version index max(all indexes ever used)+1 with its entries, tags and
        aliases, move `latest` to it, and record every alias move with new.run_id.
        If new.run_id is set, the run is recorded as the version's producer (output).

        `stored`: called inside the transaction once every row is written, just before
        it commits; nothing of the commit is visible until it returns, and nothing at
        all if it raises (its error is raised). A copy commits the version's last bytes
        to the content store while the version's rows are written (sdk/transfer.py):
        `stored` waits for those bytes, so a version is still visible only once all its
        bytes are stored."""

    @abc.abstractmethod
    def get_version(self, project: str, name: str, selector: str | None = None,
                    include_deleted: bool = False) -> VersionRecord:
        """Resolve "vN", an alias, or None (= latest). NotFoundError lists the existing
        versions and aliases (or artifacts in the project when the artifact is unknown)."""

    @abc.abstractmethod
    def get_version_by_id(self, version_id: int) -> VersionRecord: ...

    @abc.abstractmethod
    def list_artifacts(self, project: str | None = None, type: str | None = None,
                       name: str | None = None) -> list[ArtifactRecord]: ...

    @abc.abstractmethod
    def list_versions(self, project: str, name: str, include_deleted: bool = False) -> list[VersionRecord]:
        """Oldest first."""

    @abc.abstractmethod
    def list_projects(self) -> list[str]: ...

    @abc.abstractmethod
    def artifact_types(self, project: str | None = None) -> list[str]: ...

    @abc.abstractmethod
    def iter_entries(self, version_id: int) -> Iterator[ManifestEntry]:
        """Manifest of a version, sorted by path (streamed: versions may hold 100k files)."""

    @abc.abstractmethod
    def get_entry(self, version_id: int, path: str) -> ManifestEntry:
        """NotFoundError naming a few similar paths if absent."""

    @abc.abstractmethod
    def update_version(self, version_id: int, *, description: str | EllipsisType | None = ...,
                       metadata: dict[str, Any] | None = None, tags: Iterable[str] | None = None,
                       aliases: Iterable[str] | None = None, run_id: str | None = None,
                       set_metadata: dict[str, Any] | None = None,
                       unset_metadata: Iterable[str] | None = None,
                       add_tags: Iterable[str] | None = None, remove_tags: Iterable[str] | None = None,
                       add_aliases: Iterable[str] | None = None,
                       remove_aliases: Iterable[str] | None = None) -> VersionRecord:
        """Change the given editable fields (None = leave as is; description uses the
        Ellipsis sentinel so None can clear it), in one transaction.

        Whole values: `metadata` and `tags` replace what is stored; `aliases` is the full
        wanted set of custom aliases ("latest" is ignored: it is managed by the catalog);
        aliases taken from other versions move here and the moves are recorded.

        Changes (what `Artifact.save()` sends, so that edits others made since the caller
        read the version survive): `set_metadata` sets top-level keys, `unset_metadata`
        deletes keys (absent ones are fine); `add_tags`/`remove_tags`; `add_aliases`
        moves aliases here, `remove_aliases` drops those this version still holds (one
        that has moved to another version meanwhile stays there). A whole value and a
        change of the same field together are refused (InvalidInputError)."""

    @abc.abstractmethod
    def set_alias(self, project: str, name: str, alias: str, index: int, run_id: str | None = None) -> None:
        """Point a custom alias at version `index` (moving it if held elsewhere)."""

    @abc.abstractmethod
    def remove_alias(self, project: str, name: str, alias: str, run_id: str | None = None) -> None:
        """NotFoundError if the artifact has no such alias; "latest" cannot be removed."""

    @abc.abstractmethod
    def alias_history(self, project: str, name: str) -> list[AliasEvent]:
        """Oldest first, including moves of "latest"."""

    @abc.abstractmethod
    def delete_version(self, version_id: int, run_id: str | None = None) -> VersionRecord:
        """Soft-delete: state "deleted", deleted_at set, files kept (until gc/purge).
        Its aliases are removed; if it held "latest", latest moves to the newest
        remaining live version (else the newest broken one, else it is removed). Every
        move is recorded. Idempotent."""

    @abc.abstractmethod
    def purge_version(self, version_id: int) -> None:
        """Erase a soft-deleted version's rows (manifest, tags, lineage). Its index stays
        used forever; alias history keeps its index. ConflictError unless deleted."""

    @abc.abstractmethod
    def set_version_state(self, version_id: int, state: str) -> VersionRecord:
        """Mark a version "broken" (fsck found missing bytes) or "live" again (repaired).
        `latest` then sits on the newest live version (a broken one only if none is
        live), the move recorded. Deleted versions are refused with ConflictError."""

    @abc.abstractmethod
    def referenced_digests(self, include_deleted: bool = True) -> set[str]:
        """File digests referenced by versions (live, and soft-deleted unless excluded);
        what garbage collection must keep."""

    # --- runs -------------------------------------------------------------------
    @abc.abstractmethod
    def create_run(self, run: RunRecord) -> RunRecord:
        """ConflictError if the id exists."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunRecord:
        """NotFoundError if unknown."""

    @abc.abstractmethod
    def update_run(self, run_id: str, **fields: Any) -> RunRecord:
        """Update any RunRecord field except id/project."""

    @abc.abstractmethod
    def update_run_if(self, run_id: str, refuse: Callable[[RunRecord], str | None],
                      **fields: Any) -> RunRecord:
        """`update_run`, but first `refuse(current record)` is asked, inside the same write
        transaction: a message means ConflictError(message) and nothing changes. Lets
        `init(resume=...)` refuse a run another live process holds, without a race."""

    @abc.abstractmethod
    def import_runs(self, runs: Iterable[RunRecord], links: Iterable[tuple[str, str, int]]) -> tuple[int, int]:
        """Copy runs from another catalog and link them, in one transaction (push, pull,
        import): each run is created if absent, or its fields set to the given ones where
        they differ; each link (run id, "input" | "output", version id of this catalog) is
        recorded if absent (NotFoundError for an unknown run or version). Returns (runs
        written, links added): (0, 0) when everything was there already."""

    @abc.abstractmethod
    def record_use(self, run_id: str, version_id: int) -> None:
        """The run used (read) the version; idempotent."""

    @abc.abstractmethod
    def record_output(self, run_id: str, version_id: int) -> None:
        """The run logged the version (also done by commit_version); idempotent."""

    @abc.abstractmethod
    def run_inputs(self, run_id: str) -> list[VersionRecord]: ...

    @abc.abstractmethod
    def run_outputs(self, run_id: str) -> list[VersionRecord]: ...

    @abc.abstractmethod
    def version_users(self, version_id: int) -> list[RunRecord]:
        """Runs that used the version."""

    @abc.abstractmethod
    def list_runs(self, project: str | None = None) -> list[RunRecord]:
        """Oldest first."""

    @abc.abstractmethod
    def append_history(self, run_id: str, rows: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """Append metric rows (step, data) logged by the run, in one transaction."""

    @abc.abstractmethod
    def run_history(self, run_id: str) -> list[HistoryRow]:
        """Rows in logging order (step, then insertion)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # --- search, lineage and diff (queries: catalog/query.py) ---------------------------
    @abc.abstractmethod
    def search_versions(self, query: str, limit: int | None = None,
                        liveness: Any = None) -> list[VersionRecord]:
        """Versions matching a search-language query (see catalog/query.py), newest first.
        InvalidInputError with a caret under the bad token on a syntax error.
        `liveness` (a `catalog.query.Liveness`) says how ``run.state=crashed`` is told
        from "running"; without it run states are compared as stored."""

    @abc.abstractmethod
    def find_runs(self, filters: dict[str, Any] | str | None = None, project: str | None = None,
                  order: str | None = None, limit: int | None = None,
                  liveness: Any = None) -> list[RunRecord]:
        """Runs matching Mongo-style dict filters or query text, ordered by `order`
        (``"-summary.val_acc"``), then oldest first. `liveness` as in `search_versions`:
        with it, every state operator treats silent dead runs as "crashed"."""

    @abc.abstractmethod
    def get_runs(self, run_ids: Iterable[str]) -> dict[str, RunRecord]:
        """Many runs in one query; unknown ids are left out."""

    @abc.abstractmethod
    def get_versions(self, version_ids: Iterable[int]) -> dict[int, VersionRecord]:
        """Many versions (deleted ones too) in one batch; unknown ids are left out."""

    @abc.abstractmethod
    def lineage_hop(self, version_ids: Iterable[int], direction: str) -> list[tuple[str, int, int | None]]:
        """One hop of the lineage graph from many versions at once: for "up",
        (producing run, version, one of the run's inputs or None); for "down",
        (using run, version, one of the run's outputs or None)."""

    @abc.abstractmethod
    def lineage_step(self, version_ids: Iterable[int], direction: str) -> LineageStep:
        """`lineage_hop` with the records it names (the versions given and reached, the
        runs), in one transaction: a walk costs one call per hop."""

    # --- lifecycle (restore, retention, accounting; see sdk/lifecycle.py) ---------------
    @abc.abstractmethod
    def restore_version(self, version_id: int, run_id: str | None = None,
                        state: str = "live") -> VersionRecord:
        """Undo a soft delete: state `state` again ("live", or "broken" when the caller
        knows its bytes are lost). If it is now the newest live version, `latest` moves
        to it (recorded). Aliases removed by the delete are not restored.
        Idempotent on a version not deleted; NotFoundError if purged (or unknown)."""

    @abc.abstractmethod
    def get_retention(self, project: str, name: str) -> dict[str, Any] | None:
        """The artifact's retention policy (None: keep everything)."""

    @abc.abstractmethod
    def set_retention(self, project: str, name: str, policy: dict[str, Any] | None) -> None:
        """Store a retention policy ({"keep_last": N, "keep_aliased": bool,
        "max_age_seconds": S}) or clear it with None."""

    @abc.abstractmethod
    def version_digests(self, include_deleted: bool = True,
                        version_ids: Iterable[int] | None = None) -> Iterator[tuple[int, str, int]]:
        """(version id, file digest, size) for every manifest entry of every version
        (soft-deleted ones too unless excluded), or of the given versions only; storage
        accounting joins these with the content store's chunk lists."""

    @abc.abstractmethod
    def digest_holders(self, digests: Iterable[str]) -> Iterator[tuple[int, str]]:
        """(version id, file digest) of every version, soft-deleted ones included, whose
        manifest names one of these file digests (each pair once)."""

    # --- distributed drafts (sql_drafts.py; issue 15) ------------------------------------
    @abc.abstractmethod
    def open_draft(self, project: str, name: str, type: str, distributed_id: str, ttl_seconds: int,
                   new_version: bool = False) -> DraftRecord:
        """The open draft of (project, name, distributed_id), created if there is none. If
        the newest one is finished, aborted or expired, ConflictError saying so, unless
        `new_version`: then a new draft is started. ConflictError if `type` differs."""

    @abc.abstractmethod
    def add_draft_part(self, draft_id: int, part: DraftPart, ttl_seconds: int) -> bool:
        """Add a part; True if added, False if a part with this id and digest is there (a
        re-send, a no-op in any state). ConflictError if the id holds other content, or the draft is not open
        (sealed by a finish, finished, aborted, expired). Pushes `expires_at` to now+ttl."""

    @abc.abstractmethod
    def seal_draft(self, draft_id: int) -> list[DraftPart]:
        """Close an open (or sealed, by a finisher that died) unexpired draft to new parts,
        and return its parts sorted by part id; ConflictError otherwise."""

    @abc.abstractmethod
    def close_draft(self, draft_id: int, state: str, version_id: int | None = None) -> DraftRecord:
        """Set the draft's state: "open" (a finish that refused: parts may come again),
        "finished" (with the version made) or "aborted". ConflictError if it is finished
        or aborted already."""

    @abc.abstractmethod
    def get_draft(self, draft_id: int) -> DraftRecord: ...

    @abc.abstractmethod
    def list_drafts(self, project: str | None = None, name: str | None = None) -> list[DraftRecord]:
        """Every draft, newest first."""

    @abc.abstractmethod
    def draft_parts(self, draft_id: int) -> list[DraftPart]:
        """Sorted by part id."""

    @abc.abstractmethod
    def draft_digests(self) -> set[str]:
        """File digests of open and sealed drafts not expired: gc keeps them, as it keeps
        `referenced_digests`."""

    # --- reference entries (sql_manifests.py; issue 15) ----------------------------------
    @abc.abstractmethod
    def iter_references(self, version_id: int) -> list[ReferenceEntry]:
        """The version's reference entries (committed with it: `NewVersion.references`), by path."""

    # --- keyset pages (sql_pages.py; issue 13) ------------------------------------------
    @abc.abstractmethod
    def artifacts_page(self, project: str | None = None, type: str | None = None, order: str = "name",
                       descending: bool = False, after: tuple[Any, ...] | None = None,
                       limit: int = 50) -> list[ArtifactRecord]:
        """At most `limit` artifacts in `order` (ARTIFACT_ORDERS), those whose
        `artifact_page_key` sorts after `after` (the previous page's last key)."""

    @abc.abstractmethod
    def versions_page(self, project: str, name: str, include_deleted: bool = False, order: str = "index",
                      descending: bool = False, after: tuple[Any, ...] | None = None,
                      limit: int = 50) -> list[VersionRecord]:
        """At most `limit` versions of the artifact in `order` (VERSION_ORDERS), those
        whose `version_page_key` sorts after `after`. NotFoundError for an unknown artifact."""

    @abc.abstractmethod
    def search_page(self, query: str, after: tuple[Any, ...] | None = None, limit: int = 50,
                    liveness: Any = None) -> list[VersionRecord]:
        """`search_versions`, a page at a time: at most `limit` matches, newest first,
        those whose `search_page_key` sorts after `after` (the previous page's last)."""

    @abc.abstractmethod
    def find_run_ids(self, filters: dict[str, Any] | str | None = None, project: str | None = None,
                     order: str | None = None, liveness: Any = None) -> list[str]:
        """The ids of `find_runs`, in its order, without reading the runs (a page of them
        is then read with `get_runs`)."""

    @abc.abstractmethod
    def version_states(self) -> dict[str, int]:
        """How many versions are in each state (live, deleted, broken): with `identity()`'s
        generation, a cheap sign that store-wide figures (`lode stats`) changed."""

    @abc.abstractmethod
    def diff_counts(self, version_a: int, version_b: int) -> DiffCounts:
        """How many entries each list of the diff from version_a to version_b holds."""

    @abc.abstractmethod
    def diff_page(self, version_a: int, version_b: int, section: str, after: str | None = None,
                  limit: int | None = None) -> list[DiffRow]:
        """One list of the diff (DIFF_SECTIONS: renames paired in path order, see
        catalog/diff_pages.py), the rows whose path (a rename's new path) sorts after
        `after`, by path, at most `limit` (None: all)."""

    @abc.abstractmethod
    def iter_diff(self, version_a: int, version_b: int,
                  sections: Sequence[str] = DIFF_SECTIONS) -> Iterator[tuple[str, DiffRow]]:
        """(list, row) for every row of the lists named, by the same rule as `diff_page`,
        streamed (never held whole): list after list in DIFF_SECTIONS order, each by path,
        renames by their old path. Unknown versions or lists raise at the call, not at the
        first row."""

    @abc.abstractmethod
    def digests_only_in(self, version_id: int, other_id: int) -> list[str]:
        """The distinct file digests version_id names and other_id does not."""
