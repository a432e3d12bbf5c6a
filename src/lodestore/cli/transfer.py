"""push, pull, export, import: versions between stores, and bundles for air-gapped
transfer (the door's push/pull/export_bundle/import_bundle; sdk/transfer.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from lodestore.cli import context
from lodestore.cli.app import app
from lodestore.cli.output import human_size, print_json, stdout

if TYPE_CHECKING:
    from lodestore.sdk.service import TransferResult

_REFS_HELP = "project/name:vN or :alias (one version), project/name (every live version), project/ (a project)."


def _print_result(result: TransferResult, verb: str) -> None:
    """One line per version, then what moved."""
    for v in result.versions:
        if result.dry_run and v.created:
            line = f"{v.source}: would copy {v.files_moved} file(s), {v.chunks_moved} chunk(s)"
        elif v.created:
            line = (f"{v.source} -> {v.destination}: {v.files_moved} file(s), {v.chunks_moved} chunk(s), "
                    f"{human_size(v.bytes_moved)}")
        else:
            line = f"{v.source}: already there as {v.destination}"
        stdout.print(line, markup=False)
    if result.dry_run:
        stdout.print(f"dry run: would {verb} {len(result.copied)} version(s) ({len(result.already_there)} already "
                     f"there): {result.files_moved} file(s) of {human_size(result.file_bytes)}, "
                     f"{result.chunks_moved} chunk(s) the destination lacks; nothing changed", markup=False)
        return
    stdout.print(f"{verb}ed {len(result.copied)} version(s) ({len(result.already_there)} already there): "
                 f"{result.files_moved} file(s), {result.chunks_moved} chunk(s), {human_size(result.bytes_moved)} "
                 f"moved; {result.runs} run(s) ({result.runs_written} written), {result.links_added} lineage "
                 "link(s) added", markup=False)


@app.command()
def push(
    refs: Optional[list[str]] = typer.Argument(None, help=_REFS_HELP),  # noqa: UP045  (Typer reads it at run time)
    to: str = typer.Option(..., "--to", help="The store to copy into (a store folder)."),
    project: Optional[str] = typer.Option(None, "--project", help="Every artifact of this project."),  # noqa: UP045
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Say what would move, change nothing."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Copy versions (files, metadata, aliases, runs, lineage) to another store, moving
    only the chunks it lacks; numbers there are its own.

    Example: lode push zoo/animals:v3 --to /mnt/team-store
    """
    result = context.service().push(refs or [], context.service_for(to), project=project, dry_run=dry_run)
    print_json(result.to_dict()) if as_json else _print_result(result, "push")


@app.command()
def pull(
    refs: Optional[list[str]] = typer.Argument(None, help=_REFS_HELP),  # noqa: UP045
    source: str = typer.Option(..., "--from", help="The store to copy from (a store folder)."),
    project: Optional[str] = typer.Option(None, "--project", help="Every artifact of this project."),  # noqa: UP045
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Say what would move, change nothing."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Copy versions from another store into this one, moving only the chunks it lacks.

    Example: lode pull zoo/animals:latest --from /mnt/team-store
    """
    result = context.service().pull(refs or [], context.service_for(source), project=project, dry_run=dry_run)
    print_json(result.to_dict()) if as_json else _print_result(result, "pull")


@app.command("export")
def export_(
    refs: Optional[list[str]] = typer.Argument(None, help=_REFS_HELP),  # noqa: UP045
    output: Path = typer.Option(..., "--output", "-o", help="The bundle file to write (e.g. animals-v3.lode)."),
    project: Optional[str] = typer.Option(None, "--project", help="Every artifact of this project."),  # noqa: UP045
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Write versions (files, metadata, runs, lineage) into one self-contained bundle file.

    Example: lode export zoo/animals:v3 -o animals-v3.lode
    """
    done = context.service().export_bundle(refs or [], output, project=project)
    if as_json:
        print_json(done)
        return
    stdout.print(f"wrote {done.path}: {len(done.versions)} version(s), {done.files} file(s), {done.chunks} chunk(s) "
                 f"({human_size(done.chunk_bytes)}), {done.runs} run(s); {human_size(done.bundle_bytes)} on disk",
                 markup=False)


@app.command("import")
def import_(
    bundle: Path = typer.Argument(..., help="A bundle written by `lode export`."),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Check the bundle, say what would move."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Check a bundle whole, then copy its versions into this store (a bundle with a
    byte off is refused, nothing imported: exit 6).

    Example: lode import animals-v3.lode
    """
    result = context.service().import_bundle(bundle, dry_run=dry_run)
    print_json(result.to_dict()) if as_json else _print_result(result, "import")
