"""lode remote add | ls | rm: named team stores (an S3 bucket + a PostgreSQL catalog, or
any pair), kept in the local store folder's remotes.json; `lode --remote NAME ...` then
runs any command on that store. Like git remotes, a client setting, not shared."""

from __future__ import annotations

import typer

from lodestore.cli import context
from lodestore.cli.app import app
from lodestore.cli.output import print_json, stdout, table

remote_app = typer.Typer(help="Named team stores: lode remote add team --store s3://… --catalog postgresql://…",
                         no_args_is_help=True)
app.add_typer(remote_app, name="remote")


def _service_class():
    from lodestore.sdk.service import Service  # noqa: PLC0415  (~0.3 s: see cli/context.py)

    return Service


@remote_app.command("add")
def add_remote(
    name: str = typer.Argument(..., help="A name for the remote (letters, digits, . _ -)."),
    store: str | None = typer.Option(None, "--store", help="s3://bucket/prefix (or a folder)."),
    catalog: str | None = typer.Option(None, "--catalog", help="postgresql://user@host/db (or sqlite:///path)."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite a remote of the same name."),
) -> None:
    """Name a team store; nothing is contacted until a command uses it."""
    remote = _service_class().add_remote(name, store, catalog, replace=replace, root=context.local_root())
    stdout.print(f"added remote {remote.name}: {remote.to_dict()['store'] or '-'} + "
                 f"{remote.to_dict()['catalog'] or '-'}", markup=False)


@remote_app.command("ls")
def list_remotes(as_json: bool = typer.Option(False, "--json")) -> None:
    """The named remotes (catalog passwords masked)."""
    remotes = _service_class().remotes(context.local_root())
    if as_json:
        print_json([r.to_dict() for r in remotes])
        return
    table(["name", "store", "catalog"], [[r.name, r.store or "-", r.to_dict()["catalog"] or "-"] for r in remotes])


@remote_app.command("rm")
def remove_remote(name: str = typer.Argument(...)) -> None:
    """Forget a remote (the store itself is untouched)."""
    removed = _service_class().remove_remote(name, context.local_root())
    stdout.print(f"removed remote {removed.name}", markup=False)
