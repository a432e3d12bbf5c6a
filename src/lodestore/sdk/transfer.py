"""Copying versions between two stores (push, pull, import), moving only what the
destination lacks. The door (`Service.push`, `pull`, `import_bundle`) calls `copy_versions`.

The path of a copy, per version (oldest first, artifact by artifact):

1. Already there? The destination's live versions of the artifact are listed once; one
   with the same manifest digest is the same version: only aliases it lacks are added.
   An unchanged push costs a handful of catalog calls and no store call, whatever its size.
2. Otherwise, inside a destination write session held for the whole copy (its shared gc
   lock keeps a sweep away until the version exists, as in log_draft.py): ask which files
   the destination lacks (`missing`), their recipes from the source a page of files at a
   time (`recipes`), which of their chunks it lacks a window at a time (`missing_chunks`,
   never one request per chunk; a destination that held nothing when the version's
   copy began lacks them all and is not asked: `StoreSink`), and move only those: a
   stored pack of which at least ADOPT_FRACTION is wanted moves whole (`pack_shares`, `copy_pack` ->
   `adopt_pack`: one download, every record checked in one loop, its entries indexed
   in one insert), the rest in their stored form (`read_frames` -> `add_frames`: no
   recompression; one stream for the chunks of many pages, so the source reads ahead
   across them); then record the files (`add_recipes`). Into a destination that held
   nothing, every chunk of every file is wanted: the source's packs are weighed for the
   whole version first (`file_packs`, which also names the files of several chunks:
   only theirs are asked for recipes), every mostly wanted pack starts downloading at
   once, and a page's files are recorded as soon as the packs holding their chunks are
   adopted, in the same batch session or a later one (the packs that arrived together
   are adopted, and their pages recorded, before one commit). The source's index is
   read for this from the rows of its objects before they are merged into its cache,
   when that cache held nothing (a new machine: S3ContentStore.file_packs). The
   destination verifies every
   chunk (decoded and hashed once, on arrival: the source does not check them again) and
   every file. Received chunks are
   committed every COMMIT_BYTES in sessions of their own, so a killed copy keeps what it
   moved and the next one moves only the rest.
3. Only when every file is in the destination store does its catalog commit the version
   (its own number, `latest` moved by its own rule), with the producing run in the same
   transaction: the catalog writes the version's rows while the store commits the last
   bytes (on a thread of its own), and its transaction waits for them before it commits
   (`Catalog.commit_version`'s `stored`). Then the runs that made or used the copied
   versions and their links (`import_runs`, one transaction; a link only where both ends
   are at the destination).

A kill anywhere before step 3's commit leaves the destination showing nothing new.

Sources are anything that can list versions, their manifests, lineage, recipes and
chunks (`TransferSource`): another store (`RepositorySource`) or a bundle file
(sdk/bundle.py), so push, pull and import follow one set of rules, written here.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lodestore.catalog.base import Catalog
from lodestore.catalog.records import (
    LATEST,
    ManifestEntry,
    NewVersion,
    ReferenceEntry,
    RunRecord,
    VersionRecord,
)
from lodestore.errors import CorruptionError, InvalidInputError, NotFoundError
from lodestore.gc_pause import gc_paused
from lodestore.names import parse_ref, validate_name
from lodestore.sdk import ui
from lodestore.sdk.lifecycle import refuse_broken
from lodestore.sdk.manifest import manifest_digest
from lodestore.sdk.references import digest_line
from lodestore.store.base import CheckedPack, ChunkFrame, FilePacks, FileRecipe, PackShare, WriteSession
from lodestore.testhooks import pause_point

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository

MiB = 1024 * 1024
# The destination commits what it received every this many bytes: a killed copy loses at
# most this much work (a large file's chunks are kept even before the file is complete).
COMMIT_BYTES = 64 * MiB
FILE_PAGE = 1024  # files whose recipes are asked for at once
CHUNK_WINDOW = 4096  # chunk digests per missing_chunks request (~320 MiB of 80 KiB chunks)
# Chunks asked of the source in one read_chunks stream (~5 GiB of 80 KiB chunks): the
# source reads ahead across that many, and the copy holds their digests and recipes.
STREAM_CHUNKS = 65536
ADD_BYTES = 1 * MiB  # received chunks handed to the session at once: memory stays flat
READ_AHEAD = 1  # batches the source reads ahead of the destination
# A stored pack of which the copy wants at least this fraction (stored bytes) moves whole
# (`_WholePacks`); the rest of it is dead bytes at the destination, which gc's repack
# reclaims once more than half a pack is dead (DEFAULT_REPACK_THRESHOLD): a pack adopted
# at this fraction or more is never repack work at once.
ADOPT_FRACTION = 0.5
# Packs downloaded at once (an S3 pack: one GET streamed to its file), each then checked
# on the thread that downloaded it (at most CHECKS_AT_ONCE at a time: store/session.py).
# Measured against 8 (a pull of 6 packs, fresh processes, 6 rounds): 1.10 against 1.13 s,
# CPU 1.14 against 1.18 s, peak 151-155 against 155-159 MB; 3 and 6 were no better.
ADOPT_THREADS = 4
# A copy into a store that held nothing weighs the source's packs by file before it reads
# a recipe (`file_packs`), this many files (and at most PLAN_BYTES of them, ~65,000
# chunks of the mean size) a call: the source's work per call stays bounded whatever the
# version's size.
PLAN_FILES = 32768
PLAN_BYTES = 4 * 1024 * MiB


# ----------------------------------------------------------------------------- what moves
@dataclass(frozen=True)
class VersionKey:
    """A version as two stores both know it: numbers differ between stores, content does not."""

    project: str
    name: str
    digest: str  # the manifest digest

    @classmethod
    def of(cls, v: VersionRecord) -> VersionKey:
        return cls(v.project, v.name, v.digest)


@dataclass(frozen=True)
class RunLink:
    """A lineage edge: the run used ("input") or made ("output") the version."""

    run_id: str
    kind: str
    version: VersionKey


@dataclass(frozen=True)
class Lineage:
    """The runs that made or used some versions, and every link of those runs."""

    runs: dict[str, RunRecord] = field(default_factory=dict)
    links: list[RunLink] = field(default_factory=list)


class TransferSource(abc.ABC):
    """Where versions are copied from: their records, manifests, lineage, and the bytes of
    their files as recipes and chunks (the ContentStore transfer interface's read side)."""

    location: str  # for messages
    # Whether read_frames already reads ahead of its caller on threads of its own (a
    # remote store's parallel ranged GETs): then the copy adds no reading thread of its own.
    reads_ahead: bool = False

    @abc.abstractmethod
    def versions(self) -> list[VersionRecord]:
        """The versions to copy, oldest first within each artifact."""

    @abc.abstractmethod
    def entries(self, version: VersionRecord) -> list[ManifestEntry]: ...

    @abc.abstractmethod
    def references(self, version: VersionRecord) -> list[ReferenceEntry]: ...

    @abc.abstractmethod
    def lineage(self, versions: list[VersionRecord]) -> Lineage:
        """The runs that made or used `versions`, with all their links."""

    @abc.abstractmethod
    def recipes(self, digests: Iterable[str]) -> dict[str, FileRecipe]: ...

    @abc.abstractmethod
    def read_frames(self, chunk_digests: Iterable[str]) -> Iterator[ChunkFrame]:
        """The chunks in their stored form, not necessarily verified (ContentStore.read_frames)."""

    def prepare(self) -> None:  # noqa: B027 (optional: most sources have nothing to prepare)
        """A version is about to be copied: start what can run while its manifest is read
        (a remote store's index sync: ContentStore.prepare_transfer)."""

    def close(self) -> None:  # noqa: B027 (optional: a source may hold nothing)
        """Release what the source holds (a bundle's temp index)."""


class RepositorySource(TransferSource):
    """Versions of another store (push from here, pull from there)."""

    def __init__(self, repo: Repository, versions: list[VersionRecord], calls: Counter | None = None):
        self.repo = repo
        self.location = str(repo.root)
        self._versions = versions
        self._catalog: Catalog = counted(repo.catalog, calls, "source catalog")
        self._store = counted(repo.store, calls, "source store")
        self.reads_ahead = bool(getattr(repo.store, "reads_ahead", False))
        self._prepared = False

    def versions(self) -> list[VersionRecord]:
        return self._versions

    def entries(self, version: VersionRecord) -> list[ManifestEntry]:
        return list(self._catalog.iter_entries(version.id))

    def references(self, version: VersionRecord) -> list[ReferenceEntry]:
        return self._catalog.iter_references(version.id)

    def lineage(self, versions: list[VersionRecord]) -> Lineage:
        ids = [v.id for v in versions]
        if not ids:
            return Lineage()
        run_ids = {v.created_by_run for v in versions if v.created_by_run}
        run_ids |= {run for run, _, _ in self._catalog.lineage_hop(ids, "up")}
        run_ids |= {run for run, _, _ in self._catalog.lineage_hop(ids, "down")}
        runs = self._catalog.get_runs(run_ids)
        links = []
        for run_id in sorted(runs):
            for kind, linked in (("input", self._catalog.run_inputs(run_id)),
                                 ("output", self._catalog.run_outputs(run_id))):
                links += [RunLink(run_id, kind, VersionKey.of(v)) for v in linked if v.state != "deleted"]
        return Lineage(runs, links)

    def recipes(self, digests: Iterable[str]) -> dict[str, FileRecipe]:
        return self._store.recipes(digests)

    def read_frames(self, chunk_digests: Iterable[str]) -> Iterator[ChunkFrame]:
        return self._store.read_frames(chunk_digests)

    def prepare(self) -> None:
        if not self._prepared:
            self._prepared = True
            self._store.prepare_transfer()

    def pack_shares(self, chunk_digests: Iterable[str]) -> list[PackShare]:
        """The store's packs holding these chunks (ContentStore.pack_shares): a copy from
        a store may move whole packs (a bundle moves frames only)."""
        return self._store.pack_shares(chunk_digests)

    def file_packs(self, digests: Iterable[str]) -> FilePacks:
        """The store's packs holding every chunk of these files, and which files are of
        several chunks or not there (ContentStore.file_packs)."""
        return self._store.file_packs(digests)

    def copy_pack(self, pack_id: str, dest: str | os.PathLike[str]) -> None:
        """One of `pack_shares`' packs as stored, to `dest` (ContentStore.copy_pack)."""
        self._store.copy_pack(pack_id, dest)


def select_versions(repo: Repository, refs: Iterable[str], project: str | None = None,
                    calls: Counter | None = None) -> list[VersionRecord]:
    """The live versions `refs` name: ``project/name:vN`` or ``:alias`` one version (a
    broken one refused), ``project/name`` every live one, ``project/`` (or `project`)
    every artifact of the project; each once, oldest first within each artifact. Broken
    versions met through a whole artifact are left out, with a notice. `calls` counts
    the catalog requests (TransferResult.calls)."""
    catalog: Catalog = counted(repo.catalog, calls, "source catalog")
    chosen: dict[int, VersionRecord] = {}

    def whole_artifact(p: str, name: str) -> None:
        for v in catalog.list_versions(p, name):
            if v.state == "broken":
                ui.notice(f"{v.qualified_name} is broken (bytes lost): left out")
            else:
                chosen.setdefault(v.id, v)

    def whole_project(p: str) -> None:
        validate_name(p, "project name")
        artifacts = catalog.list_artifacts(project=p)
        if not artifacts:
            known = ", ".join(catalog.list_projects()[:10]) or "none"
            raise NotFoundError(f"project {p!r} has no artifacts at {repo.root} (projects: {known})")
        for a in artifacts:
            whole_artifact(a.project, a.name)

    refs = list(refs)
    if project is not None:
        whole_project(project)
    if not refs and project is None:
        raise InvalidInputError("name what to copy: project/name:vN, project/name (every version) or project/")
    for text in refs:
        if isinstance(text, str) and text.endswith("/") and text.count("/") == 1:
            whole_project(text[:-1])
            continue
        r = parse_ref(text)
        if r.selector is None:
            whole_artifact(r.project, r.name)
            continue
        v = catalog.get_version(r.project, r.name, r.selector)
        if v.state == "broken":
            refuse_broken(repo, v)
        chosen.setdefault(v.id, v)
    order: dict[tuple[str, str], int] = {}
    for v in chosen.values():
        order.setdefault((v.project, v.name), len(order))
    return sorted(chosen.values(), key=lambda v: (order[(v.project, v.name)], v.index))


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class VersionCopy:
    """One version of a copy: its name at the source and at the destination (numbers
    are the destination's own), and whether the copy made it (False: it was there)."""

    source: str
    destination: str | None  # None in a dry run of a version not there yet
    created: bool
    files_moved: int = 0
    chunks_moved: int = 0
    bytes_moved: int = 0


@dataclass
class TransferResult:
    """What a push, pull or import did (or, `dry_run`, would do)."""

    source: str
    destination: str
    versions: list[VersionCopy] = field(default_factory=list)
    files_moved: int = 0  # files recorded at the destination
    files_present: int = 0  # files of copied versions the destination held already
    file_bytes: int = 0  # logical bytes of the files moved
    chunks_moved: int = 0  # chunks sent (a dry run: chunks that would be sent)
    bytes_moved: int = 0  # raw bytes of those chunks (not known ahead in a dry run)
    runs: int = 0  # runs that made or used the versions: all at the destination afterwards
    runs_written: int = 0  # of which created or updated by the lineage step (a producer arrives with its version)
    links_added: int = 0  # lineage links added there
    calls: dict[str, int] = field(default_factory=dict)  # requests made, by catalog/store and side
    dry_run: bool = False

    @property
    def copied(self) -> list[VersionCopy]:
        return [v for v in self.versions if v.created]

    @property
    def already_there(self) -> list[VersionCopy]:
        return [v for v in self.versions if not v.created]

    @property
    def catalog_calls(self) -> int:
        return sum(n for k, n in self.calls.items() if k.endswith("catalog"))

    @property
    def store_calls(self) -> int:
        return sum(n for k, n in self.calls.items() if k.endswith("store"))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(copied=len(self.copied), already_there=len(self.already_there),
                 catalog_calls=self.catalog_calls, store_calls=self.store_calls)
        return d


# ----------------------------------------------------------------------------- counting requests
def counted(target: Any, calls: Counter | None, name: str) -> Any:
    """`target` with every method call counted under `name` in `calls` (the request
    figures of a TransferResult); write sessions it opens are counted too."""
    return target if calls is None else _Counted(target, calls, name)


class _Counted:
    def __init__(self, target: Any, calls: Counter, name: str):
        self._target, self._calls, self._name = target, calls, name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._target, attr)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls[self._name] += 1
            result = value(*args, **kwargs)
            return _Counted(result, self._calls, self._name) if isinstance(result, WriteSession) else result

        return call

    def __enter__(self) -> _Counted:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._target.__exit__(*exc)


# ----------------------------------------------------------------------------- moving files
class ChunkSink(abc.ABC):
    """Where received chunks and recipes go: a store's write sessions, or a bundle."""

    @abc.abstractmethod
    def missing(self, digests: Iterable[str]) -> set[str]: ...

    @abc.abstractmethod
    def missing_chunks(self, chunk_digests: Iterable[str]) -> set[str]: ...

    @abc.abstractmethod
    def add_frames(self, frames: list[ChunkFrame]) -> None:
        """Store received frames, each verified first (ChunkFrame.raw())."""

    @abc.abstractmethod
    def add_recipes(self, recipes: list[FileRecipe]) -> None: ...


class StoreSink(ChunkSink):
    """A destination store: chunks go into write sessions committed every `commit_bytes`
    (None: all into `guard`, the session the catalog commit happens in). A store that
    held nothing when the sink was made (a pull into a new store) lacks every file and
    chunk the copy asks about: it is not asked (`ContentStore.holds_nothing`; move_files
    never asks twice about a chunk it sent). One sink per version: a later version of
    the same copy asks a store that is no longer empty."""

    def __init__(self, store: Any, guard: WriteSession, commit_bytes: int | None):
        self.store, self.guard, self.commit_bytes = store, guard, commit_bytes
        self._session: WriteSession | None = None
        self._pending = 0
        self.held_nothing = bool(store.holds_nothing())  # when the copy began: it lacks every file and chunk

    def missing(self, digests: Iterable[str]) -> set[str]:
        return set(digests) if self.held_nothing else self.store.missing(digests)

    def missing_chunks(self, chunk_digests: Iterable[str]) -> set[str]:
        return set(chunk_digests) if self.held_nothing else self.store.missing_chunks(chunk_digests)

    def _current(self) -> WriteSession:
        if self.commit_bytes is None:
            return self.guard
        if self._session is None:
            self._session = self.store.session()
        return self._session

    def add_frames(self, frames: list[ChunkFrame]) -> None:
        self._current().add_frames(frames)
        self._pending += sum(len(f.stored) for f in frames)
        if self.commit_bytes is not None and self._pending >= self.commit_bytes:
            self._commit()

    def add_recipes(self, recipes: list[FileRecipe]) -> None:
        self._current().add_recipes(recipes)

    def received_pack_path(self) -> str | os.PathLike[str]:
        """In the guard session's temp folder: it lives as long as the copy (a batch
        session's folder goes at its commit, maybe while a pack is still downloading)."""
        return self.guard.received_pack_path()

    def check_pack(self, path: str | os.PathLike[str]) -> CheckedPack:
        """Check every record of the pack received whole at `path` (WriteSession.check_pack; any thread)."""
        return self.guard.check_pack(path)

    def adopt_pack(self, pack: CheckedPack) -> dict[bytes, int]:
        """Taken by the current batch session; committed by `commit_if_due`, once the
        caller has adopted every pack that arrived together and recorded the files they
        complete (one commit for them all, not one a pack)."""
        held = self._current().adopt_pack(pack)
        self._pending += pack.size
        return held

    def commit_if_due(self) -> None:
        """Commit the batch session if it holds COMMIT_BYTES or more (the frames' rule)."""
        if self.commit_bytes is not None and self._pending >= self.commit_bytes:
            self._commit()

    def _commit(self) -> None:
        session, self._session, self._pending = self._session, None, 0
        if session is not None:
            with session:
                session.commit()
            pause_point("transfer-after-batch-commit")

    def finish(self) -> None:
        """Commit what the last batch session holds (the guard commits with the version)."""
        self._commit()

    def abort(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            session.abort()
            session.close()


@dataclass
class FilesMoved:
    files: int = 0
    present: int = 0
    file_bytes: int = 0
    chunks: int = 0
    chunk_bytes: int = 0


def move_files(source: TransferSource, sink: ChunkSink, entries: list[ManifestEntry], what: str,
               dry_run: bool = False, progress: Callable[[int], None] | None = None,
               sent: set[str] | None = None) -> FilesMoved:
    """Bring the files of `entries` the sink lacks into it; see the module docstring.
    `sent`: chunks already handed to this sink by the same copy (not asked for again).

    The chunks of many pages of files (up to STREAM_CHUNKS) move together: packs mostly
    wanted move whole, the rest in one `read_frames` stream, so the source reads ahead
    across pages (a remote store: parallel ranged GETs in pack order) while the sink
    stores what arrived. Into a store that held nothing, every chunk of every file is
    wanted: the source's packs are weighed by file before any recipe is read
    (`_WholePacks.plan`), so their downloads start at once and run while the pages'
    recipes are read, and each page's files are recorded as soon as the packs holding
    its chunks are in (`_WaitingPages`), while the rest download. Elsewhere a pack
    starts downloading as soon as the pages read so far make it mostly wanted, and the
    pages' files are recorded once the stream's chunks are all in."""
    sizes = {e.digest: e.size for e in entries}
    lacking = sink.missing(sizes)
    ordered = [d for d in sizes if d in lacking]
    done = FilesMoved(files=len(ordered), present=len(sizes) - len(ordered),
                      file_bytes=sum(sizes[d] for d in ordered))
    sent = set() if sent is None else sent
    waiting = _WaitingPages(sink)
    wanted: list[str] = []
    # Whole packs move between two stores only: a bundle offers frames, a dry run or a
    # read-only destination takes nothing.
    packs = (_WholePacks(source, sink, waiting, progress)
             if isinstance(source, RepositorySource) and isinstance(sink, StoreSink) and not dry_run else None)
    planned = packs is not None and packs.sink.held_nothing
    try:
        if packs is not None and planned:
            packs.plan(ordered, sizes)
        for start in range(0, len(ordered), FILE_PAGE):
            page = ordered[start : start + FILE_PAGE]
            recipes = packs.recipes(page, sizes) if packs is not None and planned else source.recipes(page)
            if absent := [d for d in page if d not in recipes]:
                raise NotFoundError(f"{what}: the source {source.location} lacks {len(absent)} of its files "
                                    f"(first {absent[0][:16]}...); run `lode fsck` there")
            need = [c for c in dict.fromkeys(c for d in page for c in recipes[d].chunks) if c not in sent]
            if planned:  # the sink lacks them all (StoreSink.held_nothing); their packs are on their way
                sent.update(need)
                wanted += need
            else:
                for w in range(0, len(need), CHUNK_WINDOW):
                    window = need[w : w + CHUNK_WINDOW]
                    lacks = sink.missing_chunks(window)
                    sent.update(window)
                    new = [c for c in window if c in lacks]
                    wanted += new
                    if packs is not None and new:
                        packs.offer(new)
            waiting.add([recipes[d] for d in page], track=planned)
            if packs is not None:
                packs.adopt_arrived()
            if len(wanted) >= STREAM_CHUNKS or start + FILE_PAGE >= len(ordered):
                if packs is not None:
                    wanted = packs.finish(wanted, done)
                _move_stream(source, sink, wanted, waiting, done, dry_run, progress)
                wanted = []
    finally:
        if packs is not None:
            packs.close()
    return done


def _move_stream(source: TransferSource, sink: ChunkSink, wanted: list[str], waiting: _WaitingPages,
                 done: FilesMoved, dry_run: bool, progress: Callable[[int], None] | None) -> None:
    """Send the `wanted` chunks in one stream, then record the files of the pages waiting."""
    if dry_run:
        done.chunks += len(wanted)
        waiting.drop()
        return
    if wanted:
        frames = source.read_frames(wanted)
        count, size = _send(_batches(frames) if source.reads_ahead else _read_ahead(frames), sink, progress)
        done.chunks += count
        done.chunk_bytes += size
    waiting.record_all()


class _WaitingPages:
    """Pages of files read, their files not recorded yet (`ChunkSink.add_recipes`). A
    page that a copy into a store holding nothing `track`s is recorded as soon as every
    chunk of its files is in a pack the sink adopted (`record_held`, while other packs
    still download): its file rows then go into the batch session holding those packs
    or a later one, so no committed file row lacks a chunk, whenever the copy is killed.
    The rest wait until the stream's frames are in (`record_all`)."""

    def __init__(self, sink: ChunkSink):
        self.sink = sink
        self._pages: list[list[FileRecipe]] = []
        self._tracked: list[tuple[list[FileRecipe], list[bytes]]] = []  # with the chunks not seen held yet

    def add(self, recipes: list[FileRecipe], track: bool) -> None:
        if track:
            chunks = dict.fromkeys(c for r in recipes for c in r.chunks)
            self._tracked.append((recipes, [bytes.fromhex(c) for c in chunks]))
        else:
            self._pages.append(recipes)

    def record_held(self, held: dict[bytes, int]) -> None:
        """Record each tracked page every chunk of which is in `held` (the chunks of the
        packs adopted so far); a page's chunks are looked at until the first not held."""
        still = []
        for recipes, chunks in self._tracked:
            while chunks and chunks[-1] in held:
                chunks.pop()
            if chunks:
                still.append((recipes, chunks))
            else:
                self.sink.add_recipes(recipes)
        self._tracked = still

    def record_all(self) -> None:
        """Record every page waiting: the caller has the sink hold all their chunks."""
        for recipes, _ in self._tracked:
            self.sink.add_recipes(recipes)
        for recipes in self._pages:
            self.sink.add_recipes(recipes)
        self.drop()

    def drop(self) -> None:
        self._pages, self._tracked = [], []


class _WholePacks:
    """The source's packs a copy moves whole. Into a store that held nothing, `plan`
    weighs them by file at the start (`file_packs`) and starts every pack of
    which at least ADOPT_FRACTION (stored bytes) is wanted at once; elsewhere, `offer`ed
    the chunks each page adds to the wanted ones, it asks which packs hold them
    (`pack_shares`) and starts a pack as soon as the pages so far want that much of it.
    ADOPT_THREADS download at once, into the sink's temp folder; each pack is checked by
    the sink on its download thread (every record decoded and hashed) and taken by the
    sink on the calling thread between pages (its entries indexed in one insert; the
    pages then held whole recorded: `_WaitingPages.record_held`), the rest at `finish`."""

    def __init__(self, source: RepositorySource, sink: StoreSink, waiting: _WaitingPages,
                 progress: Callable[[int], None] | None):
        self.source, self.sink, self.waiting, self.progress = source, sink, waiting, progress
        self._pool: ThreadPoolExecutor | None = None
        self._wanted_bytes: dict[str, list[int]] = {}  # pack id -> [size, wanted stored bytes]
        self._fetches: dict[Future, str] = {}  # downloads not adopted yet
        self._held: dict[bytes, int] = {}  # chunks of the packs adopted: digest -> raw size
        self._wanted: set[bytes] = set()  # every chunk offered
        self._planned = False
        self._chunked: set[str] = set()  # planned files of several chunks (their recipes are asked)
        self._absent: set[str] = set()  # planned files the source does not hold

    def plan(self, files: list[str], sizes: dict[str, int]) -> None:
        """Weigh the packs holding the chunks of `files` (all wanted: the sink held
        nothing) and start downloading each mostly wanted, before any recipe is read;
        note which files are of several chunks, or absent (`recipes`)."""
        self._planned = True
        page: list[str] = []
        page_bytes = 0
        for d in files:
            page.append(d)
            page_bytes += sizes[d]
            if len(page) >= PLAN_FILES or page_bytes >= PLAN_BYTES:
                self._plan_page(page)
                page, page_bytes = [], 0
        if page:
            self._plan_page(page)

    def _plan_page(self, files: list[str]) -> None:
        found = self.source.file_packs(files)
        self._chunked.update(found.chunked)
        self._absent.update(found.absent)
        self._weigh(found.shares)

    def recipes(self, page: list[str], sizes: dict[str, int]) -> dict[str, FileRecipe]:
        """The recipes of a page of planned files: asked of the source for its files of
        several chunks alone; a file of one chunk is that chunk, its size the manifest's
        (the sink checks it against the chunk's); an absent file is left out."""
        chunked = [d for d in page if d in self._chunked]
        found = self.source.recipes(chunked) if chunked else {}
        for d in page:
            if d not in self._chunked and d not in self._absent:
                found[d] = FileRecipe(d, sizes[d], (d,))
        return found

    def offer(self, chunks: list[str]) -> None:
        self._wanted.update(bytes.fromhex(c) for c in chunks)
        self._weigh(self.source.pack_shares(chunks))

    def _weigh(self, shares: list[PackShare]) -> None:
        """Add what the copy wants of each pack; start those now mostly wanted."""
        for share in shares:
            seen = self._wanted_bytes.setdefault(share.pack_id, [share.size, 0])
            started = seen[1] >= ADOPT_FRACTION * seen[0]
            seen[1] += share.wanted_bytes
            if not started and seen[1] >= ADOPT_FRACTION * seen[0]:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(ADOPT_THREADS, thread_name_prefix="lodestore-transfer-pack")
                self._fetches[self._pool.submit(self._fetch, share.pack_id)] = share.pack_id

    def _fetch(self, pack_id: str) -> CheckedPack:
        """On a download thread: the pack downloaded, then checked by the sink there (its
        hashing overlaps with the calling thread's work; blake3 and zstd release the GIL)."""
        path = self.sink.received_pack_path()
        self.source.copy_pack(pack_id, path)
        pause_point("transfer-pack-received")  # tests kill a copy here: a pack downloaded, not checked
        return self.sink.check_pack(path)

    def adopt_arrived(self) -> None:
        """Adopt the packs downloaded and checked so far (between pages), and record the
        pages read so far whose packs are all in."""
        self._adopt([f for f in self._fetches if f.done()])
        self.waiting.record_held(self._held)

    def _adopt(self, arrived: list[Future]) -> None:
        """Adopt the packs of `arrived` (done), record the pages they complete, then commit
        once if due, unless no download is left: the last packs commit with the files
        recorded after them (or `finish`), so the end of a copy commits once, not twice."""
        for fetch in arrived:
            del self._fetches[fetch]
            try:
                checked = fetch.result()
            except NotFoundError:
                continue  # gone meanwhile (another machine's gc): its chunks go as frames
            chunks = self.sink.adopt_pack(checked)
            self._held.update(chunks)
            if self.progress:
                # planned: the pack is mostly wanted, counted whole (the pages naming its chunks may come later)
                self.progress(sum(chunks.values()) if self._planned else
                              sum(n for c, n in chunks.items() if c in self._wanted))
        if arrived:
            self.waiting.record_held(self._held)
            if self._fetches:
                self.sink.commit_if_due()

    def finish(self, wanted: list[str], done: FilesMoved) -> list[str]:
        """Wait for every download and adopt each as it arrives (recording the pages it
        completes); returns the chunks of `wanted` still to move as frames (in packs
        mostly unwanted, or a pack gone meanwhile: the frame path locates them again,
        after a sync, or names what is lost)."""
        while self._fetches:  # every pack done by the time one is waited for is adopted with it
            wait(list(self._fetches), return_when=FIRST_COMPLETED)
            self._adopt([f for f in self._fetches if f.done()])
        rest = []
        for c in wanted:
            size = self._held.get(bytes.fromhex(c))
            if size is None:
                rest.append(c)
            else:
                done.chunks += 1
                done.chunk_bytes += size
        if not self._planned:
            self._wanted_bytes, self._held, self._wanted = {}, {}, set()
        return rest

    def close(self) -> None:
        """Stop what was not started; wait for the downloads running (their files are in
        the sink's temp folder, dropped with it)."""
        for f in self._fetches:
            f.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def _send(batches: Iterator[tuple[list[ChunkFrame], int]], sink: ChunkSink,
          progress: Callable[[int], None] | None) -> tuple[int, int]:
    """Hand `batches` of frames to the sink (which decodes and verifies every frame),
    with the source read ahead meanwhile (`_read_ahead`, or the source's own threads);
    (chunks, raw bytes) sent."""
    count = total = 0
    for batch, size in batches:
        sink.add_frames(batch)
        count, total = count + len(batch), total + size
        if progress:
            progress(size)
    return count, total


def _batches(frames: Iterable[ChunkFrame]) -> Iterator[tuple[list[ChunkFrame], int]]:
    """`frames` in batches of ADD_BYTES stored bytes, each with its raw byte count."""
    batch: list[ChunkFrame] = []
    size = stored = 0
    for frame in frames:
        batch.append(frame)
        size += frame.raw_len
        stored += len(frame.stored)
        if stored >= ADD_BYTES:
            yield batch, size
            batch, size, stored = [], 0, 0
    if batch:
        yield batch, size


def _read_ahead(frames: Iterator[ChunkFrame]) -> Iterator[tuple[list[ChunkFrame], int]]:
    """Batches of `frames` (`_batches`), READ_AHEAD of them read in advance on a helper
    thread (a source that reads on the caller's thread, like a local store's preads:
    blake3, zstd and preads release the GIL, so reading and storing overlap); an error
    of the source is raised here, and leaving early stops it."""
    ready: queue.Queue = queue.Queue(maxsize=READ_AHEAD)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for item in _batches(frames):
                if stop.is_set():
                    return
                put(item)
            put(None)
        except BaseException as e:
            put(e)

    reader = threading.Thread(target=produce, name="lodestore-transfer-read", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():
            try:
                ready.get_nowait()
            except queue.Empty:
                reader.join(0.05)


# ----------------------------------------------------------------------------- the copy
class _DestinationVersions:
    """The destination's live versions by content, listed once per artifact."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._by_artifact: dict[tuple[str, str], dict[str, VersionRecord]] = {}

    def find(self, key: VersionKey) -> VersionRecord | None:
        known = self._by_artifact.get((key.project, key.name))
        if known is None:
            try:
                listed = self.catalog.list_versions(key.project, key.name)
            except NotFoundError:
                listed = []
            known = self._by_artifact[(key.project, key.name)] = {}
            for v in listed:
                if v.state == "live":
                    known.setdefault(v.digest, v)
        return known.get(key.digest)

    def add(self, v: VersionRecord) -> None:
        self.find(VersionKey.of(v))  # lists the artifact first if it is new here
        self._by_artifact[(v.project, v.name)][v.digest] = v


def custom_aliases(v: VersionRecord) -> list[str]:
    return [a for a in v.aliases if a != LATEST]


def copy_versions(source: TransferSource, dest: Repository, *, dry_run: bool = False,
                  commit_bytes: int | None = COMMIT_BYTES, label: str = "copy",
                  calls: Counter | None = None) -> TransferResult:
    """Copy every version of `source` into `dest`; see the module docstring. `calls`
    counts requests (the source's, if it was made with the same counter, and ours).
    Python's cycle collector is off meanwhile (gc_paused): a copy of 21,000 files made
    ~330 small collections and two full ones, ~0.2 s of a 1.5 s pull with every thread
    stopped; the copy's rows and frames make no reference cycles."""
    with gc_paused():
        return _copy_versions(source, dest, dry_run, commit_bytes, label, calls)


def _copy_versions(source: TransferSource, dest: Repository, dry_run: bool, commit_bytes: int | None, label: str,
                   calls: Counter | None) -> TransferResult:
    calls = Counter() if calls is None else calls
    catalog: Catalog = counted(dest.catalog, calls, "destination catalog")
    store = counted(dest.store, calls, "destination store")
    result = TransferResult(source.location, str(dest.root), dry_run=dry_run)
    there = _DestinationVersions(catalog)
    versions = source.versions()
    lineage = source.lineage(versions)
    planned = _ReadOnlySink(store) if dry_run else None
    for v in versions:
        found = there.find(VersionKey.of(v))
        if found is not None:
            lacking = [a for a in custom_aliases(v) if a not in found.aliases]
            if lacking and not dry_run:
                for alias in lacking:
                    catalog.set_alias(found.project, found.name, alias, found.index)
            result.versions.append(VersionCopy(v.qualified_name, found.qualified_name, created=False))
            continue
        source.prepare()
        copy = _copy_version(source, v, store, catalog, lineage, planned, commit_bytes, label, result)
        if copy is not None:
            there.add(copy)
    if not dry_run:
        _copy_lineage(catalog, there, lineage, result)
    result.calls = dict(sorted(calls.items()))
    return result


def _copy_version(source: TransferSource, v: VersionRecord, store: Any, catalog: Catalog, lineage: Lineage,
                  planned: _ReadOnlySink | None, commit_bytes: int | None, label: str,
                  result: TransferResult) -> VersionRecord | None:
    entries = source.entries(v)
    references = source.references(v)
    if manifest_digest(entries + [digest_line(r) for r in references]) != v.digest:
        raise CorruptionError(f"{v.qualified_name} at {source.location}: its manifest does not match its "
                              "digest; nothing was copied")
    if planned is not None:  # a dry run
        moved = move_files(source, planned, entries, v.qualified_name, dry_run=True)
        _count(result, moved)
        result.versions.append(VersionCopy(v.qualified_name, None, True, moved.files, moved.chunks, 0))
        return None
    lacking_bytes = sum(e.size for e in entries) if ui.interactive() else 0
    with store.session() as guard, ui.byte_progress(f"{label} {v.qualified_name}", lacking_bytes) as advance:
        sink = StoreSink(store, guard, commit_bytes)
        try:
            moved = move_files(source, sink, entries, v.qualified_name, progress=advance)
        except BaseException:
            sink.abort()
            raise
        # The last bytes are committed to the store on a thread of their own while the
        # catalog writes the version's rows; its transaction waits for them before it
        # commits (Catalog.commit_version's `stored`), so the version is still visible
        # only once every byte is stored, and not at all if storing them fails. The two
        # commits were back to back at the end of a pull (~0.05 s for the store's last
        # batch, ~0.08 s for 21,000 manifest rows). Still inside the guard session: gc
        # cannot sweep the files before the version exists.
        with ThreadPoolExecutor(1, thread_name_prefix="lodestore-transfer-commit") as last:
            stored = last.submit(_commit_bytes, sink, guard)
            committed = catalog.commit_version(NewVersion(
                project=v.project, name=v.name, type=v.type, entries=entries, references=references,
                digest=v.digest, description=v.description, metadata=v.metadata, tags=list(v.tags),
                aliases=custom_aliases(v), ttl_seconds=v.ttl_seconds, created_at=v.created_at,
                run=lineage.runs.get(v.created_by_run) if v.created_by_run else None,
            ), stored=stored.result)
    _count(result, moved)
    made = committed.version  # created False: a concurrent copy committed the same content first
    result.versions.append(VersionCopy(v.qualified_name, made.qualified_name, committed.created, moved.files,
                                       moved.chunks, moved.chunk_bytes))
    return made


def _commit_bytes(sink: StoreSink, guard: WriteSession) -> None:
    """The end of a version's copy into the store: its last batch, then the guard session."""
    try:
        sink.finish()
    except BaseException:
        sink.abort()
        raise
    guard.commit()
    pause_point("transfer-before-catalog-commit")  # stored; the catalog's transaction not committed


def _count(result: TransferResult, moved: FilesMoved) -> None:
    result.files_moved += moved.files
    result.files_present += moved.present
    result.file_bytes += moved.file_bytes
    result.chunks_moved += moved.chunks
    result.bytes_moved += moved.chunk_bytes


class _ReadOnlySink(ChunkSink):
    """A dry run: the destination store is asked, never written; what an earlier version
    of the same dry run would have sent counts as there."""

    def __init__(self, store: Any):
        self.store = store
        self.files: set[str] = set()
        self.chunks: set[str] = set()

    def missing(self, digests: Iterable[str]) -> set[str]:
        lacking = self.store.missing(digests) - self.files
        self.files |= lacking
        return lacking

    def missing_chunks(self, chunk_digests: Iterable[str]) -> set[str]:
        lacking = self.store.missing_chunks(chunk_digests) - self.chunks
        self.chunks |= lacking
        return lacking

    def add_frames(self, frames: list[ChunkFrame]) -> None:
        raise AssertionError("a dry run sends nothing")

    def add_recipes(self, recipes: list[FileRecipe]) -> None:
        raise AssertionError("a dry run records nothing")


def _copy_lineage(catalog: Catalog, there: _DestinationVersions, lineage: Lineage, result: TransferResult) -> None:
    """The runs of the copied versions and their links whose version is at the destination."""
    if not lineage.runs:
        return
    links = []
    for link in lineage.links:
        if link.run_id in lineage.runs and (found := there.find(link.version)) is not None:
            links.append((link.run_id, link.kind, found.id))
    written, added = catalog.import_runs(list(lineage.runs.values()), links)
    result.runs = len(lineage.runs)
    result.runs_written += written
    result.links_added += added
