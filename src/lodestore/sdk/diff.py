"""Compare two versions: files added, removed, modified, renamed; metadata, aliases,
tags; and the new chunk bytes the second version adds (accounting.new_chunks).

The file lists have one rule, in SQL (catalog/diff_pages.py: renames paired by digest
in path order, by window functions): `Artifact.diff` reads each list whole through
`Catalog.iter_diff`, `lode diff` streams them (memory stays flat on 100,000-file
versions), and the web page reads a page at a time through `Catalog.diff_page`::

    d = old.diff(new)
    print(d.summary())   # +1,000 files, ~100 modified, -0, +16.4 MB
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import Any

from lodestore.catalog.records import DIFF_SECTIONS, DiffCounts, DiffRow, ManifestEntry, VersionRecord
from lodestore.gc_pause import gc_paused
from lodestore.sdk.accounting import NewChunks


def _size(n: int) -> str:
    sign = "-" if n < 0 else "+"
    size = float(abs(n))
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{sign}{size:.0f} {unit}" if unit == "B" else f"{sign}{size:.1f} {unit}"
        size /= 1000
    return f"{sign}{n} B"


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested metadata as dotted keys, so a change deep inside shows as that one key."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


@dataclass
class VersionDiff:
    a: str  # qualified names
    b: str
    same_artifact: bool
    added: list[ManifestEntry] = field(default_factory=list)
    removed: list[ManifestEntry] = field(default_factory=list)
    modified: list[tuple[ManifestEntry, ManifestEntry]] = field(default_factory=list)
    renamed: list[tuple[ManifestEntry, ManifestEntry]] = field(default_factory=list)
    unchanged: int = 0
    size_delta: int = 0
    metadata_added: dict[str, Any] = field(default_factory=dict)
    metadata_removed: dict[str, Any] = field(default_factory=dict)
    metadata_changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    aliases_added: list[str] = field(default_factory=list)
    aliases_removed: list[str] = field(default_factory=list)
    tags_added: list[str] = field(default_factory=list)
    tags_removed: list[str] = field(default_factory=list)
    type_change: tuple[str, str] | None = None
    states: tuple[str, str] = ("live", "live")
    # stored (on disk) and raw bytes of the chunks b's files hold that a's files do not
    # (accounting.new_chunks); None where not measured
    new_chunk_bytes: int | None = None
    new_chunk_raw_bytes: int | None = None

    @property
    def identical_files(self) -> bool:
        return not (self.added or self.removed or self.modified or self.renamed)

    def counts(self) -> DiffCounts:
        return DiffCounts(added=len(self.added), removed=len(self.removed), modified=len(self.modified),
                          renamed=len(self.renamed))

    def summary(self) -> str:
        return summary_line(self, self.counts())

    def to_dict(self) -> dict[str, Any]:
        return {**head_dict(self, self.counts()),
                "added": [added_item(x) for x in self.added], "removed": [removed_item(x) for x in self.removed],
                "modified": [modified_item(o, n) for o, n in self.modified],
                "renamed": [renamed_item(o, n) for o, n in self.renamed]}


def summary_line(d: VersionDiff, counts: DiffCounts) -> str:
    parts = [f"+{counts.added:,} files", f"~{counts.modified:,} modified", f"-{counts.removed:,}"]
    if counts.renamed:
        parts.append(f"{counts.renamed:,} renamed")
    parts.append(_size(d.size_delta))
    line = ", ".join(parts)
    if not d.same_artifact:
        line = f"different artifacts ({d.a} vs {d.b}): " + line
    return line


def head_dict(d: VersionDiff, counts: DiffCounts) -> dict[str, Any]:
    """`lode diff --json` without its four lists: what the web's diff call sends whole."""
    return {
        "a": d.a, "b": d.b, "same_artifact": d.same_artifact, "summary": summary_line(d, counts),
        "states": list(d.states), "type_change": list(d.type_change) if d.type_change else None,
        "unchanged": d.unchanged, "size_delta": d.size_delta,
        "new_chunk_bytes": d.new_chunk_bytes, "new_chunk_raw_bytes": d.new_chunk_raw_bytes,
        "metadata": {"added": d.metadata_added, "removed": d.metadata_removed,
                     "changed": {k: {"old": o, "new": n} for k, (o, n) in d.metadata_changed.items()}},
        "aliases": {"added": d.aliases_added, "removed": d.aliases_removed},
        "tags": {"added": d.tags_added, "removed": d.tags_removed},
    }


# One item of each list, as `lode diff --json` and the web's diff pages write it.
def added_item(x: ManifestEntry) -> dict[str, Any]:
    return {"path": x.path, "digest": x.digest, "size": x.size}


removed_item = added_item


def modified_item(o: ManifestEntry, n: ManifestEntry) -> dict[str, Any]:
    return {"path": o.path, "old_size": o.size, "new_size": n.size, "old_digest": o.digest, "new_digest": n.digest}


def renamed_item(o: ManifestEntry, n: ManifestEntry) -> dict[str, Any]:
    return {"from": o.path, "to": n.path, "digest": n.digest, "size": n.size}


def diff_item(section: str, row: DiffRow) -> dict[str, Any]:
    """A row of `Catalog.diff_page` as its list's item."""
    if section == "added":
        return added_item(row.new)  # type: ignore[arg-type]
    if section == "removed":
        return removed_item(row.old)  # type: ignore[arg-type]
    if section == "modified":
        return modified_item(row.old, row.new)  # type: ignore[arg-type]
    return renamed_item(row.old, row.new)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DiffOverview:
    """A diff without its lists (the web page reads those a page at a time): the head of
    `VersionDiff` (lists left empty) and how many entries each list holds."""

    head: VersionDiff
    counts: DiffCounts

    def to_dict(self) -> dict[str, Any]:
        return head_dict(self.head, self.counts)

    def summary(self) -> str:
        return summary_line(self.head, self.counts)


@dataclass(frozen=True)
class DiffListing:
    """A diff whose file lists are read from the catalog as they are iterated, a batch of
    rows at a time (`lode diff`, `lode diff --json`): memory stays flat however many
    files changed."""

    overview: DiffOverview
    read: Callable[[tuple[str, ...]], Iterator[tuple[str, DiffRow]]]  # Catalog.iter_diff of two versions

    def lists(self) -> Iterator[tuple[str, Iterator[DiffRow]]]:
        """Each list (DIFF_SECTIONS order) with an iterator of its rows, all read in one
        pass: take a list's rows (or as many as wanted) before asking for the next list.
        Lists the counts say are empty ask nothing of the catalog."""
        wanted = tuple(s for s in DIFF_SECTIONS if getattr(self.overview.counts, s))
        stream = self.read(wanted) if wanted else iter(())
        try:
            groups = groupby(stream, key=itemgetter(0))
            current = next(groups, None)
            for section in DIFF_SECTIONS:
                if current is not None and current[0] == section:
                    yield section, (row for _, row in current[1])
                    current = next(groups, None)
                else:
                    yield section, iter(())
        finally:
            close = getattr(stream, "close", None)
            if close is not None:  # a listing cut short ends its read at once
                close()

    def item_lists(self) -> Iterator[tuple[str, Iterator[dict[str, Any]]]]:
        """`VersionDiff.to_dict()`'s four lists, in its order, as `lode diff --json` and the
        web's diff pages write their items."""
        for section, rows in self.lists():
            yield section, (diff_item(section, row) for row in rows)


def overview(a: VersionRecord, b: VersionRecord, counts: DiffCounts, new_chunks: NewChunks) -> DiffOverview:
    return DiffOverview(VersionDiff(
        a=a.qualified_name, b=b.qualified_name, same_artifact=a.artifact_id == b.artifact_id,
        unchanged=unchanged_files(a, counts),
        new_chunk_bytes=new_chunks.stored_bytes, new_chunk_raw_bytes=new_chunks.raw_bytes, **head_changes(a, b),
    ), counts)


def diff_versions(catalog: Any, a: VersionRecord, b: VersionRecord, new_chunks: NewChunks | None = None) -> VersionDiff:
    """The whole diff (`Artifact.diff`), its lists read from the catalog by the one rule
    (`Catalog.iter_diff`, catalog/diff_pages.py); `new_chunks` as accounting.new_chunks
    measured it (None: not measured)."""
    added: list[ManifestEntry] = []
    removed: list[ManifestEntry] = []
    modified: list[tuple[ManifestEntry, ManifestEntry]] = []
    renamed: list[tuple[ManifestEntry, ManifestEntry]] = []
    with gc_paused():
        for section, row in catalog.iter_diff(a.id, b.id):
            if section == "added":
                added.append(row.new)
            elif section == "removed":
                removed.append(row.old)
            elif section == "modified":
                modified.append((row.old, row.new))
            else:
                renamed.append((row.old, row.new))
    counts = DiffCounts(added=len(added), removed=len(removed), modified=len(modified), renamed=len(renamed))
    return VersionDiff(
        a=a.qualified_name, b=b.qualified_name, same_artifact=a.artifact_id == b.artifact_id,
        added=added, removed=removed, modified=modified, renamed=renamed,
        unchanged=unchanged_files(a, counts),
        new_chunk_bytes=None if new_chunks is None else new_chunks.stored_bytes,
        new_chunk_raw_bytes=None if new_chunks is None else new_chunks.raw_bytes,
        **head_changes(a, b),
    )


def unchanged_files(a: VersionRecord, counts: DiffCounts) -> int:
    """Files of `a` at the same path with the same content in b."""
    return a.file_count - counts.removed - counts.renamed - counts.modified


def head_changes(a: VersionRecord, b: VersionRecord) -> dict[str, Any]:
    """What changed besides the files: size, metadata key paths, aliases, tags, type,
    states (VersionDiff's fields of those names), read from the two records alone."""
    ma, mb = _flatten(a.metadata or {}), _flatten(b.metadata or {})
    return dict(
        size_delta=b.size - a.size,
        metadata_added={k: mb[k] for k in sorted(mb.keys() - ma.keys())},
        metadata_removed={k: ma[k] for k in sorted(ma.keys() - mb.keys())},
        metadata_changed={k: (ma[k], mb[k]) for k in sorted(ma.keys() & mb.keys()) if ma[k] != mb[k]},
        aliases_added=sorted(set(b.aliases) - set(a.aliases)),
        aliases_removed=sorted(set(a.aliases) - set(b.aliases)),
        tags_added=sorted(set(b.tags) - set(a.tags)),
        tags_removed=sorted(set(a.tags) - set(b.tags)),
        type_change=(a.type, b.type) if a.type != b.type else None,
        states=(a.state, b.state),
    )
