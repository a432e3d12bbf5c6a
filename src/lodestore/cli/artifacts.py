"""put, get, ls, versions, info, files: logging and reading artifacts from the shell."""

from __future__ import annotations

import heapq
import json
from datetime import timedelta
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from lodestore.cli import context
from lodestore.cli.app import app
from lodestore.cli.output import human_size, key_values, print_json, print_json_list, stdout, table, when
from lodestore.errors import InvalidInputError, SourceFileNotFoundError
from lodestore.json_values import parse_json_object
from lodestore.names import ArtifactRef, parse_ref

if TYPE_CHECKING:
    from lodestore.sdk.service import Service, VersionRecord


# Files `lode files` lays out as a Rich table (which sizes its columns from every row, so
# holds them all); a larger version streams as plain lines, in path order, a catalog page
# at a time: 1,000,000 files list within the memory of a few.
TABLE_MAX_FILES = 10_000


def version_json(v: VersionRecord) -> dict:
    return {
        "name": v.qualified_name, "project": v.project, "artifact": v.name, "version": v.version,
        "type": v.type, "digest": v.digest, "size": v.size, "file_count": v.file_count,
        "created_at": v.created_at, "aliases": list(v.aliases), "tags": list(v.tags),
        "description": v.description, "metadata": v.metadata, "logged_by": v.created_by_run, "state": v.state,
        "ttl_seconds": v.ttl_seconds,
    }


def artifact_ref(name: str, command: str) -> ArtifactRef:
    """project/artifact for commands about a whole artifact: a version there is refused,
    not silently ignored."""
    ref = parse_ref(name)
    if ref.selector is not None:
        raise InvalidInputError(f"`lode {command}` takes project/artifact without a version, not {name!r}; "
                                f"for one version use `lode info {ref}`")
    return ref


@app.command()
def put(
    path: Path = typer.Argument(..., help="File or folder to log."),
    name: str = typer.Option(..., "--name", "-n", help="project/artifact (project defaults to 'default')."),
    type: str = typer.Option("dataset", "--type", "-t", help="Artifact type, e.g. dataset, model, code."),
    alias: list[str] = typer.Option([], "--alias", "-a", help="Alias to set (repeatable)."),
    description: str | None = typer.Option(None, "--description", "-d"),
    metadata: str | None = typer.Option(None, "--metadata", "-m", help="JSON object."),
    tag: list[str] = typer.Option([], "--tag", help="Tag (repeatable)."),
    ttl: str | None = typer.Option(
        None, "--ttl", help="Delete this version after a time, e.g. 30d, 12h, 2w (applied by `lode prune`)."),
    exclude: list[str] = typer.Option([], "--exclude", "-x", help="Glob to leave out (repeatable)."),
    follow_external_symlinks: bool = typer.Option(
        False, "--follow-external-symlinks",
        help="Store the target of a symlink pointing outside the folder (with a warning) instead of refusing."),
    as_json: bool = typer.Option(False, "--json", help="Print the version as JSON."),
) -> None:
    """Log a file or folder as a new version, without a run.

    Example: lode put images/ --name zoo/animals --type dataset --alias best
    """
    with context.sdk_imports("lodestore.sdk.artifact"):  # imported here, not with `lode`: see cli/context.py
        from lodestore.sdk.artifact import Artifact  # noqa: PLC0415
        from lodestore.sdk.service import parse_duration  # noqa: PLC0415

    ref = parse_ref(name)
    if ref.selector:
        raise InvalidInputError("--name takes project/artifact without a version")
    meta = parse_json_object(metadata, "--metadata") if metadata else {}
    if not path.exists():
        raise SourceFileNotFoundError(f"no such file or folder: {path}")
    art = Artifact(ref.name, type=type, description=description, metadata=meta, project=ref.project,
                   ttl=None if ttl is None else parse_duration(ttl))
    if path.is_dir():
        art.add_dir(path, exclude_patterns=exclude, follow_external_symlinks=follow_external_symlinks)
    else:
        art.add_file(path)
    art.add_tags(*tag)
    result = context.service().log(art.draft, project=ref.project, aliases=alias)
    version = result.version
    if as_json:
        print_json({**version_json(version), "created": result.created})
    else:
        verb = "logged" if result.created else "unchanged, kept"
        stdout.print(f"{verb} [bold]{version.qualified_name}[/bold] ({version.file_count} files, "
                     f"{human_size(version.size)}) aliases: {', '.join(version.aliases)}")


@app.command()
def get(
    ref: str = typer.Argument(..., help="project/artifact:version-or-alias"),
    root: Path | None = typer.Option(None, "--root-dir", "--root", "-o", help="Target folder."),
    hardlink: bool = typer.Option(False, "--hardlink", help="Hard-link read-only files instead of copying."),
    checkout: bool = typer.Option(False, "--checkout", help="Make the folder match the version exactly: replace "
                                  "files that differ, delete files not in the version."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace files in the folder whose content differs "
                                   "from the version (otherwise a conflict, exit 4)."),
) -> None:
    """Download a version's files into a folder.

    Files already there with the right content are kept; a file with other content is a
    conflict (exit 4, nothing written) unless --overwrite or --checkout.

    Example: lode get zoo/animals:latest --root data/
    """
    art = context.api().artifact(ref)
    if checkout:
        target = art.checkout(root=root, hardlink=hardlink)
    else:
        target = art.download(root=root, hardlink=hardlink, overwrite=overwrite)
    stdout.print(f"{art.qualified_name}: {art.file_count} files, {human_size(art.size)} -> {target}", markup=False)


@app.command("ls")
def list_artifacts(
    type: str | None = typer.Option(None, "--type", "-t"),
    project: str | None = typer.Option(None, "--project", "-p"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List artifacts with their type, version count, size and latest version."""
    records = context.service().artifacts(project=project, type=type)
    if as_json:
        print_json([
            {"name": f"{r.project}/{r.name}", "type": r.type, "versions": r.version_count,
             "size": r.total_size, "latest": None if r.latest_index is None else f"v{r.latest_index}",
             "created_at": r.created_at}
            for r in records
        ])
        return
    table(["name", "type", "versions", "size", "latest"], [
        [f"{r.project}/{r.name}", r.type, r.version_count, human_size(r.total_size),
         "-" if r.latest_index is None else f"v{r.latest_index}"] for r in records
    ])


@app.command()
def versions(
    name: str = typer.Argument(..., help="project/artifact"),
    all_: bool = typer.Option(False, "--all", help="Include soft-deleted versions."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List the versions of an artifact, oldest first."""
    with context.sdk_imports():
        from lodestore.sdk.service import Usage  # noqa: PLC0415  (imported here, not with `lode`: cli/context.py)

    ref = artifact_ref(name, "versions")
    svc = context.service()
    records = svc.versions(ref.project, ref.name, include_deleted=all_)
    use = svc.usage(records)  # exclusive: bytes only this version holds (freed if it alone is deleted)
    if as_json:
        print_json([{**version_json(v), "exclusive_size": use.get(v.id, Usage()).exclusive} for v in records])
        return
    table(["version", "created", "size", "exclusive", "files", "aliases", "run", "state"], [
        [v.version, when(v.created_at), human_size(v.size), human_size(use.get(v.id, Usage()).exclusive),
         v.file_count, ", ".join(v.aliases), v.created_by_run or "-", v.state] for v in records
    ], title=f"{ref.project}/{ref.name}")


@app.command()
def info(
    ref: str = typer.Argument(..., help="project/artifact:version-or-alias"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Everything about one version: type, created, size, files, aliases, metadata, run."""
    svc = context.service()
    art = svc.version(ref)
    use = svc.version_usage(art)
    if as_json:
        print_json({**version_json(art), "exclusive_size": use.exclusive, "exclusive_logical": use.exclusive_logical})
        return
    key_values([
        ("type", art.type), ("state", art.state), ("created", when(art.created_at)),
        ("created by", art.created_by_run or "- (logged without a run)"), ("size", human_size(art.size)),
        ("exclusive", f"{human_size(use.exclusive)} stored, {human_size(use.exclusive_logical)} logical "
                      "(only this version holds them: freed if it alone is deleted)"),
        ("ttl", "-" if art.ttl_seconds is None else f"{_duration(art.ttl_seconds)} (deleted by `lode prune` "
                f"after {when(art.created_at + timedelta(seconds=art.ttl_seconds))})"),
        ("files", art.file_count), ("aliases", ", ".join(art.aliases) or "-"),
        ("tags", ", ".join(art.tags) or "-"), ("description", art.description or "-"),
        ("digest", art.digest),
    ], title=art.qualified_name)
    stdout.print("  metadata:" + ("" if art.metadata else " -"))
    for k, v in art.metadata.items():
        stdout.print(f"    {k}: {json.dumps(v)}", markup=False)


def _duration(secs: int) -> str:
    for unit, n in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if secs % n == 0:
            return f"{secs // n}{unit}"
    return f"{secs}s"


@app.command()
def files(
    ref: str = typer.Argument(..., help="project/artifact:version-or-alias"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List the files of a version with size and digest."""
    svc = context.service()
    art = svc.version(ref)
    refs = svc.references(art)
    if as_json:  # streamed: flat memory whatever the number of files
        print_json_list(chain(
            ({"path": e.path, "size": e.size, "digest": e.digest} for e in svc.iter_entries(art)),
            ({"path": r.path, "size": r.size, "digest": r.digest, "reference": r.uri, "etag": r.etag,
              "object_version": r.object_version, "last_modified": r.last_modified} for r in refs)))
        return
    if art.file_count + len(refs) > TABLE_MAX_FILES:
        _stream_listing(svc, art, refs)
        return
    entries = svc.entries(art)  # a table needs every row to size its columns
    rows = [[e.path, human_size(e.size), e.digest[:16]] for e in entries]
    rows += [[r.path, human_size(r.size), f"reference {r.uri}"] for r in refs]
    table(["path", "size", "digest"], sorted(rows),
          title=f"{art.qualified_name}: {len(entries)} files, {human_size(art.size)}"
                + (f", {len(refs)} references (bytes not stored)" if refs else ""))
    if any(svc.is_table_entry(e.path) for e in entries):
        _table_previews(svc, art)


def _stream_listing(svc: Service, art: VersionRecord, refs: list) -> None:
    """`lode files` of a large version: a title line, then `size  digest  path` a line a
    file (the path last: no column to size), references merged in path order. Table
    previews are left to `lode show` (a preview would need every path first)."""
    stdout.print(f"{art.qualified_name}: {art.file_count:,} files, {human_size(art.size)}"
                 + (f", {len(refs)} references (bytes not stored)" if refs else ""), markup=False)
    lines = heapq.merge(
        ((e.path, f"{human_size(e.size):>10}  {e.digest[:16]}  {e.path}") for e in svc.iter_entries(art)),
        sorted((r.path, f"{human_size(r.size):>10}  reference {r.uri}  {r.path}") for r in refs))
    out = stdout.file
    out.write(f"{'size':>10}  {'digest':<16}  path\n")
    for _, line in lines:
        out.write(line + "\n")
    out.flush()


def _table_previews(svc: Service, version: VersionRecord, most: int = 3) -> None:
    """The first rows of the version's tables (a partitioned table's parts as one, its
    parts not again), up to `most` tables: what `lode show` prints for one."""
    names = svc.table_names(version)
    for name in names[:most]:
        _print_table(svc, version, name, svc.PREVIEW_ROWS)
    if len(names) > most:
        stdout.print(f"... and {len(names) - most} more table(s): lode show {version.qualified_name} NAME",
                     markup=False)


def _print_table(svc: Service, version: VersionRecord, name: str, rows: int) -> None:
    data = svc.read_table(version, name)
    shown = data.preview(rows)
    table(data.columns, shown, title=f"table {name}: {len(data)} rows" + (
        f" (first {len(shown)})" if len(shown) < len(data) else ""))


@app.command()
def show(
    ref: str = typer.Argument(..., help="project/artifact:version-or-alias"),
    name: str = typer.Argument(..., help="Table name (as added with artifact.add(table, NAME))."),
    rows: int | None = typer.Option(None, "--rows", "-r", min=1,
                                    help="How many rows to print (default: as many as a preview shows)."),
    as_json: bool = typer.Option(False, "--json", help="Print {columns, rows, total_rows} as JSON."),
) -> None:
    """Print the first rows of a table stored in a version (a partitioned table's parts as one).

    Example: lode show demo/parallel-artifact:latest distributed_table --rows 10
    """
    svc = context.service()
    version = svc.version(ref)
    rows = rows or svc.PREVIEW_ROWS
    if as_json:
        data = svc.read_table(version, name)
        print_json({"columns": data.columns, "rows": data.preview(rows), "total_rows": len(data)})
        return
    _print_table(svc, version, name, rows)
