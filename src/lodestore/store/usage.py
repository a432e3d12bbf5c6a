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
from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import TypeVar

from lodestore.store.base import GroupUsage
from lodestore.store.index import StoreIndex, recipe_chunks
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


class _Keys(tuple[object, ...]):
    """The groups holding one chunk, once there are two or more: a small tuple (most
    shared chunks have two or three holders; a set per chunk cost 200 bytes more), of
    its own type so a group key that is itself a tuple is never mistaken for it."""


class _ManyKeys(set[object]):
    """The groups holding one chunk, past `_TUPLE_KEYS` of them (an empty file held by
    every version): a set, so adding one stays cheap."""


_TUPLE_KEYS = 8


def _hold(holders: dict[bytes, object], chunk: bytes, key: object) -> None:
    """Record that group `key` holds `chunk`: most chunks have one holder, kept bare
    (no container per chunk: with a million chunks, those were most of the memory)."""
    h = holders.get(chunk, _NOBODY)
    if h is _NOBODY:
        holders[chunk] = key
    elif isinstance(h, _ManyKeys):
        h.add(key)
    elif isinstance(h, _Keys):
        if key not in h:
            holders[chunk] = _Keys((*h, key)) if len(h) < _TUPLE_KEYS else _ManyKeys((*h, key))
    elif h != key:
        holders[chunk] = _Keys((h, key))


_ROWS_AT_ONCE = 9_000  # file rows read and dropped at a time: memory stays flat however big a group


def _batches(digests: Iterable[str]) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for d in digests:
        try:
            batch.append(bytes.fromhex(d))
        except ValueError:
            continue  # no hex: no stored file (see _raw)
        if len(batch) == _ROWS_AT_ONCE:
            yield batch
            batch = []
    if batch:
        yield batch


def group_usage(index: StoreIndex, groups: Mapping[K, Iterable[str]]) -> dict[K, GroupUsage]:
    """One pass: each group's recipes (a query per 900 files), then every chunk's row
    streamed from the index once, summed into its holders' figures. Memory holds one
    entry per distinct chunk (its holder), not the chunks' rows."""
    holders: dict[bytes, object] = {}
    for key, digests in groups.items():
        for batch in _batches(digests):
            for file, (_size, count, recipe) in index.file_rows(batch).items():
                for c in recipe_chunks(file, count, recipe):
                    _hold(holders, c, key)

    raw_bytes: dict[object, int] = defaultdict(int)
    stored_bytes: dict[object, int] = defaultdict(int)
    overhead: dict[object, int] = defaultdict(int)
    shared: dict[object, float] = defaultdict(float)
    exclusive_raw: dict[object, int] = defaultdict(int)
    exclusive: dict[object, int] = defaultdict(int)
    pack_owner: dict[str, object] = {}  # pack -> the one group owning every chunk seen in it, or _NOBODY
    pack_seen: dict[str, int] = defaultdict(int)  # pack -> chunks seen
    pack_owned: dict[str, int] = defaultdict(int)  # pack -> record bytes of the chunks its owner alone holds
    for c, pid, stored_len, raw in index.chunk_rows(holders):
        record = stored_len + RECORD_HEADER.size
        keys = holders[c]
        many = isinstance(keys, (_Keys, _ManyKeys))
        held: Iterable[object] = keys if isinstance(keys, (_Keys, _ManyKeys)) else (keys,)
        share = record / (len(keys) if isinstance(keys, (_Keys, _ManyKeys)) else 1)
        for holder in held:
            raw_bytes[holder] += raw
            stored_bytes[holder] += record
            overhead[holder] += RECORD_HEADER.size
            shared[holder] += share
        pack_seen[pid] += 1
        if many:
            pack_owner[pid] = _NOBODY
            continue
        exclusive_raw[keys] += raw
        exclusive[keys] += record  # record by record; a pack it owns whole is topped up below
        pack_owned[pid] += record
        if pack_owner.setdefault(pid, keys) != keys:
            pack_owner[pid] = _NOBODY
    # A pack whose every indexed chunk one group alone holds goes whole with it (magic,
    # headers and trailer too); a chunk no group holds (awaiting gc) keeps its pack.
    for pid, (size, indexed) in index.pack_totals(pack_owner).items():
        owner = pack_owner[pid]
        if owner is not _NOBODY and pack_seen[pid] == indexed:
            exclusive[owner] += size - pack_owned[pid]
    return {key: GroupUsage(raw_bytes=raw_bytes[key], stored_bytes=stored_bytes[key],
                            overhead_bytes=overhead[key], shared_stored_bytes=shared[key],
                            exclusive_stored_bytes=exclusive[key], exclusive_raw_bytes=exclusive_raw[key])
            for key in groups}


def files_sharing_chunks(index: StoreIndex, digests: Iterable[str]) -> set[str]:
    """Files other than `digests` holding at least one of their chunks: the chunked files
    whose recipe names one (a one-chunk file's chunk is the file itself), and the
    one-chunk files that are a chunk of one of theirs. Recipes are read a batch at a
    time; only the chunks of their chunked files are kept beside the files."""
    files: set[bytes] = set()
    pieces: set[bytes] = set()  # chunks of their files made of several
    for batch in _batches(digests):
        files.update(batch)
        for file, (_size, count, recipe) in index.file_rows(batch).items():
            if recipe is not None:
                pieces.update(recipe_chunks(file, count, recipe))
    sharing = index.chunked_files_holding(files | pieces if pieces else files)
    sharing |= index.known_files(pieces - files)
    return {d.hex() for d in sharing - files}
