"""`Artifact`: a draft you fill with files, then, once logged, an immutable version.

A draft records *where* each entry's bytes are (a local path, or a staged file written
through `new_file`); nothing is hashed or stored until `Run.log_artifact`, which hands
the draft to the door (`Service.log`): every file goes into the content store in one
write session, and only then is the version committed to the catalog, so a version is
visible only when all its bytes are stored.

A logged Artifact's files never change; its description, metadata, tags and aliases can
be edited and persisted with `save()` (the W&B way). Everything a logged Artifact does
(files, downloads, edits, lineage, delete) goes through the door it was bound to.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from lodestore import settings
from lodestore.catalog.records import LATEST, ReferenceEntry, VersionRecord
from lodestore.config import checked_duration
from lodestore.errors import (
    ConflictError,
    ImmutableError,
    InvalidInputError,
    SourceFileNotFoundError,
)
from lodestore.json_values import json_dict
from lodestore.names import normalize_entry_path, validate_name
from lodestore.sdk.artifact_files import ArtifactEntry, default_root
from lodestore.sdk.diff import VersionDiff
from lodestore.sdk.draft import Draft, DraftFiles, PendingFile, WalkRoot, patterns, plain_entry
from lodestore.sdk.gitignore import gitignore_filter
from lodestore.sdk.lineage import LineageGraph
from lodestore.sdk.local_folder import file_digest
from lodestore.sdk.public_run import PublicRun
from lodestore.sdk.references import resolve as resolve_references
from lodestore.sdk.run_end import current_run
from lodestore.sdk.runicorn import ArtifactManifest, ArtifactMetadata, ManifestFile
from lodestore.sdk.service import Service
from lodestore.sdk.tables import PartitionedTable, Table
from lodestore.sdk.tables import entry_name as table_entry
from lodestore.sdk.walk import walk_files

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository

__all__ = ["Artifact", "ArtifactEntry"]
ADD_FILE_POLICIES = ("immutable", "mutable")
TMP_NAME_DIGITS = 20  # is_tmp: the entry's name becomes this many hex digits of its digest (as W&B)


class Artifact:
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
            origin = project or settings.project() or Path.cwd().name
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
        self._files = DraftFiles()
        self._references: dict[str, ReferenceEntry] = {}
        # set once logged
        self._record: VersionRecord | None = None
        self._service: Service | None = None
        self._aliases: list[str] = []

    # ------------------------------------------------------------------ building
    def _check_draft(self) -> None:
        if self._record is not None:
            raise ImmutableError(
                f"{self.qualified_name} is logged and its files are immutable; "
                "make a new Artifact with the same name to log a new version"
            )

    def add_file(self, local_path: str | os.PathLike[str], name: str | None = None,
                 is_tmp: bool = False, skip_cache: bool = False, policy: str = "immutable",
                 overwrite: bool = False) -> None:
        """Add one file, optionally under another `name` inside the artifact.

        `policy="immutable"` (the default) reads the file when the draft is logged, so
        it must not change until then; `"mutable"` snapshots it now (a copy in the
        draft's staging folder), so later edits do not reach the version (W&B's default;
        here it is asked for, as it costs a copy). `is_tmp=True` names the entry by its
        content: the part of the name before the first dot becomes 20 hex digits of the
        file's digest (``tmpa8x2.csv`` -> ``3f9c...e1.csv``), so temporary files never
        collide (as W&B). `skip_cache` is accepted for W&B code: logging never copies
        files into the download cache, so it is always skipped."""
        self._check_draft()
        for flag, value in (("is_tmp", is_tmp), ("skip_cache", skip_cache), ("overwrite", overwrite)):
            if not isinstance(value, bool):
                raise InvalidInputError(f"add_file {flag}= takes True or False, not {value!r}")
        if policy not in ADD_FILE_POLICIES:
            raise InvalidInputError(f"add_file policy= must be 'immutable' or 'mutable', not {policy!r}")
        path = Path(local_path).expanduser()
        if not path.exists():
            raise SourceFileNotFoundError(f"no such file: {path}")
        if path.is_dir():
            raise InvalidInputError(f"{path} is a directory; use add_dir() to add a folder")
        if not path.is_file():
            raise InvalidInputError(f"{path} is not a regular file")
        entry_name = name if name is not None else path.name
        if is_tmp:
            folder, _, base = normalize_entry_path(entry_name).rpartition("/")
            stem = file_digest(path)[:TMP_NAME_DIGITS]
            entry_name = f"{folder}/" * bool(folder) + ".".join([stem, *base.split(".")[1:]])
        if overwrite:
            self._files.pending.pop(normalize_entry_path(entry_name), None)
        elif _holds_same_bytes(self._files.pending.get(normalize_entry_path(entry_name)), path):
            return  # the same content again under the same name: nothing to add (as W&B)
        if policy == "mutable":
            self._files.add_snapshot(entry_name, path, self._name)
        else:
            self._files.add(entry_name, PendingFile(path.resolve()), self._name)

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
        keep = gitignore_filter(root) if use_gitignore else None
        prefix = normalize_entry_path(name) + "/" if name else ""
        pending = self._files.pending
        generation = pending.new_generation()  # what this call adds: all of it, or none if it fails
        walk_root = WalkRoot(os.path.join(os.path.realpath(root), ""), len(prefix), generation)
        count = 0
        batch: list[tuple[str, str]] = []
        try:
            for rel, path in walk_files(root, exclude, include, follow_external_symlinks):
                if keep is not None and not keep(rel):
                    continue
                entry = prefix + rel
                if not plain_entry(entry):
                    entry = normalize_entry_path(entry)  # the naming rules decide, and explain
                batch.append((entry, path))
                if len(batch) >= _ADD_DIR_BATCH:
                    count += self._add_walked(batch, walk_root)
                    batch = []
            count += self._add_walked(batch, walk_root)
        except BaseException:
            pending.drop_generation(generation)
            raise
        pending.end_generation()
        return count

    def _add_walked(self, batch: list[tuple[str, str]], root: WalkRoot) -> int:
        """Add a batch of add_dir's (entry, source path); an entry this add_dir already
        added, or one the draft holds with other bytes, is a conflict. Returns the batch's
        size (an entry held already with the same bytes counts, as it always did)."""
        pending = self._files.pending
        entries = [entry for entry, _ in batch]
        held = pending.held(entries)
        if not held and len(set(entries)) == len(entries):  # all new (the common case): no loop here
            pending.add_walked(batch, root)
            return len(batch)
        new: dict[str, str] = {}
        for entry, path in batch:
            found = held.get(entry)
            if entry in new or (found is not None and (found[1] == root.generation
                                                        or not _holds_same_bytes(found[0], Path(path)))):
                raise ConflictError(f"artifact {self._name!r} already has an entry named {entry!r}")
            if found is None:
                new[entry] = path
        pending.add_walked(list(new.items()), root)
        return len(batch)

    def new_file(self, name: str, mode: str = "w", encoding: str | None = None) -> IO[Any]:
        """Open a new file to write straight into the artifact (a context manager)."""
        self._check_draft()
        if "r" in mode or "a" in mode or "+" in mode:
            raise InvalidInputError(f"new_file mode must be 'w', 'x', 'wb' or 'xb', not {mode!r}")
        return self._files.new_file(name, mode, encoding, self._name)

    def add_reference(self, uri: str, name: str | None = None, checksum: bool | str = True,
                      max_objects: int | None = None, size: int | None = None) -> list[str]:
        """Name files by URI without storing their bytes (``s3://``, ``file://``,
        ``http(s)://``): what identifies each one is recorded now (S3 ETag and version id,
        size, last-modified; a file's BLAKE3; an HTTP body's BLAKE3 and ETag), a prefix or
        folder becoming one entry per object (at most `max_objects`, default 10,000).
        `checksum="sha256:…"` (Runicorn) records that digest and `size` without reading
        anything; `checksum=False` records the URI only. `download()` fetches them,
        refusing changed content; `verify()` reports changed or vanished ones
        (sdk/references.py). Returns the entry paths."""
        self._check_draft()
        refs = resolve_references(uri, name, checksum, max_objects, size)
        for ref in refs:
            if ref.path in self._files.pending or ref.path in self._references:
                raise ConflictError(f"artifact {self._name!r} already has an entry named {ref.path!r}")
        self._references.update((r.path, r) for r in refs)
        return [r.path for r in refs]

    def add(self, obj: Table | PartitionedTable, name: str) -> str:
        """Add a `Table` (stored as Parquet, entry ``<name>.table.parquet``) or a
        `PartitionedTable` (entry ``<name>.partitioned-table.json``) under `name`;
        `get(name)` reads it back. Returns the entry's path."""
        self._check_draft()
        entry, data = table_entry(obj, name)
        with self.new_file(entry, "wb") as f:
            f.write(data)
        return normalize_entry_path(entry)

    def get(self, name: str) -> Table:
        """The table added as `name` (a partitioned table: all its parts as one table)."""
        return self._door().read_table(self._logged_record(), name)

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
        self._files.remove(name, self._name)

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
        """Bytes of the files plus the recorded sizes of the reference entries (as W&B's
        `artifact.size`; a reference recorded without a size counts 0). None of a
        reference's bytes are stored: `exclusive_size` leaves them out."""
        if self._record:
            return self._record.size
        return self._files.size() + sum(r.size or 0 for r in self._references.values())

    @property
    def file_count(self) -> int:
        return self._record.file_count if self._record else len(self._files.pending)

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

    def get_metadata(self) -> ArtifactMetadata:
        """Runicorn spelling: the metadata (a copy, `.metadata`) with the version's facts
        (`.created_at`, `.size_bytes`, `.file_count`, ...); reads as the metadata dict too."""
        record = self._record
        state = "draft" if record is None else ("ready" if record.state == "live" else record.state)
        return ArtifactMetadata(
            name=self._name, type=self._type, version=self.version, project=self.project,
            description=self.description, metadata=copy.deepcopy(self._metadata), tags=tuple(self._tags),
            aliases=tuple(self._aliases), created_at=self.created_at, created_by=self.logged_by_run_id,
            size_bytes=self.size, file_count=self.file_count, digest=self.digest, status=state)

    @property
    def logged_by_run_id(self) -> str | None:
        return self._record.created_by_run if self._record else None

    # ------------------------------------------------------------------ logging (the door does it)
    @property
    def draft(self) -> Draft:
        """What logging this draft hands the door (`Service.log`)."""
        self._check_draft()
        return Draft(name=self._name, type=self._type, project=self._project, description=self.description,
                     metadata=self._metadata, tags=list(self._tags), ttl=self._ttl, files=self._files.pending,
                     open_files=self._files.still_open(), references=self._references)

    def _log_through(self, service: Service, project: str, aliases: Iterable[str], run_id: str | None) -> bool:
        """Log this draft through `service` and become the version it made (or found).
        True if a new version was made."""
        result = service.log(self.draft, project, aliases, run_id=run_id)
        self._bind(service, result.version)
        self._files.discard()
        return result.created

    def _log(self, where: Service | Repository, project: str, aliases: Iterable[str], run_id: str | None) -> bool:
        """`_log_through` for callers holding a Repository (tests of the store's lifecycle)."""
        return self._log_through(Service.of(where), project, aliases, run_id)

    def _bind(self, service: Service, record: VersionRecord) -> None:
        self._service = service
        self._record = record
        self._name = record.name
        self._type = record.type
        self._project = record.project
        self.description = record.description
        self._metadata = copy.deepcopy(record.metadata)
        self._tags = list(record.tags)
        self._aliases = list(record.aliases)

    @classmethod
    def _from_record(cls, where: Service | Repository, record: VersionRecord) -> Artifact:
        art = cls.__new__(cls)
        art._files, art._ttl, art._references = DraftFiles(), None, {}
        art._bind(Service.of(where), record)
        return art

    def _door(self) -> Service:
        """The door of a logged version (InvalidInputError for a draft)."""
        if self._record is None or self._service is None:
            raise InvalidInputError(f"artifact {self._name!r} is a draft; log it first")
        return self._service

    def _logged_record(self) -> VersionRecord:
        self._door()
        assert self._record is not None
        return self._record

    # ------------------------------------------------------------------ files of a logged version
    def files(self) -> list[ArtifactEntry]:
        service, record = self._door(), self._logged_record()
        return [ArtifactEntry(service, record, e) for e in service.entries(record)]

    def get_manifest(self) -> ArtifactManifest:
        """Runicorn spelling: `.files` (each `.path`, `.size`, `.digest`) and
        `.total_files`; reads as the dict {path: {"digest", "size"}} too."""
        service, record = self._door(), self._logged_record()
        files = [ManifestFile(e.path, e.size, e.digest) for e in self.files()]
        files += [ManifestFile(r.path, r.size or 0, r.digest or r.etag or "", r.uri)
                  for r in service.references(record)]
        return ArtifactManifest(tuple(sorted(files, key=lambda f: f.path)))

    def references(self) -> list[ReferenceEntry]:
        """The version's reference entries (no bytes stored; see add_reference)."""
        return self._door().references(self._logged_record())

    def get_entry(self, name: str) -> ArtifactEntry:
        service, record = self._door(), self._logged_record()
        return ArtifactEntry(service, record, service.entry(record, name))

    get_path = get_entry  # W&B's older spelling

    def file(self, root: str | os.PathLike[str] | None = None) -> str:
        """W&B's spelling for an artifact of exactly one file (or reference): download it
        under `root` and return the file's path. More than one is an InvalidInputError
        (use `download()`)."""
        service, record = self._door(), self._logged_record()
        paths = [e.path for e in service.entries(record)] + [r.path for r in service.references(record)]
        if len(paths) != 1:
            raise InvalidInputError(f"{record.qualified_name} holds {len(paths)} files; file() is for an "
                                    "artifact of exactly one: use download()")
        return str(self.download(root) / paths[0])

    def wait(self, timeout: int | None = None) -> Artifact:
        """W&B waits here for a logged artifact to finish uploading. `log_artifact`
        returns once the version is committed, so a logged Artifact is ready: returns
        itself (`timeout` is accepted and unused). A draft is an InvalidInputError."""
        self._door()
        return self

    def link(self, target_path: str, aliases: Iterable[str] | None = None) -> Artifact:
        """W&B's link into another collection: this version's files and references
        become a version of `target_path` (``name``, ``project/name`` or
        ``entity/project/name``; the entity is ignored, the project defaults to this
        one's), with the same type, description, metadata and tags, and `aliases`. No byte
        is copied. Linking the same content twice finds the version made the first time.
        Returns the linked version."""
        service, record = self._door(), self._logged_record()
        parts = target_path.split("/") if isinstance(target_path, str) else []
        if not parts or not all(parts) or len(parts) > 3 or ":" in target_path:
            raise InvalidInputError(f"link target {target_path!r} must look like 'name', 'project/name' or "
                                    "'entity/project/name' (no version: linking makes one)")
        project = parts[-2] if len(parts) > 1 else record.project
        linked = service.link(record, project, parts[-1], aliases or ())
        return Artifact._from_record(service, linked.version)

    def _target(self, root: str | os.PathLike[str] | None) -> Path:
        return Path(root) if root is not None else default_root(self._logged_record())

    def download(self, root: str | os.PathLike[str] | None = None, target_dir: str | os.PathLike[str] | None = None,
                 path_prefix: str | None = None, hardlink: bool = False, overwrite: bool = False) -> Path:
        """Materialise the version's files under `root` (or `target_dir`); returns the folder.

        Files already present with the right content are kept (re-downloads are cheap);
        missing ones are written from the store, verified, atomically. A file of the
        user's with other content (or a symlink) where the version has a file is a
        ConflictError, raised before anything is written, unless `overwrite=True`
        replaces it; files not in the version are left alone (checkout() deletes them).
        By default files are copies the user may edit freely; `hardlink=True` links them
        to a read-only cache copy instead (fast, no extra space, but read-only).
        """
        service, record = self._door(), self._logged_record()
        if root is not None and target_dir is not None and Path(root) != Path(target_dir):
            raise InvalidInputError("pass root= or target_dir=, not both")
        folder = service.download(record, self._target(root if root is not None else target_dir),
                                  hardlink=hardlink, overwrite=overwrite, path_prefix=path_prefix)
        service.download_references(record, folder, path_prefix=path_prefix)
        return folder

    def checkout(self, root: str | os.PathLike[str] | None = None, hardlink: bool = False) -> Path:
        """Make `root` match the version exactly: delete what is not in it (files, folders
        standing where a file goes, symlinks), then download, replacing files that
        differ. The store itself is never touched, even when it lives inside `root`."""
        return self._door().checkout(self._logged_record(), self._target(root), hardlink=hardlink)

    def verify(self, root: str | os.PathLike[str] | None = None) -> None:
        """Raise VerificationError listing every file under `root` that is missing,
        modified, or not part of the version."""
        self._door().verify(self._logged_record(), self._target(root))

    # ------------------------------------------------------------------ editing a logged version
    def save(self) -> Artifact:
        """Persist edits to description, metadata, tags and aliases of a logged version.

        Only what changed since this object was loaded (or last saved or refreshed) is
        sent: aliases and tags added or removed, metadata keys set or deleted, the
        description if edited. So a `lode alias set` or another process's edit made in
        the meantime survives, unless this object changed the same thing. Afterwards the
        object shows the stored state, including those other edits."""
        service, record = self._door(), self._logged_record()
        # edited in place (a.metadata["k"] = ...), so checked here, by the rule of every write
        self._metadata = json_dict(self._metadata, "metadata")
        run = current_run()
        run_id = run.id if run is not None and run.root == service.root else None
        self._bind(service, service.edit(record, run_id=run_id, **self._edits(record)))
        return self

    def _edits(self, loaded: VersionRecord) -> dict[str, Any]:
        """What this object changed since it was bound to `loaded`, as `Service.edit`'s
        arguments (a `latest` added or removed by hand is among them: the door refuses it)."""
        edits: dict[str, Any] = {}
        if self.description != loaded.description:
            edits["description"] = self.description
        before, now = loaded.metadata, json.loads(json.dumps(self._metadata))  # tuples compare as lists
        if changed := {k: v for k, v in now.items() if k not in before or before[k] != v}:
            edits["metadata_set"] = changed
        if gone := [k for k in before if k not in now]:
            edits["metadata_unset"] = gone
        for field, held, wanted in (("tags", list(loaded.tags), self._tags),
                                    ("aliases", list(loaded.aliases), self._aliases)):
            if added := [x for x in wanted if x not in held]:
                edits[f"{field}_add"] = added
            if removed := [x for x in held if x not in wanted]:
                edits[f"{field}_remove"] = removed
        return edits

    def refresh(self) -> Artifact:
        service, record = self._door(), self._logged_record()
        self._bind(service, service.version_by_id(record.id))
        return self

    # ------------------------------------------------------------------ lifecycle
    def delete(self, permanent: bool = False, delete_aliases: bool = False) -> None:
        """Soft-delete this version (hidden, `restore()` brings it back); permanent=True
        erases it for good (its bytes go at the next gc). A version holding aliases other
        than latest is refused unless delete_aliases=True."""
        service, record = self._door(), self._logged_record()
        deleted = service.delete(record, permanent=permanent, delete_aliases=delete_aliases)
        if deleted is not None:
            self._bind(service, deleted)
        else:
            self._record = replace(record, state="purged", aliases=())
            self._aliases = []

    def restore(self) -> Artifact:
        """Undo a soft delete (a version whose bytes fsck --repair found lost comes back
        "broken")."""
        service, record = self._door(), self._logged_record()
        self._bind(service, service.restore_version(record))
        return self

    @property
    def exclusive_size(self) -> int:
        """Stored (on-disk, compressed) bytes only this version holds: what deleting it
        alone for good, then gc, frees. Its logical size is `logical_size`."""
        return self._door().version_usage(self._logged_record()).exclusive

    @property
    def logical_size(self) -> int:
        return self.size

    # ------------------------------------------------------------------ lineage and diff
    def logged_by(self) -> PublicRun | None:
        """The run that logged this version (a public run object), or None."""
        service = self._door()
        run = service.producer_run(self._logged_record())
        return None if run is None else PublicRun(service, run, Artifact._from_record)

    def used_by(self) -> list[PublicRun]:
        """Runs that used this version, in the order they first used it."""
        service = self._door()
        return [PublicRun(service, r, Artifact._from_record) for r in service.version_users(self._logged_record())]

    def lineage(self, direction: str = "both", depth: int | None = None) -> LineageGraph:
        """The lineage graph around this version (see `lodestore.sdk.lineage`)."""
        return self._door().lineage(self._logged_record(), direction=direction, depth=depth)

    def downstream(self, type: str | None = None, depth: int | None = None) -> list[Artifact]:
        """Versions made from this one, directly or through intermediate versions
        (``dataset.downstream(type="model")``: every model trained on it)."""
        service = self._door()
        return [Artifact._from_record(service, v) for v in self.lineage("down", depth).versions(type)]

    def upstream(self, type: str | None = None, depth: int | None = None) -> list[Artifact]:
        """Versions this one was made from, directly or transitively."""
        service = self._door()
        return [Artifact._from_record(service, v) for v in self.lineage("up", depth).versions(type)]

    def diff(self, other: Artifact) -> VersionDiff:
        """Compare this version (old) with `other` (new); see `lodestore.sdk.diff`."""
        return self._door().diff(self._logged_record(), other._logged_record())

    # ------------------------------------------------------------------ dunder
    def __format__(self, spec: str) -> str:
        """Runicorn's `run.log_artifact` returns the version number, so its samples print
        ``f"resnet50-model:v{version}"``: a logged Artifact formats as its number (the
        N of vN; versions count from v0 here). str() and repr() are unchanged."""
        if spec == "" and self._record is not None:
            return str(self._record.index)
        return format(str(self), spec)

    def __int__(self) -> int:
        """The version number (Runicorn's log_artifact returns it as an int)."""
        return self._logged_record().index

    def __repr__(self) -> str:
        if self._record:
            return f"<Artifact {self.qualified_name} type={self._type} files={self.file_count} size={self.size}>"
        return f"<Artifact draft {self._name!r} type={self._type} files={len(self._files.pending)}>"


_ADD_DIR_BATCH = 4096  # walked files looked up and added at a time (one query each once the draft spilled)


def _holds_same_bytes(held: PendingFile | None, path: Path) -> bool:
    """True if the draft entry `held` already has the bytes of `path`: the same file, or
    one with the same content. Adding the same content twice under one name is no
    conflict (W&B compares digests; Runicorn's add_dir samples add a folder twice)."""
    if held is None:
        return False
    source = Path(held.source)
    try:
        if source.resolve() == path.resolve():
            return True
        return source.stat().st_size == path.stat().st_size and file_digest(source) == file_digest(path)
    except OSError:
        return False
