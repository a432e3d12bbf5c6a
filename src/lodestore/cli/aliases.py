"""lode alias set | rm | history."""

from __future__ import annotations

import typer

from lodestore.cli import context
from lodestore.cli.app import app
from lodestore.cli.artifacts import artifact_ref
from lodestore.cli.output import print_json, stdout, table, when

alias_app = typer.Typer(help="Move, remove and audit aliases.", no_args_is_help=True)
app.add_typer(alias_app, name="alias")


@alias_app.command("set")
def set_alias(ref: str = typer.Argument(..., help="project/artifact:vN"), alias: str = typer.Argument(...)) -> None:
    """Point ALIAS at a version (moving it if another version holds it).

    Example: lode alias set zoo/animals:v1 production
    """
    version = context.service().set_alias(ref, alias)
    stdout.print(f"{alias} -> {version.qualified_name}")


@alias_app.command("rm")
def remove_alias(name: str = typer.Argument(..., help="project/artifact"), alias: str = typer.Argument(...)) -> None:
    """Remove an alias from an artifact."""
    parsed = artifact_ref(name, "alias rm")
    context.service().remove_alias(parsed.project, parsed.name, alias)
    stdout.print(f"removed {alias} from {parsed.project}/{parsed.name}")


@alias_app.command("history")
def alias_history(name: str = typer.Argument(..., help="project/artifact"),
                  as_json: bool = typer.Option(False, "--json")) -> None:
    """Every alias move: when, from which version, to which, by which run."""
    parsed = artifact_ref(name, "alias history")
    events = context.service().alias_history(parsed.project, parsed.name)
    if as_json:
        print_json(events)
        return
    v = lambda i: "-" if i is None else f"v{i}"  # noqa: E731
    table(["when", "alias", "from", "to", "run"],
          [[when(e.at), e.alias, v(e.from_index), v(e.to_index), e.run_id or "-"] for e in events])
