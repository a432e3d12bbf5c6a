"""Runs: the unit of work that logs and uses artifacts (lineage is built on them).

`init()` records a run in the catalog; `log_artifact` and `use_artifact` record what it
made and what it read; `run.log`, `run.summary` and `run.config` write through to the
catalog, so other processes see a live run. A daemon thread refreshes its heartbeat.
However the process ends, its end is recorded (`lodestore.sdk.run_end`); a run that
could not say it died (SIGKILL) is reported "crashed" once its heartbeat is stale.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import string
import sys
import threading
from collections.abc import Callable, Iterator, MutableMapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from lodestore import settings
from lodestore.catalog.records import RunRecord
from lodestore.errors import ConflictError, InvalidInputError, NotFoundError
from lodestore.json_values import json_dict
from lodestore.names import DEFAULT_PROJECT, validate_name
from lodestore.processes import pid_alive
from lodestore.sdk import liveness, ui
from lodestore.sdk.artifact import Artifact
from lodestore.sdk.liveness import STALE_AFTER, effective_state
from lodestore.sdk.liveness import utc_now as _now
from lodestore.sdk.public_run import PublicRun, history_dicts
from lodestore.sdk.run_end import active as _active
from lodestore.sdk.run_end import current_run, exit_code_of, install_hooks
from lodestore.sdk.service import Service

# Re-exported: the liveness rule and the public run view were defined here before.
__all__ = ["PublicRun", "Run", "current_run", "effective_state", "fetch_artifact", "init"]
_ID_ALPHABET = string.ascii_lowercase + string.digits


class _WriteThrough(MutableMapping):
    """A dict that persists itself on every change (run.summary, run.config), so readers
    in other processes see values while the run is still going."""

    def __init__(self, data: dict[str, Any], save: Callable[[dict[str, Any]], None], what: str):
        self._data = dict(data)
        self._save = save
        self._what = what

    def _persist(self) -> None:
        self._save(json_dict(self._data, f"run {self._what}"))  # a copy, NaN as None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        old = self._data.get(key, _MISSING)
        self._data[key] = value
        try:
            self._persist()
        except BaseException:
            if old is _MISSING:
                del self._data[key]
            else:
                self._data[key] = old
            raise

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._persist()

    def update(self, *args: Any, **kwargs: Any) -> None:  # one write, not one per key
        before = dict(self._data)
        self._data.update(*args, **kwargs)
        try:
            self._persist()
        except BaseException:
            self._data = before
            raise

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:  # run.config.lr, as in W&B
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"run {self._what} has no key {name!r}") from None

    def __eq__(self, other: object) -> bool:
        return dict(self._data) == (dict(other) if isinstance(other, MutableMapping) else other)

    def __repr__(self) -> str:
        return repr(self._data)


_MISSING = object()


def _new_run_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


class Run:
    """A running (or resumed) run. Use `lodestore.init()` to make one."""

    def __init__(self, service: Service, record: RunRecord):
        self._service = service
        self._record = record
        self._finished = False
        self._owner_pid = os.getpid()  # hooks in a forked child must not end the parent's run
        self._lock = threading.Lock()
        self.summary = _WriteThrough(record.summary, lambda d: self._update(summary=d), "summary")
        self.config = _WriteThrough(record.config, lambda d: self._update(config=d), "config")
        history = service.run_history(record.id)
        self._step = (max(h.step for h in history) + 1) if history else 0
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat_loop, name=f"lodestore-heartbeat-{record.id}",
                                      daemon=True)
        self._beat.start()

    def _update(self, **fields: Any) -> None:
        with self._lock:
            self._record = self._service.update_run(self.id, heartbeat_at=_now(), **fields)

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(liveness.HEARTBEAT_SECONDS):
            try:
                self._update()
            except Exception:  # the store may be closing; the next beat (or finish) will tell
                pass

    # --- metrics ----------------------------------------------------------------
    def log(self, data: dict[str, Any], step: int | None = None, commit: bool = True) -> None:
        """Record metrics at a step (default: one past the last); the latest value of
        each key also lands in `run.summary`, as in W&B."""
        self._check_running()
        if not isinstance(data, dict):
            raise InvalidInputError(f"run.log takes a dict of metrics, got {type(data).__name__}")
        if step is None:
            step = self._step
        elif isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise InvalidInputError(f"step must be a non-negative int, got {step!r}")
        data = json_dict(data, "run.log values")  # NaN and infinities become None
        self._service.append_history(self.id, [(step, dict(data))])
        self._step = max(self._step, step + 1) if commit else self._step
        self.summary.update({**data, "_step": step})

    def history(self) -> list[dict[str, Any]]:
        return history_dicts(self._service, self.id)

    @property
    def group(self) -> str | None:
        return self._record.group

    @property
    def job_type(self) -> str | None:
        return self._record.job_type

    @property
    def tags(self) -> tuple[str, ...]:
        return self._record.tags

    @property
    def notes(self) -> str | None:
        return self._record.notes

    # --- lineage ----------------------------------------------------------------
    def logged_artifacts(self) -> list[Artifact]:
        return [Artifact._from_record(self._service, r) for r in self._service.run_outputs(self.id)]

    def used_artifacts(self) -> list[Artifact]:
        return [Artifact._from_record(self._service, r) for r in self._service.run_inputs(self.id)]

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
        return self._service.root

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
        artifact._log_through(self._service, self.project, aliases or [], self.id)
        return artifact

    def upsert_artifact(self, artifact: Artifact, distributed_id: str | None = None, part_id: str | None = None,
                        new_version: bool = False, ttl: timedelta | float | None = None) -> Artifact:
        """Add this run's files to the one version many runs write together (W&B's spelling;
        sdk/distributed.py). `distributed_id` names that version's draft (default: the
        run's group); `part_id` names this contribution (default: the run id): re-sending
        the same files under it is a no-op, other files under it a conflict. The draft's
        bytes stay alive until `ttl` (default 7 days) after its last part. After
        `finish_artifact`, upserts fail unless `new_version=True` starts the next version.
        Returns `artifact` (still a draft: the version exists once finished)."""
        self._check_running()
        self._service.upsert_part(artifact.draft, self.project, self._distributed_id(distributed_id),
                                  part_id if part_id is not None else self.id, self.id, ttl=ttl,
                                  new_version=new_version)
        return artifact

    def finish_artifact(self, artifact: Artifact, distributed_id: str | None = None,
                        aliases: list[str] | None = None, expected_parts: int | list[str] | None = None,
                        on_conflict: str = "error") -> Artifact:
        """Merge every upserted part (and `artifact`'s own files) into one version and
        return it; parts sent afterwards are refused. `expected_parts` (a count, or the
        part ids) refuses to finish while parts are missing; the same path with two
        contents is refused listing each, unless `on_conflict` is "last" or "first"."""
        self._check_running()
        result = self._service.finish_draft(artifact.draft, self.project, self._distributed_id(distributed_id),
                                            self.id, aliases or [], expected_parts, on_conflict)
        artifact._bind(self._service, result.version)
        artifact._files.discard()
        return artifact

    def _distributed_id(self, given: str | None) -> str:
        if given is not None:
            return given
        if self.group is None:
            raise InvalidInputError("upsert_artifact/finish_artifact need distributed_id=..., or a run started "
                                    "with init(group=...) (the group names the shared version)")
        return self.group

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
            art = fetch_artifact(self._service, artifact_or_name, default_project=self.project)
        if type is not None and art.type != type:
            raise ConflictError(f"{art.qualified_name} has type {art.type!r}, not {type!r}")
        self._service.record_use(self.id, art._logged_record())
        return art

    # --- lifecycle --------------------------------------------------------------
    def finish(self, exit_code: int | None = None) -> None:
        if self._finished:
            return
        self._finished = True
        self._stop.set()
        code = 0 if exit_code is None else exit_code
        state = "finished" if code == 0 else "failed"
        self._update(state=state, exit_code=code, finished_at=_now())
        if self in _active:
            _active.remove(self)

    def _save_code(self) -> Artifact | None:
        """Log the launching script as a `code` artifact made by this run (W&B's save_code)."""
        main = sys.modules.get("__main__")
        candidates = [getattr(main, "__file__", None), sys.argv[0] if sys.argv else None]
        script = next((Path(c) for c in candidates if c and Path(c).is_file()), None)
        if script is None:
            ui.notice("save_code: no launching script found (interactive session?); nothing saved")
            return None
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"source-{self.project}-{script.name}").strip("-.")[:128]
        art = Artifact(slug, "code", metadata={"script": str(script.resolve())})
        art.add_file(script)
        return self.log_artifact(art)

    def _check_running(self) -> None:
        if self._finished:
            raise InvalidInputError(f"run {self.id} is finished; start a new one with lodestore.init()")

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(exit_code=0 if exc_type is None else exit_code_of(exc))

    def __repr__(self) -> str:
        return f"<Run {self.project}/{self.id} name={self.name!r} state={self.state}>"


def fetch_artifact(service: Service, ref: str, default_project: str | None = None) -> Artifact:
    """The version `ref` names; a bare name is looked for in `default_project` first, then
    in the one project holding it (`Service.project_of`)."""
    return Artifact._from_record(service, service.resolve(ref, preferred_project=default_project))


def init(project: str | None = None, name: str | None = None, *, root: str | os.PathLike[str] | None = None,
         config: dict[str, Any] | None = None, group: str | None = None, job_type: str | None = None,
         tags: list[str] | None = None, notes: str | None = None, id: str | None = None,
         resume: str | bool | None = None, save_code: bool = False, store: str | None = None,
         catalog: str | None = None, remote: str | None = None) -> Run:
    """Start (or resume) a run in the store at `root` ($LODESTORE_DIR, else ~/.lodestore),
    or in a team pair: `store="s3://bucket/prefix"`, `catalog="postgresql://user@host/db"`
    (or $LODESTORE_STORE / $LODESTORE_CATALOG), or a named remote (`remote="team"`).

    With `id` of an existing run: resume="allow" or "must" continues it (in its own
    project: naming another one is a ConflictError), "never" or no resume refuses. A run
    that another live process is still running cannot be resumed (ConflictError) until
    that process ends, or, on another host, its heartbeat goes stale."""
    explicit_project = project if project is not None else settings.project()
    project = DEFAULT_PROJECT if explicit_project is None else explicit_project
    validate_name(project, "project name")
    if resume is True:
        resume = "allow"
    if resume not in (None, False, "allow", "must", "never"):
        raise InvalidInputError(f"resume must be 'allow', 'must' or 'never', not {resume!r}")
    service = Service.open(root, store=store, catalog=catalog, remote=remote)
    record: RunRecord | None = None
    if id is not None:
        validate_name(id, "run id")
        existing = service.find_run(id)
        if existing is not None:
            if resume in (None, False, "never"):
                raise ConflictError(f"run {id} already exists; pass resume='allow' to continue it")
            if explicit_project and existing.project != project:
                raise ConflictError(f"run {id} belongs to project {existing.project!r}, not {project!r}; "
                                    f"resume it with project={existing.project!r} (or no project)")
            record = _resume(service, existing, config=config, name=name, group=group, job_type=job_type,
                             notes=notes, tags=tags)
        elif resume == "must":
            raise NotFoundError(f"resume='must' but no run with id {id!r} exists in {service.root}")
    if record is None:
        record = service.create_run(RunRecord(
            id=id or _new_run_id(), project=project, name=name, group=group, job_type=job_type,
            tags=tuple(tags or ()), notes=notes, config=dict(config or {}), summary={}, state="running",
            exit_code=None, created_at=_now(), finished_at=None, heartbeat_at=_now(),
            host=socket.gethostname(), pid=os.getpid(),
        ))
    run = Run(service, record)
    _active.append(run)
    install_hooks()
    if save_code:
        run._save_code()
    return run


def _resume(service: Service, existing: RunRecord, config: dict[str, Any] | None, tags: list[str] | None,
            **fields: str | None) -> RunRecord:
    resumed: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    if config:
        resumed["config"] = {**existing.config, **config}
    if tags is not None:
        resumed["tags"] = list(tags)
    return service.resume_run(
        existing.id, _held_by_another_process, state="running", finished_at=None, exit_code=None,
        heartbeat_at=_now(), host=socket.gethostname(), pid=os.getpid(), **resumed)


def _held_by_another_process(record: RunRecord) -> str | None:
    """Why `record` cannot be resumed now (another live process is running it), or None.
    On this host the pid decides; elsewhere only a fresh heartbeat says it is alive."""
    if record.state != "running":
        return None
    if any(r.id == record.id and not r._finished for r in _active):
        return f"run {record.id} is already active in this process; call run.finish() before resuming it"
    here = record.host == socket.gethostname()
    if here and record.pid is not None and record.pid != os.getpid():
        if not pid_alive(record.pid):
            return None
        return (f"run {record.id} is still running in process {record.pid} on this host; two processes "
                f"cannot continue one run: wait for it to end (or stop it) and resume again")
    if not here:
        age = _now() - (record.heartbeat_at or record.created_at)
        if age <= STALE_AFTER:
            return (f"run {record.id} is running on host {record.host} (heartbeat {age.total_seconds():.0f} s "
                    f"ago); two processes cannot continue one run: resume it once that process ends, or "
                    f"{STALE_AFTER.total_seconds():.0f} s after its last heartbeat if it died")
    return None
