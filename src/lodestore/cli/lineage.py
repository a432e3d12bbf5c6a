"""lineage, search, diff, runs, run: the history of artifacts from the shell."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import closing
from itertools import islice
from typing import TYPE_CHECKING

import typer

from lodestore.cli import context
from lodestore.cli.app import app
from lodestore.cli.artifacts import version_json
from lodestore.cli.output import human_size, key_values, print_json, print_json_with_lists, stdout, table, when
from lodestore.errors import InvalidInputError

if TYPE_CHECKING:
    from lodestore.sdk.service import DiffRow, VersionRecord


def _version(ref: str) -> VersionRecord:
    """A version by reference, deleted ones included (history must still be shown)."""
    return context.service().version(ref, include_deleted=True)


@app.command()
def lineage(
    ref: str = typer.Argument(..., help="project/artifact:version-or-alias"),
    depth: int | None = typer.Option(None, "--depth", "-d", help="Run hops to follow (default: all)."),
    fmt: str = typer.Option("tree", "--format", "-f", help="tree, json or dot (Graphviz)."),
    up: bool = typer.Option(False, "--up", help="Only what it was made from."),
    down: bool = typer.Option(False, "--down", help="Only what was made from it."),
    type: str | None = typer.Option(None, "--type", "-t",
                                       help="List only versions of this type (e.g. every model trained on it)."),
    as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
) -> None:
    """Show which runs made a version, from which inputs, and who used it afterwards.

    Examples:
      lode lineage zoo/model:v3 --depth 2
      lode lineage zoo/animals:v2 --down --type model     # every model trained on it
      lode lineage zoo/model:v3 --format dot | dot -Tsvg > lineage.svg
    """
    if up and down:
        raise InvalidInputError("pass --up or --down (or neither, for both directions)")
    if fmt not in ("tree", "json", "dot"):
        raise InvalidInputError(f"--format must be tree, json or dot, not {fmt!r}")
    direction = "up" if up else "down" if down else "both"
    art = _version(ref)
    graph = context.service().lineage(art, direction=direction, depth=depth)
    if type is not None:
        found = graph.versions(type)
        if as_json or fmt == "json":
            print_json([version_json(a) for a in found])
            return
        where = {"up": "upstream of", "down": "downstream of", "both": "around"}[direction]
        table(["name", "type", "state", "aliases", "logged by", "created"], [
            [a.qualified_name, a.type, a.state, ", ".join(a.aliases), a.created_by_run or "-", when(a.created_at)]
            for a in found
        ], title=f"{len(found)} {type} version(s) {where} {art.qualified_name}")
        return
    if as_json or fmt == "json":
        print_json(graph.to_dict())
    elif fmt == "dot":
        stdout.out(graph.to_dot(), end="")
    else:
        for line in graph.tree_lines():
            stdout.print(line, markup=False)


@app.command()
def search(
    query: str = typer.Argument(..., help="e.g. 'type=model metadata.val_acc>=0.9 tag:production'"),
    limit: int | None = typer.Option(None, "--limit", "-n"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Find versions by name, type, tags, aliases, dates, run fields and metadata.

    Terms are ANDed: key=value, key!=value, key>N, key~substring-or-glob, tag:NAME,
    alias:NAME, and bare words (name contains). NOT (or a leading -) negates the next
    term; OR separates groups and binds looser than AND (no parentheses); quote a word
    to search for it literally ("OR"). Keys: name, type,
    project, state, version, size (10MB), files, digest, description, created
    (2026-01-31, or 7d for 7 days ago), metadata.KEY.SUBKEY, run.FIELD (job_type, group,
    name, id, state, config.KEY, summary.KEY).

    Examples:
      lode search 'type=model metadata.val_acc>=0.9 tag:production created>2026-01-01'
      lode search 'name~resnet alias:latest run.job_type=train'
      lode search 'project=zoo state=deleted'
      lode search 'type=model tag:production OR type=dataset NOT tag:raw'
    """
    found = context.service().search(query, limit)
    if as_json:
        print_json([version_json(a) for a in found])
        return
    table(["name", "type", "state", "aliases", "tags", "size", "files", "created"], [
        [a.qualified_name, a.type, a.state, ", ".join(a.aliases), ", ".join(a.tags), human_size(a.size),
         a.file_count, when(a.created_at)] for a in found
    ])


@app.command()
def diff(
    a: str = typer.Argument(..., help="Old version, e.g. zoo/animals:v1"),
    b: str = typer.Argument(..., help="New version, e.g. zoo/animals:v3"),
    limit: int = typer.Option(50, "--limit", "-n", help="File lines shown per section (0 = all)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Compare two versions: files added, removed, modified, renamed; metadata, aliases, tags.

    Example: lode diff zoo/animals:v1 zoo/animals:v3
    """
    listing = context.service().diff_listing(_version(a), _version(b))
    d, counts = listing.overview.head, listing.overview.counts
    if as_json:  # the file lists streamed from the catalog, never held whole
        print_json_with_lists(listing.overview.to_dict(), listing.item_lists())
        return
    for state, name in zip(d.states, (d.a, d.b), strict=True):
        if state != "live":
            stdout.print(f"note: {name} is {state}", markup=False)
    stdout.print(f"{d.a} -> {d.b}: {listing.overview.summary()}", markup=False)

    def section(title: str, total: int, lines: Iterable[str]) -> None:
        if not total:
            return
        stdout.print(f"{title} ({total:,}):", markup=False)
        shown = 0
        for line in lines if limit <= 0 else islice(lines, limit):
            stdout.print(f"  {line}", markup=False)
            shown += 1
        if shown < total:
            stdout.print(f"  ... and {total - shown:,} more (--limit 0 shows all)", markup=False)

    def small(title: str, lines: list[str]) -> None:
        section(title, len(lines), lines)

    file_line: dict[str, Callable[[DiffRow], str]] = {
        "added": lambda r: f"+ {r.new.path} ({human_size(r.new.size)})",
        "removed": lambda r: f"- {r.old.path} ({human_size(r.old.size)})",
        "modified": lambda r: f"~ {r.old.path} ({human_size(r.old.size)} -> {human_size(r.new.size)})",
        "renamed": lambda r: f"> {r.old.path} -> {r.new.path}",
    }
    with closing(listing.lists()) as lists:  # one read of the catalog, ended when the listing is
        for title, rows in lists:
            section(title, getattr(counts, title), (file_line[title](r) for r in rows))
    meta = ([f"+ {k} = {v!r}" for k, v in d.metadata_added.items()]
            + [f"- {k} = {v!r}" for k, v in d.metadata_removed.items()]
            + [f"~ {k}: {o!r} -> {n!r}" for k, (o, n) in d.metadata_changed.items()])
    small("metadata", meta)
    small("aliases", [f"+ {x}" for x in d.aliases_added] + [f"- {x}" for x in d.aliases_removed])
    small("tags", [f"+ {x}" for x in d.tags_added] + [f"- {x}" for x in d.tags_removed])
    if d.type_change:
        stdout.print(f"type: {d.type_change[0]} -> {d.type_change[1]}", markup=False)


@app.command("runs")
def list_runs(
    project: str | None = typer.Option(None, "--project", "-p"),
    filter: str | None = typer.Option(None, "--filter", "-f",
                                         help="e.g. 'group=sweep-1 state=finished summary.val_acc>=0.9'"),
    order: str | None = typer.Option(None, "--order", "-o", help="e.g. -summary.val_acc or created_at"),
    limit: int | None = typer.Option(None, "--limit", "-n"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List runs (a dead run that stopped sending heartbeats shows as crashed).

    Examples:
      lode runs -p zoo --filter 'group=sweep-1' --order -summary.val_acc
      lode runs --filter 'state=crashed OR state=failed'
    """
    found = context.api().runs(project, filter, order, limit=limit)
    if as_json:
        print_json([r.to_dict() for r in found])
        return
    table(["id", "project", "name", "group", "job type", "state", "summary", "created"], [
        [r.id, r.project, r.name, r.group, r.job_type, r.state, _short(r.summary), when(r.created_at)]
        for r in found
    ])


def _short(d: dict, width: int = 60) -> str:
    text = ", ".join(f"{k}={v}" for k, v in d.items() if not k.startswith("_"))
    return text if len(text) <= width else text[: width - 3] + "..."


@app.command("run")
def show_run(
    run_id: str = typer.Argument(..., help="Run id"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show a run: its state, config, summary, and the versions it used and logged."""
    run = context.api().run(run_id)
    used, logged = run.used_artifacts(), run.logged_artifacts()
    if as_json:
        print_json({**run.to_dict(), "used": [a.qualified_name for a in used],
                    "logged": [a.qualified_name for a in logged]})
        return
    key_values([
        ("project", run.project), ("name", run.name or "-"), ("group", run.group or "-"),
        ("job type", run.job_type or "-"), ("state", run.state), ("exit code", run.exit_code),
        ("tags", ", ".join(run.tags) or "-"), ("notes", run.notes or "-"),
        ("host/pid", f"{run.host}/{run.pid}"), ("created", when(run.created_at)),
        ("finished", when(run.finished_at)), ("heartbeat", when(run.heartbeat_at)),
        ("config", run.config), ("summary", run.summary),
        ("used", ", ".join(a.qualified_name for a in used) or "-"),
        ("logged", ", ".join(a.qualified_name for a in logged) or "-"),
    ], title=f"run {run.id}")
