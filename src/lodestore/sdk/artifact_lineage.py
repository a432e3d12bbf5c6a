"""A logged version's place in the lineage graph (the run that logged it, the runs
that used it, what was made from it and what it was made from) and its diff with
another version. A mixin of `Artifact`; the graph is built by sdk/lineage.py and the
diff by sdk/diff.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lodestore.sdk.artifact import Artifact


class VersionLineage:
    """Lineage and diff of a logged version (see the module docstring)."""

    def logged_by(self):
        """The run that logged this version (a public run object), or None."""
        repo = self._logged()
        from lodestore.sdk.run import PublicRun

        run_id = self._record.created_by_run
        if run_id is None:
            producers = repo.catalog.lineage_hop([self._record.id], "up")
            run_id = producers[0][0] if producers else None
        return None if run_id is None else PublicRun(repo, repo.catalog.get_run(run_id))

    def used_by(self) -> list:
        """Runs that used this version, in the order they first used it."""
        repo = self._logged()
        from lodestore.sdk.run import PublicRun

        return [PublicRun(repo, r) for r in repo.catalog.version_users(self._record.id)]

    def lineage(self, direction: str = "both", depth: int | None = None):
        """The lineage graph around this version (see `lodestore.sdk.lineage`)."""
        from lodestore.sdk.lineage import build_graph

        return build_graph(self._logged(), self._record, direction, depth)

    def downstream(self, type: str | None = None, depth: int | None = None) -> list[Artifact]:
        """Versions made from this one, directly or through intermediate versions
        (``dataset.downstream(type="model")``: every model trained on it)."""
        repo = self._logged()
        return [self._from_record(repo, v) for v in self.lineage("down", depth).versions(type)]

    def upstream(self, type: str | None = None, depth: int | None = None) -> list[Artifact]:
        """Versions this one was made from, directly or transitively."""
        repo = self._logged()
        return [self._from_record(repo, v) for v in self.lineage("up", depth).versions(type)]

    def diff(self, other: Artifact):
        """Compare this version (old) with `other` (new); see `lodestore.sdk.diff`."""
        repo = self._logged()
        other._logged()
        from lodestore.sdk.diff import diff_versions

        # fresh records: aliases and tags may have moved since these objects were loaded
        return diff_versions(repo.catalog, repo.catalog.get_version_by_id(self._record.id),
                             repo.catalog.get_version_by_id(other._record.id))
