"""`Sweep`: W&B's ``api.sweep("<entity>/<project>/<sweep_id>")``, here a run group.

lodestore has no sweep controller: a sweep is the runs started with the same
``init(group=...)``; its id is the group name. So the FAQ's "best run of a sweep"
sample runs as written::

    with lodestore.init(project="tune", group="sweep-7", config={"lr": lr}) as run: ...
    sweep = lodestore.Api().sweep("me/tune/sweep-7")
    best = sorted(sweep.runs, key=lambda r: r.summary.get("val_acc", 0), reverse=True)[0]
"""

from __future__ import annotations

from typing import Any

from lodestore.errors import InvalidNameError, NotFoundError
from lodestore.sdk.public_run import ArtifactOf, PublicRun
from lodestore.sdk.service import Service


def parse_sweep_path(path: str) -> tuple[str | None, str]:
    """``entity/project/id``, ``project/id`` or ``id`` -> (project or None, id). The
    entity names a W&B account; a local store has none, so it is ignored."""
    parts = path.split("/") if isinstance(path, str) else []
    if not parts or not all(parts) or len(parts) > 3:
        raise InvalidNameError(f"sweep path {path!r} must look like 'entity/project/sweep_id' (or 'project/id')")
    return (parts[-2] if len(parts) > 1 else None), parts[-1]


class Sweep:
    """The runs of one group (see the module docstring); `runs` is read when asked, so
    runs started later appear."""

    def __init__(self, service: Service, project: str | None, sweep_id: str, artifact_of: ArtifactOf):
        self._service = service
        self.project = project
        self.id = sweep_id
        self._artifact_of = artifact_of
        if not self._records():
            where = f"project {project!r}" if project else "any project"
            raise NotFoundError(f"no sweep {sweep_id!r} in {where}: a sweep is the runs started with "
                                f"init(group={sweep_id!r}), and none was")

    @property
    def name(self) -> str:
        return self.id

    def _records(self) -> list[Any]:
        return self._service.find_runs(self.project, {"group": self.id})

    @property
    def runs(self) -> list[PublicRun]:
        """The group's runs, oldest first."""
        return [PublicRun(self._service, r, self._artifact_of) for r in self._records()]

    def best_run(self, order: str = "-summary.val_acc") -> PublicRun | None:
        """The first run by `order` (W&B's spelling: ``-summary.<metric>`` for the highest)."""
        found = self._service.find_runs(self.project, {"group": self.id}, order, 1)
        return PublicRun(self._service, found[0], self._artifact_of) if found else None

    def __repr__(self) -> str:
        return f"<Sweep {self.project or '*'}/{self.id} runs={len(self._records())}>"
