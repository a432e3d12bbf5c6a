"""`Artifact`: a draft you fill with files, then, once logged, an immutable version.

A draft records *where* each entry's bytes are (a local path, or a staged file written
through `new_file`); nothing is hashed or stored until `Run.log_artifact`, which streams
every file into the content store in one write session and only then commits the
version to the catalog: a version is visible only when all its bytes are stored.

A logged Artifact's files never change; its description, metadata, tags and aliases can
be edited and persisted with `save()` (the W&B way).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lodestore.catalog.base import LATEST, ManifestEntry, NewVersion, VersionRecord
from lodestore.config import checked_duration
from lodestore.errors import (
    ConflictError,
    ImmutableError,
    InvalidInputError,
    NotFoundError,
    SourceFileNotFoundError,
)
from lodestore.json_values import json_dict
from lodestore.names import case_collisions, normalize_entry_path, validate_alias, validate_name
from lodestore.sdk import ui
from lodestore.sdk.artifact_files import ArtifactEntry, VersionFiles
from lodestore.sdk.artifact_lineage import VersionLineage
from lodestore.sdk.draft import (
    PendingFile,
    check_no_file_folder_clash,
    identical_notice,
    leave_out_the_store,
    patterns,
    pause_for_tests,
    plain_entry,
)
from lodestore.sdk.manifest import manifest_digest
from lodestore.sdk.walk import walk_files

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository


class Artifact(VersionFiles, VersionLineage):
    """A versioned folder of files. See the module docstring."""

    def __init__(self, name: str | None = None, type: str | None = None, description: str | None = None,
                 metadata: dict[str, Any] | None = None, ttl: timedelta | None = None,
                 project: str | None = None):
        if type is None:
            raise InvalidInputError("an artifact needs a type, e.g. Artifact('animals', type='dataset')")
        if name is None:
            if type != "code":
                raise InvalidInputError(f"an artifact of type {type!r} needs a name, e.g. Artifact('animals', "
                                        f"type={type!r}); only code artifacts get one by default")
            # W&B names code artifacts source-<project>-...; without a run yet, the project
            # (or the folder the code lives in) is what identifies this source tree.
            origin = project or os.environ.get("LODESTORE_PROJECT") or Path.cwd().name
            slug = "".join(c if (c.isascii() and c.isalnum()) or c in "._-" else "-" for c in origin)
            name = "source-" + (slug.strip("-.")[:120] or "code")
        if ":" in name:
            raise InvalidInputError(f"artifact name {name!r} must not contain ':'; the version is assigned on log")
        if "/" in name:
            project, _, name = name.partition("/")
        validate_name(name, "artifact name")
        validate_name(type, "artifact type")
        if project is not None:
            validate_name(project, "project name")
        self._name = name
        self._type = type
        self._project = project
        self.description = description
        self._metadata: dict[str, Any] = {}
        if metadata:
            self.add_metadata(metadata)
        self._tags: list[str] = []
        self._ttl = None if ttl is None else checked_duration(
            ttl.total_seconds() if isinstance(ttl, timedelta) else ttl, "ttl")
        self._pending: dict[str, PendingFile] = {}
        self._staging: Path | None = None
        # set once logged
        self._record: VersionRecord | None = None
        self._repo: Repository | None = None
        self._aliases: list[str] = []

    # ------------------------------------------------------------------ building
    def _check_draft(self) -> None:
        if self._record is not None:
            raise ImmutableError(
                f"{self.qualified_name} is logged and its files are immutable; "
                "make a new Artifact with the same name to log a new version"
            )

    def _add_pending(self, name: str, pending: PendingFile) -> str:
        path = normalize_entry_path(name)
        if path in self._pending:
            raise ConflictError(f"artifact {self._name!r} already has an entry named {path!r}")
        self._pending[path] = pending
        return path

    def add_file(self, local_path: str | os.PathLike[str], name: str | None = None,
                 is_tmp: bool = False, skip_cache: bool = False, policy: str = "mutable",
                 overwrite: bool = False) -> ArtifactEntry | None:
        """Add one file, optionally under another `name` inside the artifact."""
        self._check_draft()
        path = Path(local_path).expanduser()
        if not path.exists():
            raise SourceFileNotFoundError(f"no such file: {path}")
        if path.is_dir():
            raise InvalidInputError(f"{path} is a directory; use add_dir() to add a folder")
        if not path.is_file():
            raise InvalidInputError(f"{path} is not a regular file")
        entry_name = name if name is not None else path.name
        if overwrite:
            self._pending.pop(normalize_entry_path(entry_name), None)
        self._add_pending(entry_name, PendingFile(path.resolve()))
        return None

    def add_dir(self, local_path: str | os.PathLike[str], name: str | None = None,
                exclude_patterns: Iterable[str] | None = None, include_patterns: Iterable[str] | None = None,
                follow_external_symlinks: bool = False, use_gitignore: bool = False) -> int:
        """Add every file under `local_path`, keeping relative paths (under `name/` if given).

        `exclude_patterns` are glob patterns matched against each relative path, its
        basename and its parent folders (``*.tmp``, ``__pycache__``, ``logs/*``).
        Returns the number of files added.
        """
        self._check_draft()
        root = Path(local_path).expanduser()
        if not root.exists():
            raise SourceFileNotFoundError(f"no such folder: {root}")
        if not root.is_dir():
            raise InvalidInputError(f"{root} is not a directory; use add_file() for a single file")
        exclude = patterns(exclude_patterns)
        include = patterns(include_patterns) or None
        if use_gitignore:
            try:
                from lodestore.sdk.gitignore import gitignore_filter
            except ModuleNotFoundError as e:
                if e.name != "lodestore.sdk.gitignore":
                    raise
                raise InvalidInputError("use_gitignore=True is not supported by this version of lodestore; "
                                        "pass exclude_patterns=[...] instead") from None
            keep = gitignore_filter(root)
        else:
            keep = None
        prefix = normalize_entry_path(name) + "/" if name else ""
        added: dict[str, PendingFile] = {}
        pending = self._pending
        for rel, path in walk_files(root, exclude, include, follow_external_symlinks):
            if keep is not None and not keep(rel):
                continue
            entry = prefix + rel
            if not plain_entry(entry):
                entry = normalize_entry_path(entry)  # the naming rules decide, and explain
            if entry in pending or entry in added:
                raise ConflictError(f"artifact {self._name!r} already has an entry named {entry!r}")
            added[entry] = PendingFile(path)
        self._pending.update(added)
        return len(added)

    def new_file(self, name: str, mode: str = "w", encoding: str | None = None):
        """Open a new file to write straight into the artifact (a context manager)."""
        self._check_draft()
        if "r" in mode or "a" in mode or "+" in mode:
            raise InvalidInputError(f"new_file mode must be 'w', 'x', 'wb' or 'xb', not {mode!r}")
        path = normalize_entry_path(name)
        if path in self._pending:
            raise ConflictError(f"artifact {self._name!r} already has an entry named {path!r}")
        if self._staging is None:
            self._staging = Path(tempfile.mkdtemp(prefix="lodestore-new-file-"))
            # a draft dropped without logging must not leave its staged files behind
            weakref.finalize(self, shutil.rmtree, self._staging, True)
        staged = self._staging / path
        staged.parent.mkdir(parents=True, exist_ok=True)
        if "b" not in mode and encoding is None:
            encoding = "utf-8"
        handle = open(staged, mode, encoding=encoding)
        self._pending[path] = PendingFile(staged, staged=True)
        self._handles = {**getattr(self, "_handles", {}), path: handle}
        return handle

    def add_reference(self, uri: str, name: str | None = None, checksum: str | None = None,
                      size: int | None = None) -> None:
        """Reference a file by URI instead of copying it. Only ``file://`` URIs are read
        today: their bytes are stored like add_file (remote schemes come with team mode)."""
        self._check_draft()
        if not uri.startswith("file://"):
            raise InvalidInputError(f"reference {uri!r}: only file:// references are supported in a local store")
        local = Path(uri[len("file://"):])
        if local.is_dir():
            self.add_dir(local, name=name)
        else:
            self.add_file(local, name=name)

    def add_metadata(self, metadata: dict[str, Any]) -> None:
        """Merge keys into the metadata (Runicorn spelling); values must be JSON-serialisable.
        NaN and infinities are stored as None (lodestore.json_values)."""
        self._metadata.update(json_dict(metadata, "metadata"))

    def add_tags(self, *tags: str | Iterable[str]) -> None:
        flat: list[str] = []
        for t in tags:
            flat.extend([t] if isinstance(t, str) else list(t))
        for t in flat:
            validate_name(t, "tag")
            if t not in self._tags:
                self._tags.append(t)

    def remove(self, name: str) -> None:
        """Drop an entry from a draft."""
        self._check_draft()
        path = normalize_entry_path(name)
        if self._pending.pop(path, None) is None:
            raise NotFoundError(f"draft {self._name!r} has no entry {path!r}")

    # ------------------------------------------------------------------ properties
    @property
    def name(self) -> str:
        """``name:vN`` once logged (as W&B), the bare name for a draft."""
        return f"{self._name}:{self.version}" if self._record else self._name

    @property
    def type(self) -> str:
        return self._type

    @property
    def project(self) -> str | None:
        return self._record.project if self._record else self._project

    @property
    def version(self) -> str | None:
        return self._record.version if self._record else None

    @property
    def qualified_name(self) -> str:
        if self._record:
            return self._record.qualified_name
        return f"{self._project or '?'}/{self._name} (draft)"

    @property
    def source_name(self) -> str:
        return self._name

    @property
    def id(self) -> int | None:
        return self._record.id if self._record else None

    @property
    def digest(self) -> str | None:
        return self._record.digest if self._record else None

    @property
    def size(self) -> int:
        if self._record:
            return self._record.size
        return sum(os.stat(p.source).st_size for p in self._pending.values())

    @property
    def file_count(self) -> int:
        return self._record.file_count if self._record else len(self._pending)

    @property
    def created_at(self) -> datetime | None:
        return self._record.created_at if self._record else None

    @property
    def state(self) -> str:
        return self._record.state if self._record else "draft"

    @property
    def ttl(self) -> timedelta | None:
        if self._record and self._record.ttl_seconds is not None:
            return timedelta(seconds=self._record.ttl_seconds)
        return self._ttl

    @property
    def metadata(self) -> dict[str, Any]:
        return self._metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        self._metadata = json_dict(value, "metadata")  # all or nothing: a refused value changes nothing

    @property
    def tags(self) -> list[str]:
        return self._tags

    @tags.setter
    def tags(self, value: Iterable[str]) -> None:
        self._tags = []
        self.add_tags(*value)

    @property
    def aliases(self) -> list[str]:
        return self._aliases

    @aliases.setter
    def aliases(self, value: Iterable[str]) -> None:
        """Assigning a list sets the custom aliases; `latest` stays where the catalog put
        it (only an explicit `aliases.remove("latest")` is refused, at save())."""
        wanted = [a for a in value if a != LATEST]
        held = self._record is not None and LATEST in self._record.aliases
        self._aliases = ([LATEST] if held else []) + wanted

    def get_metadata(self) -> dict[str, Any]:
        """Runicorn spelling: a copy of the metadata."""
        return copy.deepcopy(self._metadata)

    @property
    def logged_by_run_id(self) -> str | None:
        return self._record.created_by_run if self._record else None

    # ------------------------------------------------------------------ logging
    def _log(self, repo: Repository, project: str, aliases: Iterable[str], run_id: str | None) -> bool:
        """Store every byte, then commit the version. Returns True if a new version was made."""
        self._check_draft()
        wanted_aliases = []
        for a in aliases:
            if a == LATEST:
                continue
            validate_alias(a)
            if a not in wanted_aliases:
                wanted_aliases.append(a)
        if self._project is not None and self._project != project:
            project = self._project
        check_no_file_folder_clash(self._pending)
        if clashes := case_collisions(list(self._pending)):
            ui.notice(f"warning: entry names that differ only in case ({'; '.join(' vs '.join(g) for g in clashes)}) "
                      "overwrite each other when downloaded on a case-insensitive file system (macOS, Windows)")
        # edited in place since add_metadata checked it: check again before any byte is stored
        self._metadata = json_dict(self._metadata, "metadata")
        handles = getattr(self, "_handles", {})
        still_open = sorted(p for p, h in handles.items() if not h.closed and p in self._pending)
        if still_open:
            # their last writes may sit in a buffer: storing now would store truncated files
            raise InvalidInputError(f"close the file(s) opened with new_file() before logging: "
                                    f"{', '.join(still_open)} (use `with art.new_file(...) as f:`)")
        leave_out_the_store(self._pending, repo.root)
        total = 0
        if ui.interactive():  # only a drawn bar needs the total: no second stat per file otherwise
            for p in self._pending.values():
                try:
                    total += os.stat(p.source).st_size
                except FileNotFoundError:
                    raise SourceFileNotFoundError(f"{p.source} disappeared before it was logged") from None
        items = sorted(self._pending.items())
        with repo.store.session() as session, ui.byte_progress(f"log {self._name}", total) as advance:
            try:
                refs = session.add_files([p.source for _, p in items], progress=advance)
            except SourceFileNotFoundError as e:
                raise SourceFileNotFoundError(f"{e}: it disappeared before it was logged") from None
            entries = [ManifestEntry(path, ref.digest, ref.size) for (path, _), ref in zip(items, refs)]
            session.commit()
            pause_for_tests("log-before-catalog-commit")
            # Still inside the session: its shared gc lock keeps `lode gc` from sweeping
            # these bytes (new, or re-used and unreferenced) until the version exists.
            result = repo.catalog.commit_version(NewVersion(
                project=project, name=self._name, type=self._type, entries=entries,
                digest=manifest_digest(entries), description=self.description, metadata=self._metadata,
                tags=list(self._tags), aliases=wanted_aliases, run_id=run_id,
                ttl_seconds=int(self._ttl.total_seconds()) if self._ttl is not None else None,
            ))
        if not result.created:
            ui.notice(identical_notice(result.version, self.description, self._metadata, self._tags,
                                        wanted_aliases))
        self._bind(repo, result.version)
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
        return result.created

    def _bind(self, repo: Repository, record: VersionRecord) -> None:
        self._repo = repo
        self._record = record
        self._name = record.name
        self._type = record.type
        self._project = record.project
        self.description = record.description
        self._metadata = copy.deepcopy(record.metadata)
        self._tags = list(record.tags)
        self._aliases = list(record.aliases)
        self._pending = {}

    @classmethod
    def _from_record(cls, repo: Repository, record: VersionRecord) -> Artifact:
        art = cls.__new__(cls)
        art._pending, art._staging, art._ttl = {}, None, None
        art._bind(repo, record)
        return art

    def _logged(self) -> Repository:
        if self._record is None or self._repo is None:
            raise InvalidInputError(f"artifact {self._name!r} is a draft; log it first")
        return self._repo

    # ------------------------------------------------------------------ editing a logged version
    def save(self) -> Artifact:
        """Persist edits to description, metadata, tags and aliases of a logged version.

        Only what changed since this object was loaded (or last saved or refreshed) is
        sent: aliases and tags added or removed, metadata keys set or deleted, the
        description if edited. So a `lode alias set` or another process's edit made in
        the meantime survives, unless this object changed the same thing. Afterwards the
        object shows the stored state, including those other edits."""
        repo = self._logged()
        for a in self._aliases:
            if a != LATEST:
                validate_alias(a)
        # edited in place (a.metadata["k"] = ...), so checked here, by the rule of every write
        self._metadata = json_dict(self._metadata, "metadata")
        from lodestore.sdk.run import current_run  # run imports this module

        run = current_run()
        run_id = run.id if run is not None and run.root == repo.root else None
        record = repo.catalog.update_version(self._record.id, run_id=run_id, **self._edits())
        self._bind(repo, record)
        return self

    def _edits(self) -> dict[str, Any]:
        """What this object changed since it was bound to its record, as update_version's
        change arguments (latest is the catalog's and never part of them)."""
        loaded = self._record
        if (LATEST in loaded.aliases) != (LATEST in self._aliases):
            verb = "added to" if LATEST in self._aliases else "removed from"
            raise InvalidInputError(f"{self.qualified_name}: 'latest' cannot be {verb} a version by hand; it "
                                    "always sits on the newest live version (delete a version to move it)")
        edits: dict[str, Any] = {}
        if self.description != loaded.description:
            edits["description"] = self.description
        before, now = loaded.metadata, json.loads(json.dumps(self._metadata))  # tuples compare as lists
        if changed := {k: v for k, v in now.items() if k not in before or before[k] != v}:
            edits["set_metadata"] = changed
        if gone := [k for k in before if k not in now]:
            edits["unset_metadata"] = gone
        for field, held, wanted in (("tags", list(loaded.tags), self._tags),
                                    ("aliases", [a for a in loaded.aliases if a != LATEST],
                                     [a for a in self._aliases if a != LATEST])):
            if added := [x for x in wanted if x not in held]:
                edits[f"add_{field}"] = added
            if removed := [x for x in held if x not in wanted]:
                edits[f"remove_{field}"] = removed
        return edits

    def refresh(self) -> Artifact:
        repo = self._logged()
        self._bind(repo, repo.catalog.get_version_by_id(self._record.id))
        return self

    # ------------------------------------------------------------------ lifecycle (sdk/lifecycle.py)
    def delete(self, permanent: bool = False, delete_aliases: bool = False) -> None:
        """Soft-delete this version (hidden, `restore()` brings it back); permanent=True
        erases it for good (its bytes go at the next gc). A version holding aliases other
        than latest is refused unless delete_aliases=True."""
        from lodestore.sdk import lifecycle

        repo = self._logged()
        record = lifecycle.delete_version(repo, self._record, permanent=permanent, delete_aliases=delete_aliases)
        if record is not None:
            self._bind(repo, record)
        else:
            from dataclasses import replace

            self._record = replace(self._record, state="purged", aliases=())
            self._aliases = []

    def restore(self) -> Artifact:
        """Undo a soft delete (a version whose bytes fsck --repair found lost comes back
        "broken")."""
        from lodestore.sdk import lifecycle

        repo = self._logged()
        self._bind(repo, lifecycle.restore_record(repo, self._record))
        return self

    @property
    def exclusive_size(self) -> int:
        """Stored (on-disk, compressed) bytes only this version holds: what deleting it
        alone for good, then gc, frees. Its logical size is `logical_size`."""
        from lodestore.sdk import lifecycle

        return lifecycle.version_usage(self._logged(), self._record.id).exclusive

    @property
    def logical_size(self) -> int:
        return self.size

    # ------------------------------------------------------------------ dunder
    def __repr__(self) -> str:
        if self._record:
            return f"<Artifact {self.qualified_name} type={self._type} files={self.file_count} size={self.size}>"
        return f"<Artifact draft {self._name!r} type={self._type} files={len(self._pending)}>"
