"""Storage accounting: what each version holds, and what the whole store holds.

Joins the catalog (which versions name which file digests) with the store's usage of
groups of files (ContentStore.usage: which chunks each group holds and what they take
on disk). The store knows nothing of versions: this module makes the groups (one per
version, per artifact, per type, the soft-deleted versions) and names the results.

A diff's *new chunk bytes* (`new_chunks`, shown by Compare and `lode diff --json`) are
the stored bytes of the chunks the second version's files hold that the first version's
files do not: what the second version adds to the first in the store, counted by the
same rule as exclusive bytes (below) with the two versions as the only groups.

A version's *exclusive* bytes are the **stored** (compressed, on-disk) bytes of the
chunks no other version holds (live or soft-deleted: both keep bytes until purged),
i.e. what a permanent delete of that version alone followed by gc frees (see
store/usage.py for how packs and records count). The same chunks' raw bytes are
reported separately as `exclusive_logical`.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lodestore.store.base import DEFAULT_GRACE_SECONDS, GroupUsage

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository


@dataclass
class Usage:
    logical: int = 0  # sum of the version's file sizes
    exclusive: int = 0  # stored bytes only this version holds (freed by delete --permanent + gc)
    exclusive_logical: int = 0  # raw bytes of those same chunks


@dataclass
class DiskFigures:
    """Bytes on disk by part (`lode stats` "on disk")."""

    packs: int
    index: int
    catalog: int
    tmp: int

    @property
    def total(self) -> int:
        return self.packs + self.index + self.catalog + self.tmp


@dataclass
class TypeFigures:
    artifacts: int = 0
    versions: int = 0
    logical_bytes: int = 0
    stored_bytes: int = 0  # each chunk's stored bytes split evenly among the artifacts holding it
    unique_bytes: int = 0
    saved_bytes: int = 0
    dedup_ratio: float | None = None


@dataclass
class ArtifactFigures:
    name: str
    type: str
    versions: int
    deleted_versions: int
    broken_versions: int
    logical_bytes: int
    unique_bytes: int
    stored_bytes: int
    saved_bytes: int
    dedup_ratio: float | None
    exclusive_bytes: int  # only its versions hold them: freed if all its versions were purged


@dataclass
class StoreFigures:
    """`lode stats`: measured figures (see `stats`)."""

    logical_bytes: int
    unique_bytes: int
    live_stored_bytes: int
    stored_bytes: int
    disk: DiskFigures
    dead_pack_bytes: int  # pack bytes no live version needs (incl. overhead)
    dedup_saved_bytes: int
    compression_saved_bytes: int
    record_overhead_bytes: int
    saved_bytes: int
    dedup_ratio: float | None
    packs: int
    chunks: int
    files: int
    versions: int
    deleted_versions: int
    broken_versions: int
    soft_deleted_logical_bytes: int
    soft_deleted_exclusive_bytes: int
    gc_reclaimable_bytes: int
    gc_held_by_grace_bytes: int
    gc_grace_seconds: float
    types: dict[str, TypeFigures] = field(default_factory=dict)
    artifacts: list[ArtifactFigures] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`lode stats --json`)."""
        return dataclasses.asdict(self)


def gc_kept_digests(repo: Repository) -> set[str]:
    """The file digests gc keeps: every version's (soft-deleted ones too: they can be
    restored) and the parts of open distributed drafts, kept until the draft expires
    (sdk/distributed.py). `lode gc` and `lode stats`' reclaimable figure both use it."""
    return repo.catalog.referenced_digests(include_deleted=True) | repo.catalog.draft_digests()


@dataclass(frozen=True)
class StoreSummary:
    """The few store-wide figures the web page's stat cards show: `stats`'s, measured
    without its per-artifact and per-type breakdowns and gc plan (one pass over the live
    versions' distinct files), so a server holding a 100,000-file version stays small."""

    artifacts: int
    versions: int
    deleted_versions: int
    broken_versions: int
    logical_bytes: int
    unique_bytes: int
    live_stored_bytes: int
    stored_bytes: int
    dedup_saved_bytes: int
    compression_saved_bytes: int
    saved_bytes: int
    dedup_ratio: float | None


def _savings(logical: int, live: GroupUsage) -> dict[str, Any]:
    """The one rule for the savings (see `stats`): from the logical bytes of the live
    versions and the usage of their distinct files."""
    return dict(dedup_saved_bytes=logical - live.raw_bytes,
                compression_saved_bytes=live.raw_bytes - (live.stored_bytes - live.overhead_bytes),
                saved_bytes=logical - live.stored_bytes, dedup_ratio=_ratio(logical, live.raw_bytes))


def summary(repo: Repository) -> StoreSummary:
    """`StoreSummary`: what `stats` says of the whole store, without its breakdowns."""
    cat = repo.catalog
    arts = cat.list_artifacts()
    states = cat.version_states()
    live = repo.store.usage({"live": cat.referenced_digests(include_deleted=False)})["live"]
    logical = sum(a.total_size for a in arts)
    return StoreSummary(
        artifacts=len(arts), versions=states.get("live", 0) + states.get("broken", 0),
        deleted_versions=states.get("deleted", 0), broken_versions=states.get("broken", 0),
        logical_bytes=logical, unique_bytes=live.raw_bytes, live_stored_bytes=live.stored_bytes,
        stored_bytes=_disk(repo).total, **_savings(logical, live))


def _disk(repo: Repository) -> DiskFigures:
    on_disk = repo.store.disk_usage()
    # a PostgreSQL catalog is not a file here: its bytes are the server's
    catalog = _file_bytes(repo.catalog_path) if isinstance(repo.catalog_path, Path) else 0
    return DiskFigures(packs=on_disk.packs, index=on_disk.index, catalog=catalog, tmp=on_disk.tmp)


def usage(repo: Repository, version_ids: Iterable[int] | None = None) -> dict[int, Usage]:
    """Logical and exclusive bytes of every version (soft-deleted included), or of the
    given ones (exclusivity is still judged against every version: the versions holding
    files that share a chunk with them are found by lookups, not a pass over every
    manifest, and count as one group, since only whether someone else holds a chunk
    matters)."""
    per_version: dict[int, set[str]] = defaultdict(set)
    out: dict[int, Usage] = defaultdict(Usage)
    wanted = None if version_ids is None else set(version_ids)
    same = _Interned()
    for vid, digest, size in repo.catalog.version_digests(include_deleted=True, version_ids=wanted):
        per_version[vid].add(same(digest))
        out[vid].logical += size
    groups: dict[Hashable, set[str]] = {vid: digests for vid, digests in per_version.items()}
    if wanted is not None:
        files: set[str] = set().union(*per_version.values()) if per_version else set()
        files |= repo.store.files_sharing_chunks(files)
        others: set[str] = set()
        for holder, digest in repo.catalog.digest_holders(files):
            if holder not in wanted:
                others.add(same(digest))
        groups[_OTHERS] = others
    measured = repo.store.usage(groups)
    for vid in per_version:
        out[vid].exclusive = measured[vid].exclusive_stored_bytes
        out[vid].exclusive_logical = measured[vid].exclusive_raw_bytes
    return {v: out[v] for v in (wanted if wanted is not None else out)}


_OTHERS = ("every", "other", "version")  # the group of the versions not asked about


class _Interned(dict[str, str]):
    """One string object per digest, however many versions name it: two 100,000-file
    versions sharing 90% of their files keep 110,000 digests in memory, not 200,000."""

    def __call__(self, digest: str) -> str:
        return self.setdefault(digest, digest)


@dataclass(frozen=True)
class NewChunks:
    """The chunks version b's files hold that version a's files do not (see the module
    docstring): their stored bytes (compressed, record headers included; a pack only
    such chunks fill counts whole) and their raw bytes."""

    stored_bytes: int
    raw_bytes: int


def new_chunks(repo: Repository, a_id: int, b_id: int) -> NewChunks:
    """What b adds to a in chunks. Only b's files a lacks are looked at, and of a's files
    only those sharing a chunk with them (found by lookups, not a pass over a's manifest):
    a modified 1 GB checkpoint that kept 95% of its chunks adds the other 5%."""
    fresh = repo.catalog.digests_only_in(b_id, a_id)
    if not fresh:
        return NewChunks(0, 0)
    sharing = repo.store.files_sharing_chunks(fresh)
    in_a = {digest for vid, digest in repo.catalog.digest_holders(sharing) if vid == a_id}
    added = repo.store.usage({"b": fresh, "a": in_a})["b"]
    return NewChunks(added.exclusive_stored_bytes, added.exclusive_raw_bytes)


def version_usage(repo: Repository, version_id: int) -> Usage:
    return usage(repo, [version_id]).get(version_id, Usage())


def _file_bytes(path: Path) -> int:
    total = 0
    for q in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            total += q.stat().st_size
        except OSError:
            pass
    return total


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


def _union(per_version: dict[int, set[str]], vids: Iterable[int]) -> set[str]:
    out: set[str] = set()
    for v in vids:
        out |= per_version.get(v, set())
    return out


def stats(repo: Repository, gc_grace: float | None = None) -> StoreFigures:
    """Measured figures (see the README's `lode stats`):

    - logical_bytes: what all live versions add up to (soft-deleted ones apart);
    - unique_bytes: raw bytes of the distinct chunks live versions reference;
    - live_stored_bytes: on-disk bytes of those chunks (compressed, with their record
      headers: record_overhead_bytes);
    - stored_bytes: everything on disk: pack files (dead bytes too), index.db,
      catalog.db and tmp/ (broken down under `disk`);
    - dedup_saved_bytes = logical - unique; compression_saved_bytes = unique - their
      compressed bytes (headers apart); saved_bytes = logical - live_stored_bytes, i.e.
      dedup + compression - record overhead; dedup_ratio = logical / unique;
    - per type and per artifact: logical, stored (each chunk's bytes split evenly among
      the artifacts referencing it), saved and dedup ratio; per artifact also the bytes
      only its versions hold (freed if all its versions were purged);
    - soft-deleted bytes, and what gc would reclaim now or hold back for its grace."""
    cat, store = repo.catalog, repo.store
    # gc's plan first, while nothing else is held: it reads every file and chunk row, and
    # on top of the per-version sets below it was the whole pass's peak of memory
    plan = store.plan_gc(gc_kept_digests(repo), grace=DEFAULT_GRACE_SECONDS if gc_grace is None else gc_grace)
    arts = list(cat.list_artifacts())
    records = {}
    art_of: dict[int, int] = {}
    versions_of: list[list[int]] = []  # per artifact, its version ids (no scan of every version per artifact)
    for i, art in enumerate(arts):
        versions_of.append([])
        for r in cat.list_versions(art.project, art.name, include_deleted=True):
            records[r.id] = r
            art_of[r.id] = i
            versions_of[i].append(r.id)
    per_version: dict[int, set[str]] = defaultdict(set)
    # logical bytes here are the files' (a version's size also counts its references'
    # recorded sizes, whose bytes the store never holds: they are no dedup saving)
    file_bytes: dict[int, int] = defaultdict(int)
    same = _Interned()
    for vid, digest, size in cat.version_digests(include_deleted=True):
        per_version[vid].add(same(digest))
        file_bytes[vid] += size
    del same
    deleted = {v for v, r in records.items() if r.state == "deleted"}
    live = set(records) - deleted
    outsiders = set(per_version) - set(records)  # committed after the versions were listed

    total = store.usage({"live": _union(per_version, live)})["live"]
    by_art_live = store.usage({i: _union(per_version, (v for v in vids if v in live))
                               for i, vids in enumerate(versions_of)})
    art_groups: dict[Hashable, set[str]] = {i: _union(per_version, vids) for i, vids in enumerate(versions_of)}
    art_groups.update({("outside", v): per_version[v] for v in outsiders})
    by_art_all = store.usage(art_groups)
    del art_groups
    live_of_type: dict[str, list[int]] = defaultdict(list)
    for v in live:
        live_of_type[arts[art_of[v]].type].append(v)
    types_live = store.usage({t: _union(per_version, live_of_type[t]) for t in {a.type for a in arts}})
    soft = store.usage({"deleted": _union(per_version, deleted),
                        "others": _union(per_version, set(per_version) - deleted)})["deleted"]

    logical = sum(file_bytes[v] for v in live)
    per_artifact: list[ArtifactFigures] = []
    types: dict[str, TypeFigures] = {}
    type_stored: dict[str, float] = defaultdict(float)
    for i, art in enumerate(arts):
        vs = [records[v] for v in versions_of[i]]
        a_logical = sum(file_bytes[r.id] for r in vs if r.state != "deleted")
        a_stored = round(by_art_live[i].shared_stored_bytes)
        a_unique = by_art_live[i].raw_bytes
        per_artifact.append(ArtifactFigures(
            name=f"{art.project}/{art.name}", type=art.type,
            versions=sum(r.state != "deleted" for r in vs),
            deleted_versions=sum(r.state == "deleted" for r in vs),
            broken_versions=sum(r.state == "broken" for r in vs),
            logical_bytes=a_logical, unique_bytes=a_unique, stored_bytes=a_stored,
            saved_bytes=a_logical - a_stored, dedup_ratio=_ratio(a_logical, a_unique),
            exclusive_bytes=by_art_all[i].exclusive_stored_bytes,
        ))
        t = types.setdefault(art.type, TypeFigures())
        t.artifacts += 1
        t.versions += per_artifact[-1].versions
        t.logical_bytes += a_logical
        type_stored[art.type] += by_art_live[i].shared_stored_bytes
    for name, t in types.items():
        t.stored_bytes = round(type_stored[name])
        t.unique_bytes = types_live[name].raw_bytes
        t.saved_bytes = t.logical_bytes - t.stored_bytes
        t.dedup_ratio = _ratio(t.logical_bytes, t.unique_bytes)
    disk = _disk(repo)
    st = store.stats()
    return StoreFigures(
        logical_bytes=logical,
        unique_bytes=total.raw_bytes,
        live_stored_bytes=total.stored_bytes,
        stored_bytes=disk.total,
        disk=disk,
        dead_pack_bytes=disk.packs - total.stored_bytes,
        record_overhead_bytes=total.overhead_bytes,
        **_savings(logical, total),
        packs=st.pack_count, chunks=st.chunk_count, files=st.file_count,
        versions=len(live), deleted_versions=len(deleted),
        broken_versions=sum(r.state == "broken" for r in records.values()),
        soft_deleted_logical_bytes=sum(file_bytes[v] for v in deleted),
        soft_deleted_exclusive_bytes=soft.exclusive_stored_bytes,
        gc_reclaimable_bytes=plan.reclaimable_bytes,
        gc_held_by_grace_bytes=plan.bytes_held_by_grace,
        gc_grace_seconds=plan.grace_seconds,
        types=types,
        artifacts=per_artifact,
    )
