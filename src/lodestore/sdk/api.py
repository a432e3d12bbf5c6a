"""The public Api: read and manage artifacts outside any run (W&B's `wandb.Api()`).
Every call goes through the door (`lodestore.sdk.service.Service`)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from lodestore import settings
from lodestore.catalog.records import ArtifactRecord
from lodestore.errors import InvalidInputError, InvalidNameError, NotFoundError
from lodestore.names import ArtifactRef, parse_ref
from lodestore.sdk.artifact import Artifact
from lodestore.sdk.collection import ArtifactCollection
from lodestore.sdk.diff import VersionDiff
from lodestore.sdk.lineage import LineageGraph
from lodestore.sdk.public_run import PublicRun
from lodestore.sdk.run import fetch_artifact
from lodestore.sdk.service import RetentionUpdate, Service
from lodestore.sdk.sweep import Sweep, parse_sweep_path


class Api:
    """Read and manage the store outside a run. `project` is the default for references
    without one (``"animals:v1"``); if not given it is $LODESTORE_PROJECT, else the only
    project in the store when there is exactly one. A bare name another project holds
    is found there when only one project has it (so the seeds' ``api.artifact(
    "bike-dataset:latest")`` works as the store grows); held by several, the error
    lists the candidates."""

    def __init__(self, root: str | os.PathLike[str] | None = None, project: str | None = None, *,
                 store: str | None = None, catalog: str | None = None, remote: str | None = None):
        self._service = Service.open(root, store=store, catalog=catalog, remote=remote)
        self._project = project

    @property
    def default_project(self) -> str | None:
        # Looked up on each use, not once: the store's only project may appear later.
        if self._project is not None:
            return self._project
        env = settings.project()
        if env:
            return env
        found = self._service.projects()
        return found[0] if len(found) == 1 else None

    @default_project.setter
    def default_project(self, value: str | None) -> None:
        self._project = value

    @property
    def root(self) -> Path:
        return self._service.root

    def _ref(self, name: str) -> ArtifactRef:
        return parse_ref(name, default_project=self.default_project)

    def _run_view(self, record: Any) -> PublicRun:
        return PublicRun(self._service, record, Artifact._from_record)

    def artifact(self, name: str, type: str | None = None) -> Artifact:
        """``proj/name:alias`` (or ``name:v3``; the version defaults to latest)."""
        art = fetch_artifact(self._service, name, default_project=self.default_project)
        if type is not None and art.type != type:
            raise NotFoundError(f"{art.qualified_name} has type {art.type!r}, not {type!r}")
        return art

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        """True if the reference resolves; False if it does not, including a reference
        that cannot name anything (``"bad name!!"``)."""
        try:
            self.artifact(name, type=type)
            return True
        except (NotFoundError, InvalidNameError):
            return False

    def artifact_versions(self, type_name: str, name: str, include_deleted: bool = False) -> list[Artifact]:
        """Every version of an artifact, oldest first (W&B's spelling: type first)."""
        ref = self._ref(name)
        if "/" not in name.partition(":")[0]:  # a bare name: whichever project holds it (of this type)
            ref = ArtifactRef(self._service.project_of(ref.name, self.default_project, type=type_name),
                              ref.name, ref.selector)
        records = self._service.versions(ref.project, ref.name, include_deleted=include_deleted)
        out = [Artifact._from_record(self._service, r) for r in records]
        if out and out[0].type != type_name:
            raise NotFoundError(f"{ref.project}/{ref.name} has type {out[0].type!r}, not {type_name!r}")
        return out

    def artifact_collection(self, type_name: str, name: str) -> ArtifactCollection:
        """W&B's collection: one artifact and its versions. `name` is ``name``,
        ``project/name`` or ``entity/project/name`` (the entity is ignored); a bare name
        is found in whichever project holds it. Another type: NotFoundError."""
        project, bare = self._collection_name(name, type_name)
        record = self._service.artifact(project, bare)
        if record.type != type_name:
            raise NotFoundError(f"{project}/{bare} has type {record.type!r}, not {type_name!r}")
        return ArtifactCollection(self._service, record, Artifact._from_record)

    def artifact_collection_exists(self, name: str, type: str | None = None) -> bool:
        """True if `artifact_collection(type, name)` would find it (any type when None)."""
        try:
            project, bare = self._collection_name(name, type)
            record = self._service.artifact(project, bare)
        except (NotFoundError, InvalidNameError, InvalidInputError):
            return False
        return type is None or record.type == type

    def artifact_collections(self, project_name: str | None = None,
                             type_name: str | None = None) -> list[ArtifactCollection]:
        """Every artifact (of `type_name`) in `project_name` (or the store) as a collection."""
        return [ArtifactCollection(self._service, r, Artifact._from_record)
                for r in self._service.artifacts(project=project_name, type=type_name)]

    def _collection_name(self, name: str, type_name: str | None) -> tuple[str, str]:
        """(project, name) of a collection name; a version in it is refused."""
        parts = name.split("/") if isinstance(name, str) else []
        if not parts or not all(parts) or len(parts) > 3 or ":" in name:
            raise InvalidNameError(f"collection name {name!r} must look like 'name', 'project/name' or "
                                   "'entity/project/name' (no version)")
        if len(parts) > 1:
            return parts[-2], parts[-1]
        return self._service.project_of(parts[0], self.default_project, type=type_name), parts[0]

    def artifact_types(self, project: str | None = None) -> list[str]:
        return self._service.artifact_types(project)

    def artifacts(self, project: str | None = None, type: str | None = None,
                  name: str | None = None) -> list[ArtifactRecord]:
        """Artifact collections (one record per artifact, with version counts and sizes)."""
        return self._service.artifacts(project=project, type=type, name=name)

    def projects(self) -> list[str]:
        return self._service.projects()

    def run(self, run_id: str) -> PublicRun:
        """A run by id (``"abc123"`` or W&B's ``"project/abc123"``), with summary, config,
        history and lineage; a dead silent run reports state "crashed"."""
        return self._run_view(self._service.run(run_id.rsplit("/", 1)[-1]))

    def runs(self, project: str | None = None, filters: dict[str, Any] | str | None = None,
             order: str | None = None, per_page: int | None = None, limit: int | None = None) -> list[PublicRun]:
        """Runs of a project (all projects if None), oldest first unless `order` says
        otherwise (``"-summary.val_acc"``). `filters` is a dict (``{"group": "sweep-1",
        "state": "finished", "summary.val_acc": {"$gte": 0.9}}``) or query text
        (``"group=sweep-1 summary.val_acc>=0.9"``). `per_page` is W&B's page size for
        fetching from a server: checked (a positive int) so W&B code runs unchanged, but
        a local store answers in one query, so it changes nothing; `limit` caps the count."""
        if per_page is not None and (isinstance(per_page, bool) or not isinstance(per_page, int) or per_page < 1):
            raise InvalidInputError(f"per_page must be a positive int, not {per_page!r}")
        project = project or self._project or settings.project()
        if project is not None and "/" in project:  # W&B's "entity/project"
            project = project.rsplit("/", 1)[-1]
        return [self._run_view(r) for r in self._service.find_runs(project, filters, order, limit)]

    def sweep(self, path: str) -> Sweep:
        """W&B's ``api.sweep("<entity>/<project>/<sweep_id>")``: here a sweep is the runs of
        one ``init(group=<sweep_id>)`` (sdk/sweep.py); `.runs` lists them."""
        project, sweep_id = parse_sweep_path(path)
        return Sweep(self._service, project or self._project or settings.project(), sweep_id,
                     Artifact._from_record)

    def search(self, query: str, limit: int | None = None) -> list[Artifact]:
        """Versions matching a query, newest first: ``type=model metadata.val_acc>=0.9
        tag:production created>2026-01-01 name~resnet alias:latest run.job_type=train``."""
        return [Artifact._from_record(self._service, v) for v in self._service.search(query, limit)]

    def lineage(self, name: str, direction: str = "both", depth: int | None = None) -> LineageGraph:
        """The lineage graph around a version; deleted versions too (history outlives them)."""
        record = self._service.version(self._ref(name), include_deleted=True)
        return self._service.lineage(record, direction=direction, depth=depth)

    def diff(self, a: str, b: str) -> VersionDiff:
        return self.artifact(a).diff(self.artifact(b))

    def stats(self) -> Any:
        """Storage figures: logical, stored and saved bytes, dedup ratio, per type and per
        artifact, soft-deleted bytes and bytes gc would reclaim (sdk/lifecycle.py)."""
        return self._service.stats()

    def gc(self, dry_run: bool = False, grace: float | None = None, repack_threshold: float = 0.5) -> Any:
        """Reclaim unreferenced bytes (`lode gc`): whole dead packs are deleted, packs more
        than `repack_threshold` dead are repacked (0: every pack holding dead bytes)."""
        return self._service.gc(dry_run=dry_run, grace=grace, repack_threshold=repack_threshold)

    def prune(self, dry_run: bool = False) -> Any:
        return self._service.prune(dry_run=dry_run)

    def set_retention(self, name: str, keep_last: int | None = None, keep_aliased: bool | None = None,
                      max_age: timedelta | None = None, clear: bool = False) -> dict[str, Any] | None:
        """Change the retention policy of ``project/artifact``, applied by `prune()` /
        `lode prune`: keep the `keep_last` newest versions, never drop aliased ones if
        `keep_aliased`, drop versions older than `max_age` (a timedelta). Settings left
        as None keep their current value, so adding a TTL does not silently switch
        `keep_aliased` off; `clear=True` removes the policy. Returns the new policy."""
        ref = self._ref(name)
        update = RetentionUpdate(keep_last=keep_last, keep_aliased=keep_aliased,
                                 max_age_seconds=None if max_age is None else int(max_age.total_seconds()))
        return self._service.set_retention(ref.project, ref.name, None if clear else update, clear=clear)

    def retention(self, name: str) -> dict[str, Any] | None:
        ref = self._ref(name)
        return self._service.retention(ref.project, ref.name)
