"""Runs: the unit of work that logs and uses artifacts (lineage is built on them).

`init()` records a run in the catalog; `log_artifact` and `use_artifact` record what it
made and what it read. A run left running by a crash is marked failed: the context
manager and an atexit hook finish it, and an uncaught exception marks it failed.
"""

from __future__ import annotations

import atexit
import os
import secrets
import socket
import string
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lodestore.catalog.base import RunRecord
from lodestore.errors import ConflictError, InvalidInputError, NotFoundError
from lodestore.names import DEFAULT_PROJECT, parse_ref, validate_name
from lodestore.sdk.artifact import Artifact
from lodestore.sdk.repository import Repository

_ID_ALPHABET = string.ascii_lowercase + string.digits
_active: list[Run] = []


def _new_run_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Run:
    """A running (or resumed) run. Use `lodestore.init()` to make one."""

    def __init__(self, repo: Repository, record: RunRecord):
        self._repo = repo
        self._record = record
        self._finished = False

    # --- identity ---------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._record.id

    @property
    def project(self) -> str:
        return self._record.project

    @property
    def name(self) -> str | None:
        return self._record.name

    @property
    def state(self) -> str:
        return self._record.state

    @property
    def root(self) -> Path:
        return self._repo.root

    # --- artifacts --------------------------------------------------------------
    def log_artifact(self, artifact: Artifact | str | os.PathLike[str], name: str | None = None,
                     type: str | None = None, aliases: list[str] | None = None,
                     tags: list[str] | None = None) -> Artifact:
        """Store the artifact's files and commit a new version (or return the identical
        existing one). A path is accepted too, as in W&B: a file or folder becomes an
        artifact named `name` (default: the path's name) of `type` (default "unspecified")."""
        self._check_running()
        if not isinstance(artifact, Artifact):
            path = Path(artifact)
            art = Artifact(name or path.name.replace(" ", "-"), type or "unspecified")
            if path.is_dir():
                art.add_dir(path)
            else:
                art.add_file(path)
            artifact = art
        if tags:
            artifact.add_tags(*tags)
        artifact._log(self._repo, self.project, aliases or [], self.id)
        return artifact

    def use_artifact(self, artifact_or_name: str | Artifact, type: str | None = None,
                     aliases: list[str] | None = None) -> Artifact:
        """Fetch a logged version by reference (``animals:latest``, ``zoo/animals:v0``)
        and record that this run used it. Logging a draft then using it is allowed too."""
        self._check_running()
        if isinstance(artifact_or_name, Artifact):
            art = artifact_or_name
            if art.version is None:
                self.log_artifact(art, aliases=aliases)
        else:
            art = fetch_artifact(self._repo, artifact_or_name, default_project=self.project)
        if type is not None and art.type != type:
            raise ConflictError(f"{art.qualified_name} has type {art.type!r}, not {type!r}")
        self._repo.catalog.record_use(self.id, art.id)
        return art

    # --- lifecycle --------------------------------------------------------------
    def finish(self, exit_code: int | None = None) -> None:
        if self._finished:
            return
        self._finished = True
        code = 0 if exit_code is None else exit_code
        state = "finished" if code == 0 else "failed"
        self._record = self._repo.catalog.update_run(self.id, state=state, exit_code=code, finished_at=_now())
        if self in _active:
            _active.remove(self)

    def _check_running(self) -> None:
        if self._finished:
            raise InvalidInputError(f"run {self.id} is finished; start a new one with lodestore.init()")

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(exit_code=1 if exc_type is not None else 0)

    def __repr__(self) -> str:
        return f"<Run {self.project}/{self.id} name={self.name!r} state={self.state}>"


def fetch_artifact(repo: Repository, ref: str, default_project: str | None = None) -> Artifact:
    parsed = parse_ref(ref, default_project=default_project)
    record = repo.catalog.get_version(parsed.project, parsed.name, parsed.selector)
    return Artifact._from_record(repo, record)


def init(project: str | None = None, name: str | None = None, *, root: str | os.PathLike[str] | None = None,
         config: dict[str, Any] | None = None, group: str | None = None, job_type: str | None = None,
         tags: list[str] | None = None, notes: str | None = None, id: str | None = None,
         resume: str | bool | None = None, save_code: bool = False) -> Run:
    """Start (or resume) a run in the store at `root` ($LODESTORE_DIR, else ~/.lodestore)."""
    project = project or os.environ.get("LODESTORE_PROJECT") or DEFAULT_PROJECT
    validate_name(project, "project name")
    if resume is True:
        resume = "allow"
    if resume not in (None, False, "allow", "must", "never"):
        raise InvalidInputError(f"resume must be 'allow', 'must' or 'never', not {resume!r}")
    repo = Repository.open(root)
    record: RunRecord | None = None
    if id is not None:
        validate_name(id, "run id")
        try:
            existing = repo.catalog.get_run(id)
        except NotFoundError:
            existing = None
        if existing is not None:
            if resume in (None, False, "never"):
                raise ConflictError(f"run {id} already exists; pass resume='allow' to continue it")
            record = repo.catalog.update_run(id, state="running", finished_at=None, exit_code=None,
                                             heartbeat_at=_now())
        elif resume == "must":
            raise NotFoundError(f"resume='must' but no run with id {id!r} exists in {repo.root}")
    if record is None:
        record = repo.catalog.create_run(RunRecord(
            id=id or _new_run_id(), project=project, name=name, group=group, job_type=job_type,
            tags=tuple(tags or ()), notes=notes, config=dict(config or {}), summary={}, state="running",
            exit_code=None, created_at=_now(), finished_at=None, heartbeat_at=_now(),
            host=socket.gethostname(), pid=os.getpid(),
        ))
    run = Run(repo, record)
    _active.append(run)
    return run


def current_run() -> Run | None:
    return _active[-1] if _active else None


def _finish_leftover_runs() -> None:
    """At interpreter exit, runs nobody finished are closed: failed if an exception is
    on its way out (sys.last_value is set by the default excepthook), finished otherwise."""
    failed = getattr(sys, "last_value", None) is not None
    for run in list(_active):
        try:
            run.finish(exit_code=1 if failed else 0)
        except Exception as e:  # the catalog may be closed already; nothing else to do at exit
            print(f"lodestore: could not finish run {run.id}: {e}", file=sys.stderr)


atexit.register(_finish_leftover_runs)
