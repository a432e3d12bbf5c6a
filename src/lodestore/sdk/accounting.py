"""Storage accounting: what each version holds, and what the whole store holds.

Joins the catalog (which versions name which file digests) with the store (which
chunks make each file, where each chunk sits and how many bytes it takes on disk).

A version's *exclusive* bytes are the **stored** (compressed, on-disk) bytes of the
chunks no other version holds (live or soft-deleted: both keep bytes until purged),
i.e. what a permanent delete of that version alone followed by gc frees. A pack whose
every chunk only that version holds counts with its whole file size (magic, headers
and trailer go with it); a chunk in a pack shared with others counts its record (its
stored bytes plus header), which is what a repack takes out. The same chunks' raw
bytes are reported separately as `exclusive_logical`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lodestore.store import maintenance
from lodestore.store.packs import RECORD_HEADER

if TYPE_CHECKING:
    from lodestore.sdk.repository import Repository


@dataclass
class Usage:
    logical: int = 0  # sum of the version's file sizes
    exclusive: int = 0  # stored bytes only this version holds (freed by delete --permanent + gc)
    exclusive_logical: int = 0  # raw bytes of those same chunks


@dataclass
class _Layout:
    """Every referenced chunk's holders plus where it sits, for one accounting pass."""

    holders: dict[bytes, set[int]]  # chunk -> version ids holding it
    chunk_rows: dict[bytes, tuple[str, int, int]]  # chunk -> (pack id, stored_len, raw_len)
    pack_sizes: dict[str, int]
    pack_chunks: dict[str, list[bytes]]


def _chunk_rows(repo: Repository, pack_ids: set[str] | None = None):
    """chunk -> (pack, stored_len, raw_len) and pack -> its chunks: all of them, or only
    those of the given packs."""
    chunk_rows, pack_chunks = {}, defaultdict(list)
    if pack_ids is None:
        rows = repo.store.index.execute("SELECT digest, pack_id, stored_len, raw_len FROM chunks")
    else:
        ids = sorted(pack_ids)
        rows = [r for i in range(0, len(ids), 900) for r in repo.store.index.execute(
            f"SELECT digest, pack_id, stored_len, raw_len FROM chunks WHERE pack_id IN ({','.join('?' * len(ids[i:i + 900]))})",
            ids[i : i + 900])]
    for d, pid, stored, raw in rows:
        chunk_rows[d] = (pid, stored, raw)
        pack_chunks[pid].append(d)
    return chunk_rows, pack_chunks


def _pack_sizes(repo: Repository, pack_ids) -> dict[str, int]:
    return {pid: n for pid, n in repo.store.index.execute("SELECT id, size FROM packs") if pid in pack_ids}


def _layout(repo: Repository, per_version: dict[int, set[str]]) -> _Layout:
    all_digests = set().union(*per_version.values()) if per_version else set()
    recipes = maintenance.file_chunks(repo.store, all_digests)
    holders: dict[bytes, set[int]] = defaultdict(set)
    for vid, digests in per_version.items():
        for d in digests:
            for c in recipes.get(d, ()):
                holders[c].add(vid)
    chunk_rows, pack_chunks = _chunk_rows(repo)
    return _Layout(holders, chunk_rows, _pack_sizes(repo, pack_chunks), pack_chunks)


def _subset_layout(repo: Repository, per_version: dict[int, set[str]]) -> _Layout:
    """The layout restricted to the chunks of the given versions, with every other
    version holding any of them found by lookups: manifests naming the same files
    (catalog, by digest) and other files made of the same chunks (index recipes). No
    pass over every manifest of the catalog."""
    wanted_files = set().union(*per_version.values()) if per_version else set()
    recipes = maintenance.file_chunks(repo.store, wanted_files)
    holders: dict[bytes, set[int]] = defaultdict(set)
    for vid, digests in per_version.items():
        for d in digests:
            for c in recipes.get(d, ()):
                holders[c].add(vid)
    wanted_chunks = set(holders)
    # files other than the wanted ones that hold some of these chunks
    sharing: dict[str, list[bytes]] = {d: recipes[d] for d in wanted_files if d in recipes}
    for d, n, recipe in repo.store.index.execute(
            "SELECT digest, chunk_count, recipe FROM files WHERE recipe IS NOT NULL"):
        if d.hex() not in sharing:
            common = [c for c in maintenance._recipe(d, n, recipe) if c in wanted_chunks]
            if common:
                sharing[d.hex()] = common
    for c in wanted_chunks:  # a one-chunk file's digest is its chunk's
        if c.hex() not in sharing and repo.store.index.file_row(c) is not None:
            sharing[c.hex()] = [c]
    for vid, d in repo.catalog.digest_holders(sharing):
        for c in sharing[d]:
            holders[c].add(vid)
    packs = {loc.pack_id for loc in repo.store.index.locate(list(wanted_chunks)).values()}
    chunk_rows, pack_chunks = _chunk_rows(repo, packs)
    return _Layout(holders, chunk_rows, _pack_sizes(repo, packs), pack_chunks)


def exclusive_stored(lay: _Layout, group_of: dict[int, Any]) -> dict[Any, int]:
    """Stored bytes held only by each group of versions (group_of: version id -> group;
    versions not in the map count as outsiders holding their chunks). A pack counts
    whole only if one group holds every chunk the index lists in it; a chunk no one
    holds (awaiting gc) makes the estimate count record by record, so a subset pass
    and a full pass agree."""
    out: dict[Any, int] = defaultdict(int)

    def owner(chunk: bytes):
        groups = {group_of.get(v, _OUTSIDE) for v in lay.holders.get(chunk, ())}
        return next(iter(groups)) if len(groups) == 1 else _OUTSIDE

    for pid, chunks in lay.pack_chunks.items():
        owners = [owner(c) for c in chunks]
        if len(set(owners)) == 1 and owners[0] is not _OUTSIDE:
            out[owners[0]] += lay.pack_sizes.get(pid, 0)  # the whole pack goes
            continue
        for c, o in zip(chunks, owners, strict=True):
            if o is not _OUTSIDE:
                out[o] += lay.chunk_rows[c][1] + RECORD_HEADER.size
    return dict(out)


_OUTSIDE = object()


def usage(repo: Repository, version_ids: Iterable[int] | None = None) -> dict[int, Usage]:
    """Logical and exclusive bytes of every version (soft-deleted included), or of the
    given ones (exclusivity is still judged against every version, by lookups)."""
    per_version: dict[int, set[str]] = defaultdict(set)
    out: dict[int, Usage] = defaultdict(Usage)
    wanted = None if version_ids is None else set(version_ids)
    for vid, digest, size in repo.catalog.version_digests(include_deleted=True, version_ids=wanted):
        per_version[vid].add(digest)
        out[vid].logical += size
    lay = _layout(repo, per_version) if wanted is None else _subset_layout(repo, per_version)
    for vid, n in exclusive_stored(lay, {v: v for v in per_version}).items():
        out[vid].exclusive = n
    for c, vids in lay.holders.items():
        if len(vids) == 1 and c in lay.chunk_rows:
            out[next(iter(vids))].exclusive_logical += lay.chunk_rows[c][2]
    return {v: out[v] for v in (wanted if wanted is not None else out)}


def version_usage(repo: Repository, version_id: int) -> Usage:
    return usage(repo, [version_id]).get(version_id, Usage())


def _file_bytes(*paths: Path) -> int:
    total = 0
    for p in paths:
        for q in (p, p.with_name(p.name + "-wal"), p.with_name(p.name + "-shm")):
            try:
                total += q.stat().st_size
            except OSError:
                pass
    return total


def _tree_bytes(path: Path) -> int:
    total = 0
    for p in path.rglob("*") if path.exists() else ():
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


def stats(repo: Repository, gc_grace: float | None = None) -> dict[str, Any]:
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
    from lodestore.sdk import lifecycle

    cat, store = repo.catalog, repo.store
    arts = list(cat.list_artifacts())
    records = {}
    art_of: dict[int, int] = {}
    for i, art in enumerate(arts):
        for r in cat.list_versions(art.project, art.name, include_deleted=True):
            records[r.id] = r
            art_of[r.id] = i
    per_version: dict[int, set[str]] = defaultdict(set)
    for vid, digest, _size in cat.version_digests(include_deleted=True):
        per_version[vid].add(digest)
    lay = _layout(repo, per_version)
    deleted = {v for v, r in records.items() if r.state == "deleted"}
    live = set(records) - deleted

    def raw(c): return lay.chunk_rows[c][2] if c in lay.chunk_rows else 0
    def stored(c): return lay.chunk_rows[c][1] + RECORD_HEADER.size if c in lay.chunk_rows else 0

    live_chunks = {c for c, vids in lay.holders.items() if vids & live}
    unique = sum(raw(c) for c in live_chunks)
    live_stored = sum(stored(c) for c in live_chunks)
    headers = sum(RECORD_HEADER.size for c in live_chunks if c in lay.chunk_rows)
    logical = sum(records[v].size for v in live)
    # per artifact: chunk bytes split evenly among the artifacts whose live versions hold it
    a_stored: dict[int, float] = defaultdict(float)
    a_chunks: dict[int, set[bytes]] = defaultdict(set)
    t_chunks: dict[str, set[bytes]] = defaultdict(set)
    for c in live_chunks:
        owners = {art_of[v] for v in lay.holders[c] if v in live}
        for a in owners:
            a_stored[a] += stored(c) / len(owners)
            a_chunks[a].add(c)
            t_chunks[arts[a].type].add(c)
    a_exclusive = exclusive_stored(lay, art_of)
    per_artifact, types = [], {}
    for i, art in enumerate(arts):
        vs = [records[v] for v in records if art_of[v] == i]
        a_logical = sum(r.size for r in vs if r.state != "deleted")
        a_unique = sum(raw(c) for c in a_chunks[i])
        per_artifact.append({
            "name": f"{art.project}/{art.name}", "type": art.type,
            "versions": sum(r.state != "deleted" for r in vs),
            "deleted_versions": sum(r.state == "deleted" for r in vs),
            "broken_versions": sum(r.state == "broken" for r in vs),
            "logical_bytes": a_logical, "unique_bytes": a_unique, "stored_bytes": round(a_stored[i]),
            "saved_bytes": a_logical - round(a_stored[i]), "dedup_ratio": _ratio(a_logical, a_unique),
            "exclusive_bytes": a_exclusive.get(i, 0),
        })
        t = types.setdefault(art.type, {"artifacts": 0, "versions": 0, "logical_bytes": 0, "stored_bytes": 0})
        t["artifacts"] += 1
        t["versions"] += per_artifact[-1]["versions"]
        t["logical_bytes"] += a_logical
        t["stored_bytes"] += a_stored[i]
    for name, t in types.items():
        t["stored_bytes"] = round(t["stored_bytes"])
        t["unique_bytes"] = sum(raw(c) for c in t_chunks[name])
        t["saved_bytes"] = t["logical_bytes"] - t["stored_bytes"]
        t["dedup_ratio"] = _ratio(t["logical_bytes"], t["unique_bytes"])
    group = {v: ("deleted" if v in deleted else v) for v in records}
    soft_exclusive = exclusive_stored(lay, group).get("deleted", 0)
    plan = maintenance.plan_gc(store, cat.referenced_digests(include_deleted=True),
                               grace=lifecycle.gc_grace_default() if gc_grace is None else gc_grace)
    disk = {
        "packs": sum(p.stat().st_size for p in store.packs_dir.glob("*/*.pack")),
        "index": _file_bytes(store.root / "index.db"),
        "catalog": _file_bytes(repo.root / "catalog.db"),
        "tmp": _tree_bytes(store.tmp_dir),
    }
    st = store.stats()
    return {
        "logical_bytes": logical,
        "unique_bytes": unique,
        "live_stored_bytes": live_stored,
        "stored_bytes": sum(disk.values()),
        "disk": disk,
        "dead_pack_bytes": disk["packs"] - live_stored,  # pack bytes no live version needs (incl. overhead)
        "dedup_saved_bytes": logical - unique,
        "compression_saved_bytes": unique - (live_stored - headers),
        "record_overhead_bytes": headers,
        "saved_bytes": logical - live_stored,
        "dedup_ratio": _ratio(logical, unique),
        "packs": st.pack_count, "chunks": st.chunk_count, "files": st.file_count,
        "versions": len(live), "deleted_versions": len(deleted),
        "broken_versions": sum(r.state == "broken" for r in records.values()),
        "soft_deleted_logical_bytes": sum(records[v].size for v in deleted),
        "soft_deleted_exclusive_bytes": soft_exclusive,
        "gc_reclaimable_bytes": plan.reclaimable_bytes,
        "gc_held_by_grace_bytes": plan.bytes_held_by_grace,
        "gc_grace_seconds": plan.grace_seconds,
        "types": types,
        "artifacts": per_artifact,
    }
