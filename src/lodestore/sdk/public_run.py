"""`PublicRun`: a run as the public Api sees it (W&B's ``api.run(...)``): its record,
summary, config, history and lineage, with "crashed" inferred for silent dead runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lodestore.catalog.records import RunRecord, VersionRecord
from lodestore.sdk.liveness import effective_state
from lodestore.sdk.service import Service

# How a version record becomes an Artifact: handed in by the caller (Artifact._from_record),
# so this module need not import sdk/artifact.py, whose `logged_by()` returns a PublicRun.
ArtifactOf = Callable[[Service, VersionRecord], Any]


def history_dicts(service: Service, run_id: str) -> list[dict[str, Any]]:
    """A run's logged metrics, one dict per step with its ``_step`` (W&B's shape)."""
    return [{"_step": h.step, **h.data} for h in service.run_history(run_id)]


class PublicRun:
    """A logged run, read through the door (see the module docstring)."""

    def __init__(self, service: Service, record: RunRecord, artifact_of: ArtifactOf):
        self._service = service
        self._record = record
        self._artifact_of = artifact_of

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._record, name)

    @property
    def state(self) -> str:
        return effective_state(self._record)

    @property
    def summary(self) -> dict[str, Any]:
        return self._record.summary

    @property
    def config(self) -> dict[str, Any]:
        return self._record.config

    @property
    def record(self) -> RunRecord:
        return self._record

    def refresh(self) -> PublicRun:
        self._record = self._service.run(self._record.id)
        return self

    def history(self) -> list[dict[str, Any]]:
        return history_dicts(self._service, self._record.id)

    def logged_artifacts(self) -> list[Any]:
        return [self._artifact_of(self._service, r) for r in self._service.run_outputs(self._record.id)]

    def used_artifacts(self) -> list[Any]:
        return [self._artifact_of(self._service, r) for r in self._service.run_inputs(self._record.id)]

    def to_dict(self) -> dict[str, Any]:
        r = self._record
        return {"id": r.id, "project": r.project, "name": r.name, "group": r.group, "job_type": r.job_type,
                "tags": list(r.tags), "notes": r.notes, "state": self.state, "exit_code": r.exit_code,
                "config": r.config, "summary": r.summary, "created_at": r.created_at,
                "finished_at": r.finished_at, "heartbeat_at": r.heartbeat_at, "host": r.host, "pid": r.pid}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicRun) and other._record == self._record

    def __hash__(self) -> int:
        return hash(self._record.id)

    def __repr__(self) -> str:
        return f"<Run {self._record.project}/{self._record.id} name={self._record.name!r} state={self.state}>"
