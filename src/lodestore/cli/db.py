"""lode db upgrade: migrate a catalog's schema to the one this lodestore knows.

A team's shared PostgreSQL catalog is never migrated by merely opening it (teammates with
an older lodestore would then be locked out without warning): a client that finds it
older refuses, naming both revisions, and someone runs this once. An embedded SQLite
catalog upgrades itself on open; this command works on it too and says what it did.
"""

from __future__ import annotations

from typing import Optional

import typer

from lodestore.cli import context
from lodestore.cli.app import app
from lodestore.cli.output import print_json, stdout

db_app = typer.Typer(help="The catalog's database: schema upgrades.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade(
    catalog: Optional[str] = typer.Option(  # noqa: UP045  (Typer reads the annotation at run time)
        None, "--catalog", metavar="URL",
        help="The catalog to migrate, e.g. postgresql://user@host:5432/db (default: --remote's or "
             "$LODESTORE_CATALOG, else the store's catalog.db)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Migrate the catalog to this lodestore's schema revision; prints from -> to.

    Example: lode db upgrade --catalog postgresql://lode@db.internal/team
    """
    from lodestore.sdk.service import Service  # noqa: PLC0415  (imported here, not with `lode`: cli/context.py)

    done = Service.upgrade_catalog(catalog or context.team["catalog"], context.state["root"],
                                   context.team["remote"])
    if as_json:
        print_json({"catalog": done.catalog, "from": done.from_revision, "to": done.to_revision,
                    "changed": done.changed})
        return
    if not done.changed:
        stdout.print(f"catalog {done.catalog}: schema already at {done.to_revision}", markup=False)
    elif done.from_revision is None:
        stdout.print(f"catalog {done.catalog}: new, created at schema {done.to_revision}", markup=False)
    else:
        stdout.print(f"catalog {done.catalog}: schema {done.from_revision} -> {done.to_revision}", markup=False)
