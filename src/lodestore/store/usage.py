"""Usage of groups of files in the local store: which chunks each group holds, what
they take on disk, and what only that group holds (LocalContentStore.usage).

The store knows nothing of versions: the caller (sdk/accounting.py) makes the groups
(a version, an artifact, the soft-deleted versions...) and keys them as it likes.

A group's *exclusive* bytes are the stored (compressed, on-disk) bytes of the chunks no
other group holds, i.e. what deleting that group's files alone, then gc, frees. A pack
whose every chunk only that group holds counts with its whole file size (magic, headers
and trailer go with it); a chunk in a pack shared with others counts its record (its
stored bytes plus header), which is what a repack takes out. A chunk no group holds
(awaiting gc) makes its pack count record by record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

from lodestore.store.base import GroupUsage
from lodestore.store.index import StoreIndex
from lodestore.store.packs import RECORD_HEADER

K = TypeVar("K", bound=Hashable)
_NOBODY = object()


def _raw(digests: Iterable[str]) -> set[bytes]:
    """Digests as the index keys them; a digest that is no hex names no stored file (a
    catalog written by hand in tests) and holds no bytes here."""
    out = set()
    for d in digests:
        try:
            out.add(bytes.fromhex(d))
        except ValueError:
            continue
    return out


def group_usage(index: StoreIndex, groups: Mapping[K, Iterable[str]]) -> dict[K, GroupUsage]:
    wanted = {key: _raw(digests) for key, digests in groups.items()}
    recipes = index.recipes(set().union(*wanted.values()) if wanted else set())
    holders: dict[bytes, set[K]] = defaultdict(set)
    for key, files in wanted.items():
        for f in files:
            for c in recipes.get(f, ()):
                holders[c].add(key)
    where = index.locate(list(holders))
    pack_ids = {loc.pack_id for loc in where.values()}
    pack_sizes = {pid: size for pid, size, _n, _c in index.all_packs() if pid in pack_ids}
    chunk_rows: dict[bytes, tuple[int, int]] = {}  # chunk -> (stored with header, raw)
    pack_chunks: dict[str, list[bytes]] = defaultdict(list)
    for d, pid, stored, raw in index.chunks_of_packs(pack_ids):
        chunk_rows[d] = (stored + RECORD_HEADER.size, raw)
        pack_chunks[pid].append(d)

    raw_bytes: dict[K, int] = defaultdict(int)
    stored_bytes: dict[K, int] = defaultdict(int)
    overhead: dict[K, int] = defaultdict(int)
    shared: dict[K, float] = defaultdict(float)
    exclusive_raw: dict[K, int] = defaultdict(int)
    for c, keys in holders.items():
        row = chunk_rows.get(c)
        if row is None:
            continue  # not indexed (damage fsck reports): holds no bytes
        for key in keys:
            raw_bytes[key] += row[1]
            stored_bytes[key] += row[0]
            overhead[key] += RECORD_HEADER.size
            shared[key] += row[0] / len(keys)
        if len(keys) == 1:
            exclusive_raw[next(iter(keys))] += row[1]

    def owner(chunk: bytes) -> object:
        keys = holders.get(chunk, ())
        return next(iter(keys)) if len(keys) == 1 else _NOBODY

    exclusive: dict[object, int] = defaultdict(int)
    for pid, chunks in pack_chunks.items():
        owners = [owner(c) for c in chunks]
        if len(set(owners)) == 1 and owners[0] is not _NOBODY:
            exclusive[owners[0]] += pack_sizes.get(pid, 0)  # the whole pack goes
            continue
        for c, o in zip(chunks, owners, strict=True):
            if o is not _NOBODY:
                exclusive[o] += chunk_rows[c][0]
    return {key: GroupUsage(raw_bytes=raw_bytes[key], stored_bytes=stored_bytes[key],
                            overhead_bytes=overhead[key], shared_stored_bytes=shared[key],
                            exclusive_stored_bytes=exclusive[key], exclusive_raw_bytes=exclusive_raw[key])
            for key in groups}


def files_sharing_chunks(index: StoreIndex, digests: Iterable[str]) -> set[str]:
    """Files other than `digests` holding at least one of their chunks."""
    files = _raw(digests)
    chunks = {c for recipe in index.recipes(files).values() for c in recipe}
    return {d.hex() for d in index.files_sharing(chunks) if d not in files}
