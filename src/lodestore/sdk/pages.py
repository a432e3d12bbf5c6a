"""What a browsing page reads: keyset pages of artifacts, versions, runs and search
hits, a version's folders, the figures a page shows on every visit (own bytes, the stat
cards, a diff's counts and new bytes: measured once and kept while nothing they depend
on changed), a diff's lists a page at a time, and bounded file previews.

Part of the one door: `Service.pages` (built on first use, so `lode ls` never imports
this module) is how the web API reads all of it; the CLI reads `Service` itself. The
caches live on the `Pages` object, one per open `Service`::

    pages = Service.open().pages
    pages.folder(version, "images/")        # sub-folders first, then files
    pages.own_bytes(versions)               # {version id: bytes only it holds}
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

from lodestore.catalog import query_parse
from lodestore.catalog.records import (
    ArtifactRecord,
    DiffCounts,
    DiffRow,
    ManifestEntry,
    ReferenceEntry,
    RunRecord,
    VersionRecord,
)
from lodestore.errors import NotFoundError
from lodestore.names import normalize_entry_path
from lodestore.sdk import accounting, lifecycle, search
from lodestore.sdk.diff import DiffOverview, overview
from lodestore.sdk.repository import Repository
from lodestore.sdk.tables import Table

if TYPE_CHECKING:
    from lodestore.sdk.service import Service


class Pages:
    """The read views of the web pages, over one repository (see the module)."""

    def __init__(self, service: Service, repo: Repository):
        self._service = service
        self._repo = repo

    def parse_query(self, text: str) -> ParsedQuery:
        """How the search language reads `text`, without running it; InvalidInputError
        with a caret (and `.column`) on a syntax error."""
        parsed = query_parse.parse(text)
        return ParsedQuery(parsed.text, _query_groups(parsed.root))

    def artifacts_page(self, project: str | None, type: str | None, order: str, descending: bool,
                       after: tuple[Any, ...] | None, limit: int) -> list[ArtifactRecord]:
        """A keyset page of artifacts (catalog.base.ARTIFACT_ORDERS; `after` is the
        `artifact_page_key` of the previous page's last one), cut in SQL."""
        return self._repo.catalog.artifacts_page(project, type, order, descending, after, limit)

    def search_page(self, text: str, after: tuple[Any, ...] | None, limit: int) -> list[VersionRecord]:
        """A page of `search(text)` (newest first; `after` is the `search_page_key` of the
        previous page's last), cut in SQL: a broad query costs one page, not every match."""
        return self._repo.catalog.search_page(text, after, limit, liveness=search.query_liveness())

    def find_run_ids(self, project: str | None = None, filters: str | None = None,
                     order: str | None = None) -> list[str]:
        """`find_runs`'s ids in its order, without reading the runs (`runs_by_id` reads a page)."""
        return self._repo.catalog.find_run_ids(filters, project=project, order=order,
                                               liveness=search.query_liveness())

    def runs_by_id(self, run_ids: Iterable[str]) -> list[RunRecord]:
        """These runs, in the order given (unknown ids left out)."""
        ids = list(run_ids)
        found = self._repo.catalog.get_runs(ids)
        return [found[i] for i in ids if i in found]

    def versions_page(self, project: str, name: str, include_deleted: bool, order: str, descending: bool,
                      after: tuple[Any, ...] | None, limit: int) -> list[VersionRecord]:
        """A keyset page of an artifact's versions (VERSION_ORDERS, `version_page_key`)."""
        return self._repo.catalog.versions_page(project, name, include_deleted, order, descending, after, limit)

    def folder(self, version: VersionRecord, prefix: str = "", contains: str | None = None) -> list[FolderItem]:
        """The entries directly inside folder `prefix` of a version (sub-folders first,
        then files, each by name); with `contains`, every file under `prefix` whose path
        holds that text (case-insensitive), flat. `prefix` goes through the one entry-path
        rule; "" is the version's root. A version's files never change, so its folder
        index is built once (one pass over the manifest) and kept for the last few
        versions asked: a 100,000-file version's next folder pages cost a dict lookup."""
        base = normalize_entry_path(prefix) if prefix.strip("/") else ""
        index = self._folder_index(version)
        if base not in index:
            raise NotFoundError(f"{version.qualified_name} has no folder {base!r}")
        if contains is None or contains == "":
            return index[base]
        needle = contains.casefold()
        under = base + "/" if base else ""
        found = []
        for e in self._repo.catalog.iter_entries(version.id):  # sorted by path: the folder is one run
            if e.path.startswith(under):
                rest = e.path[len(under):]
                if needle in rest.casefold():
                    found.append(FolderItem(rest.rsplit("/", 1)[-1], e.path, False, e.size, e.digest))
            elif found or e.path > under:
                break
        for r in self._service.references(version):
            if r.path.startswith(under) and needle in r.path[len(under):].casefold():
                found.append(FolderItem(r.path.rsplit("/", 1)[-1], r.path, False, r.size, r.digest, uri=r.uri))
        return sorted(found, key=lambda f: f.path)

    def own_bytes(self, versions: Iterable[VersionRecord]) -> dict[int, int]:
        """Per version: the stored bytes only it holds (`usage(...).exclusive`), measured
        for the versions not measured before and kept while neither the set of versions
        (the catalog generation: commits and purges; a soft delete or restore moves no
        bytes) nor the store (its change stamp: sessions, gc, repair) changed."""
        wanted = list(versions)
        kept = self._kept_figures("own_bytes", self._figures_stamp())
        missing = [v for v in wanted if v.id not in kept]
        if missing:
            kept.update({vid: u.exclusive for vid, u in self._service.usage(missing).items()})
        return {v.id: kept.get(v.id, 0) for v in wanted}

    def summary_kept(self) -> accounting.StoreSummary:
        """The stat cards' figures (accounting.summary), measured again only when the
        versions (their set and states) or the store changed since the last measure
        (see `own_bytes`): the page asks on every visit. The sizes of the files on disk
        (the catalog's own among them) are as of that measure."""
        stamp = self._figures_stamp()
        kept = self._kept_figures("summary", None if stamp is None else (stamp, tuple(sorted(
            self._repo.catalog.version_states().items()))))
        if "figures" not in kept:
            kept["figures"] = accounting.summary(self._repo)
        return kept["figures"]

    def _figures_stamp(self) -> tuple[int, Any] | None:
        store = self._repo.store.change_stamp()
        return None if store is None else (self._repo.catalog.identity().generation, store)

    def _kept_figures(self, what: str, stamp: Any) -> dict[Any, Any]:
        """The figures kept under `what` while `stamp` holds (None: never kept)."""
        kept: dict[str, tuple[Any, dict[Any, Any]]] = self.__dict__.setdefault("_figures", {})
        if stamp is None:
            return {}
        if what not in kept or kept[what][0] != stamp:
            kept[what] = (stamp, {})
        return kept[what][1]

    DIFF_FIGURES_KEPT = 16  # a few integers per pair of versions

    def diff_overview(self, a: VersionRecord, b: VersionRecord) -> DiffOverview:
        """The diff of `a` (old) and `b` (new) without its lists: the head of `lode diff
        --json` (metadata, aliases, tags: from the records given, so pass fresh ones),
        each list's size and the new chunk bytes. Those two are measured once per pair
        (counting in SQL, the chunks by accounting.new_chunks) and kept: the files of a
        version never change, and the key holds each version's manifest digest, so a
        purged id reused is another key."""
        catalog = self._repo.catalog
        kept: OrderedDict[tuple[int, str, int, str], tuple[DiffCounts, accounting.NewChunks]] = \
            self.__dict__.setdefault("_diff_figures", OrderedDict())
        key = (a.id, a.digest, b.id, b.digest)
        if key in kept:
            kept.move_to_end(key)
        else:
            kept[key] = (catalog.diff_counts(a.id, b.id), accounting.new_chunks(self._repo, a.id, b.id))
            while len(kept) > self.DIFF_FIGURES_KEPT:
                kept.popitem(last=False)
        counts, fresh = kept[key]
        return overview(a, b, counts, fresh)

    def diff_page(self, a: VersionRecord, b: VersionRecord, section: str, after: str | None,
                  limit: int) -> list[DiffRow]:
        """One page of a list of the diff (added, removed, modified, renamed), cut in SQL
        by path after `after` (catalog/diff_pages.py)."""
        return self._repo.catalog.diff_page(a.id, b.id, section, after, limit)

    FOLDER_INDEXES_KEPT = 2  # ~40 MB each for 100,000 files: the server stays under 200 MB

    def _folder_index(self, version: VersionRecord) -> dict[str, list[FolderItem]]:
        """folder path ("" = root) -> its sub-folders (with file counts and bytes under
        them) then its files, each by name."""
        cache: OrderedDict[int, dict[str, list[FolderItem]]] = self.__dict__.setdefault("_folder_indexes",
                                                                                      OrderedDict())
        if version.id in cache:
            cache.move_to_end(version.id)
            return cache[version.id]
        totals: dict[str, list[int]] = {"": [0, 0]}  # folder -> [files under it, bytes under it]
        files: dict[str, list[FolderItem]] = {"": []}
        stored = ((e.path, e.size, e.digest, None) for e in self._repo.catalog.iter_entries(version.id))
        named = ((r.path, r.size, r.digest, r.uri) for r in self._service.references(version))  # no bytes held
        for path, size, digest, uri in chain(stored, named):
            parts = path.split("/")
            folder = ""
            for depth, part in enumerate(parts[:-1]):
                folder = part if depth == 0 else f"{folder}/{part}"
                acc = totals.setdefault(folder, [0, 0])
                acc[0] += 1
                acc[1] += size or 0
                files.setdefault(folder, [])
            files[folder if len(parts) > 1 else ""].append(FolderItem(parts[-1], path, False, size, digest, uri=uri))
        children: dict[str, list[str]] = {}
        for folder in totals:
            if folder:
                children.setdefault(folder.rpartition("/")[0], []).append(folder)
        index = {folder: [FolderItem(sub.rpartition("/")[2], sub, True, totals[sub][1], None, totals[sub][0])
                          for sub in sorted(children.get(folder, []))] + sorted(items, key=lambda f: f.name)
                 for folder, items in files.items()}
        cache[version.id] = index
        while len(cache) > self.FOLDER_INDEXES_KEPT:
            cache.popitem(last=False)
        return index

    def read_file(self, version: VersionRecord, path: str) -> tuple[ManifestEntry, Iterator[bytes]]:
        """One file of a version and its bytes in pieces, each verified before it is
        yielded; a broken version serves nothing (the same refusal as a download)."""
        entry = self._repo.catalog.get_entry(version.id, normalize_entry_path(path))
        lifecycle.refuse_broken(self._repo, version)
        return entry, self._repo.store.iter_content(entry.digest)

    def read_head(self, version: VersionRecord, path: str, limit: int) -> tuple[ManifestEntry, bytes]:
        """The first `limit` bytes of a file (verified chunk by chunk), for previews."""
        entry, pieces = self.read_file(version, path)
        out = bytearray()
        for piece in pieces:
            out += piece
            if len(out) >= limit:
                break
        return entry, bytes(out[:limit])

    def reference(self, version: VersionRecord, path: str) -> ReferenceEntry | None:
        """The version's reference entry at `path` (a file named by URI, no bytes held),
        or None when `path` is not one."""
        path = normalize_entry_path(path)
        return next((r for r in self._service.references(version) if r.path == path), None)

    def preview_table(self, version: VersionRecord, path: str, rows: int) -> TablePreview:
        """The first `rows` rows of a Parquet file of a version (sdk/tables.py reads it;
        pyarrow is imported there, on first use). The caller bounds the file's size: the
        whole file is read to take its first rows."""
        _, pieces = self.read_file(version, path)  # verified, and refused for a broken version
        table = Table.from_parquet(b"".join(pieces))
        return TablePreview(table.columns, table.preview(rows), len(table))


@dataclass(frozen=True)
class QueryTerm:
    """One condition of a parsed search query, as a page shows it."""

    key: str
    op: str
    value: Any
    negate: bool
    column: int  # 1-based column in the query text


@dataclass(frozen=True)
class ParsedQuery:
    """A search query as parsed: groups joined by OR, each group's terms joined by AND
    (the language has no parentheses)."""

    text: str
    groups: tuple[tuple[QueryTerm, ...], ...]


@dataclass(frozen=True)
class FolderItem:
    """One row of a folder listing: a file, or a sub-folder with the number of files and
    bytes under it."""

    name: str  # the last path segment
    path: str  # the full entry path (a folder's without a trailing slash)
    is_folder: bool
    size: int | None  # None: a reference whose size was not recorded
    digest: str | None = None  # files only
    files: int = 1  # files under a folder
    uri: str | None = None  # a reference entry: where its bytes live (the store holds none)


@dataclass(frozen=True)
class TablePreview:
    """The head of a table file: its columns, its first rows, how many rows it has."""

    columns: list[str]
    rows: list[list[Any]]
    total_rows: int


def _query_groups(node: query_parse.Node) -> tuple[tuple[QueryTerm, ...], ...]:
    def terms(n: query_parse.Node) -> tuple[QueryTerm, ...]:
        return tuple(QueryTerm(t.key, t.op, t.value, t.negate, t.col + 1) for t in query_parse.iter_terms(n))

    if isinstance(node, query_parse.AnyOf):
        return tuple(terms(item) for item in node.items)
    return (terms(node),)
